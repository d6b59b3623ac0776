#!/usr/bin/env python3
"""fp32 against int8 for one session, in one table: weights on disk, perplexity, generation speed.

    python bench/quant_eval.py -s save/NAME.sess -q stats/NAME.yaml -d dataset/processed/NAME

weights: the float session's model_state and the int8 state dict, as torch.save writes them.
perplexity: quantize.py's measure (train.py's validation windows, zero init, the same for both).
events/s: generation's sampling loop at batch 1, 8 and 64; fp32 on its fastest path (generation's
stepper: numpy on the CPU), int8 on the int8 stepper (its fp16 GRU cell as a compiled op where
amadeus.quant.native can build one, else as torch calls); the best of R runs after a warm-up.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amadeus import cli  # noqa: E402
from amadeus.data.codec import EventCodec  # noqa: E402
from amadeus.data.dataset import Windows, load_split  # noqa: E402
from amadeus.generate.sampling import SamplingRules  # noqa: E402
from amadeus.generate.search import initial_noise, sample_from_start  # noqa: E402
from amadeus.model.device import resolve_device  # noqa: E402
from amadeus.model.loss import mean_loss  # noqa: E402
from amadeus.model.session import Session, build_model  # noqa: E402
from amadeus.model.stepper import make_stepper  # noqa: E402
from amadeus.quant.quantizer import quantize  # noqa: E402
from amadeus.quant.session import state_bytes  # noqa: E402
from amadeus.quant.stats import load_stats  # noqa: E402

BATCHES = (1, 8, 64)
CODEC, RULES = EventCodec("prnn"), SamplingRules(max_note_seconds=4.0)


def generate(stepper, init_dim: int, batch: int, steps: int) -> None:
    """generate.py's sampling loop with its default rules (valid events, a 4 s note limit)."""
    rng = np.random.default_rng(0)
    init = initial_noise(batch, init_dim, rng)
    sample_from_start(stepper, CODEC, RULES, init, steps, rng)


def events_per_second(model, device, batch: int, steps: int, repeats: int) -> float:
    stepper = make_stepper(model, device)
    generate(stepper, model.config.init_dim, batch, 10)  # warm-up: packing, allocations
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        generate(stepper, model.config.init_dim, batch, steps)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return batch * steps / best


def perplexity(model, args: argparse.Namespace, codec: str, device: torch.device) -> float:
    validation = load_split(args.dataset, args.val_fraction, codec).validation
    windows = Windows(validation, args.window_size, args.window_size)
    starts = windows.evenly(args.val_windows)
    return math.exp(mean_loss(model, windows, starts, 64, device))


def row(name: str, fp32: float, int8: float, fmt: str, ratio: str) -> str:
    return f"{name:<20} {fp32:>10{fmt}} {int8:>10{fmt}} {ratio:>10}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("-s", "--session", type=Path, required=True)
    p.add_argument("-q", "--stats-file", type=Path, required=True)
    p.add_argument("-d", "--dataset", type=Path, required=True)
    p.add_argument("--steps", type=cli.positive_int, default=300, help="events per row and run")
    p.add_argument("--repeats", type=cli.positive_int, default=3)
    p.add_argument("-w", "--window-size", type=cli.positive_int, default=200)
    p.add_argument("--val-windows", type=cli.positive_int, default=256)
    p.add_argument("--val-fraction", type=cli.unit_float, default=0.1)
    cli.add_device(p, "cpu")
    args = p.parse_args()
    print("$ python " + shlex.join(sys.argv))
    device = resolve_device(args.device)
    session = Session.load(args.session)
    model = build_model(session).eval().to(device)
    int8 = quantize(model, load_stats(args.stats_file))
    c = session.config
    cell = "compiled op" if int8.stepper(device).compiled else "torch calls"
    print(
        f"{c.gru_layers} x {c.hidden_dim}, step {session.step}, {device}, "
        f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs, int8 GRU cell: {cell}"
    )
    print(f"{'':<20} {'fp32':>10} {'int8':>10} {'int8/fp32':>10}")
    sizes = [state_bytes(session.model_state) / 1e6, state_bytes(int8.state_dict()) / 1e6]
    print(row("weights MB", *sizes, ".2f", f"{sizes[1] / sizes[0]:.3f}"))
    ppl = [perplexity(m, args, session.codec, device) for m in (model, int8)]
    print(row("perplexity", *ppl, ".4f", f"{100 * (ppl[1] / ppl[0] - 1):+.2f}%"))
    for batch in BATCHES:
        speed = [
            events_per_second(m, device, batch, args.steps, args.repeats) for m in (model, int8)
        ]
        print(row(f"events/s batch {batch}", *speed, ",.0f", f"{speed[1] / speed[0]:.2f}x"))


if __name__ == "__main__":
    cli.run(main)
