#!/usr/bin/env python3
"""Why notes hang, measured: the same model sampled under each set of rules, from the same seed,
against its validation pieces. Each line adds one rule to the line before it, so it shows what
that rule changes: the share of notes longer than the training data's longest note, the longest
note, mean polyphony, and the overlap of the duration and polyphony distributions with the real
ones (1 = indistinguishable).

    python bench/sampling_rules.py -s SESSION [--samples 32] [-l 1000] [--seed 0] [--grid]

--grid: instead, every rule on and a grid of temperatures and nuclei around the defaults, each
with the mean overlap over all of evaluate.py's features and the lowest one (how the defaults
were checked against a new model; run it with two seeds: 32 pieces' overlaps move by a few
hundredths between seeds).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amadeus import cli  # noqa: E402
from amadeus.data.codec import EventCodec  # noqa: E402
from amadeus.data.dataset import load_split  # noqa: E402
from amadeus.evaluation import features as ft  # noqa: E402
from amadeus.generate.loaded import load  # noqa: E402
from amadeus.generate.sampling import DEFAULT_TEMPERATURE as T  # noqa: E402
from amadeus.generate.sampling import DEFAULT_TOP_P as P  # noqa: E402
from amadeus.generate.sampling import SamplingRules  # noqa: E402
from amadeus.generate.search import initial_noise, sample_from_start  # noqa: E402
from amadeus.model.stepper import make_stepper  # noqa: E402

GRID = [(t, p) for t in (0.8, 0.85, 0.9, 1.0) for p in (0.9, 0.95)]


def rules(longest: float) -> dict[str, SamplingRules]:
    """Each adds one rule to the one before."""
    return {
        "any token (the original)": SamplingRules(valid_only=False),
        "+ valid events only": SamplingRules(),
        f"+ notes end by {longest:.2f} s": SamplingRules(max_note_seconds=longest),
        "+ top-p 0.98": SamplingRules(top_p=0.98, max_note_seconds=longest),
        "+ top-p 0.95": SamplingRules(top_p=0.95, max_note_seconds=longest),
        "+ top-p 0.90": SamplingRules(top_p=0.90, max_note_seconds=longest),
        f"temperature {T:g}, top-p {P:g} (the defaults)": SamplingRules(
            T, P, max_note_seconds=longest
        ),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-s", "--session", type=Path, required=True)
    p.add_argument("--samples", type=cli.positive_int, default=32)
    p.add_argument("-l", "--length", type=cli.positive_int, default=1000)
    p.add_argument("--seed", type=cli.int_arg, default=0)
    p.add_argument("--grid", action="store_true", help="temperatures x nuclei, every rule on")
    args = p.parse_args()
    print("$ python " + shlex.join(sys.argv))
    loaded = load(args.session)
    codec, record = EventCodec(loaded.codec), loaded.data
    validation = load_split(record.folder(), record.val_fraction).validation
    real_pieces = [codec.decode(piece.tokens) for piece in validation]
    longest = record.longest_note
    stepper = make_stepper(loaded.model)
    print(f"{args.samples} pieces of {args.length} events against {len(validation)} validation")

    def measured(rule: SamplingRules) -> tuple[dict, dict]:
        rng = np.random.default_rng(args.seed)
        init = initial_noise(args.samples, loaded.model.config.init_dim, rng)
        rows = sample_from_start(stepper, codec, rule, init, args.length, rng)
        pieces = [codec.decode(row, rule.max_note_seconds) for row in rows]
        _, generated, overlaps = ft.compare(real_pieces, pieces)
        return generated, overlaps

    if args.grid:
        print(f"{'temperature':>11} {'top-p':>5} {'mean OA':>7}  lowest OA")
        for temperature, top_p in GRID:
            _, overlaps = measured(SamplingRules(temperature, top_p, max_note_seconds=longest))
            low = min(overlaps, key=overlaps.get)
            mean = np.mean(list(overlaps.values()))
            print(f"{temperature:>11g} {top_p:>5g} {mean:>7.3f}  {overlaps[low]:.3f} ({low})")
        return
    print(
        f"{'rules':<30} {'> longest':>9} {'longest s':>9} {'polyphony':>9} "
        f"{'duration OA':>11} {'polyphony OA':>12} {'mean OA':>7}"
    )
    real_poly = ft.pooled(real_pieces)["polyphony"].mean()
    print(f"{'real (validation)':<30} {'':>9} {'':>9} {real_poly:>9.2f}")
    for name, rule in rules(longest).items():
        generated, overlaps = measured(rule)
        durations = generated["note duration"]
        print(
            f"{name:<30} {100 * (durations > longest + 1e-6).mean():>8.2f}% "
            f"{durations.max():>9.2f} {generated['polyphony'].mean():>9.2f} "
            f"{overlaps['note duration']:>11.3f} {overlaps['polyphony']:>12.3f} "
            f"{np.mean(list(overlaps.values())):>7.3f}"
        )


if __name__ == "__main__":
    cli.run(main)
