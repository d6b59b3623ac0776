"""The compiled fp16 GRU cell: the same bits as the torch calls it replaces, and a quiet fallback
where it cannot be built."""

import os
import subprocess
import sys
import warnings

import pytest
import torch

from amadeus.quant import native
from amadeus.quant.stepper import fp16_cell

needs_op = pytest.mark.skipif(
    not native.available(), reason="needs torch's AVX512 kernels and a C++ compiler"
)


def quint8(shape, spread: float, scale: float, zero_point: int, generator) -> torch.Tensor:
    with warnings.catch_warnings():  # torch's deprecation of quantized tensors
        warnings.simplefilter("ignore")
        x = torch.randn(shape, generator=generator) * spread
        return torch.quantize_per_tensor(x, scale, zero_point, torch.quint8)


@needs_op
@pytest.mark.parametrize("size", [64, 24, 5])  # 24 and 5 end rows in a partial 16-lane vector
@pytest.mark.parametrize("batch", [1, 3, 200])
def test_compiled_cell_is_fp16_cell_bit_for_bit(size, batch):
    generator = torch.Generator().manual_seed(size * 1000 + batch)
    # gates over [-9, 9] and beyond: sigmoid and tanh from their flat tails to their slopes
    gates_x = quint8((batch, 3 * size), 4.0, 0.07, 120, generator)
    gates_h = quint8((batch, 3 * size), 6.0, 0.09, 135, generator)
    h = (torch.rand(batch, size, generator=generator) * 2 - 1).half().float()
    want = fp16_cell(gates_x.dequantize(), gates_h.dequantize(), h, size).float()
    out = torch.full((batch, size), float("nan"))
    torch.ops.amadeus.gru_cell_fp16(gates_x, gates_h, h, *native.tanh_table(), out)
    assert torch.equal(out, want)


@needs_op
def test_compiled_tanh_on_every_fp16_value():
    """The n gates' codes one step either side of the zero point, at scale v: tanh's input is
    exactly +-v, for every finite fp16 v (the hidden gates at 0)."""
    size, generator = 16, torch.Generator().manual_seed(1)
    values = torch.arange(1, 0x7C00, dtype=torch.int32).to(torch.int16).view(torch.float16)
    rz = torch.randint(0, 256, (2 * size,), generator=generator)
    codes = torch.cat([rz, torch.tensor([129] * 8 + [127] * 8)]).to(torch.uint8)[None]
    gates_h = torch._make_per_tensor_quantized_tensor(torch.full_like(codes, 77), 0.05, 77)
    h = (torch.rand(1, size, generator=generator) * 2 - 1).half().float()
    table, start = native.tanh_table()
    out = torch.empty(len(values), size)
    for row, scale in enumerate(values.tolist()):
        gates_x = torch._make_per_tensor_quantized_tensor(codes, scale, 128)
        torch.ops.amadeus.gru_cell_fp16(gates_x, gates_h, h, table, start, out[row : row + 1])
    gates_x = (codes.float() - 128) * values.float()[:, None]  # torch's dequantization
    for rows in torch.arange(len(values)).split(256):  # in one thread: see native._fp16_tanh
        want = fp16_cell(gates_x[rows], torch.zeros_like(gates_x[rows]), h, size)
        assert torch.equal(out[rows], want.float())


@needs_op
def test_compiled_cell_refuses_wrong_shapes():
    gates = quint8((2, 12), 1.0, 0.1, 128, torch.Generator().manual_seed(0))
    table, start = native.tanh_table()
    cell = torch.ops.amadeus.gru_cell_fp16
    with pytest.raises(RuntimeError, match="gates must be"):
        cell(gates, gates, torch.zeros(2, 5), table, start, torch.zeros(2, 5))
    with pytest.raises(RuntimeError, match="h and out"):
        cell(gates, gates, torch.zeros(2, 4), table, start, torch.zeros(2, 4).half())
    with pytest.raises(RuntimeError, match="tanh_table"):
        cell(gates, gates, torch.zeros(2, 4), table.float(), start, torch.zeros(2, 4))


@pytest.mark.parametrize("env", [{"CXX": "false"}, {"AMADEUS_NATIVE": "0"}])
def test_no_compiler_keeps_the_torch_cell(tmp_path, env):
    """A compiler that fails (or the switch off) leaves nothing behind and the stepper working."""
    code = (
        "import numpy as np, torch\n"
        "from amadeus.model import PerformanceRNN\n"
        "from amadeus.quant import native\n"
        "from amadeus.quant.quantizer import calibrate, quantize\n"
        "assert not native.available()\n"
        "model = PerformanceRNN(40, 24, 8, hidden_dim=16, gru_layers=2).eval()\n"
        "batch = (torch.randn(2, 8), torch.randint(0, 40, (5, 2)), None)\n"
        "stepper = quantize(model, calibrate(model, [batch])).stepper()\n"
        "assert not stepper.compiled\n"
        "stepper.step(np.array([1, 2]), stepper.initial(np.zeros((2, 8), np.float32)))\n"
    )
    environment = dict(os.environ, XDG_CACHE_HOME=str(tmp_path), **env)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.rglob("*")) in ([], [tmp_path / "amadeus"])  # no half-built library


@needs_op
def test_built_once_then_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    library = native._build(native.compiler())
    assert library.parent == tmp_path / "amadeus" and library.exists()
    built = library.stat().st_mtime_ns
    assert native._build(native.compiler()) == library
    assert library.stat().st_mtime_ns == built
    assert [p.name for p in library.parent.iterdir()] == [library.name]
