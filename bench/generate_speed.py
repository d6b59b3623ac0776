#!/usr/bin/env python3
"""Generation speed in events/s at batch 1, 8 and 64: our stepper and sampler against a step loop
written like the original's (torch `step` per event, softmax, Categorical), in the same run.

    python bench/generate_speed.py [-s SESSION] [--steps N] [--repeats R] [--device cpu|cuda]

Without -s, a default-size model (3 x 512, fp32) with random weights, seed 0: speed does not
depend on what the weights learned. Each figure is the best of R timed runs after a warm-up.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amadeus import cli  # noqa: E402
from amadeus.data.codec import EventCodec  # noqa: E402
from amadeus.generate.sampling import SamplingRules  # noqa: E402
from amadeus.generate.search import initial_noise, sample_from_start  # noqa: E402
from amadeus.model.device import resolve_device  # noqa: E402
from amadeus.model.network import ModelConfig, PerformanceRNN  # noqa: E402
from amadeus.model.session import Session, build_model  # noqa: E402
from amadeus.model.stepper import make_stepper  # noqa: E402

BATCHES = (1, 8, 64)  # the two, and generate.py's default
CODEC, RULES = EventCodec("prnn"), SamplingRules(max_note_seconds=4.0)


def ours(stepper, init_dim: int, batch: int, steps: int) -> None:
    """generate.py's sampling loop with its default rules (valid events, a 4 s note limit)."""
    rng = np.random.default_rng(0)
    init = initial_noise(batch, init_dim, rng)
    sample_from_start(stepper, CODEC, RULES, init, steps, rng)


@torch.no_grad()
def original(model: PerformanceRNN, device: torch.device, batch: int, steps: int) -> None:
    """The original's generate(): one torch step per event, then softmax and Categorical."""
    hidden = model.init_to_hidden(torch.randn(batch, model.config.init_dim, device=device))
    event = torch.full((batch,), model.start_token, dtype=torch.long, device=device)
    for _ in range(steps):
        logits, hidden = model.step(event, hidden)
        greedy = np.random.random() < 0.0  # the original's per-step coin
        probs = torch.softmax(logits / 1.0, dim=-1)
        event = logits.argmax(-1) if greedy else torch.distributions.Categorical(probs).sample()
    if device.type == "cuda":
        torch.cuda.synchronize()


def events_per_second(loop, batch: int, steps: int, repeats: int) -> float:
    """loop(batch, steps) -> best events/s of `repeats` runs."""
    time.sleep(0.3)  # the other loop's BLAS and OpenMP threads stop spinning
    loop(batch, 10)  # warm-up: allocations, kernel selection
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        loop(batch, steps)
        best = min(best, time.perf_counter() - start)
    return batch * steps / best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("-s", "--session", type=Path, default=None)
    p.add_argument("--steps", type=cli.positive_int, default=500, help="events per row and run")
    p.add_argument("--repeats", type=cli.positive_int, default=3)
    cli.add_device(p, "cpu")
    args = p.parse_args()
    device = resolve_device(args.device)
    if args.session is None:
        torch.manual_seed(0)
        model = PerformanceRNN.from_config(ModelConfig())
        print("no session: a default-size model (3 x 512) with random weights, seed 0")
    else:
        model = build_model(Session.load(args.session))
        print(f"session {args.session}")
    model = model.eval().to(device)
    c = model.config
    print(
        f"model {c.gru_layers} x {c.hidden_dim}, {c.event_dim} events, fp32, {device}, "
        f"torch threads {torch.get_num_threads()}"
    )
    start = time.perf_counter()
    stepper = make_stepper(model, device)
    print(f"stepper {type(stepper).__name__}, built once in {time.perf_counter() - start:.2f} s")
    print(f"{'batch':>5}  {'ours ev/s':>10}  {'original ev/s':>13}  {'ratio':>6}")
    for batch in BATCHES:
        steps = args.steps if batch == 1 else max(args.steps // 5, 20)
        fast = events_per_second(partial(ours, stepper, c.init_dim), batch, steps, args.repeats)
        slow = events_per_second(partial(original, model, device), batch, steps, args.repeats)
        print(f"{batch:>5}  {fast:>10,.0f}  {slow:>13,.0f}  {fast / slow:>5.1f}x")


if __name__ == "__main__":
    cli.run(main)
