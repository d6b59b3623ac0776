#!/usr/bin/env python3
"""Exports a music21 corpus collection (default: the Bach chorales) to OUT_DIR/*.mid.

The corpus ships inside the music21 pip package, so this works offline. One file per score,
named after its corpus path (bach/bwv269.mxl -> bwv269.mid); a score already exported is not
converted again; a score music21 cannot convert is skipped with a one-line reason.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as `python dataset/scripts/export_music21.py`: find `amadeus`

from amadeus import cli  # noqa: E402
from amadeus.errors import UsageError  # noqa: E402
from amadeus.progress import progress  # noqa: E402

# Roman-numeral analyses sit beside the chorales in the corpus: harmony labels, not music to play.
ANALYSIS_SUFFIXES = (".rntxt",)
# When one score exists in several formats (bwv277.mxl and bwv277.krn), the first one listed wins.
PREFERRED_SUFFIXES = (".mxl", ".musicxml", ".xml", ".krn", ".abc")
PIANO = 0  # General MIDI program: every part is written for piano, the instrument we model


@dataclass
class Summary:
    exported: int = 0
    present: int = 0
    skipped: list[str] = field(default_factory=list)  # "name: reason"

    def lines(self, out_dir: Path) -> list[str]:
        return [
            *(f"skipped {line}" for line in self.skipped),
            f"exported {self.exported} scores to {out_dir} ({self.present} already there, "
            f"{len(self.skipped)} skipped)",
        ]

    @property
    def exit_code(self) -> int:
        """1 when every score failed, else 0."""
        return 1 if self.skipped and not self.exported and not self.present else 0


def corpus_scores(collection: str) -> dict[str, Path]:
    """Output name -> corpus file for every score of `collection`, sorted by name."""
    corpus = _music21().corpus
    base = Path(corpus.__file__).parent / collection
    found: dict[str, Path] = {}
    for path in sorted(corpus.getComposer(collection), key=_preference):
        if path.suffix.lower() in ANALYSIS_SUFFIXES:
            continue
        found.setdefault(_name(path, base), path)
    if not found:
        raise UsageError(f"--collection {collection}: no scores in the music21 corpus")
    return dict(sorted(found.items()))


def _preference(path: Path) -> int:
    suffix = path.suffix.lower()
    return (
        PREFERRED_SUFFIXES.index(suffix)
        if suffix in PREFERRED_SUFFIXES
        else len(PREFERRED_SUFFIXES)
    )


def _name(path: Path, base: Path) -> str:
    """bach/bwv269.mxl -> bwv269; beethoven/opus18no1/movement1.krn -> opus18no1_movement1."""
    try:
        relative = path.relative_to(base)
    except ValueError:  # a score from a user's local corpus, outside the package
        return path.stem
    return "_".join(relative.with_suffix("").parts)


def export_one(source: Path, target: Path) -> str | None:
    """Converts one score (in a worker process); returns why it failed, or None."""
    music21 = _music21()
    try:
        score = music21.converter.parse(source, forceSource=True)  # forceSource: no pickle cache
        if isinstance(score, music21.stream.Opus):
            return f"holds {len(score.scores)} pieces (an opus); not supported"
        for instrument in score.recurse().getElementsByClass(music21.instrument.Instrument):
            instrument.midiProgram = PIANO
        data = music21.midi.translate.streamToMidiFile(score).writestr()
    except Exception as e:  # music21 raises many types; one bad score must not stop the batch
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no message'}"
    _write_atomic(target, data)
    return None


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # one writer per file and process
    tmp.write_bytes(data)
    os.replace(tmp, path)


def export(
    collection: str, out_dir: Path, jobs: int = 0, limit: int | None = None, quiet: bool = False
) -> Summary:
    """Exports the first `limit` scores (by name) of `collection` with `jobs` processes (0: all)."""
    scores = list(corpus_scores(collection).items())[:limit]
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [(name, source, out_dir / f"{name}.mid") for name, source in scores]
    todo = [task for task in todo if not task[2].exists()]
    summary = Summary(present=len(scores) - len(todo))
    if not todo:
        return summary
    processes = min(jobs or os.cpu_count() or 1, len(todo))
    with multiprocessing.Pool(processes) as pool:
        results = pool.imap_unordered(_run, todo)
        for name, reason in progress(results, total=len(todo), desc="export", quiet=quiet):
            if reason:
                summary.skipped.append(f"{name}: {reason}")
            else:
                summary.exported += 1
    summary.skipped.sort()
    return summary


def _run(task: tuple[str, Path, Path]) -> tuple[str, str | None]:
    name, source, target = task
    return name, export_one(source, target)


def _music21():
    """music21 is a data-preparation extra, imported only here: the core never needs it."""
    try:
        import music21
    except ModuleNotFoundError:
        raise UsageError(
            "music21 is not installed: run `pip install -r requirements-data.txt`"
        ) from None
    return music21


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "out_dir",
        type=Path,
        nargs="?",
        default=ROOT / "dataset" / "midi" / "bach",
        help="folder that receives the .mid files (default dataset/midi/bach)",
    )
    parser.add_argument(
        "--collection",
        default="bach",
        help="music21 corpus composer or collection (default bach: 410 scores, chorales mostly)",
    )
    parser.add_argument(
        "-j", "--jobs", type=cli.positive_int, default=0, help="processes (default: all cores)"
    )
    parser.add_argument(
        "--limit", type=cli.positive_int, default=None, help="only the first N scores by name"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    summary = export(args.collection, args.out_dir, args.jobs, args.limit, args.quiet)
    for line in summary.lines(args.out_dir):
        print(line)
    return summary.exit_code


if __name__ == "__main__":
    cli.run(main)
