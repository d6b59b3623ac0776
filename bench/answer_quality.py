#!/usr/bin/env python3
"""Answer quality (issue 23, sections 3 and 5): phrases of real music cut from the session's
validation files (4-12 s, cut at note onsets across which no note sounds: the data keeps no bar
lines), each played into the live engine with its default settings, and the answer compared
with what the composer wrote next for as long, feature by feature: Amadeus conditioned (the
default), unconditioned, and a naive answer (the phrase again), with each one's overall distance
to the composer and issue 23's targets. Then the answers' mean velocity for phrases played at
velocity 40, 70 and 100. See amadeus/evaluation/answers.py for the definitions.

The int8 session beside the given .sess plays, as play.py would (--fp32: the float session).
The clock is simulated, and the answers' delays for a busy machine are taken out: what is
measured is the model's music, not the machine's speed.

    python bench/answer_quality.py -s SESSION [--fp32] [--phrases 100] [--seed 0] [-d DATASET]
        [--phrase-keys 0.5]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amadeus import cli  # noqa: E402
from amadeus.data.dataset import DEFAULT_VAL_FRACTION, load_split  # noqa: E402
from amadeus.errors import UsageError  # noqa: E402
from amadeus.evaluation import answers  # noqa: E402
from amadeus.generate.loaded import load  # noqa: E402
from amadeus.generate.shipped import int8_beside  # noqa: E402
from amadeus.live.instrument import Instrument  # noqa: E402
from amadeus.live.playing import LIVE_THREADS  # noqa: E402
from amadeus.live.settings import LiveSettings  # noqa: E402


def chosen(session: Path, fp32: bool) -> Path:
    """The session that plays: the int8 one beside a .sess unless --fp32 (the .sess itself when
    none is beside it)."""
    if session.name.endswith(".int8.sess"):
        if fp32:
            raise UsageError(f"--fp32: {session} is int8; give the float .sess")
        return session
    return session if fp32 else int8_beside(session) or session


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-s", "--session", type=Path, required=True, help="the .sess")
    p.add_argument("--fp32", action="store_true", help="play the float session, not the int8")
    p.add_argument("--phrases", type=cli.positive_int, default=100)
    p.add_argument(
        "--phrase-keys",
        type=cli.unit_float,
        default=LiveSettings.phrase_keys,
        metavar="SHARE",
        help="the share of the answer's pitch-class control that is the phrase's histogram "
        f"(default {LiveSettings.phrase_keys}, the live engine's)",
    )
    cli.add_seed(p, 0, "the phrases and the answers' random draws")
    cli.add_dataset(p)
    args = p.parse_args()
    print("$ python " + shlex.join(sys.argv))
    began = time.monotonic()
    torch.set_num_threads(LIVE_THREADS)
    loaded = load(chosen(args.session, args.fp32))
    record, codec = loaded.data, loaded.events
    if args.dataset is None and record is None:
        raise UsageError(f"{loaded.path}: the session records no dataset: give one with -d")
    fraction = record.val_fraction if record else DEFAULT_VAL_FRACTION
    validation = load_split(args.dataset or record.folder(), fraction, codec.name).validation
    pieces = [codec.decode(piece.tokens) for piece in validation]
    answering = Instrument(loaded).answering(LiveSettings(phrase_keys=args.phrase_keys))
    result = answers.measure(pieces, answering.engines, answering.tick, args.phrases, args.seed)
    print(
        f"{loaded.path} ({'int8' if loaded.int8 else 'fp32'}): {result.phrases} phrases "
        f"({result.seconds:.0f} s) from {len(validation)} validation files, seed {args.seed}"
    )
    for line in answers.lines(result):
        print(line)
    print(f"({time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    cli.run(main)
