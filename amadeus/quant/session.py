"""`.int8.sess` files: an int8 Performance RNN ready to generate, a quarter of the float weights.

A `torch.save` dict, loaded with `weights_only=True`:

    model_config   the float model's shape, as in a `.sess`
    codec          token layout preset, as in a `.sess`
    step           training steps of the float session it came from
    data           how its training data was cut and made, as in a `.sess` (None: older file)
    quantization   {"scheme": SCHEME, "format": FORMAT}: the marker that tells it from a `.sess`
    int8_state     Int8PerformanceRNN.state_dict(): int8 weights, their per-row scales and zero
                   points, int32 biases and the (scale, zero point) of every activation range

The weights live under `int8_state`, not `model_state`: a program expecting float weights (the
original project, train.py) stops at a missing key instead of loading int8 values as floats.
"""

from __future__ import annotations

import io
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from amadeus.data.dataset import DataRecord
from amadeus.errors import SessionError
from amadeus.model.network import ModelConfig
from amadeus.model.session import (
    checked_codec,
    checked_config,
    data_record,
    expect,
    write_checkpoint,
)
from amadeus.quant.models import Int8PerformanceRNN

SCHEME = "distiller-range-linear-asym-int8"
FORMAT = 1  # version of this layout


def save_int8(
    model: Int8PerformanceRNN,
    codec: str,
    path: str | os.PathLike,
    step: int = 0,
    data: DataRecord | None = None,
) -> None:
    """Write atomically: an interrupted save leaves the previous file intact."""
    write_checkpoint(
        {
            "model_config": asdict(model.config),
            "codec": codec,
            "step": step,
            "data": None if data is None else data.to_dict(),
            "quantization": {"scheme": SCHEME, "format": FORMAT},
            "int8_state": {k: v.cpu() for k, v in model.state_dict().items()},
        },
        Path(path),
    )


def state_bytes(state: dict[str, Tensor]) -> int:
    """Size of a state dict as torch.save writes it: what the weights cost on disk."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.tell()


def is_int8(data: dict) -> bool:
    """Whether a checkpoint's dict (`read_checkpoint`) is an int8 session."""
    return "quantization" in data


@dataclass(frozen=True)
class Int8Session:
    """What an `.int8.sess` holds, checked."""

    model: Int8PerformanceRNN  # in eval mode, on the CPU
    codec: str
    data: DataRecord | None
    step: int


def read_int8(data: dict, path: Path) -> Int8Session:
    """The int8 session in a checkpoint's dict; SessionError naming `path` for any defect."""
    marker = data["quantization"]
    if not isinstance(marker, dict) or marker.get("scheme") != SCHEME:
        raise SessionError(f"{path}: unknown quantization {marker!r}, this Amadeus reads {SCHEME}")
    version = marker.get("format")
    if not isinstance(version, int) or version > FORMAT:
        raise SessionError(f"{path}: int8 session written by a newer Amadeus (format {version!r})")
    config = checked_config(data, path)
    expect(data, path, "codec", str)  # required here: int8 sessions always record theirs
    codec = checked_codec(data, path, config)
    model = _model(config, expect(data, path, "int8_state", dict), path)
    step = expect(data, path, "step", int, 0)
    return Int8Session(model, codec, data_record(data, path), step)


def _model(config: ModelConfig, state: dict, path: Path) -> Int8PerformanceRNN:
    """The int8 model, refusing a state of another shape or dtype: load_state_dict would cast
    float values into the int8 buffers without a word."""
    if not all(isinstance(v, Tensor) for v in state.values()):
        raise SessionError(f"{path}: int8_state holds something other than tensors")
    try:
        model = Int8PerformanceRNN.from_state_dict(config, state)
    except RuntimeError as e:  # load_state_dict's first line is a title, the second the reason
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        reason = lines[1] if len(lines) > 1 else lines[0]
        raise SessionError(f"{path}: int8_state does not match model_config: {reason}") from e
    for key, want in model.state_dict().items():
        if state[key].dtype != want.dtype:
            raise SessionError(
                f"{path}: int8_state {key} is {state[key].dtype}, expected {want.dtype}"
            )
    return model.eval()
