"""Float Performance RNN + calibration statistics -> int8 Performance RNN, with the same `logits`
and `step`, so that evaluation and generation take either without knowing which.

What is int8 (Distiller's range-linear scheme, `linear.py`): inithid_fc, event_embedding,
concat_input_fc, every GRU gate Linear and output_fc. The GRU's element-wise adds and multiplies
run in float16; sigmoid, tanh and LeakyReLU in float32.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from amadeus.errors import StatsError
from amadeus.model import ModelConfig, PerformanceRNN
from amadeus.quant.gru import DecomposedGRU
from amadeus.quant.linear import Int8Embedding, Int8Linear
from amadeus.quant.stats import Stats, StatsCollector
from amadeus.quant.stepper import Int8Stepper

Range = tuple[float, float]
UNCLIPPED = ("output_fc",)  # outputs quantized over their whole range, not AVG-clipped


class SplitPerformanceRNN(PerformanceRNN):
    """The Performance RNN with its GRU split into cells (`gru.cells.K.fc_gate_x`, ...): float for
    calibration, int8 once quantized. Always in eval mode: it has no dropout."""

    def logits(self, init: Tensor, events: Tensor, controls: Tensor | None = None) -> Tensor:
        """As `PerformanceRNN.logits`: teacher-forced logits [T, B, V] for events [T, B]."""
        x = self.teacher_forced_inputs(events, controls)  # [T, B, H]
        states = self.gru.layer_outputs(x, self.init_to_hidden(init))  # L x [T, B, H]
        return self.output_fc(torch.cat(states, -1))  # [T, B, L*H] -> [T, B, V]

    # `step` is PerformanceRNN's: DecomposedGRU answers nn.GRU's (output, h_n).


class Int8PerformanceRNN(SplitPerformanceRNN):
    """The quantized model (see `quantize`); `stepper` gives generation its fast path."""

    def stepper(self, device: torch.device | str = "cpu") -> Int8Stepper:
        return Int8Stepper(self, device)


def split(model: PerformanceRNN, cls: type = SplitPerformanceRNN) -> SplitPerformanceRNN:
    """A float copy of `model` with its GRU split into cells, in eval mode."""
    new = cls.from_config(model.config)
    new.load_state_dict(model.state_dict())
    new.gru = DecomposedGRU.from_gru(model.gru)
    return new.to(next(model.parameters()).device).eval()


def quantized_linears(config: ModelConfig) -> list[str]:
    """Names of the Linears that become int8, as in the statistics file."""
    cells = [f"gru.cells.{k}" for k in range(config.gru_layers)]
    gates = [f"{cell}.{fc}" for cell in cells for fc in ("fc_gate_x", "fc_gate_h")]
    return ["inithid_fc", "concat_input_fc", *gates, "output_fc"]


@torch.no_grad()
def calibrate(
    model: PerformanceRNN, batches: Iterable[tuple[Tensor, Tensor, Tensor | None]]
) -> Stats:
    """Statistics of every module's inputs and output over `batches` of (init [B, init_dim],
    events [T, B], controls [T, B, C] or None), run teacher-forced in eval mode: dropout in the
    hidden state would blow its range up, as it did in the original's calibration."""
    calibration = split(model)
    with StatsCollector(calibration) as collector:
        for init, events, controls in batches:
            calibration.logits(init, events, controls)
    return collector.stats()


def quantize(model: PerformanceRNN, stats: Stats) -> Int8PerformanceRNN:
    """The int8 model: weights from `model`, activation ranges (avg_min, avg_max) from `stats`."""
    names = quantized_linears(model.config)
    float_model = split(model, Int8PerformanceRNN)
    ranges = {name: _ranges(stats, name, float_model.get_submodule(name)) for name in names}
    return _swap(float_model, ranges.__getitem__)


def from_state_dict(config: ModelConfig, state: dict[str, Tensor]) -> Int8PerformanceRNN:
    """Rebuild an int8 model saved with `state_dict()` (plain tensors, loads with weights_only)."""
    float_model = split(PerformanceRNN.from_config(config), Int8PerformanceRNN)
    skeleton = _swap(float_model, lambda _name: ((0, 0), (0, 0)))
    skeleton.load_state_dict(state)
    return skeleton


def _swap(model: SplitPerformanceRNN, ranges: Callable[[str], tuple[Range, Range]]):
    """Replace the float layers of `model` by int8 ones, in place; element-wise ops to fp16."""
    for name in quantized_linears(model.config):
        model.set_submodule(name, Int8Linear.from_float(model.get_submodule(name), *ranges(name)))
    model.event_embedding = Int8Embedding.from_float(model.event_embedding)
    model.gru.set_fp16()
    return model


def _ranges(stats: Stats, name: str, linear: nn.Linear) -> tuple[Range, Range]:
    """(input, output) clipping ranges of one Linear, refusing statistics of another shape."""
    module = stats.require(name)
    if 0 not in module.inputs:
        raise StatsError(f"{stats.source}: module {name} has no input statistics")
    record_in, record_out = module.inputs[0], module.output
    sizes = {"input": (record_in, linear.in_features), "output": (record_out, linear.out_features)}
    for what, (record, size) in sizes.items():
        if record.shape and record.shape[-1] != size:
            raise StatsError(
                f"{stats.source}: module {name} {what} has {record.shape[-1]} features, "
                f"the model {size}: statistics from another architecture"
            )
    # The logits keep their whole range: clipping them to the average extremes flattens the
    # likeliest events (+9% perplexity on Bach). Distiller's --qe-no-clip-layers does the same.
    out_range = (record_out.min, record_out.max) if name in UNCLIPPED else record_out.avg_range
    return record_in.avg_range, out_range
