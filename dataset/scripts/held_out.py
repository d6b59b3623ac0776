#!/usr/bin/env python3
"""Prints the MIDI files a session was validated on, one per line, as paths under the MIDI folder
they came from (the `.data` header's `source`).

    python dataset/scripts/held_out.py save/NAME.sess      # the split the session records
    python dataset/scripts/held_out.py dataset/processed/NAME [--val-fraction 0.1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from amadeus import cli  # noqa: E402
from amadeus.data.dataset import DEFAULT_VAL_FRACTION, data_files, read_header, split_by_file  # noqa: E402
from amadeus.errors import UsageError  # noqa: E402
from amadeus.model.session import data_record, read_checkpoint  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a .sess / .int8.sess, or a dataset folder")
    parser.add_argument(
        "--val-fraction",
        type=cli.unit_float,
        default=None,
        help=f"for a dataset folder (default {DEFAULT_VAL_FRACTION})",
    )
    args = parser.parse_args()
    dataset, fraction = args.source, args.val_fraction
    if fraction is None:
        fraction = DEFAULT_VAL_FRACTION
    if args.source.is_file():
        record = data_record(read_checkpoint(args.source), args.source)
        if record is None:
            raise UsageError(
                f"{args.source}: the session does not record its data (an older session): "
                "give its dataset folder and --val-fraction instead"
            )
        if args.val_fraction is not None:
            raise UsageError("--val-fraction: a session records its own")
        dataset, fraction = record.folder(), record.val_fraction
    _, validation = split_by_file(data_files(dataset), fraction)
    for path in validation:
        print((read_header(path) or {}).get("source", path.name))


if __name__ == "__main__":
    cli.run(main)
