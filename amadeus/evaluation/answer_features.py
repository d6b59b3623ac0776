"""What an answer is measured by, each feature against its phrase: the share of notes in the
phrase's key (`key`); the pitch-class histogram's distance to the phrase's (half the L1 distance
of the normalised note counts: 0 the same, 1 disjoint); notes per second (notes over the answer's
length); the median inter-onset interval of distinct onsets; mean polyphony (notes sounding,
averaged over the time anything sounds); pitch range; and the leap from the phrase's last note to
the answer's first (the highest note sounding at the phrase's last onset, and the highest of the
answer's first onset: the melody, in a chorale). A feature an answer has no value for (no notes,
one onset) is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amadeus.data.notes import Notes
from amadeus.evaluation.cuts import EPS
from amadeus.evaluation.features import pitch_classes
from amadeus.evaluation.key import Key, estimate_key


@dataclass(frozen=True)
class Feature:
    name: str
    unit: str
    centre: str  # "mean" or "median": what the targets compare (a median for skewed ones)
    digits: int


FEATURES = (
    Feature("in-key share", "%", "mean", 1),
    Feature("histogram distance", "", "mean", 3),
    Feature("notes per second", "/s", "mean", 2),
    Feature("median inter-onset interval", "s", "median", 3),
    Feature("mean polyphony", "notes", "mean", 2),
    Feature("pitch range", "semitones", "mean", 1),
    Feature("first-note leap", "semitones", "median", 1),
)


@dataclass(frozen=True)
class Context:
    """What an answer is measured against: the phrase's key, histogram and last note."""

    key: Key
    histogram: np.ndarray  # [12] normalised note counts
    last_pitch: int  # the highest note sounding at the phrase's last onset: its melody

    @classmethod
    def of(cls, phrase: Notes) -> Context:
        last = phrase.start.max()
        sounding = (phrase.start == last) | ((phrase.start < last) & (phrase.end > last + EPS))
        return cls(
            estimate_key(phrase), pitch_classes(phrase.pitch), int(phrase.pitch[sounding].max())
        )


def in_key_share(notes: Notes, key: Key) -> float:
    """Percent of the notes whose pitch class is in the key's scale."""
    return 100 * float(key.scale[notes.pitch % 12].mean()) if len(notes) else np.nan


def histogram_distance(notes: Notes, histogram: np.ndarray) -> float:
    """Half the L1 distance of the notes' normalised pitch-class histogram from `histogram`."""
    return (
        0.5 * float(np.abs(pitch_classes(notes.pitch) - histogram).sum()) if len(notes) else np.nan
    )


def median_ioi(notes: Notes) -> float:
    """Seconds between distinct onsets, their median (none for fewer than two)."""
    onsets = np.unique(notes.start)
    return float(np.median(np.diff(onsets))) if len(onsets) > 1 else np.nan


def mean_polyphony(notes: Notes) -> float:
    """Notes sounding, averaged over the time anything sounds: their total length over the
    length of their union (a rest is not a texture)."""
    if len(notes) == 0:
        return np.nan
    order = np.argsort(notes.start, kind="stable")
    start, end = notes.start[order], notes.end[order]
    reach = np.maximum.accumulate(end)
    union = reach[-1] - start[0] - np.maximum(start[1:] - reach[:-1], 0).sum()
    return float((end - start).sum() / union) if union > 0 else np.nan


def first_leap(notes: Notes, last_pitch: int) -> float:
    """Semitones from `last_pitch` to the highest note of the first onset."""
    if len(notes) == 0:
        return np.nan
    return float(abs(int(notes.pitch[notes.start == notes.start.min()].max()) - last_pitch))


def features(notes: Notes, seconds: float, context: Context) -> dict[str, float]:
    """Every feature of `notes`, an answer lasting `seconds`, against its phrase."""
    return {
        "in-key share": in_key_share(notes, context.key),
        "histogram distance": histogram_distance(notes, context.histogram),
        "notes per second": len(notes) / seconds,
        "median inter-onset interval": median_ioi(notes),
        "mean polyphony": mean_polyphony(notes),
        "pitch range": float(np.ptp(notes.pitch)) if len(notes) else np.nan,
        "first-note leap": first_leap(notes, context.last_pitch),
    }
