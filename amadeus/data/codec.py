"""The event codec: `Notes` <-> token arrays, as a table of event types.

A performance becomes a stream of four kinds of event: NOTE_ON(pitch), NOTE_OFF(pitch),
VELOCITY(bin) sets the velocity of the following note-ons, TIME_SHIFT(bin) moves the clock on.
Worked example (preset `prnn`): middle C (60) at velocity 64 for 0.5 s is VELOCITY(15)=191,
NOTE_ON(60)=39, TIME_SHIFT(24)=232 (0.440 s), TIME_SHIFT(9)=217 (0.054 s: the clock stops within
half the smallest shift of 0.5 s), NOTE_OFF(60)=127:

    >>> codec = EventCodec("prnn")
    >>> tokens = codec.encode(Notes.build([0.0], [0.5], [60], [64]))
    >>> tokens.tolist()
    [191, 39, 232, 217, 127]
    >>> [codec.describe(t) for t in tokens]
    ['velocity 15', 'note_on 60', 'time_shift 24', 'time_shift 9', 'note_off 60']
    >>> notes = codec.decode(tokens)
    >>> notes.pitch.tolist(), round(float(notes.end[0]), 3)
    ([60], 0.495)

Encoding is strict about its input (Notes are already clean) and decoding is lenient: any token
stream a model can emit decodes without raising. Pure numpy.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass

import numpy as np

from amadeus.data.notes import Notes

DEFAULT_NOTE_SECONDS = 1.0  # a decoded note-on never released lasts at most this long
MIN_NOTE_SECONDS = 0.01  # a decoded note whose on and off share a time lasts this long
DEFAULT_VELOCITY = 64  # before the first VELOCITY event


@dataclass(frozen=True)
class Preset:
    """One token layout. The order of `kinds` is the order of the ranges in the vocabulary."""

    name: str
    min_pitch: int
    max_pitch: int
    velocity_bins: int
    min_velocity: int  # the quietest bin decodes to this
    max_velocity: int  # the loudest bin decodes to this
    time_shifts: tuple[float, ...]  # seconds of each TIME_SHIFT bin, ascending
    kinds: tuple[str, ...]  # ranges in vocabulary order
    velocity_every_note: bool  # emit VELOCITY before every NOTE_ON, or only when it changes


PRESETS = {
    # The original Performance-RNN-PyTorch layout: 88 + 88 + 32 + 32 = 240 tokens.
    "prnn": Preset(
        name="prnn",
        min_pitch=21,
        max_pitch=108,
        velocity_bins=32,
        min_velocity=21,
        max_velocity=108,
        time_shifts=tuple(1.15 ** np.arange(32) / 65),
        kinds=("note_on", "note_off", "velocity", "time_shift"),
        velocity_every_note=True,
    ),
    # Magenta's Performance RNN: 128 + 128 + 100 (10 ms steps) + 32 = 388 tokens.
    "magenta": Preset(
        name="magenta",
        min_pitch=0,
        max_pitch=127,
        velocity_bins=32,
        min_velocity=1,
        max_velocity=125,
        time_shifts=tuple(np.arange(1, 101) / 100),
        kinds=("note_on", "note_off", "time_shift", "velocity"),
        velocity_every_note=False,
    ),
}


def _expire(sounding: dict, time: float, limit: float | None, out: list) -> int:
    """Ends (into `out`) the notes sounding longer than `limit` at `time`; how many."""
    if limit is None:
        return 0
    over = [pitch for pitch, (start, _) in sounding.items() if time - start > limit]
    for pitch in over:
        start, velocity = sounding.pop(pitch)
        out.append((start, start + limit, pitch, velocity))
    return len(over)


class EventCodec:
    """Token layout of one preset: sizes, offsets, encode and decode all derive from its table."""

    def __init__(self, preset: str = "prnn"):
        if preset not in PRESETS:
            raise ValueError(f"unknown codec preset {preset!r} (choose from {', '.join(PRESETS)})")
        p = self.preset = PRESETS[preset]
        self.name = p.name
        self.num_pitches = p.max_pitch - p.min_pitch + 1
        self.shift_seconds = np.asarray(p.time_shifts, dtype=np.float64)
        sizes = {
            "note_on": self.num_pitches,
            "note_off": self.num_pitches,
            "velocity": p.velocity_bins,
            "time_shift": len(self.shift_seconds),
        }
        self.offset = {}
        start = 0
        for kind in p.kinds:
            self.offset[kind] = start
            start += sizes[kind]
        self.size = start
        self.ranges = {
            kind: range(self.offset[kind], self.offset[kind] + sizes[kind]) for kind in sizes
        }
        self.dtype = np.uint8 if self.size <= 256 else np.uint16
        # Velocity bins spread evenly over [min_velocity, max_velocity], both ends included.
        self.velocity_values = np.round(
            np.linspace(p.min_velocity, p.max_velocity, p.velocity_bins)
        ).astype(np.int16)
        # Per-token lookup tables, so decoding and timing never search the ranges.
        self.token_kind = np.empty(self.size, dtype=object)
        self.token_value = np.empty(self.size, dtype=np.int64)
        for kind, r in self.ranges.items():
            self.token_kind[r.start : r.stop] = kind
            self.token_value[r.start : r.stop] = np.arange(len(r))
        self.token_seconds = np.zeros(self.size)
        self.token_seconds[self.ranges["time_shift"].start :][: len(self.shift_seconds)] = (
            self.shift_seconds
        )

    @property
    def start_token(self) -> int:
        """The token fed to the model before the first event (the original used the last one)."""
        return self.size - 1

    def __repr__(self) -> str:
        return f"EventCodec({self.name!r}, size={self.size})"

    def describe(self, token: int) -> str:
        """'note_on 60', 'velocity 15', ...: a token as a person reads it (pitches in MIDI)."""
        kind, value = self.token_kind[token], int(self.token_value[token])
        return f"{kind} {value + self.preset.min_pitch if kind.startswith('note') else value}"

    # -- encoding ------------------------------------------------------------------------------

    def in_range(self, notes: Notes) -> tuple[Notes, int]:
        """Notes the layout can express, and how many were dropped for their pitch."""
        keep = (notes.pitch >= self.preset.min_pitch) & (notes.pitch <= self.preset.max_pitch)
        return notes.select(keep), int(len(notes) - keep.sum())

    def velocity_bin(self, velocity: np.ndarray) -> np.ndarray:
        """Nearest bin; velocities outside the range go to the end bins."""
        p = self.preset
        step = (p.max_velocity - p.min_velocity) / (p.velocity_bins - 1)
        bins = np.round((np.asarray(velocity, dtype=np.float64) - p.min_velocity) / step)
        return np.clip(bins, 0, p.velocity_bins - 1).astype(np.int64)

    def encode(self, notes: Notes) -> np.ndarray:
        """Tokens for notes whose pitches are all in range (see `in_range`).

        Same-pitch overlaps are resolved and zero-length notes left out (`Notes.playable`).
        Events at one instant are written note-offs first, then note-ons by pitch. Every onset
        lands within half the smallest time-shift bin of its true time: the clock follows the
        true times, so rounding never accumulates over a piece.
        """
        lo, hi = self.preset.min_pitch, self.preset.max_pitch
        if len(notes) and (notes.pitch.min() < lo or notes.pitch.max() > hi):
            raise ValueError(f"pitch outside {lo}..{hi}: filter with EventCodec.in_range first")
        notes = notes.playable()
        n = len(notes)
        # One row per event: (time, order at that time, pitch index, is_on, velocity bin).
        times = np.concatenate([notes.end, notes.start])
        is_on = np.concatenate([np.zeros(n, bool), np.ones(n, bool)])
        pitch = np.concatenate([notes.pitch, notes.pitch]).astype(np.int64) - lo
        vbin = np.concatenate([np.zeros(n, np.int64), self.velocity_bin(notes.velocity)])
        order = np.lexsort((pitch, is_on, times))
        times, is_on, pitch, vbin = times[order], is_on[order], pitch[order], vbin[order]

        # Each event's own tokens: [VELOCITY] NOTE_ON, or NOTE_OFF; flattened in order.
        with_velocity = is_on.copy()
        if not self.preset.velocity_every_note:
            on_bins = vbin[is_on]
            with_velocity[is_on] = np.r_[True, on_bins[1:] != on_bins[:-1]]
        counts = 1 + with_velocity
        ends = np.cumsum(counts)
        flat = np.empty(ends[-1] if n else 0, dtype=np.int64)
        flat[ends - 1] = np.where(is_on, self.offset["note_on"], self.offset["note_off"]) + pitch
        flat[ends[with_velocity] - 2] = self.offset["velocity"] + vbin[with_velocity]

        # TIME_SHIFTs go before the first event of each distinct time.
        first = np.flatnonzero(np.r_[True, times[1:] != times[:-1]]) if n else np.zeros(0, np.int64)
        bounds = (ends - counts)[first].tolist() + [len(flat)]
        flat_list, tokens = flat.tolist(), []
        for j, shifts in enumerate(self.shifts_from(0.0, times[first].tolist())[0]):
            tokens += shifts
            tokens += flat_list[bounds[j] : bounds[j + 1]]
        return np.asarray(tokens, dtype=self.dtype)

    def shifts_for(self, seconds: float) -> list[int]:
        """TIME_SHIFT tokens that move the clock on by `seconds` (within half the smallest)."""
        return self.shifts_from(0.0, [seconds])[0][0]

    def shifts_from(self, clock: float, targets: list[float]) -> tuple[list[list[int]], float]:
        """TIME_SHIFT tokens moving the clock from `clock` to each target in turn, greedily,
        largest bin first, stopping within half the smallest bin: the clock follows the true
        times. Returns the tokens per target and where the clock ends (so encoding can go on
        from there: the live phrase does)."""
        bins = self.shift_seconds.tolist()
        base, half = self.offset["time_shift"], bins[0] / 2
        out = []
        for target in targets:
            group = []
            while target - clock >= half:
                k = max(bisect.bisect_right(bins, target - clock) - 1, 0)
                group.append(base + k)
                clock += bins[k]
            out.append(group)
        return out, clock

    # -- decoding ------------------------------------------------------------------------------

    def event_times(self, tokens: np.ndarray) -> np.ndarray:
        """Clock time (seconds) at which each token happens: the sum of the shifts before it."""
        seconds = self.token_seconds[np.asarray(tokens, dtype=np.int64)]
        return np.cumsum(seconds) - seconds

    def decode(self, tokens: np.ndarray, max_note_seconds: float | None = None) -> Notes:
        """Notes for any token stream; nothing raises (see `decode_counted`)."""
        return self.decode_counted(tokens, max_note_seconds)[0]

    def decode_counted(
        self, tokens: np.ndarray, max_note_seconds: float | None = None
    ) -> tuple[Notes, Counter]:
        """Notes for any token stream, and how many tokens did not decode as written, by reason
        (as note-seq's decoder counts them):

        - "outside the vocabulary": a token outside [0, size), skipped;
        - "orphan note-off": a NOTE_OFF with no sounding note, ignored;
        - "note-on over a sounding note": a NOTE_ON on a sounding pitch, which ends the earlier;
        - "note never released": cut to at most DEFAULT_NOTE_SECONDS;
        - "note cut at the limit": a note still sounding `max_note_seconds` after its onset ends
          there (as note-seq's `max_note_duration`; `sampling` keeps the same rule).
        """
        tokens = np.asarray(tokens, dtype=np.int64).reshape(-1)
        valid = (tokens >= 0) & (tokens < self.size)
        skipped = Counter({"outside the vocabulary": int((~valid).sum())})
        tokens = tokens[valid]
        times = self.event_times(tokens)
        final_time = float(times[-1] + self.token_seconds[tokens[-1]]) if len(tokens) else 0.0
        kinds, values = self.token_kind[tokens], self.token_value[tokens]
        pitches = values + self.preset.min_pitch
        sounding: dict[int, tuple[float, int]] = {}  # pitch -> (start, velocity)
        out: list[tuple[float, float, int, int]] = []
        velocity = DEFAULT_VELOCITY
        for kind, value, pitch, t in zip(kinds, values.tolist(), pitches.tolist(), times.tolist()):
            skipped["note cut at the limit"] += _expire(sounding, t, max_note_seconds, out)
            if kind == "velocity":
                velocity = int(self.velocity_values[value])
            elif kind == "note_off" and pitch not in sounding:
                skipped["orphan note-off"] += 1
            elif kind in ("note_on", "note_off"):
                if pitch in sounding:
                    start, vel = sounding.pop(pitch)
                    out.append((start, max(t, start + MIN_NOTE_SECONDS), pitch, vel))
                    skipped["note-on over a sounding note"] += kind == "note_on"
                if kind == "note_on":
                    sounding[pitch] = (t, velocity)
        skipped["note cut at the limit"] += _expire(sounding, final_time, max_note_seconds, out)
        skipped["note never released"] = len(sounding)
        for pitch, (start, vel) in sounding.items():
            end = min(max(final_time, start + MIN_NOTE_SECONDS), start + DEFAULT_NOTE_SECONDS)
            out.append((start, end, pitch, vel))
        skipped = +skipped  # drop the zero counts
        if not out:
            return Notes.empty(), skipped
        start, end, pitch, vel = zip(*out)
        return Notes.build(start, end, pitch, vel), skipped

    # -- transposition --------------------------------------------------------------------------

    def transpose(self, tokens: np.ndarray, semitones: int) -> np.ndarray:
        """Moves every NOTE_ON/NOTE_OFF by `semitones`; pitches pushed out of range wrap by
        octaves back inside it, as the original did, so no event is lost."""
        tokens = np.asarray(tokens)
        out = tokens.astype(np.int64)
        for kind in ("note_on", "note_off"):
            r = self.ranges[kind]
            mask = (out >= r.start) & (out < r.stop)
            p = out[mask] - r.start + semitones
            p = np.where(p >= self.num_pitches, p - 12 * ((p - self.num_pitches) // 12 + 1), p)
            p = np.where(p < 0, p + 12 * ((-p - 1) // 12 + 1), p)
            out[mask] = p + r.start
        return out.astype(tokens.dtype)
