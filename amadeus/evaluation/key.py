"""The key of a phrase, by Krumhansl-Schmuckler: the duration-weighted pitch-class histogram
correlated with the 24 rotated Krumhansl & Kessler profiles; in the key = in its major scale, or its
harmonic minor for a minor key. What an answer's in-key share is measured against."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amadeus.data.notes import Notes

# Krumhansl & Kessler 1982: probe-tone ratings of the 12 pitch classes from the tonic (C first).
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
HARMONIC_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 11)
NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class, C = 0
    minor: bool

    @property
    def name(self) -> str:
        return f"{NAMES[self.tonic]} {'minor' if self.minor else 'major'}"

    @property
    def scale(self) -> np.ndarray:
        """[12] bool: the pitch classes of its major, or harmonic minor, scale."""
        steps = np.array(HARMONIC_MINOR_SCALE if self.minor else MAJOR_SCALE)
        inside = np.zeros(12, bool)
        inside[(steps + self.tonic) % 12] = True
        return inside


def estimate_key(notes: Notes) -> Key:
    """Krumhansl-Schmuckler: the key whose rotated profile best correlates with the notes'
    duration-weighted pitch-class histogram (C major for no notes)."""
    weights = np.maximum(notes.end - notes.start, 1e-3)
    histogram = np.bincount(notes.pitch.astype(np.int64) % 12, weights, minlength=12)
    if np.ptp(histogram) == 0:
        return Key(0, False)
    scores = [
        (np.corrcoef(histogram, np.roll(profile, tonic))[0, 1], tonic, minor)
        for minor, profile in ((False, MAJOR_PROFILE), (True, MINOR_PROFILE))
        for tonic in range(12)
    ]
    _, tonic, minor = max(scores, key=lambda s: s[0])
    return Key(tonic, minor)
