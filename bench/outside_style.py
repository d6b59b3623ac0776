#!/usr/bin/env python3
"""The model on music it never saw: its likelihood (whole pieces, teacher-forced from zero init
noise, as evaluate.py measures the validation chorales) on a folder of other music, beside the
same figure on its own validation files, unconditioned and with the pieces' controls. No target:
it tells a musician what to expect when they play something that is not in the training data,
and it is the baseline for a model trained on wider repertoire.

The music21 corpus's pieces that are not Bach, exported as `make demo` exports the chorales:

    python dataset/scripts/export_music21.py dataset/midi/outside --collection mozart
    (likewise beethoven, haydn, chopin, joplin, schubert, handel, corelli, cpebach, weber, verdi,
    schoenberg, josquin, luca, ciconia; monteverdi and palestrina with --limit 20)
    python preprocess.py dataset/midi/outside dataset/processed/outside
    python bench/outside_style.py -s models/bach.sess -d dataset/processed/outside

Each piece is scored over its first --max-events events (whole pieces where shorter): a string
quartet's movement runs to tens of thousands of events, and a handful of them would otherwise
outweigh every other piece and take most of an hour.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amadeus import cli  # noqa: E402
from amadeus.data.dataset import Piece, data_files, load_pieces, split_by_file  # noqa: E402
from amadeus.evaluation.likelihood import piece_likelihood  # noqa: E402
from amadeus.generate.loaded import load  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-s", "--session", type=Path, required=True, help=".sess or .int8.sess")
    p.add_argument("-d", "--dataset", type=Path, required=True, help="the other music's .data")
    p.add_argument("--own", type=Path, default=None, help="its own data (default: recorded)")
    p.add_argument("--max-events", type=int, default=3000, help="per piece (default 3000)")
    args = p.parse_args()
    print("$ python " + shlex.join(sys.argv))
    loaded = load(args.session)
    record = loaded.data
    own = args.own or record.folder()
    _, validation = split_by_file(data_files(own), record.val_fraction)
    sets = {
        "its validation files": load_pieces(validation, loaded.codec),
        "outside its style": load_pieces(data_files(args.dataset), loaded.codec),
    }
    sets = {name: [opening(p, args.max_events) for p in pieces] for name, pieces in sets.items()}
    print(f"{'music':<22} {'files':>5} {'events':>8} {'nats/event':>10} {'nats/s':>7} "
          f"{'with controls: nats/event':>25} {'nats/s':>7}")  # fmt: skip
    for name, pieces in sets.items():
        plain, _, _ = piece_likelihood(loaded.model, pieces, loaded.events, False)
        steered, _, _ = piece_likelihood(loaded.model, pieces, loaded.events, True)
        print(
            f"{name:<22} {len(pieces):>5} {plain.events:>8} {plain.per_event:>10.4f} "
            f"{plain.per_second:>7.3f} {steered.per_event:>25.4f} {steered.per_second:>7.3f}"
        )


def opening(piece: Piece, events: int) -> Piece:
    """The piece's first `events` events."""
    return replace(piece, tokens=piece.tokens[:events], controls=piece.controls[:events])


if __name__ == "__main__":
    cli.run(main)
