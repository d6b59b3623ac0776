"""Musical features of performances, and how alike two sets of performances are, feature by
feature: the overlapping area of their distributions (Yang and Lerch, "On the evaluation of
generative models in music", 2020): 1 when indistinguishable, 0 when disjoint.

Every feature is a set of values pooled over pieces (per note, per sampling instant or per
piece), so a real and a generated set compare however many pieces each has. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amadeus.data.notes import Notes

POLYPHONY_RATE = 20.0  # samples per second of the number of notes sounding at once
GRID = 512  # points of the density estimates


@dataclass(frozen=True)
class Feature:
    """One feature: how to read it from a piece, and how to compare it (log scale for times,
    whose tails matter; a floor on the smoothing, for data with no spread, as the chorales'
    velocities)."""

    name: str
    unit: str
    per: str  # what one value describes: note, instant, piece
    log: bool
    smallest_bandwidth: float  # in the feature's (log) units


FEATURES = (
    Feature("note duration", "s", "note", True, 0.05),
    Feature("polyphony", "notes", "instant", False, 0.5),
    Feature("pitch range", "semitones", "piece", False, 1.0),
    Feature("pitch-class entropy", "bits", "piece", False, 0.05),
    Feature("inter-onset interval", "s", "onset", True, 0.05),
    Feature("note density", "notes/s", "piece", False, 0.25),
    Feature("velocity", "MIDI", "note", False, 2.0),
)


def values(notes: Notes) -> dict[str, np.ndarray]:
    """Every feature's values for one piece (empty arrays for a piece without notes)."""
    if len(notes) == 0:
        return {f.name: np.zeros(0) for f in FEATURES}
    onsets = np.unique(notes.start)
    seconds = max(notes.duration - float(notes.start.min()), 1e-3)
    return {
        "note duration": notes.end - notes.start,
        "polyphony": polyphony(notes),
        "pitch range": np.array([float(notes.pitch.max() - notes.pitch.min())]),
        "pitch-class entropy": np.array([entropy(pitch_classes(notes.pitch))]),
        "inter-onset interval": np.diff(onsets),
        "note density": np.array([len(notes) / seconds]),
        "velocity": notes.velocity.astype(np.float64),
    }


def pooled(pieces: list[Notes]) -> dict[str, np.ndarray]:
    """Each feature's values over all pieces."""
    per_piece = [values(n) for n in pieces]
    return {f.name: np.concatenate([v[f.name] for v in per_piece]) for f in FEATURES}


def compare(
    real_pieces: list[Notes], pieces: list[Notes]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, float]]:
    """(real values, generated values, overlap) of every feature."""
    real, generated = pooled(real_pieces), pooled(pieces)
    overlaps = {f.name: overlap(real[f.name], generated[f.name], f) for f in FEATURES}
    return real, generated, overlaps


def polyphony(notes: Notes) -> np.ndarray:
    """Notes sounding at once, sampled POLYPHONY_RATE times a second over the time anything
    sounds (silences are left out: a rest is not a texture)."""
    times = np.arange(notes.start.min(), notes.end.max(), 1 / POLYPHONY_RATE)
    started = np.searchsorted(np.sort(notes.start), times, side="right")
    ended = np.searchsorted(np.sort(notes.end), times, side="right")
    sounding = (started - ended).astype(np.float64)
    return sounding[sounding > 0]


def pitch_classes(pitch: np.ndarray) -> np.ndarray:
    """Normalised pitch-class histogram [12] (C first) of MIDI pitches; uniform without any."""
    counts = np.bincount(np.asarray(pitch, np.int64) % 12, minlength=12).astype(np.float64)
    return counts / counts.sum() if counts.sum() else np.full(12, 1 / 12)


def pitch_classes_of(pieces: list[Notes]) -> np.ndarray:
    """Normalised pitch-class histogram [12] of all the pieces' notes together."""
    return pitch_classes(np.concatenate([n.pitch for n in pieces] or [np.zeros(0, np.int16)]))


def entropy(histogram: np.ndarray) -> float:
    """Shannon entropy in bits."""
    p = histogram[histogram > 0]
    return float(-(p * np.log2(p)).sum())


def overlap(a: np.ndarray, b: np.ndarray, feature: Feature) -> float:
    """Overlapping area of the two samples' Gaussian kernel density estimates, on a common
    bandwidth (Silverman's rule on both samples pooled, at least the feature's floor)."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    if feature.log:
        a, b = np.log(np.maximum(a, 1e-3)), np.log(np.maximum(b, 1e-3))
    pooled_values = np.concatenate([a, b])
    bandwidth = max(silverman(pooled_values), feature.smallest_bandwidth)
    grid = np.linspace(
        pooled_values.min() - 4 * bandwidth, pooled_values.max() + 4 * bandwidth, GRID
    )
    p, q = density(a, grid, bandwidth), density(b, grid, bandwidth)
    return float(np.clip(np.trapezoid(np.minimum(p, q), grid), 0.0, 1.0))


def silverman(x: np.ndarray) -> float:
    spread = min(np.std(x), (np.percentile(x, 75) - np.percentile(x, 25)) / 1.34)
    return 0.9 * spread * len(x) ** -0.2


def density(x: np.ndarray, grid: np.ndarray, bandwidth: float, chunk: int = 4096) -> np.ndarray:
    """Gaussian KDE of `x` on `grid`, in chunks of samples so memory stays small."""
    total = np.zeros_like(grid)
    for start in range(0, len(x), chunk):
        z = (grid[None, :] - x[start : start + chunk, None]) / bandwidth
        total += np.exp(-0.5 * z * z).sum(axis=0)
    return total / (len(x) * bandwidth * np.sqrt(2 * np.pi))


def histogram_overlap(p: np.ndarray, q: np.ndarray) -> float:
    """Overlap of two normalised histograms: the sum of their minima (1 = identical)."""
    return float(np.minimum(p, q).sum())
