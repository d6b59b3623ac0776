"""Float model + statistics -> int8 model: calibration, accuracy against fp32, files, bad stats."""

import copy
import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fresh_python import assert_warns_nobody

from amadeus.errors import StatsError
from amadeus.model.network import PerformanceRNN
from amadeus.quant import kernel, native
from amadeus.quant.linear import Int8Embedding, Int8Linear
from amadeus.quant.models import Int8PerformanceRNN, quantized_linears, split
from amadeus.quant.quantizer import calibrate, quantize
from amadeus.quant.stats import load_stats
from amadeus.quant.stepper import Int8Stepper

FIXTURE = (
    Path(__file__).resolve().parents[1] / "../shared/fixtures/distiller_stats_performance_rnn.yaml"
)
V, C, INIT = 40, 24, 8


def windows(generator, batch, steps=48):
    """(init, events, controls) of a walk that mostly follows next = 3 * previous + 1 (mod V)."""
    events = torch.empty(steps, batch, dtype=torch.long)
    events[0] = torch.randint(0, V, (batch,), generator=generator)
    for t in range(1, steps):
        jump = torch.rand(batch, generator=generator) < 0.1
        noise = torch.randint(0, V, (batch,), generator=generator)
        events[t] = torch.where(jump, noise, (3 * events[t - 1] + 1) % V)
    init = torch.randn(batch, INIT, generator=generator)
    return init, events, torch.rand(steps, batch, C, generator=generator)


@pytest.fixture(scope="module")
def trained():
    """A small model trained for a few seconds: confident enough for top-1 to mean something."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small products: threads only add overhead on a shared machine
    try:
        yield _train()
    finally:
        torch.set_num_threads(threads)


def _train():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = PerformanceRNN(V, C, INIT, hidden_dim=64, gru_layers=2, gru_dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        init, events, controls = windows(generator, 16)
        logits = model.logits(init, events, controls)
        loss = F.cross_entropy(logits.reshape(-1, V), events.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    stats = calibrate(model, [windows(generator, 16) for _ in range(4)])
    return model, stats, quantize(model, stats), windows(generator, 32)


def test_split_model_equals_the_model():
    torch.manual_seed(1)
    model = PerformanceRNN(V, C, INIT, hidden_dim=32, gru_layers=3).eval()
    init, events, controls = windows(torch.Generator().manual_seed(1), 3, steps=10)
    with torch.no_grad():
        want = model.logits(init, events, controls)
        got = split(model).logits(init, events, controls)
        hidden = model.init_to_hidden(init)
        step_want = model.step(events[0], hidden, controls[0])
        step_got = split(model).step(events[0], hidden, controls[0])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    for a, b in zip(step_got, step_want):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def distiller_names(layers: int) -> list[str]:
    """The modules a calibration records, in Distiller's names and order."""
    cell = ["fc_gate_x", "fc_gate_h", "eltwiseadd_gate", "eltwisemult_gate", "act_r", "act_z"]
    return [
        "inithid_fc",
        "inithid_fc_activation",
        "event_embedding",
        "concat_input_fc",
        "concat_input_fc_activation",
        *[f"gru.cells.{k}.{part}" for k in range(layers) for part in [*cell, "act_n"]],
        "output_fc",
    ]


def test_calibration_names_and_eval_mode():
    torch.manual_seed(2)
    model = PerformanceRNN(V, C, INIT, hidden_dim=32, gru_layers=2, gru_dropout=0.9).train()
    stats = calibrate(model, [windows(torch.Generator().manual_seed(2), 4, steps=12)])
    assert list(stats) == distiller_names(2)
    assert model.training  # the caller's model is left as it was
    # no dropout in the hidden state: every GRU state is a tanh/sigmoid mix, bounded by 1
    for k in range(2):
        gate_h = stats.require(f"gru.cells.{k}.fc_gate_h").inputs[0]
        assert gate_h.min >= -1 and gate_h.max <= 1
    assert stats.require("output_fc").inputs[0].shape == (12, 4, 64)
    assert all(module.ran for module in stats.values())


def test_int8_close_to_fp32(trained):
    model, _, int8, (init, events, controls) = trained
    with torch.no_grad():
        want = model.logits(init, events, controls)
        got = int8.logits(init, events, controls)
    agreement = (got.argmax(-1) == want.argmax(-1)).float().mean().item()
    assert agreement >= 0.95
    ppl = [F.cross_entropy(x.reshape(-1, V), events.reshape(-1)).exp().item() for x in (want, got)]
    assert ppl[1] == pytest.approx(ppl[0], rel=0.03)
    assert (got - want).abs().mean() < 0.1 * want.abs().mean()


def test_what_is_int8(trained):
    _, _, int8, _ = trained
    for name in quantized_linears(int8.config):
        assert isinstance(int8.get_submodule(name), Int8Linear)
    assert isinstance(int8.event_embedding, Int8Embedding)
    assert int8.gru.cells[1].eltwiseadd_gate.fp16 and int8.gru.cells[0].eltwisemult_gate.fp16
    assert all(p.dtype != torch.float32 or p.numel() == 0 for p in int8.parameters())


def test_step_matches_logits(trained):
    _, _, int8, (init, events, controls) = trained
    with torch.no_grad():
        whole = int8.logits(init[:4], events[:12, :4], controls[:12, :4])
        stepwise = int8.logits_stepwise(init[:4], events[:12, :4], controls[:12, :4])
    torch.testing.assert_close(stepwise, whole, atol=1e-5, rtol=0)


def test_save_and_load(trained):
    _, _, int8, (init, events, controls) = trained
    buffer = io.BytesIO()
    torch.save(int8.state_dict(), buffer)
    buffer.seek(0)
    loaded = Int8PerformanceRNN.from_state_dict(int8.config, torch.load(buffer, weights_only=True))
    with torch.no_grad():
        assert torch.equal(
            loaded.logits(init, events, controls), int8.logits(init, events, controls)
        )


def test_original_stats_quantize_a_3x512_model_to_under_30_percent():
    torch.manual_seed(3)
    model = PerformanceRNN(event_dim=240, control_dim=24, init_dim=32, hidden_dim=512).eval()
    int8 = quantize(model, load_stats(FIXTURE))
    assert int8.inithid_fc.in_params[1] == 2 and int8.inithid_fc.out_params[1] == -16
    sizes = []
    for m in (model, int8):
        buffer = io.BytesIO()
        torch.save(m.state_dict(), buffer)
        sizes.append(buffer.tell())
    assert sizes[1] <= 0.30 * sizes[0]


@pytest.mark.parametrize(
    ("layers", "hidden", "reason"),
    [
        (4, 512, "module inithid_fc output has 1536 features, the model 2048"),
        (3, 256, "module inithid_fc output has 1536 features, the model 768"),
    ],
)
def test_stats_from_another_architecture(layers, hidden, reason):
    model = PerformanceRNN(240, 24, 32, hidden_dim=hidden, gru_layers=layers)
    with pytest.raises(StatsError, match=re.escape(f"{FIXTURE}: {reason}")):
        quantize(model, load_stats(FIXTURE))


def test_stats_missing_a_module(tmp_path):
    stats = load_stats(FIXTURE)
    del stats["gru.cells.1.fc_gate_h"]
    model = PerformanceRNN(240, 24, 32, hidden_dim=512, gru_layers=3)
    with pytest.raises(
        StatsError, match=re.escape(f"{FIXTURE}: no statistics for module gru.cells.1.fc_gate_h")
    ):
        quantize(model, stats)


# fbgemm False: the reference kernel, as on CUDA; compiled: native's fp16 cell
@pytest.mark.parametrize("fbgemm, compiled", [(True, True), (True, False), (False, False)])
def test_stepper_is_the_model_step_bit_for_bit(trained, fbgemm, compiled, monkeypatch):
    if compiled and not native.supported():
        pytest.skip("the compiled cell needs torch's AVX512 kernels and a C++ compiler")
    _, _, int8, (init, events, controls) = trained
    fbgemm = fbgemm and kernel.FBGEMM  # forced where torch has it, exact or not: both sides
    monkeypatch.setattr(kernel, "FBGEMM_EXACT", fbgemm)  # of the comparison use the same kernel
    int8 = copy.deepcopy(int8)  # the copy packs its layers afresh, for the same kernel
    stepper = Int8Stepper(int8, "cpu", compiled)
    assert stepper.script.output.original_name == ("FbgemmGemm" if fbgemm else "ReferenceGemm")
    cell = "CompiledCell" if compiled else "TorchCell"
    assert [c.original_name for c in stepper.script.cells.children()] == [cell, cell]
    assert (stepper.start_token, stepper.event_dim) == (V - 1, V)
    hidden = stepper.initial(init[:3].numpy())
    want_hidden = int8.init_to_hidden(init[:3])  # [L, B, H]
    for t in range(8):  # TorchScript's executor optimizes the script after its first calls
        control = controls[t, :3] if t % 2 else None  # with and without conditioning
        logits, hidden = stepper.step(
            events[t, :3].numpy(), hidden, None if control is None else control.numpy()
        )
        with torch.no_grad():
            want, want_hidden = int8.step(events[t, :3], want_hidden, control)
        assert isinstance(logits, np.ndarray) and np.array_equal(logits, want.numpy())
        assert torch.equal(hidden, want_hidden)
    rows = np.array([2, 2, 0])
    assert torch.equal(stepper.take(hidden, rows), hidden[:, [2, 2, 0]])


def test_compiled_cell_needs_fbgemm(trained, monkeypatch):
    monkeypatch.setattr(kernel, "FBGEMM_EXACT", False)
    with pytest.raises(ValueError, match="needs fbgemm"):
        Int8Stepper(copy.deepcopy(trained[2]), "cpu", compiled=True)


def test_stepper_warns_nobody():
    code = (
        "import numpy as np, torch\n"
        "from amadeus.model.network import PerformanceRNN\n"
        "from amadeus.quant.quantizer import calibrate, quantize\n"
        "model = PerformanceRNN(40, 24, 8, hidden_dim=16, gru_layers=2).eval()\n"
        "batch = (torch.randn(2, 8), torch.randint(0, 40, (5, 2)), None)\n"
        "stepper = quantize(model, calibrate(model, [batch])).stepper()\n"
        "hidden = stepper.initial(np.zeros((2, 8), np.float32))\n"
        "for _ in range(3):\n"
        "    logits, hidden = stepper.step(np.array([1, 2]), hidden)\n"
    )
    assert_warns_nobody(code)
