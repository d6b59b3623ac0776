"""A phrase being played, encoded as it is played: keys and pedal in, tokens out as soon as they
are final, the same tokens `encoding.encode_notes` gives for the finished phrase.

A token is final once nothing that can still happen changes it. Events come in time order, so
every event before the newest event's time is known; only the notes still sounding (a held key,
a released one the pedal holds, one a new onset could still join) can change. Re-encoding the
whole phrase at every key made a phrase cost quadratic time, so the phrase is encoded once: the
tokens given out are frozen with the encoder's state where they stop (the codec's clock, the
last velocity, the silence cut so far), and each event re-reads only the open notes, those not
yet fully encoded, by the file-reading rules (`midi.performance`), with the pedal's changes
since their earliest release. Their events before the newest event's time are final: they go
out, capped and ordered as `EventCodec.encode` would. A key event costs what the notes still
sounding cost (a few per key at most), not what the phrase so far does.
"""

from __future__ import annotations

import numpy as np

from amadeus.data.codec import EventCodec
from amadeus.data.dataset import Settings
from amadeus.data.midi import performance
from amadeus.data.notes import Notes

NEVER = np.inf  # the release of a key still down


class Phrase:
    """Keys and sustain pedal of one phrase, times in seconds from its origin (where the music
    the model heard before it ended)."""

    def __init__(self, codec: EventCodec, settings: Settings, origin: float):
        self.codec, self.settings, self.origin = codec, settings, origin
        self.keys: list[list[float]] = []  # [start, release, pitch, velocity]
        self.down: dict[int, int] = {}  # pitch -> index in keys, for keys held down
        self.pedal: list[tuple[float, float]] = []  # (time, CC64 value) where it goes down or up
        self.latest = 0.0  # the newest event's time
        self.open: list[int] = []  # keys in the codec's range whose note is not fully encoded
        self.pedal_from = 0  # the first pedal change an open key's release can need
        # The encoder where the tokens given out stop: their events are those before `frozen`.
        self.frozen = 0.0
        self.clock = 0.0  # seconds the time shifts given out add up to
        self.velocity = -1  # bin of the last note-on given out
        self.cut = 0.0  # silence cut before the last onset given out (the silence cap)
        self.sounding_until = 0.0  # the latest end of the notes done: silence counts from it
        self.shift: dict[float, float] = {}  # onset given out -> silence cut before it

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
        if self.codec.preset.min_pitch <= pitch <= self.codec.preset.max_pitch:
            self.open.append(len(self.keys))
        self.keys.append([t, NEVER, pitch, velocity])

    def release(self, time: float, pitch: int) -> None:
        t = self._at(time)
        if pitch in self.down:
            self.keys[self.down.pop(pitch)][1] = t

    def sustain(self, time: float, value: int) -> None:
        t = self._at(time)
        if (value >= 64) != self.pedal_down:  # only where the pedal goes down or up matters
            self.pedal.append((t, value))

    def _at(self, time: float) -> float:
        """Seconds from the origin; an event never goes back before the newest one."""
        self.latest = max(self.latest, time - self.origin)
        return self.latest

    def notes(self, until: float = NEVER) -> Notes:
        """The phrase by the file-reading rules, every note still sounding ended at `until`."""
        if not self.keys:
            return Notes.empty()
        return self._performed(self.keys, self.pedal, until)

    def _performed(self, keys: list[list[float]], pedal: list, until: float) -> Notes:
        """`keys` by `midi.performance`, the pedal lifting at `until` if down, ended there."""
        pedal = pedal + ([(until, 0)] if self.pedal_down else [])
        time, value = np.array(pedal, dtype=np.float64).reshape(-1, 2).T
        rows = np.array(keys, dtype=np.float64).reshape(-1, 4).T
        notes = performance(tuple(rows), (time, value), self.settings.sustain)
        return Notes(notes.start, np.minimum(notes.end, until), notes.pitch, notes.velocity)

    def take_final(self) -> np.ndarray:
        """The tokens that became final since the last take."""
        if self.latest == self.frozen:  # no time has passed: nothing new is final
            return np.zeros(0, dtype=np.int64)
        return self._encode(self.latest, self.latest)

    def finish(self, time: float) -> np.ndarray:
        """The phrase ends at `time`: keys still down and the pedal lift then (a phrase whose
        keys are all up ended with its last event); the rest of its tokens."""
        t = self._at(time) if self.held else self.latest
        for index in self.down.values():
            self.keys[index][1] = t
        self.down.clear()
        return self._encode(t, NEVER)

    def _encode(self, until: float, before: float) -> np.ndarray:
        """The tokens of the open notes' events before `before`, the notes still sounding ended
        at `until`; the notes whose events have all gone out are done."""
        if not self.open:
            self.frozen = before
            return np.zeros(0, dtype=np.int64)
        notes = self._open_notes(until)
        new = notes.start >= self.frozen  # onsets not given out yet
        shift = self._shifts(notes, new)
        capped = Notes(notes.start - shift, notes.end - shift, notes.pitch, notes.velocity)
        playable = capped.without_overlaps()
        heard = playable.end > playable.start  # what `Notes.playable` keeps
        given, done = new & (notes.start < before), notes.end < before
        tokens = self._tokens(capped, heard & given, heard & done)
        if given.any():
            self.cut = float(shift[given][-1])
        self.sounding_until = max(self.sounding_until, notes.end[done].max(initial=0.0))
        sounding = ~done & (notes.start < before)
        self.shift = dict(zip(notes.start[sounding].tolist(), shift[sounding].tolist()))
        done_notes = set(zip(notes.start[done].tolist(), notes.pitch[done].tolist()))
        self.open = [i for i in self.open if (self.keys[i][0], self.keys[i][2]) not in done_notes]
        self.frozen = before
        return tokens

    def _open_notes(self, until: float) -> Notes:
        """The open keys' notes (their twins and same-key overlaps are all open too), with the
        pedal from its last change at or before their earliest release."""
        keys = [self.keys[i] for i in self.open]
        first_release = min(key[1] for key in keys)
        while (
            self.pedal_from + 1 < len(self.pedal)
            and self.pedal[self.pedal_from + 1][0] <= first_release
        ):
            self.pedal_from += 1
        return self._performed(keys, self.pedal[self.pedal_from :], until)

    def _shifts(self, notes: Notes, new: np.ndarray) -> np.ndarray:
        """Silence cut before each note, as `Notes.with_silences_capped` cuts it over the whole
        phrase: onsets given out keep theirs, new ones (last by onset) continue the running cut."""
        sounding = np.maximum.accumulate(np.concatenate(([self.sounding_until], notes.end[:-1])))
        gap = np.maximum(notes.start - sounding, 0.0)[new]
        cut = np.maximum(gap - self.settings.max_silence, 0.0)
        shift = np.empty(len(notes))
        shift[new] = np.cumsum(np.concatenate(([self.cut], cut)))[1:]
        shift[~new] = [self.shift[start] for start in notes.start[~new].tolist()]
        return shift

    def _tokens(self, capped: Notes, on: np.ndarray, off: np.ndarray) -> np.ndarray:
        """Note-offs and note-ons (capped times) as `EventCodec.encode` writes them: by time,
        note-offs first, then by pitch; time shifts from the frozen clock."""
        offs = int(off.sum())
        times = np.concatenate((capped.end[off], capped.start[on]))
        is_on = np.arange(len(times)) >= offs
        pitch = np.concatenate((capped.pitch[off], capped.pitch[on])) - self.codec.preset.min_pitch
        vbin = np.concatenate(
            (np.zeros(offs, np.int64), self.codec.velocity_bin(capped.velocity[on]))
        )
        order = np.lexsort((pitch, is_on, times))
        offset, every = self.codec.offset, self.codec.preset.velocity_every_note
        tokens: list[int] = []
        times, is_on, pitch, vbin = (a[order].tolist() for a in (times, is_on, pitch, vbin))
        shifts, self.clock = self.codec.shifts_from(self.clock, times)  # from the frozen clock
        for group, note_on, p, v in zip(shifts, is_on, pitch, vbin):
            tokens += group
            if note_on:
                if every or v != self.velocity:
                    tokens.append(offset["velocity"] + v)
                self.velocity = v
            tokens.append(offset["note_on" if note_on else "note_off"] + p)
        return np.array(tokens, dtype=np.int64)
