#!/usr/bin/env python3
"""Training speed of the default model (batch 64, window 200, Adam, gradient clip 1.0): events/s
of Amadeus's whole-window teacher-forced step with its products in fp32 and in bf16, and, in the
same run, of a step-by-step loop written like the original's (fp32, one GRU step per call, argmax
sampled at every step). It says which of the two train.py's `--precision auto` takes here.

    python bench/train_speed.py [--steps 5] [--batch-size 64] [--window-size 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amadeus.model.device import autocast_dtype, keep_freed_memory  # noqa: E402
from amadeus.model.network import ModelConfig, PerformanceRNN  # noqa: E402

# Steps left out of every figure: a run's first steps map the memory that later steps reuse
# (about 1.5x a steady step's time), a cost paid once in a run of thousands of steps.
WARM_UP = 2


def original_logits(model: PerformanceRNN, init, events, controls) -> torch.Tensor:
    """The original's `generate(..., output_type='logit')` under full teacher forcing."""
    hidden = model.init_to_hidden(init)
    event = events.new_full(events.shape[1:], model.start_token)
    outputs = []
    for t in range(events.shape[0]):
        logits, hidden = model.step(event, hidden, controls[t])
        outputs.append(logits)
        _ = logits.argmax(-1)  # the original sampled (greedily) at every step, then forced
        event = events[t]
    return torch.stack(outputs)


def events_per_second(
    model, forward, steps: int, batch: int, window: int, dtype: torch.dtype | None = None
) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    events = torch.randint(0, model.config.event_dim, (window, batch))
    controls = torch.rand(window, batch, model.config.control_dim)
    timings = []
    for _ in range(WARM_UP + steps):
        start = time.perf_counter()
        init = torch.randn(batch, model.config.init_dim)
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            logits = forward(model, init, events, controls)
        loss = F.cross_entropy(logits.float().flatten(0, 1), events.flatten())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        timings.append(time.perf_counter() - start)
    return batch * window / (sum(timings[WARM_UP:]) / steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--window-size", type=int, default=200)
    args = parser.parse_args()
    keep_freed_memory()  # as train.py does
    torch.manual_seed(0)
    model = PerformanceRNN.from_config(ModelConfig()).train()
    shape = (args.steps, args.batch_size, args.window_size)
    ours_fp32 = events_per_second(model, lambda m, *a: m(*a), *shape)
    ours_bf16 = events_per_second(model, lambda m, *a: m(*a), *shape, torch.bfloat16)
    theirs = events_per_second(model, original_logits, *shape)
    print(
        f"command: python bench/train_speed.py --steps {args.steps} "
        f"--batch-size {args.batch_size} --window-size {args.window_size}"
    )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, default model 3x512")
    print(f"CPU {cpu_bf16_features()}; --precision auto takes {auto_precision()} here")
    print(f"amadeus, fp32        {ours_fp32:10,.0f} events/s")
    print(f"amadeus, bf16        {ours_bf16:10,.0f} events/s  {ours_bf16 / ours_fp32:.2f}x fp32")
    print(f"original step loop   {theirs:10,.0f} events/s  fp32")
    print(f"speed-up {ours_fp32 / theirs:.2f}x in fp32, {ours_bf16 / theirs:.2f}x in bf16")


def cpu_bf16_features() -> str:
    """The CPU features that decide bf16's speed, as torch sees them."""
    found = torch.cpu.get_capabilities()
    names = ("avx512_f", "avx512_bf16", "avx512_vnni", "amx_bf16")
    return ", ".join(f"{name} {'yes' if found.get(name) else 'no'}" for name in names)


def auto_precision() -> str:
    return "bf16" if autocast_dtype(torch.device("cpu")) else "fp32"


if __name__ == "__main__":
    main()
