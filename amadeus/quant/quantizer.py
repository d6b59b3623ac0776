"""Float Performance RNN + calibration statistics -> int8 Performance RNN. Only conversion: the
model classes are in `models`, their files in `session`.

What is int8 (Distiller's range-linear scheme, `linear.py`): inithid_fc, event_embedding,
concat_input_fc, every GRU gate Linear and output_fc. The GRU's element-wise adds and multiplies
run in float16; sigmoid, tanh and LeakyReLU in float32.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from amadeus.errors import StatsError
from amadeus.model.network import PerformanceRNN
from amadeus.quant.models import Int8PerformanceRNN, Range, quantized_linears, split
from amadeus.quant.stats import Stats, StatsCollector

UNCLIPPED = ("output_fc",)  # outputs quantized over their whole range, not AVG-clipped


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
    float_model = split(model, Int8PerformanceRNN)
    ranges = {
        name: _ranges(stats, name, float_model.get_submodule(name))
        for name in quantized_linears(model.config)
    }
    return Int8PerformanceRNN.from_split(float_model, ranges.__getitem__)


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
