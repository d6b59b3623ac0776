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
    not native.supported(), reason="needs torch's AVX512 kernels and a C++ compiler"
)


@pytest.fixture(autouse=True)
def built():
    """Where the op can be built it must be: a build that breaks fails here, not a skip."""
    if native.supported():
        assert native.available()


def quint8(shape, spread: float, scale: float, zero_point: int, generator) -> torch.Tensor:
    with warnings.catch_warnings():  # torch's deprecation of quantized tensors
        warnings.simplefilter("ignore")
        x = torch.randn(shape, generator=generator) * spread
        return torch.quantize_per_tensor(x, scale, zero_point, torch.quint8)


@needs_op
@pytest.mark.parametrize("size", [64, 24, 5])  # 24 and 5 end rows in a partial 16-lane vector
@pytest.mark.parametrize("batch", [1, 3, 31])  # n's [B, H] in one torch thread: see native
def test_compiled_cell_is_fp16_cell_bit_for_bit(size, batch):
    generator = torch.Generator().manual_seed(size * 1000 + batch)
    for _ in range(10):
        # gates over [-9, 9] and beyond: sigmoid and tanh from their flat tails to their slopes
        gates_x = quint8((batch, 3 * size), 4.0, 0.07, 120, generator)
        gates_h = quint8((batch, 3 * size), 6.0, 0.09, 135, generator)
        h = torch.rand(batch, size, generator=generator) * 2 - 1  # the cell rounds it to fp16
        want = fp16_cell(gates_x.dequantize(), gates_h.dequantize(), h, size).float()
        out = torch.full((batch, size), float("nan"))
        torch.ops.amadeus.gru_cell_fp16(gates_x, gates_h, h, *native.tanh_table(), out)
        assert torch.equal(out, want)


@needs_op
def test_compiled_cell_keeps_inf_and_nan():
    """At scale 600 the outer codes are past fp16's range (65504): inf, and inf - inf is NaN. As
    in torch, a model gone wrong must not look finite."""
    generator = torch.Generator().manual_seed(2)
    codes_x = torch.randint(0, 256, (4, 48), generator=generator)
    codes_h = torch.randint(0, 256, (4, 48), generator=generator)
    codes_x[0, :16] = 255  # r = sigmoid(inf) = 1
    codes_h[0, :16] = 128
    codes_x[0, 32:40] = 255  # tanh's input: inf - inf = NaN in 4 columns, inf in 4
    codes_h[0, 32:40] = torch.tensor([0] * 4 + [128] * 4)
    gates_x, gates_h = (
        torch._make_per_tensor_quantized_tensor(codes.to(torch.uint8), 600.0, 128)
        for codes in (codes_x, codes_h)
    )
    h = torch.rand(4, 16, generator=generator)
    want = fp16_cell(gates_x.dequantize(), gates_h.dequantize(), h, 16).float()
    out = torch.empty(4, 16)
    torch.ops.amadeus.gru_cell_fp16(gates_x, gates_h, h, *native.tanh_table(), out)
    assert want[0, :4].isnan().all() and not want[0, 4:8].isnan().any()
    assert torch.equal(out.isnan(), want.isnan())
    assert torch.equal(out.nan_to_num(), want.nan_to_num())


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
    for rows in torch.arange(len(values)).split(64):  # in one thread: see native._fp16_tanh
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


FAILING_COMPILER = """#!/bin/sh
# writes part of a library where -o says, then fails
while [ $# -gt 0 ]; do [ "$1" = "-o" ] && echo partial > "$2"; shift; done
echo "fatal error: no space left on device" >&2
exit 1
"""
STEPPER_CODE = (
    "import numpy as np, torch\n"
    "from amadeus.model.network import PerformanceRNN\n"
    "from amadeus.quant import native\n"
    "from amadeus.quant.quantizer import calibrate, quantize\n"
    "model = PerformanceRNN(40, 24, 8, hidden_dim=16, gru_layers=2).eval()\n"
    "batch = (torch.randn(2, 8), torch.randint(0, 40, (5, 2)), None)\n"
    "stepper = quantize(model, calibrate(model, [batch])).stepper()\n"
    "stepper.step(np.array([1, 2]), stepper.initial(np.zeros((2, 8), np.float32)))\n"
    "print(native.available(), stepper.compiled)\n"
)


def run_stepper(cache, **env) -> subprocess.CompletedProcess:
    environment = dict(os.environ, XDG_CACHE_HOME=str(cache), **env)
    return subprocess.run(
        [sys.executable, "-c", STEPPER_CODE],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


@pytest.mark.parametrize("switch", ["0", "off"])
def test_switched_off_keeps_the_torch_cell_quietly(tmp_path, switch):
    result = run_stepper(tmp_path, AMADEUS_NATIVE=switch)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"] and result.stderr == ""
    assert list(tmp_path.iterdir()) == []


@needs_op
def test_failed_build_says_so_and_leaves_nothing(tmp_path):
    compiler = tmp_path / "cc"
    compiler.write_text(FAILING_COMPILER)
    compiler.chmod(0o755)
    result = run_stepper(tmp_path / "cache", CXX=str(compiler))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]  # the stepper runs on torch calls
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "no space left" in lines[0]
    assert list((tmp_path / "cache" / "amadeus").iterdir()) == []  # no half-built library


@needs_op
def test_built_once_reused_and_rebuilt_when_broken(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    library = native._build(native.compiler())
    assert library.parent == tmp_path / "amadeus" and library.exists()
    built = library.stat().st_mtime_ns
    assert native._build(native.compiler()) == library
    assert library.stat().st_mtime_ns == built
    assert [p.name for p in library.parent.iterdir()] == [library.name]
    library.write_bytes(b"")  # as a crash might leave it
    result = run_stepper(tmp_path)
    assert result.stdout.split() == ["True", "True"] and result.stderr == ""
    assert library.stat().st_size > 0
