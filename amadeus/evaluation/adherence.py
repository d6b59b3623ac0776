"""Control adherence: does the music follow the controls it was asked for?

Pieces are generated under a few held controls (a key's pitch-class histogram; a low and a high
note density, taken from the validation data's own spread) and measured with the same
definitions training uses (`controls.compute`: note-ons in the next two seconds). Each error is
set beside the same error of unconditioned pieces, measured in the same run, so it shows what the
control changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amadeus.data import controls as ctl
from amadeus.data.codec import EventCodec
from amadeus.data.dataset import Piece

C_MAJOR = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], dtype=np.float64) / 7


@dataclass(frozen=True)
class Target:
    """One held control: a pitch-class histogram [12] and a density bin."""

    name: str
    histogram: np.ndarray
    density: int

    def control(self) -> np.ndarray:
        """[24] model input: density one-hot, then the histogram."""
        return ctl.held(self.histogram, self.density)


@dataclass(frozen=True)
class Adherence:
    """How far pieces are from a target: histogram error (half the L1 distance between the
    pieces' pitch-class histogram and the requested one: 0 exact, 1 disjoint) and density error
    (mean absolute distance, in bins, of each event's realized density from the requested)."""

    histogram_error: float
    density_error: float
    realized_density: float  # mean realized bin


def targets(validation: list[Piece]) -> list[Target]:
    """C major at the data's median density, and the data's 10th and 90th percentile density
    with a uniform histogram."""
    bins = np.concatenate([p.controls[:, 0] for p in validation]).astype(np.int64)
    low, median, high = (int(np.percentile(bins, q)) for q in (10, 50, 90))
    uniform = np.full(12, 1 / 12)
    return [
        Target("C major", C_MAJOR, median),
        Target("low density", uniform, low),
        Target("high density", uniform, high),
    ]


def measure(rows: np.ndarray, codec: EventCodec, target: Target) -> Adherence:
    """Adherence of generated token rows [B, T] to `target`."""
    histogram, bins = np.zeros(12), []
    for tokens in rows:
        compact = ctl.compute(tokens, codec)
        bins.append(compact[:, 0].astype(np.float64))
        on = codec.ranges["note_on"]
        pitches = tokens[(tokens >= on.start) & (tokens < on.stop)] - on.start
        histogram += np.bincount((pitches + codec.preset.min_pitch) % 12, minlength=12)
    realized = histogram / histogram.sum() if histogram.sum() else np.full(12, 1 / 12)
    bins = np.concatenate(bins)
    return Adherence(
        histogram_error=float(0.5 * np.abs(realized - target.histogram).sum()),
        density_error=float(np.abs(bins - target.density).mean()),
        realized_density=float(bins.mean()),
    )
