"""The model classes of quantization: the Performance RNN with its GRU split into cells (float, for
calibration) and the int8 one. Both offer the float model's `logits` and `step`, so evaluation and
generation take either without knowing which; the int8 one also offers its fast `stepper`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from amadeus.model.network import ModelConfig, PerformanceRNN
from amadeus.quant.gru import DecomposedGRU
from amadeus.quant.linear import Int8Embedding, Int8Linear
from amadeus.quant.stepper import Int8Stepper

Range = tuple[float, float]


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
    """The quantized model: int8 Linears and embedding, fp16 GRU element-wise ops. Made by
    `quantizer.quantize`, or empty by `from_state_dict` to load a saved one."""

    @classmethod
    def from_split(
        cls, model: SplitPerformanceRNN, ranges: Callable[[str], tuple[Range, Range]]
    ) -> Int8PerformanceRNN:
        """Replaces the float layers of `model` (of this class) in place by int8 ones, with the
        (input, output) ranges `ranges(name)` of each quantized Linear."""
        for name in quantized_linears(model.config):
            linear = model.get_submodule(name)
            model.set_submodule(name, Int8Linear.from_float(linear, *ranges(name)))
        model.event_embedding = Int8Embedding.from_float(model.event_embedding)
        model.gru.set_fp16()
        return model

    @classmethod
    def from_state_dict(cls, config: ModelConfig, state: dict[str, Tensor]) -> Int8PerformanceRNN:
        """A saved int8 model (its `state_dict()`: plain tensors, loads with weights_only)."""
        skeleton = cls.from_split(split(PerformanceRNN.from_config(config), cls), _no_range)
        skeleton.load_state_dict(state)
        return skeleton

    def stepper(self, device: torch.device | str = "cpu") -> Int8Stepper:
        return Int8Stepper(self, device)


def _no_range(_name: str) -> tuple[Range, Range]:
    return (0, 0), (0, 0)


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
