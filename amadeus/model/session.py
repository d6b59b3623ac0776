"""`.sess` files: a model with everything needed to resume training or to generate.

The layout is the original Performance-RNN-PyTorch one (`model_config`, `model_state`,
`model_optimizer_state`) plus our keys, so each program opens the other's files. Files are loaded
with `weights_only=True`, so a checkpoint from a stranger never runs code, and every way a file can
be wrong is a `SessionError` naming it: nothing ever falls back silently to a fresh model.
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from amadeus.atomic import write_bytes
from amadeus.data.codec import PRESETS
from amadeus.data.dataset import DataRecord
from amadeus.errors import SessionError
from amadeus.model.network import ModelConfig, PerformanceRNN

FORMAT = 1  # version of our keys; files without `amadeus_format` come from the original project
ORIGINAL_CODEC = "prnn"  # the original project's only token layout...
ORIGINAL_EVENT_DIM = 240  # ...and its vocabulary size

# Our keys beside the original three; any others are kept in Session.extra.
_OUR_KEYS = {"codec", "step", "best_val_loss", "rng_state", "amadeus_format", "data"}
_ORIGINAL_KEYS = {"model_config", "model_state", "model_optimizer_state"}


@dataclass
class Session:
    """A checkpoint in memory. `extra` keeps any other keys of the file, untouched."""

    config: ModelConfig
    model_state: dict[str, Tensor]
    optimizer_state: dict[str, Any] | None = None  # torch.optim state_dict()
    codec: str = ORIGINAL_CODEC  # codec preset of the tokens the model reads and writes
    step: int = 0  # optimizer steps taken so far
    best_val_loss: float | None = None
    rng: dict[str, Any] | None = None  # from capture_rng(), to resume exactly
    data: DataRecord | None = None  # how the training data was cut and made (None: older file)
    extra: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically: an interrupted save leaves the previous file intact."""
        path = Path(path)
        data = {
            **self.extra,
            "model_config": asdict(self.config),
            "model_state": self.model_state,
            "model_optimizer_state": self.optimizer_state,
            "codec": self.codec,
            "step": self.step,
            "best_val_loss": self.best_val_loss,
            "rng_state": self.rng,
            "amadeus_format": FORMAT,
            "data": None if self.data is None else self.data.to_dict(),
        }
        write_checkpoint(data, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Session:
        """Read and check a `.sess` written by Amadeus or by the original project."""
        path = Path(path)
        return cls.from_checkpoint(read_checkpoint(path), path)

    @classmethod
    def from_checkpoint(cls, data: dict, path: Path) -> Session:
        """A session from the dict `read_checkpoint` gave for `path` (named in errors)."""
        if "quantization" in data:
            raise SessionError(
                f"{path}: an int8 session (generate.py plays it; this needs the .sess)"
            )
        missing = [k for k in ("model_config", "model_state") if k not in data]
        if missing:
            raise SessionError(f"{path}: not a session (no {' or '.join(missing)})")
        version = data.get("amadeus_format", 0)
        if not isinstance(version, int) or version > FORMAT:
            raise SessionError(f"{path}: written by a newer Amadeus (format {version!r})")
        session = _from_dict(data, path)
        _check_state(session, path)
        return session


def build_model(session: Session) -> PerformanceRNN:
    """The session's model, weights loaded strictly, on the CPU in training mode."""
    model = PerformanceRNN.from_config(session.config)
    model.load_state_dict(session.model_state, strict=True)
    return model


def capture_rng(np_rng: np.random.Generator | None = None) -> dict[str, Any]:
    """Every random state training draws from, as tensors and ints (safe for `weights_only`)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if np_rng is not None:
        state["numpy"] = np_rng.bit_generator.state
    return state


def restore_rng(state: dict[str, Any], np_rng: np.random.Generator | None = None) -> None:
    """Inverse of capture_rng; a state from a machine with other GPUs leaves CUDA's RNG alone."""
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    if np_rng is not None and "numpy" in state:
        np_rng.bit_generator.state = state["numpy"]


def write_checkpoint(data: dict, path: Path) -> None:
    """`torch.save` atomically and durably: an interrupted save leaves the previous file."""
    buffer = io.BytesIO()
    torch.save(data, buffer)
    try:
        write_bytes(path, buffer.getvalue(), durable=True)
    except OSError as e:
        raise SessionError(f"{path}: cannot write: {e.strerror or e}") from e


def read_checkpoint(path: Path) -> dict:
    """The dict a `.sess` or `.int8.sess` holds, read safely; SessionError for any defect."""
    data = _read(path)
    if not isinstance(data, dict):
        raise SessionError(f"{path}: not a session (the file holds a {type(data).__name__})")
    return data


def data_record(data: dict, path: Path) -> DataRecord | None:
    """The checkpoint's record of its data, None when it predates them."""
    try:
        value = data.get("data")
        return None if value is None else DataRecord.from_dict(value)
    except ValueError as e:
        raise SessionError(f"{path}: {e}") from e


def checked_codec(data: dict, path: Path, config: ModelConfig) -> str:
    """The checkpoint's codec preset: known, and `prnn` when an original file records none."""
    codec = expect(data, path, "codec", str, None)
    if codec is None:
        if config.event_dim != ORIGINAL_EVENT_DIM:
            raise SessionError(
                f"{path}: no codec recorded and event_dim {config.event_dim} is not the "
                f"original's {ORIGINAL_EVENT_DIM}: unknown token layout"
            )
        return ORIGINAL_CODEC
    if codec not in PRESETS:
        raise SessionError(
            f"{path}: unknown codec {codec!r} (this Amadeus knows {', '.join(PRESETS)})"
        )
    return codec


def checked_config(data: dict, path: Path) -> ModelConfig:
    try:
        return ModelConfig.from_dict(expect(data, path, "model_config", dict))
    except (TypeError, ValueError) as e:
        raise SessionError(f"{path}: bad model_config: {e}") from e


def _read(path: Path) -> Any:
    if not path.exists():
        raise SessionError(f"{path}: no such file")
    if path.is_dir():
        raise SessionError(f"{path}: is a directory, not a session file")
    if path.stat().st_size == 0:
        raise SessionError(f"{path}: empty file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise SessionError(
            f"{path}: refused by weights_only, not plain tensors and data ({_summary(e)})"
        ) from e
    except Exception as e:  # a corrupt file can fail anywhere inside torch's readers
        raise SessionError(f"{path}: corrupt or not a torch file ({_summary(e)})") from e


def _summary(error: Exception) -> str:
    """The first sentence of torch's long, multi-line messages (weights_only's: its reason)."""
    text = str(error).partition("WeightsUnpickler error:")[2] or str(error)
    line = next((s for s in text.splitlines() if s.strip()), "")
    return f"{type(error).__name__}: {line.strip().split('. ')[0]}"


def _from_dict(data: dict, path: Path) -> Session:
    config = checked_config(data, path)
    return Session(
        config=config,
        model_state=expect(data, path, "model_state", dict),
        optimizer_state=expect(data, path, "model_optimizer_state", dict, None),
        codec=checked_codec(data, path, config),
        step=expect(data, path, "step", int, 0),
        best_val_loss=_optional_float(expect(data, path, "best_val_loss", (float, int), None)),
        rng=expect(data, path, "rng_state", dict, None),
        data=data_record(data, path),
        extra={k: v for k, v in data.items() if k not in _ORIGINAL_KEYS | _OUR_KEYS},
    )


def _optional_float(value: float | None) -> float | None:
    return None if value is None else float(value)


_REQUIRED = object()


def expect(
    data: dict, path: Path, key: str, kind: type | tuple[type, ...], default: Any = _REQUIRED
) -> Any:
    """data[key] if it has the right type; `default` when absent (or None, for optional keys).
    Otherwise a SessionError naming the file, the key and what it holds."""
    value = data.get(key)
    if value is None and default is not _REQUIRED:
        return default
    if isinstance(value, bool) or not isinstance(value, kind):
        expected = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        found = "missing" if value is None else type(value).__name__
        raise SessionError(f"{path}: {key} is {found}, expected {expected}")
    return value


def _check_state(session: Session, path: Path) -> None:
    """The weights must fit the config exactly; a meta-device model costs no memory."""
    with torch.device("meta"):
        expected = PerformanceRNN.from_config(session.config).state_dict()
    state = session.model_state
    problems = [f"missing {k}" for k in expected if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in expected]
    for key, want in expected.items():
        got = state.get(key)
        if got is None:
            continue
        if not isinstance(got, Tensor) or not got.is_floating_point():
            problems.append(f"{key} is not a float tensor")
        elif got.shape != want.shape:
            problems.append(f"{key} has shape {tuple(got.shape)}, expected {tuple(want.shape)}")
    if problems:
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        shown = "; ".join(problems[:3]) + more
        raise SessionError(f"{path}: model_state does not match model_config: {shown}")
