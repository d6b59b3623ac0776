#!/usr/bin/env python3
"""Live latency: phrases of real music (cut from the session's validation files) played into the
turn-taking engine one after another, as a musician would, fp32 and int8 in the same run; with
`--load N`, again while N other processes keep the cores busy (a training run, a browser).

For each hand-over: the wall time from the hand-over call to the first answer note the server
would send (the engine's compute: the phrase's last tokens, the pause, sampling until the first
note), median, p99 and worst over the phrases. For the stream: how far ahead of playback each
answer note went out (its time minus the clock when it was produced, compute included), the
least over the whole run: below zero would be a note sent late, which the page drops. The
engine moves an answer's timeline instead (`delayed`): the largest delay is printed too. A
phrase answered more than once was split. The clock is simulated (the phrases need not be
waited for): it advances by a tick, or by the engine's compute when that took longer, as the
server's loop would.

    python bench/live_latency.py -s SESSION [--int8 INT8_SESSION | -q STATS] [--phrases 100]
        [--load [N]] [--threads N] [-d DATASET]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amadeus import cli  # noqa: E402
from amadeus.data.dataset import load_split  # noqa: E402
from amadeus.data.notes import Notes  # noqa: E402
from amadeus.generate.loaded import load  # noqa: E402
from amadeus.live.engine import AnswerEnded, AnswerStarted, Delayed, Engine  # noqa: E402
from amadeus.live.instrument import Instrument  # noqa: E402
from amadeus.live.playing import LIVE_THREADS  # noqa: E402
from amadeus.live.protocol import TICK_SECONDS  # noqa: E402
from amadeus.live.settings import LiveSettings  # noqa: E402

PHRASE_SECONDS = 6.0
# A busy core: products on arrays the size of a training step's, one thread each, as a training
# run or another program would keep it.
BUSY = "import numpy as np\na = np.random.rand(400, 400)\nwhile True:\n    a = np.tanh(a @ a)"


@dataclass
class Run:
    latencies: list[float]  # ms, hand-over to first note
    least_lead: float  # seconds
    late_notes: int  # sent after their time
    notes: int
    split: int  # phrases answered more than once
    delay: float  # ms: the largest an answer's timeline moved


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


def session_run(engine: Engine, cuts: list[Notes]) -> Run:
    """Plays every phrase and lets each answer end."""
    clock, run = 0.0, Run([], np.inf, 0, 0, 0, 0.0)
    for phrase in cuts:
        events = sorted(
            [(s, 1, p, v) for s, p, v in zip(phrase.start, phrase.pitch, phrase.velocity)]
            + [(e, 0, p, 0) for e, p in zip(phrase.end, phrase.pitch)]
        )
        for t, is_on, pitch, velocity in events:
            call = engine.note_on if is_on else engine.note_off
            call(clock + t, int(pitch), *([int(velocity)] if is_on else []))
        clock += phrase.end.max()
        answers = 0
        while engine.phrase is not None or engine.answering:  # silence, hand-over, answer
            began = time.perf_counter()
            for item in engine.tick(clock):
                answers += isinstance(item, AnswerStarted)
                run.notes += isinstance(item, AnswerEnded) and item.notes
                if isinstance(item, Delayed):
                    run.delay = max(run.delay, item.ms)
            clock += max(TICK_SECONDS, time.perf_counter() - began)
        run.split += answers > 1
        clock += 1.0  # the musician listens a moment before the next phrase
    run.latencies, run.least_lead, run.late_notes = (
        engine.latencies,
        engine.min_lead,
        engine.late_notes,
    )
    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-s", "--session", type=Path, required=True, help="the float .sess")
    p.add_argument("--int8", type=Path, default=None, help="its .int8.sess")
    p.add_argument("-q", "--stats-file", type=Path, default=None, help="or statistics")
    p.add_argument("--phrases", type=cli.positive_int, default=100)
    add_load(p)
    p.add_argument(
        "--threads", type=cli.positive_int, default=None, help="torch's (default: play.py's)"
    )
    cli.add_seed(p, 0, "the answers' random draws")
    cli.add_dataset(p)
    args = p.parse_args()
    print("$ python " + shlex.join(sys.argv))
    models = {"fp32": (args.session, None)}
    if args.int8 or args.stats_file:
        models["int8"] = (args.int8 or args.session, None if args.int8 else args.stats_file)
    fp32 = load(args.session)
    record, codec = fp32.data, fp32.events
    validation = load_split(args.dataset or record.folder(), record.val_fraction).validation
    cuts = phrases([codec.decode(piece.tokens) for piece in validation], args.phrases)
    seconds = sum(c.end.max() for c in cuts)
    print(f"{len(cuts)} phrases ({seconds:.0f} s) from {len(validation)} validation files")
    print(
        f"{'model':<6} {'load':>4} {'median ms':>9} {'p99 ms':>7} {'max ms':>7} "
        f"{'least lead ms':>13} {'late':>4} {'split':>5} {'delay ms':>8} notes"
    )
    for load_count in sorted({0, args.load}):
        for name, source in models.items():
            with busy(load_count):
                run = measure_apart(source, cuts, args.seed, args.threads)
            ms = np.array(run.latencies)
            print(
                f"{name:<6} {load_count:>4} {np.median(ms):>9.1f} {np.percentile(ms, 99):>7.1f} "
                f"{ms.max():>7.1f} {1000 * run.least_lead:>13.1f} {run.late_notes:>4} "
                f"{run.split:>5} {run.delay:>8.0f} {run.notes}"
            )


def add_load(p: argparse.ArgumentParser) -> None:
    """--load [N]: the run again while N processes keep the cores busy (`busy`)."""
    p.add_argument(
        "--load",
        type=cli.count,
        nargs="?",
        const=os.cpu_count(),
        default=0,
        help="also measure with N busy processes (N: the number of cores when not given)",
    )


class busy:
    """N processes keeping a core each busy while the block runs."""

    def __init__(self, count: int):
        self.count = count

    def __enter__(self):
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        command = [sys.executable, "-c", BUSY]
        self.procs = [subprocess.Popen(command, env=env) for _ in range(self.count)]
        time.sleep(1.0 if self.count else 0.0)  # at full speed before the measurement

    def __exit__(self, *exc):
        for proc in self.procs:
            proc.kill()
            proc.wait()


def measure_apart(source: tuple, cuts: list[Notes], seed: int, threads: int | None) -> Run:
    """One model's run in a fresh process, as the server runs one: numpy's BLAS threads, left
    spinning by the fp32 run, slowed the int8 run after it when they shared a process."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure, *source, cuts, seed, threads).result()


def measure(
    session: Path, stats: Path | None, cuts: list[Notes], seed: int, threads: int | None
) -> Run:
    """One model's run of session_run, in the process that loads it, with play.py's threads."""
    torch.set_num_threads(threads or LIVE_THREADS)
    instrument = Instrument(load(session, stats))
    return session_run(instrument.engine(LiveSettings(), seed), cuts)


if __name__ == "__main__":
    main()
