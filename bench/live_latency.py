#!/usr/bin/env python3
"""Live latency: phrases of real music (cut from the session's validation files) played into the
turn-taking engine one after another, as a musician would, fp32 and int8 in the same run.

For each hand-over: the wall time from the hand-over call to the first answer note the server
would send (the engine's compute: the phrase's last tokens, the pause, sampling until the first
note), median, p99 and worst over the phrases. For the stream: how far ahead of playback each
answer note went out (its time minus the clock when it was produced, compute included), the
least over the whole run; below zero would be a note sent late. The clock is simulated (the
phrases need not be waited for) and advances by the engine's own compute time.

    python bench/live_latency.py -s SESSION [--int8 INT8_SESSION | -q STATS] [--phrases 100]
"""

from __future__ import annotations

import argparse
import multiprocessing
import shlex
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amadeus import cli  # noqa: E402
from amadeus.data.dataset import load_split  # noqa: E402
from amadeus.data.notes import Notes  # noqa: E402
from amadeus.generate.loaded import load  # noqa: E402
from amadeus.live.connection import TICK_SECONDS  # noqa: E402
from amadeus.live.engine import AnswerEnded, Engine  # noqa: E402
from amadeus.live.instrument import Instrument  # noqa: E402
from amadeus.live.settings import LiveSettings  # noqa: E402

PHRASE_SECONDS = 6.0


def phrases(notes_list: list[Notes], count: int) -> list[Notes]:
    """Consecutive 6-second cuts of the pieces (notes that start in the cut, ended by its end)."""
    out = []
    for notes in notes_list:
        for start in np.arange(0, notes.duration, PHRASE_SECONDS):
            inside = (notes.start >= start) & (notes.start < start + PHRASE_SECONDS)
            if inside.sum() >= 4:
                cut = notes.select(inside)
                end = np.minimum(cut.end, start + PHRASE_SECONDS)
                out.append(Notes(cut.start - start, end - start, cut.pitch, cut.velocity))
            if len(out) == count:
                return out
    return out


def session_run(engine: Engine, cuts: list[Notes]) -> tuple[list[float], float, int]:
    """Plays every phrase and lets each answer end; (latencies ms, least lead s, answer notes)."""
    clock, notes = 0.0, 0
    for phrase in cuts:
        events = sorted(
            [(s, 1, p, v) for s, p, v in zip(phrase.start, phrase.pitch, phrase.velocity)]
            + [(e, 0, p, 0) for e, p in zip(phrase.end, phrase.pitch)]
        )
        for t, is_on, pitch, velocity in events:
            call = engine.note_on if is_on else engine.note_off
            call(clock + t, int(pitch), *([int(velocity)] if is_on else []))
        clock += phrase.end.max()
        while engine.phrase is not None or engine.answering:  # silence, hand-over, answer
            clock += TICK_SECONDS
            for item in engine.tick(clock):
                notes += isinstance(item, AnswerEnded) and item.notes
        clock += 1.0  # the musician listens a moment before the next phrase
    return engine.latencies, engine.min_lead, notes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-s", "--session", type=Path, required=True, help="the float .sess")
    p.add_argument("--int8", type=Path, default=None, help="its .int8.sess")
    p.add_argument("-q", "--stats-file", type=Path, default=None, help="or statistics")
    p.add_argument("--phrases", type=cli.positive_int, default=100)
    p.add_argument("--seed", type=cli.int_arg, default=0)
    args = p.parse_args()
    print("$ python " + shlex.join(sys.argv))
    models = {"fp32": (args.session, None)}
    if args.int8 or args.stats_file:
        models["int8"] = (args.int8 or args.session, None if args.int8 else args.stats_file)
    fp32 = load(args.session)
    record, codec = fp32.data, fp32.events
    validation = load_split(record.folder(), record.val_fraction).validation
    cuts = phrases([codec.decode(piece.tokens) for piece in validation], args.phrases)
    seconds = sum(c.end.max() for c in cuts)
    print(f"{len(cuts)} phrases ({seconds:.0f} s) from {len(validation)} validation files")
    print(f"{'model':<6} {'median ms':>9} {'p99 ms':>7} {'max ms':>7} {'least lead ms':>13} notes")
    for name, source in models.items():
        # Each model in a fresh process, as the server runs one: numpy's BLAS threads, left
        # spinning by the fp32 run, slowed the int8 run after it when they shared a process.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            latencies, lead, notes = pool.submit(measure, *source, cuts, args.seed).result()
        ms = np.array(latencies)
        print(
            f"{name:<6} {np.median(ms):>9.1f} {np.percentile(ms, 99):>7.1f} {ms.max():>7.1f} "
            f"{1000 * lead:>13.1f} {notes}"
        )


def measure(
    session: Path, stats: Path | None, cuts: list[Notes], seed: int
) -> tuple[list[float], float, int]:
    """One model's run of session_run, in the process that loads it."""
    engine = Instrument(load(session, stats)).engine(LiveSettings(), seed)
    return session_run(engine, cuts)


if __name__ == "__main__":
    cli.run(main)
