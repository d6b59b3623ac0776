"""The player's loudness and the model's. A model knows the velocities of its training data
(the chorales: every note at one velocity); a keyboard sends anything from 1 to 127. Fed as
played, a phrase gives the model tokens it never saw (on music outside its style, each VELOCITY
token cost 16.5 nats, a uniform guess 5.5), and its answer ignores how loud the player played.

So the player's velocities are mapped into the range the training data used (its 5th to 95th
percentile) before the model hears them, and the answer's velocities are mapped back: through
the inverse map where the model knows a range of loudness (its own accents kept), or, where it
knows one loudness only, to the loudness the phrase was played at.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amadeus.data.codec import EventCodec
from amadeus.data.dataset import Piece

FLAT = 8.0  # velocity steps: a narrower range is one loudness (no accents to keep)
LOUDEST = 127


@dataclass(frozen=True)
class Dynamics:
    low: float  # velocity: the training notes' 5th percentile...
    high: float  # ...and 95th

    @classmethod
    def of(cls, pieces: list[Piece], codec: EventCodec) -> Dynamics | None:
        """The pieces' range of note-on velocities (from their VELOCITY tokens)."""
        tokens = np.concatenate([piece.tokens for piece in pieces] or [np.zeros(0, np.int64)])
        tokens = tokens.astype(np.int64)
        velocity = codec.token_kind[tokens] == "velocity"
        values = codec.velocity_values[codec.token_value[tokens[velocity]]]
        if len(values) == 0:
            return None
        low, high = np.percentile(values.astype(np.float64), [5, 95])
        return cls(float(low), float(high))

    @property
    def flat(self) -> bool:
        return self.high - self.low < FLAT

    def to_model(self, velocity: float) -> int:
        """A played velocity (1-127) as the model knows loudness."""
        share = (min(max(velocity, 1), LOUDEST) - 1) / (LOUDEST - 1)
        return int(round(self.low + share * (self.high - self.low)))

    def to_player(self, velocity: float, played: float) -> int:
        """A velocity the model chose, on the player's scale; `played`: the phrase's mean."""
        if self.flat:
            return int(round(min(max(played, 1), LOUDEST)))
        share = (velocity - self.low) / (self.high - self.low)
        return int(round(min(max(1 + share * (LOUDEST - 1), 1), LOUDEST)))


def recorded(pieces: list[Piece], codec: EventCodec) -> tuple[float, float] | None:
    """What a session records of its training notes' loudness (`DataRecord.velocities`)."""
    dynamics = Dynamics.of(pieces, codec)
    return None if dynamics is None else (dynamics.low, dynamics.high)
