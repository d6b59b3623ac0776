"""Everything played in a live session, as it sounded: the player's notes, and every take of
every answer, kept or not, exported as one MIDI file.

Tracks: "player", "Amadeus" (the takes that stand), "Amadeus, other takes" (takes replaced by
`again` or dropped by `undo`, at the time they sounded), and a marker at the start of each take
("answer 2, take 3"). Times are the session's clock, from its first event.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from amadeus.data import midi
from amadeus.data.notes import Notes


@dataclass
class Take:
    answer: int  # 1, 2, ... in the session
    take: int  # 1, 2, ... of that answer
    notes: list[list[float]] = field(default_factory=list)  # [start, end, pitch, velocity]
    sounding: dict[int, int] = field(default_factory=dict)  # pitch -> index in notes
    kept: bool = True


class Record:
    def __init__(self) -> None:
        self.player: list[list[float]] = []  # [start, end, pitch, velocity]
        self.down: dict[int, int] = {}
        self.takes: list[Take] = []
        self.answers = 0
        self.latest = 0.0  # the newest time seen
        self.origin: float | None = None  # the session's first event

    def player_on(self, time: float, pitch: int, velocity: int) -> None:
        self._close(self.player, self.down, pitch, time)
        self.down[pitch] = len(self.player)
        self.player.append([self._seen(time), np.inf, pitch, velocity])

    def player_off(self, time: float, pitch: int) -> None:
        self._close(self.player, self.down, pitch, self._seen(time))

    def new_take(self, again: bool) -> int:
        """Starts recording a take: of a new answer, or again of the last one; its number."""
        if again and self.takes:
            self.takes[-1].kept = False
            number = self.takes[-1].take + 1
        else:
            self.answers += 1
            number = 1
        self.takes.append(Take(self.answers, number))
        return number

    def answer_note(self, time: float, pitch: int, velocity: int) -> None:
        take = self.takes[-1]
        self._close(take.notes, take.sounding, pitch, self._seen(time))
        if velocity:
            take.sounding[pitch] = len(take.notes)
            take.notes.append([time, np.inf, pitch, velocity])

    def cut(self, time: float) -> None:
        """The last take stops at `time`: later notes void, sounding ones end there."""
        take = self.takes[-1]
        take.notes = [n for n in take.notes if n[0] <= time]
        for note in take.notes:
            note[1] = min(note[1], time)
        take.sounding.clear()
        self._seen(time)

    def drop(self) -> None:
        """`undo`: the last take does not stand."""
        if self.takes:
            self.takes[-1].kept = False

    def _seen(self, time: float) -> float:
        if self.origin is None:
            self.origin = time
        self.latest = max(self.latest, time)
        return time

    @staticmethod
    def _close(notes: list, sounding: dict, pitch: int, time: float) -> None:
        if pitch in sounding:
            notes[sounding.pop(pitch)][1] = time

    def tracks(self) -> list[tuple[str, Notes]]:
        """(name, Notes) per track, times from the session's first event; notes still sounding
        end at the newest time seen."""
        kept = [n for t in self.takes if t.kept for n in t.notes]
        other = [n for t in self.takes if not t.kept for n in t.notes]
        named = (("player", self.player), ("Amadeus", kept), ("Amadeus, other takes", other))
        return [(name, self._notes(rows)) for name, rows in named]

    def markers(self) -> list[tuple[float, str]]:
        origin = self.origin or 0.0
        return [
            (t.notes[0][0] - origin, f"answer {t.answer}, take {t.take}")
            for t in self.takes
            if t.notes
        ]

    def _notes(self, rows: list) -> Notes:
        if not rows:
            return Notes.empty()
        start, end, pitch, velocity = np.array(rows, dtype=np.float64).reshape(-1, 4).T
        origin = self.origin or 0.0
        return Notes.build(start - origin, np.minimum(end, self.latest) - origin, pitch, velocity)

    def midi_bytes(self) -> bytes:
        return midi.to_bytes(self.tracks(), markers=self.markers())
