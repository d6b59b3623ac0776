#!/usr/bin/env python3
"""Training recipes at an equal budget: each variant trains the default 3 x 512 model from the same
seed for the same number of steps on the same data, then its final weights are scored on the
validation files (evaluate.py's likelihood: whole pieces, per event and per second of music).

    python bench/recipe.py -d dataset/processed/bach --steps 125 [--variants a,b] [-o save/recipe]

A step of batch 64 x window 200 costs the same in every variant (augmentation is done on the host
in milliseconds), so equal steps are equal time; measure steps per minute on an idle machine
(train.py logs events/s) to turn minutes into steps. Variants add up: each is the one before it
plus one change, so each line shows what that change bought.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amadeus import cli  # noqa: E402
from amadeus.codec import EventCodec  # noqa: E402
from amadeus.dataset import load_split  # noqa: E402
from amadeus.evaluation.likelihood import piece_likelihood  # noqa: E402
from amadeus.session import Session, build_model  # noqa: E402
from amadeus.training import TrainOptions, prepare, train  # noqa: E402

ORIGINAL = dict(
    use_transposition=False, time_stretch=False, lr_schedule="constant", control_ratio=1.0
)
VARIANTS = {  # name: changes over the previous variant
    "original": ORIGINAL,
    "cosine": dict(lr_schedule="cosine"),
    "lr3e-3": dict(learning_rate=3e-3),
    "transpose": dict(use_transposition=True),
    "stretch": dict(time_stretch=True),
    "controls0.5": dict(control_ratio=0.5),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-d", "--dataset", type=Path, required=True)
    p.add_argument("--steps", type=cli.positive_int, required=True)
    p.add_argument("--variants", default=",".join(VARIANTS), help="a prefix of the list, in order")
    p.add_argument("-o", "--output", type=Path, default=Path("save/recipe"))
    p.add_argument("--seed", type=cli.int_arg, default=0)
    args = p.parse_args()
    print("$ python " + shlex.join(sys.argv))
    settings: dict = {}
    for name in args.variants.split(","):
        settings |= VARIANTS[name]
        session = args.output / f"{name}-{args.steps}.sess"
        if not session.exists():
            options = TrainOptions(
                session=session,
                dataset=args.dataset,
                max_steps=args.steps,
                seed=args.seed,
                quiet=True,
                saving_interval=1e9,
                **settings,
            )
            began = time.monotonic()
            train(prepare(options), log=lambda _: None)
            print(f"{name}: trained {args.steps} steps in {time.monotonic() - began:.0f} s")
        score(name, session)


def score(name: str, path: Path) -> None:
    session = Session.load(path)
    codec = EventCodec(session.codec)
    validation = load_split(session.data.dataset, session.data.val_fraction).validation
    model = build_model(session).eval()
    for conditioned in (False, True):
        nll, _, _ = piece_likelihood(model, validation, codec, conditioned)
        print(
            f"{name:<12} controls {'on ' if conditioned else 'off'}  {nll.per_event:.4f} "
            f"nats/event  {nll.per_second:.3f} nats/s"
        )


if __name__ == "__main__":
    cli.run(main)
