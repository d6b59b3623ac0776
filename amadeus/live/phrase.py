"""A phrase being played, encoded as it is played: keys and pedal in, tokens out as soon as they
are final, the same tokens `encoding.encode_notes` gives for the finished phrase.

A token is final once nothing that can still happen changes it. Events come in time order, so
everything before the newest event's time is known, except how long the notes still sounding will
last (a held key, or a released one the pedal holds). The phrase so far is built with
`midi.performance` (the pedal rules MIDI files are read with), the notes still sounding end at
the newest event's time, and `encode_notes` (pitch range, silence cap, codec) encodes it; of its
tokens, all but that last instant are final: its note-offs, and the time shifts leading to them.
"""

from __future__ import annotations

import numpy as np

from amadeus.codec import EventCodec
from amadeus.dataset import Settings
from amadeus.encoding import encode_notes
from amadeus.midi import performance
from amadeus.notes import Notes

NEVER = np.inf  # the release of a key still down


class Phrase:
    """Keys and sustain pedal of one phrase, times in seconds from its origin (where the music
    the model heard before it ended)."""

    def __init__(self, codec: EventCodec, settings: Settings, origin: float):
        self.codec, self.settings, self.origin = codec, settings, origin
        self.keys: list[list[float]] = []  # [start, release, pitch, velocity]
        self.down: dict[int, int] = {}  # pitch -> index in keys, for keys held down
        self.pedal: list[tuple[float, float]] = []  # (time, CC64 value)
        self.latest = 0.0  # the newest event's time
        self.emitted = 0  # tokens already taken

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def pedal_down(self) -> bool:
        return bool(self.pedal) and self.pedal[-1][1] >= 64

    @property
    def held(self) -> bool:
        """A key or the sustain pedal is down: the phrase cannot end by silence yet."""
        return bool(self.down) or self.pedal_down

    def press(self, time: float, pitch: int, velocity: int) -> None:
        t = self._at(time)
        if pitch in self.down:  # struck again without a release: the earlier note ends here
            self.keys[self.down.pop(pitch)][1] = t
        self.down[pitch] = len(self.keys)
        self.keys.append([t, NEVER, pitch, velocity])

    def release(self, time: float, pitch: int) -> None:
        t = self._at(time)
        if pitch in self.down:
            self.keys[self.down.pop(pitch)][1] = t

    def sustain(self, time: float, value: int) -> None:
        self.pedal.append((self._at(time), value))

    def _at(self, time: float) -> float:
        """Seconds from the origin; an event never goes back before the newest one."""
        self.latest = max(self.latest, time - self.origin)
        return self.latest

    def notes(self, until: float = NEVER) -> Notes:
        """The phrase by the file-reading rules, every note still sounding ended at `until`."""
        if not self.keys:
            return Notes.empty()
        start, release, pitch, velocity = np.array(self.keys, dtype=np.float64).T
        pedal = self.pedal + ([(until, 0)] if self.pedal_down else [])  # it lifts at `until`
        time, value = np.array(pedal, dtype=np.float64).reshape(-1, 2).T
        notes = performance((start, release, pitch, velocity), (time, value), self.settings.sustain)
        return Notes(notes.start, np.minimum(notes.end, until), notes.pitch, notes.velocity)

    def tokens(self, until: float) -> np.ndarray:
        """Every token of the phrase with the notes still sounding ended at `until`."""
        notes, _ = self.codec.in_range(self.notes(until))
        if len(notes.playable()) == 0:
            return np.zeros(0, dtype=np.int64)
        return encode_notes(notes, self.codec, self.settings, "phrase").tokens.astype(np.int64)

    def take_final(self) -> np.ndarray:
        """The tokens that became final since the last take."""
        return self._take(self._final(self.tokens(self.latest)))

    def finish(self, time: float) -> np.ndarray:
        """The phrase ends at `time`: keys still down and the pedal lift then (a phrase whose
        keys are all up ended with its last event); the rest of its tokens."""
        t = self._at(time) if self.held else self.latest
        for index in self.down.values():
            self.keys[index][1] = t
        self.down.clear()
        return self._take(self.tokens(t))

    def _take(self, tokens: np.ndarray) -> np.ndarray:
        new = tokens[self.emitted :]
        self.emitted = max(self.emitted, len(tokens))
        return new

    def _final(self, tokens: np.ndarray) -> np.ndarray:
        """`tokens` less the newest instant: the note-offs of the notes ended there, and the
        time shifts before them (events at that instant may still gain company)."""
        notes, _ = self.codec.in_range(self.notes(self.latest))
        cut = int((notes.playable().end >= self.latest).sum())
        end = len(tokens) - cut
        shifts = self.codec.ranges["time_shift"]
        while end and tokens[end - 1] in shifts:
            end -= 1
        return tokens[:end]
