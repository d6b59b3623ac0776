#!/usr/bin/env python3
"""Training recipes at an equal budget: each variant trains the default 3 x 512 model from the same
seed for the same number of steps on the same data, then its final weights are scored on the
validation files (evaluate.py's likelihood: whole pieces, per event and per second of music).

    python bench/recipe.py -d dataset/processed/bach --steps 125 [--variants a,b] [-o save/recipe]

The budget is in steps of batch 64 x window 200; a variant with other sizes takes as many steps
as hold the same number of events. An event costs about the same in every variant (augmentation
is done on the host in milliseconds; batch 64 x window 100 trains at the speed of 64 x 200, 32 x
200 a third slower, measured with bench/train_speed.py), so equal events are equal time; measure
steps per minute on an idle machine (train.py logs events/s) to turn minutes into steps. Each
variant is a whole recipe ("recipe" is train.py's defaults now); what a change bought is the
difference of two lines.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amadeus import cli  # noqa: E402
from amadeus.data.codec import EventCodec  # noqa: E402
from amadeus.data.dataset import load_split  # noqa: E402
from amadeus.evaluation.likelihood import piece_likelihood  # noqa: E402
from amadeus.model.session import Session, build_model  # noqa: E402
from amadeus.train.loop import TrainOptions, prepare, train  # noqa: E402

ORIGINAL = dict(  # train.py's recipe before: constant 1e-3, no augmentation, always controls
    learning_rate=1e-3,
    use_transposition=False,
    time_stretch=False,
    lr_schedule="constant",
    warmup_steps=50,
    window_size=200,
    control_ratio=1.0,
)
COSINE = dict(lr_schedule="cosine", learning_rate=3e-3)
AUGMENTED = dict(use_transposition=True, time_stretch=True, control_ratio=0.5)
NO_DROPOUT = dict(model_params=dict(gru_dropout=0.0))
FAST = dict(learning_rate=1e-2, warmup_steps=10)
VARIANTS = {  # name: the recipe, in full (TrainOptions fields); {} is train.py's defaults
    "original": ORIGINAL,
    "cosine": ORIGINAL | dict(lr_schedule="cosine"),  # warm-up and decay at the same peak
    "lr3e-3": ORIGINAL | COSINE,
    "transpose": ORIGINAL | COSINE | dict(use_transposition=True),
    "recipe3e-3": ORIGINAL | COSINE | AUGMENTED,  # train.py's defaults before this one
    "recipe3e-3-b32": ORIGINAL | COSINE | AUGMENTED | dict(batch_size=32),
    "warmup10": ORIGINAL | COSINE | dict(warmup_steps=10),
    "warmup10-nodrop": ORIGINAL | COSINE | dict(warmup_steps=10) | NO_DROPOUT,
    "lr1e-2-nodrop": ORIGINAL | COSINE | FAST | NO_DROPOUT,
    "lr2e-2-nodrop": ORIGINAL | COSINE | FAST | NO_DROPOUT | dict(learning_rate=2e-2),
    "lr1e-2-nodrop-w100": ORIGINAL | COSINE | FAST | NO_DROPOUT | dict(window_size=100),
    "recipe": {},  # train.py's defaults now: FAST, window 100, augmented, dropout 0.3
    "recipe-fp32": dict(precision="fp32"),  # the same, products in fp32 whatever the CPU
    "recipe-bf16": dict(precision="bf16"),  # the same, products in bf16 whatever the CPU
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-d", "--dataset", type=Path, required=True)
    p.add_argument(
        "--steps",
        type=cli.positive_int,
        required=True,
        help="the budget, in steps of batch 64 x window 200: a variant with other sizes takes "
        "as many steps as hold the same number of events",
    )
    p.add_argument("--variants", default=",".join(VARIANTS), help="names from the list, in order")
    p.add_argument("-o", "--output", type=Path, default=Path("save/recipe"))
    p.add_argument("--seed", type=cli.int_arg, default=0)
    args = p.parse_args()
    print("$ python " + shlex.join(sys.argv))
    for name in args.variants.split(","):
        recipe = VARIANTS[name]
        session = args.output / f"{name}-{args.steps}.sess"
        if not session.exists():
            events = args.steps * 64 * 200
            options = TrainOptions(session=session, dataset=args.dataset, seed=args.seed, **recipe)
            steps = events // (options.batch_size * options.window_size)
            options = replace(options, max_steps=steps, quiet=True, saving_interval=1e9)
            began = time.monotonic()
            train(prepare(options), log=lambda _: None)
            print(f"{name}: trained {steps} steps in {time.monotonic() - began:.0f} s")
        score(name, session)


def score(name: str, path: Path) -> None:
    session = Session.load(path)
    codec = EventCodec(session.codec)
    validation = load_split(session.data.folder(), session.data.val_fraction).validation
    model = build_model(session).eval()
    for conditioned in (False, True):
        nll, _, _ = piece_likelihood(model, validation, codec, conditioned)
        print(
            f"{name:<12} controls {'on ' if conditioned else 'off'}  {nll.per_event:.4f} "
            f"nats/event  {nll.per_second:.3f} nats/s"
        )


if __name__ == "__main__":
    cli.run(main)
