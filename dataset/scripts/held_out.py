#!/usr/bin/env python3
"""Prints the MIDI files that train.py holds out for validation from a processed dataset, one
per line, as paths under the MIDI folder they came from (the `.data` header's `source`).

    python dataset/scripts/held_out.py dataset/processed/NAME [--val-fraction 0.1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from amadeus import cli  # noqa: E402
from amadeus.dataset import data_files, read_header, split_by_file  # noqa: E402
from amadeus.training import TrainOptions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--val-fraction", type=cli.unit_float, default=TrainOptions.val_fraction)
    args = parser.parse_args()
    _, validation = split_by_file(data_files(args.dataset), args.val_fraction)
    for path in validation:
        print((read_header(path) or {}).get("source", path.name))


if __name__ == "__main__":
    cli.run(main)
