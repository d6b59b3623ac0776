#!/usr/bin/env python3
"""Quantizes a Performance RNN session to int8 (Distiller's range-linear scheme, amadeus/quant)
and measures what that costs.

Calibration runs the float model in eval mode over seeded windows of the dataset's training split
(the files train.py trains on, split the same way) and writes every module's statistics to
--stats-file in Distiller's YAML schema; --evaluate takes an existing statistics file instead.
Then --output writes the int8 session, and the perplexity of fp32 and int8 is printed on
train.py's validation windows (the held-out files), zero init, the same windows for both.
"""

import argparse
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from amadeus import cli
from amadeus import controls as ctl
from amadeus.dataset import Piece, Windows
from amadeus.device import CHOICES, resolve_device
from amadeus.errors import DatasetError, UsageError
from amadeus.evaluation import load_split, mean_loss
from amadeus.model import PerformanceRNN
from amadeus.progress import progress
from amadeus.quant.quantizer import calibrate, quantize
from amadeus.quant.session import save_int8, state_bytes
from amadeus.quant.stats import Stats, load_stats, save_stats
from amadeus.session import Session, build_model

STRIDE = 10  # events between the starts of calibration windows, as train.py cuts them


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("-s", "--session", type=Path, required=True, help="the float .sess")
    p.add_argument(
        "-q",
        "--stats-file",
        type=Path,
        required=True,
        help="calibration statistics (YAML): written, or read with --evaluate",
    )
    p.add_argument("-d", "--dataset", type=Path, required=True, help="folder of .data files")
    p.add_argument("-o", "--output", type=Path, default=None, help="write the int8 session here")
    p.add_argument("--batches", type=cli.positive_int, default=16, help="calibration batches")
    p.add_argument("-b", "--batch-size", type=cli.positive_int, default=64)
    p.add_argument("-w", "--window-size", type=cli.positive_int, default=200, metavar="EVENTS")
    p.add_argument(
        "--val-windows",
        type=cli.positive_int,
        default=256,
        help="validation windows to measure perplexity on (default 256, as train.py)",
    )
    p.add_argument(
        "--val-fraction",
        type=cli.unit_float,
        default=0.1,
        help="share of files held out for validation, as given to train.py (default 0.1)",
    )
    p.add_argument(
        "--evaluate",
        action="store_true",
        help="use the existing --stats-file instead of calibrating",
    )
    p.add_argument("--device", choices=CHOICES, default="auto")
    p.add_argument("--seed", type=cli.int_arg, default=0, help="picks the calibration windows")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    device = resolve_device(args.device)
    check_outputs(args)
    stats = load_stats(args.stats_file) if args.evaluate else None
    session = Session.load(args.session)
    c = session.config
    print(
        f"{args.session}: {c.gru_layers} x {c.hidden_dim} GRU, codec {session.codec}, "
        f"step {session.step}, device {device}"
    )
    train, validation = load_data(args, session.codec)
    model = build_model(session).eval().to(device)
    if args.evaluate and len(validation) == 0:
        raise DatasetError(f"{args.dataset}: {no_validation(args)}")
    if stats is None:
        stats = calibrate_and_save(model, train, args, device)
    int8 = quantize(model, stats)
    if args.output:
        save_int8(int8, session.codec, args.output, session.step)
        size, float_size = os.path.getsize(args.output), state_bytes(session.model_state)
        print(
            f"{args.output}: {size / 1e6:.2f} MB, {100 * size / float_size:.1f}% of the fp32 "
            f"weights ({float_size / 1e6:.2f} MB)"
        )
    compare(model, int8, validation, args, device)


def check_outputs(args: argparse.Namespace) -> None:
    """Before the slow part: every file to be written has a folder; none is the float session."""
    written = [args.output] + ([] if args.evaluate else [args.stats_file])
    for path in filter(None, written):
        if not path.parent.is_dir():
            raise UsageError(f"{path}: folder {path.parent} does not exist")
    if args.output and args.output.resolve() == args.session.resolve():
        raise UsageError(f"--output {args.output}: would overwrite the float session")


def load_data(args: argparse.Namespace, codec: str) -> tuple[list[Piece], Windows]:
    """(training pieces, validation windows), which must hold the session's token layout."""
    train, validation, found = load_split(args.dataset, args.val_fraction)
    if found != codec:
        raise DatasetError(
            f"{args.dataset}: made with codec {found!r}, but {args.session} reads codec {codec!r}"
        )
    return train, Windows(validation, args.window_size, args.window_size)


def no_validation(args: argparse.Namespace) -> str:
    return (
        f"no validation window of {args.window_size} events in the files held out "
        f"(--val-fraction {args.val_fraction:g})"
    )


def calibrate_and_save(
    model: PerformanceRNN, pieces: list[Piece], args: argparse.Namespace, device: torch.device
) -> Stats:
    windows = Windows(pieces, args.window_size, STRIDE)
    if windows.batches_per_epoch(args.batch_size) == 0:
        raise DatasetError(
            f"{args.dataset}: {len(windows)} training windows of {args.window_size} events, "
            f"fewer than the batch size {args.batch_size}"
        )
    steps = progress(range(args.batches), desc="calibrate", quiet=args.quiet)
    stats = calibrate(model, batches(model, windows, steps, args, device))
    stats.source = str(args.stats_file)
    save_stats(stats, args.stats_file)
    print(
        f"{args.stats_file}: {len(stats)} modules, {args.batches} batches of {args.batch_size} "
        f"windows of {args.window_size} events from {len(pieces)} training files, seed {args.seed}"
    )
    return stats


def batches(
    model: PerformanceRNN,
    windows: Windows,
    steps: Iterable[int],
    args: argparse.Namespace,
    device: torch.device,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """(init [B, init_dim], events [T, B], controls [T, B, 24] or None) of each calibration step:
    init noise drawn as generation draws it, and every other batch without controls, so that the
    ranges hold both ways generate.py runs (conditioned, and unconditioned by default)."""
    generator = torch.Generator().manual_seed(args.seed)
    for step in steps:
        events, compact = windows.batch(step, args.batch_size, args.seed)
        init = torch.randn(args.batch_size, model.config.init_dim, generator=generator)
        controls = torch.from_numpy(ctl.expand(compact)).to(device) if step % 2 == 0 else None
        yield init.to(device), torch.from_numpy(events).to(device), controls


def compare(
    model: PerformanceRNN,
    int8: PerformanceRNN,
    windows: Windows,
    args: argparse.Namespace,
    device: torch.device,
) -> None:
    """Print the perplexity of both models on the same validation windows."""
    starts = windows.evenly(args.val_windows)
    if len(starts) == 0:
        print(f"{no_validation(args)}: perplexity not measured")
        return
    fp32, q = (
        math.exp(mean_loss(m, windows, starts, args.batch_size, device)) for m in (model, int8)
    )
    print(
        f"perplexity on {len(starts)} validation windows of {args.window_size} events, zero init:"
    )
    print(f"  fp32  {fp32:.4f}")
    print(f"  int8  {q:.4f}  ({100 * (q / fp32 - 1):+.2f}%)")


if __name__ == "__main__":
    cli.run(main)
