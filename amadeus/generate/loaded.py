"""The one room that opens a model ready to play: a `.sess` or an `.int8.sess` (told apart by
content), its codec checked against its vocabulary, the settings its training data was encoded
with, and the sampling rules it plays with by default. generate.py, evaluate.py, play.py (in the
browser and on MIDI ports) and the benches all open models here, so a model plays the same way
whichever tool opens it.

It sits in the generation stage, above quant: opening an `.int8.sess` needs the int8 model, and
the default rules are generation's. The algorithms beside it (`search`, `sampling`) take either
model through the same `step` interface and never import quant.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from amadeus.data.codec import EventCodec
from amadeus.data.dataset import DataRecord, Settings
from amadeus.data.dynamics import Dynamics
from amadeus.errors import SessionError, UsageError
from amadeus.generate.sampling import DEFAULT_TEMPERATURE, DEFAULT_TOP_P, SamplingRules
from amadeus.model.session import Session, build_model, read_checkpoint
from amadeus.quant.quantizer import quantize
from amadeus.quant.session import is_int8, read_int8
from amadeus.quant.stats import load_stats


@dataclass
class Loaded:
    """A model ready to play, float or int8, with what playing it needs to know."""

    model: Any  # PerformanceRNN or the int8 model: both offer `logits`, `step` and `config`
    codec: str  # the preset name
    data: DataRecord | None  # None for sessions written before sessions recorded their data
    step: int
    path: Path
    int8: bool = False

    @cached_property
    def events(self) -> EventCodec:
        return EventCodec(self.codec)

    @property
    def encoding(self) -> Settings:
        """How the model's training data was encoded: the session's record, or (for sessions
        that predate it) preprocess.py's defaults for its codec."""
        return self.data.settings if self.data else Settings(self.codec)

    @property
    def dynamics(self) -> Dynamics | None:
        """The loudness the model knows (None for sessions that predate the record)."""
        velocities = self.data.velocities if self.data else None
        return None if velocities is None else Dynamics(*velocities)

    @property
    def longest_note(self) -> float | None:
        """Seconds: the training data's longest note (None for sessions that predate it)."""
        return self.data.longest_note if self.data else None

    def rules(
        self,
        temperature: float = DEFAULT_TEMPERATURE,
        top_p: float = DEFAULT_TOP_P,
        greedy: float = 0.0,
        max_note_seconds: float | None = None,
        unconstrained: bool = False,
    ) -> SamplingRules:
        """The rules it plays with: generation's defaults, valid events only, and notes ended at
        `max_note_seconds`, by default the training data's longest note. Unconstrained: any
        event, no limit."""
        if unconstrained:
            return SamplingRules(temperature, top_p, greedy, False, None)
        limit = self.longest_note if max_note_seconds is None else max_note_seconds
        return SamplingRules(temperature, top_p, greedy, True, limit)

    def info(self) -> dict[str, Any]:
        """What a page or a report says of it."""
        c = self.model.config
        return {
            "name": self.path.name,
            "precision": "int8" if self.int8 else "fp32",
            "megabytes": round(self.path.stat().st_size / 1e6, 2),
            "step": self.step,
            "codec": self.codec,
            "layers": c.gru_layers,
            "hidden": c.hidden_dim,
        }


def load(path: str | os.PathLike, stats_file: str | os.PathLike | None = None) -> Loaded:
    """The model of a `.sess` or an `.int8.sess` (the file read once), in eval mode on the CPU,
    its codec checked; with `stats_file`, a float session is quantized on the fly."""
    path = Path(path)
    data = read_checkpoint(path)
    if is_int8(data):
        if stats_file is not None:
            raise UsageError(f"{stats_file}: {path} is already int8; statistics quantize a .sess")
        int8 = read_int8(data, path)
        loaded = Loaded(int8.model, int8.codec, int8.data, int8.step, path, int8=True)
    else:
        session = Session.from_checkpoint(data, path)
        model = build_model(session).eval()
        if stats_file is not None:
            model = quantize(model, load_stats(stats_file))
        quantized = stats_file is not None
        loaded = Loaded(model, session.codec, session.data, session.step, path, quantized)
    check_codec(loaded, None)
    return loaded


def check_codec(loaded: Loaded, wanted: str | None) -> EventCodec:
    """The session's codec, which must be the one asked for and fit the model's vocabulary."""
    if wanted is not None and wanted != loaded.codec:
        raise UsageError(f"--codec {wanted}: the session was trained with codec {loaded.codec!r}")
    if loaded.events.size != loaded.model.config.event_dim:
        raise SessionError(
            f"{loaded.path}: codec {loaded.codec!r} has {loaded.events.size} tokens, the model "
            f"{loaded.model.config.event_dim}"
        )
    return loaded.events
