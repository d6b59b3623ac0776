#!/usr/bin/env python3
"""Measures how good a model is and writes FOLDER/report.md with figures: likelihood of the
session's validation files (fp32, and int8 against it), music sampled with generate.py's defaults
against the real music feature by feature, adherence to controls, and (--answers N) the live
engine's answers against what the composer wrote next."""

import argparse
import shlex
import sys
from pathlib import Path

from amadeus import cli
from amadeus.evaluation.run import Answering, EvaluateOptions, evaluate
from amadeus.generate.loaded import load
from amadeus.live.instrument import Instrument


def parse_args() -> EvaluateOptions:
    d = EvaluateOptions(Path())
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("-s", "--session", type=Path, required=True, help="a .sess or .int8.sess")
    cli.add_dataset(p)
    p.add_argument(
        "--int8", type=Path, default=None, help="an .int8.sess of the model, compared with it"
    )
    p.add_argument(
        "-q",
        "--stats-file",
        type=Path,
        default=None,
        help="or calibration statistics: quantize the session on the fly and compare",
    )
    p.add_argument(
        "--samples",
        type=cli.count,
        default=d.samples,
        help=f"pieces to generate (default {d.samples}; 0: likelihood only)",
    )
    p.add_argument(
        "-l",
        "--length",
        type=cli.positive_int,
        default=d.length,
        metavar="EVENTS",
        help=f"events per generated piece (default {d.length})",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="receives report.md and the figures (default output/evaluation/<session name>)",
    )
    p.add_argument(
        "--answers",
        type=cli.count,
        default=d.answers,
        metavar="N",
        help="also play N phrases of the validation files into the live engine and measure its "
        "answers against what the composer wrote next (default 0: none)",
    )
    cli.add_seed(p, d.seed, "the generated pieces: the same seed, the same report")
    cli.add_device(p)
    cli.add_quiet(p)
    return cli.options(EvaluateOptions, p.parse_args())


def main() -> None:
    o = parse_args()
    evaluate(
        o, shlex.join(["python3", *sys.argv]), answering=answering(o.session) if o.answers else None
    )


def answering(session: Path) -> Answering:
    """The live engine as play.py runs it, on the model being evaluated."""
    return Instrument(load(session)).answering()


if __name__ == "__main__":
    cli.run(main)
