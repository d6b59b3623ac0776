"""The instrument every player plays: one opened model and its stepper, loaded once, and a new
turn-taking engine for each player (a browser connection or a pair of MIDI ports). Each engine
keeps its own hidden state; the stepper is shared."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from amadeus.evaluation.run import Answering
from amadeus.generate.loaded import Loaded
from amadeus.live.engine import Engine
from amadeus.live.protocol import TICK_SECONDS
from amadeus.live.settings import LiveSettings
from amadeus.model.stepper import make_stepper


class Instrument:
    def __init__(self, loaded: Loaded):
        self.loaded = loaded
        self.stepper = make_stepper(loaded.model, "cpu")
        self.info: dict[str, Any] = loaded.info()  # what the page shows of the model

    def engine(self, settings: LiveSettings, seed: int) -> Engine:
        loaded = self.loaded
        init_dim = loaded.model.config.init_dim
        return Engine(
            self.stepper,
            loaded.events,
            loaded.encoding,
            init_dim,
            settings,
            loaded.rules(),
            seed,
            loaded.dynamics,
        )

    def answering(self, settings: LiveSettings | None = None) -> Answering:
        """Its engines as evaluation has phrases answered: conditioned or not, otherwise with
        `settings` (None: the defaults; a benchmark may try others)."""
        base = settings or LiveSettings()

        def engines(conditioning: bool, seed: int) -> Engine:
            return self.engine(replace(base, conditioning=conditioning), seed)

        return Answering(engines, TICK_SECONDS)
