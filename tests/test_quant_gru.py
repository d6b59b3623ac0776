"""The GRU split into cells equals nn.GRU, and its fp16 element-wise path really is fp16."""

import pytest
import torch
from torch import nn

from amadeus.quant.gru import DecomposedGRU, EltwiseAdd, EltwiseMult
from amadeus.quant.stats import StatsCollector


@pytest.mark.parametrize(
    ("input_size", "hidden", "layers", "batch", "steps"),
    [(5, 7, 1, 1, 1), (16, 8, 2, 3, 9), (12, 32, 3, 4, 6), (32, 16, 4, 1, 5)],
)
def test_equals_nn_gru(input_size, hidden, layers, batch, steps):
    torch.manual_seed(input_size + layers)
    gru = nn.GRU(input_size, hidden, num_layers=layers, dropout=0.3 if layers > 1 else 0.0).eval()
    split = DecomposedGRU.from_gru(gru)
    x = torch.randn(steps, batch, input_size)
    h0 = torch.randn(layers, batch, hidden) * 0.5
    with torch.no_grad():
        want, want_h = gru(x, h0)
        got, got_h = split(x, h0)
        layer_outputs = split.layer_outputs(x, h0)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    torch.testing.assert_close(got_h, want_h, atol=1e-5, rtol=0)
    # every layer's state at every step: the last step is h_n, the top layer is the output
    assert len(layer_outputs) == layers
    torch.testing.assert_close(
        torch.stack([o[-1] for o in layer_outputs]), want_h, atol=1e-5, rtol=0
    )
    assert torch.equal(layer_outputs[-1], got)


def test_zero_initial_state_and_no_bias():
    torch.manual_seed(1)
    gru = nn.GRU(6, 10, num_layers=2, bias=False)
    split = DecomposedGRU.from_gru(gru)
    x = torch.randn(4, 3, 6)
    with torch.no_grad():
        torch.testing.assert_close(split(x)[0], gru(x)[0], atol=1e-5, rtol=0)
    assert split.cells[0].fc_gate_x.bias is None


def test_step_by_step_equals_whole_sequence():
    torch.manual_seed(2)
    split = DecomposedGRU.from_gru(nn.GRU(8, 12, num_layers=3))
    x = torch.randn(5, 2, 8)
    h = torch.zeros(3, 2, 12)
    with torch.no_grad():
        whole, _ = split(x, h)
        steps = []
        for xt in x:
            out, h = split(xt[None], h)
            steps.append(out[0])
    torch.testing.assert_close(torch.stack(steps), whole, atol=1e-6, rtol=0)


def test_refuses_unsupported_grus():
    for gru in (nn.GRU(4, 4, bidirectional=True), nn.GRU(4, 4, batch_first=True)):
        with pytest.raises(ValueError, match="unidirectional"):
            DecomposedGRU.from_gru(gru)


def test_module_names_match_distiller():
    names = {name for name, _ in DecomposedGRU(4, 4, num_layers=2).named_modules()}
    parts = ("fc_gate_x", "fc_gate_h", "eltwiseadd_gate", "eltwisemult_gate", "act_r", "act_z")
    assert {f"cells.{k}.{part}" for k in (0, 1) for part in (*parts, "act_n")} <= names


@pytest.mark.parametrize(("module", "op"), [(EltwiseAdd, torch.add), (EltwiseMult, torch.mul)])
def test_fp16_eltwise_rounds_to_fp16(module, op):
    torch.manual_seed(3)
    a, b = torch.randn(2, 1000) * 3
    got = module(fp16=True)(a, b)
    assert got.dtype == torch.float32
    assert torch.equal(got, op(a.half(), b.half()).float())
    assert torch.equal(got, got.half().float())  # every value is a float16
    exact = module()(a, b)
    assert not torch.equal(got, exact)
    # three roundings to 11 significant bits: inputs and result
    assert ((got - exact).abs() <= 2**-10 * (a.abs() + b.abs() + exact.abs())).all()


def test_fp16_gru_stays_close():
    torch.manual_seed(4)
    gru = nn.GRU(16, 32, num_layers=3)
    split = DecomposedGRU.from_gru(gru).set_fp16()
    x, h0 = torch.randn(20, 4, 16), torch.randn(3, 4, 32) * 0.5
    with torch.no_grad():
        want, _ = gru(x, h0)
        got, _ = split(x, h0)
    assert not torch.allclose(got, want, atol=1e-6, rtol=0)
    torch.testing.assert_close(got, want, atol=1e-2, rtol=0)
    split.set_fp16(False)
    with torch.no_grad():
        torch.testing.assert_close(split(x, h0)[0], want, atol=1e-5, rtol=0)


def test_hooks_see_every_gate_module():
    split = DecomposedGRU(4, 6, num_layers=2)
    with StatsCollector(split) as collector, torch.no_grad():
        split(torch.randn(3, 2, 4))
    stats = collector.stats()
    gate_x = stats["cells.1.fc_gate_x"]
    assert gate_x.inputs[0].shape == (3, 2, 6)  # all steps of layer 0's output at once
    assert gate_x.output.shape == (3, 2, 18)
    add = stats["cells.0.eltwiseadd_gate"]
    assert set(add.inputs) == {0, 1} and add.output.ran
    assert stats["cells.0.act_n"].output.max <= 1


@pytest.mark.parametrize("activation", [torch.sigmoid, torch.tanh])
def test_fp16_activations_are_fp32_ones_rounded(activation):
    """the int8 stepper applies sigmoid and tanh to fp16 tensors, standing for the scheme's fp32
    activations whose results the next fp16 op rounds: true for every finite fp16 value."""
    every = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(torch.float16)
    every = every[torch.isfinite(every)]
    for values in (every, every[:37]):  # vectorised and scalar tails
        direct = activation(values)
        rounded = activation(values.float()).half()
        assert torch.equal(direct.view(torch.int16), rounded.view(torch.int16))
