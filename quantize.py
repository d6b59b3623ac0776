#!/usr/bin/env python3
"""Quantizes a Performance RNN session to int8 (Distiller's range-linear scheme, amadeus/quant)
and measures what that costs.

Calibration runs the float model in eval mode over seeded windows of the training files the
session records (its dataset, split and window, as train.py cut them) and writes every module's
statistics to --stats-file in Distiller's YAML schema; --evaluate takes an existing statistics
file instead. Then --output writes the int8 session, and the perplexity of fp32 and int8 is
printed on the session's validation windows (the held-out files), zero init, the same for both.
"""

import argparse
from pathlib import Path

from amadeus import cli
from amadeus.quant.pipeline import QuantizeOptions, run


def parse_args() -> QuantizeOptions:
    d = QuantizeOptions(Path(), Path())
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("-s", "--session", type=Path, required=True, help="the float .sess")
    p.add_argument(
        "-q",
        "--stats-file",
        type=Path,
        required=True,
        help="calibration statistics (YAML): written, or read with --evaluate",
    )
    cli.add_dataset(p)
    p.add_argument("-o", "--output", type=Path, default=None, help="write the int8 session here")
    p.add_argument(
        "--batches", type=cli.positive_int, default=d.batches, help="calibration batches"
    )
    p.add_argument("-b", "--batch-size", type=cli.positive_int, default=d.batch_size)
    p.add_argument(
        "-w",
        "--window-size",
        type=cli.positive_int,
        default=None,
        metavar="EVENTS",
        help="events per window (default: the session's training window)",
    )
    p.add_argument(
        "--val-windows",
        type=cli.positive_int,
        default=d.val_windows,
        help=f"validation windows to measure perplexity on (default {d.val_windows}, as train.py)",
    )
    p.add_argument(
        "--val-fraction",
        type=cli.unit_float,
        default=None,
        help="share of files held out for validation (default: the session's)",
    )
    p.add_argument(
        "--evaluate",
        action="store_true",
        help="use the existing --stats-file instead of calibrating",
    )
    cli.add_device(p)
    cli.add_seed(p, d.seed, "the calibration windows")
    cli.add_quiet(p)
    return cli.options(QuantizeOptions, p.parse_args())


def main() -> None:
    run(parse_args())


if __name__ == "__main__":
    cli.run(main)
