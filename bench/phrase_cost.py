#!/usr/bin/env python3
"""Phrase cost: what one key event costs the live encoder as the phrase grows, the encoder that
freezes what it gave out (`amadeus.live.phrase.Phrase`) against the one that rebuilt the whole
phrase at every event (`Rebuilt`, a copy kept in this script only), in the same run.

Realistic playing, a melody over left-hand chords with the sustain pedal changed at each chord,
of 10, 100 and 1,000 notes (the server hands a phrase over at 1,000), is played into both: each
key or pedal event with its `take_final`, and the hand-over's `finish`, is timed. Per size and
encoder: microseconds per event over the phrase, the median run and the least favourable run,
and the slowest single event of all runs. Both encoders must give the same tokens.

    python bench/phrase_cost.py [--runs 5] [--notes 10 100 1000]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amadeus import cli  # noqa: E402
from amadeus.data.codec import EventCodec  # noqa: E402
from amadeus.data.dataset import Settings  # noqa: E402
from amadeus.data.encoding import encode_notes  # noqa: E402
from amadeus.live.phrase import Phrase  # noqa: E402


class Rebuilt(Phrase):
    """The encoder before the frozen prefix, to measure against: the same keys and pedal, but
    every take rebuilds the whole phrase (`midi.performance`), encodes it (`encode_notes`) and
    gives out all but its newest instant."""

    def __init__(self, codec: EventCodec, settings: Settings, origin: float):
        super().__init__(codec, settings, origin)
        self.emitted = 0  # tokens already taken

    def tokens(self, until: float) -> np.ndarray:
        notes, _ = self.codec.in_range(self.notes(until))
        if len(notes.playable()) == 0:
            return np.zeros(0, dtype=np.int64)
        return encode_notes(notes, self.codec, self.settings, "phrase").tokens.astype(np.int64)

    def take_final(self) -> np.ndarray:
        return self._take(self._final(self.tokens(self.latest)))

    def finish(self, time: float) -> np.ndarray:
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
        notes, _ = self.codec.in_range(self.notes(self.latest))
        end = len(tokens) - int((notes.playable().end >= self.latest).sum())
        shifts = self.codec.ranges["time_shift"]
        while end and tokens[end - 1] in shifts:
            end -= 1
        return tokens[:end]


def playing(notes: int, seed: int) -> list[tuple[float, str, tuple]]:
    """(seconds, kind, args) in time order: bars of a three-note left-hand chord held about a
    bar, the pedal lifted as it is struck and pressed again just after, and four melody notes
    in steps, a little off the beat; `notes` notes in all, then the pedal lifts."""
    rng = np.random.default_rng(seed)
    keys, pedal, melody = [], [], 72
    for bar in range(notes // 7 + 1):
        t = 1.2 * bar
        root = int(rng.integers(36, 55))
        for pitch in (root, root + 4, root + 7):
            keys.append((t, t + float(rng.uniform(0.8, 1.15)), pitch, int(rng.integers(40, 90))))
        pedal += [(t, 0), (t + 0.05, 127)]
        for beat in range(4):
            start = t + 0.3 * beat + float(rng.normal(0, 0.01)) + 0.01
            melody = int(np.clip(melody + rng.integers(-3, 4), 60, 96))
            length = float(rng.uniform(0.1, 0.35))
            keys.append((start, start + length, melody, int(rng.integers(50, 110))))
    keys = keys[:notes]
    end = max(release for _, release, _, _ in keys)
    events = [(t, 1, "pedal", (v,)) for t, v in pedal if t < end] + [(end, 1, "pedal", (0,))]
    for start, release, pitch, velocity in keys:
        events += [(start, 2, "on", (pitch, velocity)), (release, 0, "off", (pitch,))]
    return [(t, kind, args) for t, _, kind, args in sorted(events)]


def run(encoder: type[Phrase], events: list) -> tuple[np.ndarray, list[float]]:
    """(tokens, seconds of each event): the phrase played into a fresh encoder, then handed
    over at its last event."""
    phrase = encoder(EventCodec("prnn"), Settings(), 0.0)
    calls = {"on": phrase.press, "off": phrase.release, "pedal": phrase.sustain}
    tokens, seconds = [], []
    for t, kind, args in events:
        begin = time.perf_counter()
        calls[kind](t, *args)
        tokens.append(phrase.take_final())
        seconds.append(time.perf_counter() - begin)
    begin = time.perf_counter()
    tokens.append(phrase.finish(events[-1][0]))
    seconds.append(time.perf_counter() - begin)
    return np.concatenate(tokens), seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=cli.positive_int, default=5)
    p.add_argument("--notes", type=cli.positive_int, nargs="+", default=[10, 100, 1000])
    p.add_argument("--seed", type=cli.int_arg, default=0)
    args = p.parse_args()
    print("$ python " + shlex.join(sys.argv))
    print(f"{'notes':>5} {'events':>6} {'encoder':<8} {'median µs/event':>15} ", end="")
    print(f"{'worst run µs/event':>18} {'slowest event µs':>16}")
    for notes in args.notes:
        events = playing(notes, args.seed)
        tokens = {}
        for name, encoder in (("rebuilt", Rebuilt), ("frozen", Phrase)):
            per_run, slowest = [], 0.0
            for _ in range(args.runs):
                tokens[name], seconds = run(encoder, events)
                per_run.append(1e6 * sum(seconds) / len(seconds))
                slowest = max(slowest, 1e6 * max(seconds))
            print(
                f"{notes:>5} {len(events) + 1:>6} {name:<8} {np.median(per_run):>15.0f} "
                f"{max(per_run):>18.0f} {slowest:>16.0f}"
            )
        if not np.array_equal(tokens["rebuilt"], tokens["frozen"]):
            raise SystemExit(f"{notes} notes: the encoders' tokens differ")


if __name__ == "__main__":
    cli.run(main)
