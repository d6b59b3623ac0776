#!/usr/bin/env python3
"""Makes the shipped model from a trained session: models/bach.sess (its weights, without the
optimizer's state), models/bach.yaml and models/bach.int8.sess (quantize.py's calibration and
int8 session), and models/bach.json, the validation likelihood a test checks on chorales it
exports afresh (tests/test_shipped_model.py).

    python models/ship.py save/ship/bach.best.sess

The likelihood: whole validation pieces, teacher-forced from zero init noise, unconditioned (as
generation runs), fp32 and int8; with the names of the validation files, so the test can export
just those.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amadeus import cli  # noqa: E402
from amadeus.atomic import write_bytes  # noqa: E402
from amadeus.data.codec import EventCodec  # noqa: E402
from amadeus.data.dataset import DataRecord, data_files, load_pieces, split_by_file  # noqa: E402
from amadeus.data.dynamics import recorded  # noqa: E402
from amadeus.evaluation.likelihood import piece_likelihood  # noqa: E402
from amadeus.generate.loaded import load  # noqa: E402
from amadeus.model.session import Session  # noqa: E402
from amadeus.quant.pipeline import QuantizeOptions  # noqa: E402
from amadeus.quant.pipeline import run as quantize  # noqa: E402

MODELS = Path(__file__).resolve().parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("session", type=Path, help="the trained session (its best weights)")
    p.add_argument("--dataset", type=Path, default=None, help="default: the one recorded")
    args = p.parse_args()
    trained = Session.load(args.session)
    trained.optimizer_state, trained.rng = None, None  # weights only: a quarter of the size
    trained.data = with_loudness(trained.data, args.dataset)
    trained.save(MODELS / "bach.sess")
    quantize(
        QuantizeOptions(
            MODELS / "bach.sess", MODELS / "bach.yaml", args.dataset, MODELS / "bach.int8.sess"
        )
    )
    fp32, int8 = load(MODELS / "bach.sess"), load(MODELS / "bach.int8.sess")
    record = fp32.data
    dataset = args.dataset or record.folder()
    _, names = split_by_file(data_files(dataset), record.val_fraction)
    validation = load_pieces(names, fp32.codec)
    codec = EventCodec(fp32.codec)
    first, second, agreement = piece_likelihood(fp32.model, validation, codec, False, int8.model)
    out = {
        "validation_files": [path.name for path in names],
        "events": first.events,
        "fp32": {"nats_per_event": first.per_event, "nats_per_second": first.per_second},
        "int8": {"nats_per_event": second.per_event, "nats_per_second": second.per_second},
        "int8_top1_agreement": agreement.top1,
    }
    write_bytes(MODELS / "bach.json", (json.dumps(out, indent=1) + "\n").encode())
    print(json.dumps({k: v for k, v in out.items() if k != "validation_files"}))


def with_loudness(record: DataRecord, dataset: Path | None) -> DataRecord:
    """The record with the training notes' range of velocities, for a session trained before
    sessions recorded it (the live engine maps a player's velocities into it)."""
    if record.velocities is not None:
        return record
    codec = record.settings.codec
    train, _ = split_by_file(data_files(dataset or record.folder()), record.val_fraction)
    return replace(record, velocities=recorded(load_pieces(train, codec), EventCodec(codec)))


if __name__ == "__main__":
    cli.run(main)
