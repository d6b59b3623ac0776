"""`Notes`: a performance as a structure of numpy arrays, the currency between MIDI and the codec.

Times are seconds (float64). Arrays are parallel and sorted by (start, pitch). Pure numpy: the codec
and the controls use it without importing any MIDI library.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Notes:
    start: np.ndarray  # float64 [N] seconds
    end: np.ndarray  # float64 [N] seconds, end >= start
    pitch: np.ndarray  # int16 [N] MIDI pitch 0..127
    velocity: np.ndarray  # int16 [N] MIDI velocity 1..127

    @staticmethod
    def empty() -> Notes:
        return Notes.build([], [], [], [])

    @staticmethod
    def build(start, end, pitch, velocity) -> Notes:
        """Arrays in any order and dtype -> sorted `Notes` with clean dtypes."""
        start = np.asarray(start, dtype=np.float64).reshape(-1)
        end = np.maximum(np.asarray(end, dtype=np.float64).reshape(-1), start)
        pitch = np.asarray(pitch, dtype=np.int16).reshape(-1)
        velocity = np.asarray(velocity, dtype=np.int16).reshape(-1)
        if not (len(start) == len(end) == len(pitch) == len(velocity)):
            raise ValueError("Notes arrays must have the same length")
        order = np.lexsort((pitch, start))
        return Notes(start[order], end[order], pitch[order], velocity[order])

    def __len__(self) -> int:
        return len(self.start)

    def select(self, mask: np.ndarray) -> Notes:
        return Notes(self.start[mask], self.end[mask], self.pitch[mask], self.velocity[mask])

    @property
    def duration(self) -> float:
        """Seconds from time 0 to the last note's end."""
        return float(self.end.max()) if len(self) else 0.0

    def without_overlaps(self) -> Notes:
        """Same-pitch overlaps resolved by Magenta's rule: a new onset ends the sounding note."""
        if len(self) < 2:
            return self
        by_pitch = np.lexsort((self.end, self.start, self.pitch))  # of twins, the longer wins
        end = self.end.copy()
        same = self.pitch[by_pitch][1:] == self.pitch[by_pitch][:-1]
        earlier, later = by_pitch[:-1][same], by_pitch[1:][same]
        end[earlier] = np.minimum(end[earlier], self.start[later])
        return Notes(self.start, end, self.pitch, self.velocity)

    def playable(self) -> Notes:
        """Overlaps resolved and silent notes (no length left) removed: what a listener hears."""
        notes = self.without_overlaps()
        return notes.select(notes.end > notes.start)

    def with_silences_capped(self, max_silence: float) -> Notes:
        """Shortens every gap in which nothing sounds to at most `max_silence` seconds."""
        if len(self) == 0:
            return self
        # Time nothing sounds before each onset: onset minus the latest end so far.
        order = np.argsort(self.start, kind="stable")
        start, end = self.start[order], self.end[order]
        sounding_until = np.maximum.accumulate(np.concatenate([[start[0]], end[:-1]]))
        gap = np.maximum(start - sounding_until, 0.0)
        # The lead-in before the first note counts as silence too.
        gap[0] = start[0]
        cut = np.cumsum(np.maximum(gap - max_silence, 0.0))
        shift = np.empty_like(cut)
        shift[order] = cut
        return Notes(self.start - shift, self.end - shift, self.pitch, self.velocity)
