"""Phrases cut from real music, with what the composer wrote next.

Phrases are cut at note onsets, not bar lines: the `.data` files keep no tempo or time signature,
so bars cannot be found. A cut point is an onset across which no note sounds (no tie, no held
voice), so a phrase starts and ends between notes; its length, from its first onset to the next
cut point, is drawn from 4-12 s (the nearest cut point to a uniform draw), with music after it
for at least as long. Phrases of one piece do not overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amadeus.data.notes import Notes

PHRASE_SECONDS = (4.0, 12.0)
MIN_NOTES = 4  # a phrase has at least this many
EPS = 1e-6  # seconds: a note ending at a cut point does not cross it


@dataclass(frozen=True)
class Cut:
    """A phrase of a piece and the music after it, each from its own time zero."""

    piece: int
    start: float  # seconds into the piece
    seconds: float  # to the cut point that ends it
    phrase: Notes
    after: Notes  # the piece's notes from the phrase's end

    def continuation(self, seconds: float) -> Notes:
        """What the composer wrote next: the notes starting within `seconds` of the end."""
        return self.after.select(self.after.start < seconds - EPS)


def cut_points(notes: Notes) -> np.ndarray:
    """Onsets across which no note sounds."""
    onsets = np.unique(notes.start)
    crossing = (notes.start[None] < onsets[:, None] - EPS) & (
        notes.end[None] > onsets[:, None] + EPS
    )
    return onsets[~crossing.any(axis=1)]


def cut_phrases(pieces: list[Notes], count: int, seed: int) -> list[Cut]:
    """Up to `count` phrases, from cut points drawn at random (seeded), no two overlapping."""
    rng = np.random.default_rng(seed)
    points = [cut_points(n) for n in pieces]
    starts = [(i, t) for i, p in enumerate(points) for t in p]
    cuts: list[Cut] = []
    for k in rng.permutation(len(starts)):
        if len(cuts) == count:
            break
        i, start = starts[k]
        cut = _cut(pieces[i], i, start, start + rng.uniform(*PHRASE_SECONDS), points[i])
        taken = [(c.start, c.start + c.seconds) for c in cuts if c.piece == i]
        if cut and not any(a < cut.start + cut.seconds and cut.start < b for a, b in taken):
            cuts.append(cut)
    return cuts


def _cut(notes: Notes, piece: int, start: float, aim: float, points: np.ndarray) -> Cut | None:
    """The phrase from `start` to the cut point nearest `aim` (4-12 s long), when it has enough
    notes and the piece goes on after it for at least as long; else None."""
    low, high = PHRASE_SECONDS
    ends = points[(points >= start + low - EPS) & (points <= start + high + EPS)]
    if len(ends) == 0:
        return None
    end = float(ends[np.argmin(np.abs(ends - aim))])
    inside = (notes.start >= start - EPS) & (notes.start < end - EPS)
    if inside.sum() < MIN_NOTES or notes.start.max() < 2 * end - start:
        return None
    phrase, after = notes.select(inside), notes.select(notes.start >= end - EPS)
    return Cut(piece, start, end - start, _shifted(phrase, start), _shifted(after, end))


def _shifted(notes: Notes, zero: float) -> Notes:
    return Notes(notes.start - zero, notes.end - zero, notes.pitch, notes.velocity)
