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
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor

from amadeus.dataset import DataRecord
from amadeus.errors import SessionError, UsageError
from amadeus.model import ModelConfig
from amadeus.quant.models import Int8PerformanceRNN
from amadeus.quant.quantizer import quantize
from amadeus.quant.stats import load_stats
from amadeus.session import (
    Loaded,
    Session,
    build_model,
    checked_codec,
    checked_config,
    data_record,
    expect,
    read_checkpoint,
    write_checkpoint,
)

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


def load_int8(path: str | os.PathLike) -> Loaded:
    """The int8 model of an `.int8.sess`, in eval mode on the CPU."""
    path = Path(path)
    data = read_checkpoint(path)
    if not _is_int8(data):
        raise SessionError(f"{path}: not an int8 session (no quantization marker)")
    return _from_dict(data, path)


def load_any(path: str | os.PathLike, stats_file: str | os.PathLike | None = None) -> Loaded:
    """The model of a `.sess` or an `.int8.sess` (told apart by content, the file read once), in
    eval mode on the CPU; with `stats_file`, a float session is quantized on the fly."""
    path = Path(path)
    data = read_checkpoint(path)
    if _is_int8(data):
        if stats_file is not None:
            raise UsageError(f"{stats_file}: {path} is already int8; statistics quantize a .sess")
        return _from_dict(data, path)
    session = Session.from_checkpoint(data, path)
    model = build_model(session).eval()
    if stats_file is not None:
        model = quantize(model, load_stats(stats_file))
    return Loaded(model, session.codec, session.data, session.step, path, stats_file is not None)


def state_bytes(state: dict[str, Tensor]) -> int:
    """Size of a state dict as torch.save writes it: what the weights cost on disk."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.tell()


def _is_int8(data: dict) -> bool:
    return "quantization" in data


def _from_dict(data: dict, path: Path) -> Loaded:
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
    return Loaded(model, codec, data_record(data, path), step, path, int8=True)


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
