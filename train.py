#!/usr/bin/env python3
"""Trains a Performance RNN on a folder of .data files; resumes the session if it exists.

Several processes: torchrun --nproc_per_node=N train.py ... (DistributedDataParallel)."""

import argparse
from pathlib import Path

import torch

from amadeus import cli
from amadeus.model.device import PRECISIONS
from amadeus.train.loop import TrainOptions, distributed_context, parse_model_params, prepare, train


def parse_args() -> TrainOptions:
    d = TrainOptions()
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("-s", "--session", type=Path, default=d.session, help=f"default {d.session}")
    p.add_argument("-d", "--dataset", type=Path, default=d.dataset, help=f"default {d.dataset}")
    p.add_argument(
        "-i",
        "--saving-interval",
        type=cli.positive_float,
        default=d.saving_interval,
        metavar="SECONDS",
        help=f"default {d.saving_interval:g}",
    )
    p.add_argument("-b", "--batch-size", type=cli.positive_int, default=d.batch_size)
    p.add_argument("-l", "--learning-rate", type=cli.positive_float, default=d.learning_rate)
    p.add_argument("-w", "--window-size", type=cli.positive_int, default=d.window_size)
    p.add_argument("-S", "--stride-size", type=cli.positive_int, default=d.stride_size)
    p.add_argument(
        "-c",
        "--control-ratio",
        type=cli.unit_float,
        default=d.control_ratio,
        help=f"fraction of batches trained with their controls (default {d.control_ratio:g})",
    )
    p.add_argument(
        "-T",
        "--teacher-forcing-ratio",
        type=cli.unit_float,
        default=d.teacher_forcing_ratio,
        help="below 1.0, steps feed back the model's argmax (slower)",
    )
    p.add_argument(
        "-t",
        "--use-transposition",
        action="store_true",
        default=d.use_transposition,
        help="transpose each window by -6..5 semitones (the default; kept for the original's "
        "command lines)",
    )
    p.add_argument(
        "--no-transposition",
        dest="use_transposition",
        action="store_false",
        help="train on the music as written",
    )
    p.add_argument(
        "--no-time-stretch",
        dest="time_stretch",
        action="store_false",
        help="train without the copies at 0.95-1.05 times the tempo",
    )
    p.add_argument(
        "--lr-schedule",
        choices=("cosine", "constant"),
        default=d.lr_schedule,
        help="cosine: warm up, then decay to a tenth over the run (--max-steps, or the steps "
        "--max-time allows at the measured speed); constant: the original's (default cosine)",
    )
    p.add_argument(
        "--warmup-steps",
        type=cli.positive_int,
        default=d.warmup_steps,
        help=f"steps of linear warm-up of the cosine schedule (default {d.warmup_steps})",
    )
    p.add_argument(
        "--restart-schedule",
        action="store_true",
        help="resuming: warm up and decay again from the session's step to --max-steps or "
        "--max-time (a warm restart) instead of going on along the curve it recorded",
    )
    p.add_argument(
        "-p",
        "--model-params",
        type=parse_model_params,
        default="",
        help="for a new model, e.g. hidden_dim=1024,gru_layers=2; resuming, gru_dropout only",
    )
    p.add_argument(
        "--output-dropout",
        type=cli.unit_float,
        default=None,
        metavar="P",
        help="in training, drop this share of the GRU states the output layer reads (default: "
        "the session's, 0 for a new model)",
    )
    p.add_argument("-r", "--reset-optimizer", action="store_true")
    p.add_argument("-L", "--enable-logging", action="store_true", help="TensorBoard in runs/")
    cli.add_device(p)
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=d.precision,
        help="products in bf16 or fp32; auto: bf16 on CUDA and on CPUs with AVX512-BF16 or AMX "
        "(default)",
    )
    cli.add_seed(p, d.seed, "the initial weights, the batches and their augmentation")
    p.add_argument("--max-steps", type=cli.positive_int, default=None)
    p.add_argument("--max-time", type=cli.positive_float, default=None, metavar="SECONDS")
    p.add_argument(
        "--val-fraction",
        type=cli.unit_float,
        default=d.val_fraction,
        help="share of files held out for validation (default 0.1)",
    )
    p.add_argument("--val-interval", type=cli.positive_int, default=d.val_interval, metavar="STEPS")
    cli.add_quiet(p)
    return cli.options(TrainOptions, p.parse_args())


def main() -> None:
    options = parse_args()
    rank, world_size = distributed_context()
    run = prepare(options, rank, world_size)
    if rank == 0:
        print(
            f"{options.session}: step {run.step}, {len(run.train)} training windows, "
            f"{run.model.config}, device {run.device}, products in {products(run.autocast)}, "
            f"{world_size} process(es)"
        )
    train(run)


def products(dtype: torch.dtype | None) -> str:
    """What --precision chose, as the start line names it."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


if __name__ == "__main__":
    cli.run(main)
