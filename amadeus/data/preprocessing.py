"""MIDI folder -> `.data` folder: find files, convert each in a worker process, report.

The batch goes on past any bad file: each is skipped with a one-line reason, listed in
OUT_DIR/preprocess-report.txt, and counted in the summary. Memory does not grow with the number
of files: workers return only small counts.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from amadeus.atomic import writable_folder, write_bytes
from amadeus.data.codec import EventCodec
from amadeus.data.dataset import DEFAULT_MAX_SILENCE, SUFFIX, Settings, read_header, write_data
from amadeus.data.encoding import encode_file
from amadeus.errors import AmadeusError, UsageError
from amadeus.progress import progress

MIDI_SUFFIXES = (".mid", ".midi")
REPORT_NAME = "preprocess-report.txt"


@dataclass(frozen=True)
class PreprocessOptions:
    midi_dir: Path  # searched recursively for .mid/.midi
    out_dir: Path  # receives one .data per MIDI file
    jobs: int | None = None  # worker processes (None: all cores)
    codec: str = "prnn"
    sustain: bool = True
    max_silence: float = DEFAULT_MAX_SILENCE
    quiet: bool = False


@dataclass(frozen=True)
class Task:
    source: Path
    relative: str  # path under MIDI_DIR, names the output and the report lines
    output: Path
    sha1: str


@dataclass
class Summary:
    processed: int = 0
    up_to_date: int = 0
    duplicates: int = 0
    notes: int = 0
    events: int = 0
    dropped_notes: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> files
    report: list[str] = field(default_factory=list)  # "relative<TAB>reason" lines

    @property
    def exit_code(self) -> int:
        """0 when something was done or nothing new was needed, 1 when every file failed."""
        failed = sum(self.skipped.values())
        return 1 if failed and not self.processed and not self.up_to_date else 0

    def lines(self) -> list[str]:
        out = [
            f"processed {self.processed}, up to date {self.up_to_date}, "
            f"duplicates {self.duplicates}, skipped {sum(self.skipped.values())}",
            f"notes {self.notes}, events {self.events}, "
            f"notes out of pitch range {self.dropped_notes}",
        ]
        out += [f"  skipped {n}: {reason}" for reason, n in self.skipped.most_common()]
        return out


def find_midi_files(root: Path) -> list[Path]:
    """Every MIDI file under `root` (any case of .mid/.midi), each real file once.

    Symlinked folders are followed, but a folder already seen (a loop) is not entered again.
    """
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    found: list[Path] = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen_dirs:
            dirs[:] = []
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        dirs.sort()
        for name in sorted(files):
            path = Path(folder, name)
            if not name.lower().endswith(MIDI_SUFFIXES) or not path.is_file():
                continue
            st = path.stat()
            if (st.st_dev, st.st_ino) not in seen_files:
                seen_files.add((st.st_dev, st.st_ino))
                found.append(path)
    return found


def _work(job: tuple[Task, Settings]) -> tuple[Task, str | None, dict]:
    """Worker: converts and writes one file; returns (task, reason it failed or None, meta)."""
    task, settings = job
    try:
        piece = encode_file(task.source, EventCodec(settings.codec), settings, task.relative)
        piece.meta["sha1"] = task.sha1
        task.output.parent.mkdir(parents=True, exist_ok=True)
        write_data(task.output, piece)
        return task, None, dict(piece.meta, events=len(piece.tokens))
    except AmadeusError as e:
        return task, str(e).removeprefix(f"{task.source}: ").removeprefix(f"{task.relative}: "), {}
    except (OSError, ValueError, RuntimeError, MemoryError) as e:
        return task, f"{type(e).__name__}: {e}", {}


def _is_done(task: Task, settings: Settings) -> bool:
    header = read_header(task.output)
    return (
        header is not None
        and header.get("sha1") == task.sha1
        and all(header.get(k) == v for k, v in vars(settings).items() if k != "codec")
        and header.get("codec") == settings.codec
    )


def plan(midi_dir: Path, out_dir: Path, settings: Settings, summary: Summary) -> list[Task]:
    """Tasks for the files that need converting; duplicates by content are counted, once."""
    tasks, by_hash = [], {}
    for path in find_midi_files(midi_dir):
        try:
            sha1 = hashlib.sha1(path.read_bytes()).hexdigest()
        except OSError as e:
            summary.skipped["cannot read file"] += 1
            summary.report.append(f"{path}\tcannot read file ({e.strerror})")
            continue
        relative = (
            path.relative_to(midi_dir).as_posix() if path.is_relative_to(midi_dir) else path.name
        )
        if sha1 in by_hash:
            summary.duplicates += 1
            summary.report.append(f"{relative}\tduplicate of {by_hash[sha1]}")
            continue
        by_hash[sha1] = relative
        task = Task(path, relative, out_dir / (relative + SUFFIX), sha1)
        if _is_done(task, settings):
            summary.up_to_date += 1
        else:
            tasks.append(task)
    return tasks


def check_folders(midi_dir: Path, out_dir: Path) -> None:
    if not midi_dir.is_dir():
        raise UsageError(f"{midi_dir}: MIDI folder does not exist")
    writable_folder(out_dir)


def preprocess(
    midi_dir: Path, out_dir: Path, settings: Settings, jobs: int = 0, quiet: bool = False
) -> Summary:
    """Converts every MIDI file under `midi_dir` not yet done; writes the report; returns counts."""
    EventCodec(settings.codec)  # an unknown preset fails here, before any work
    check_folders(midi_dir, out_dir)
    summary = Summary()
    tasks = plan(midi_dir, out_dir, settings, summary)
    jobs = min(jobs or os.cpu_count() or 1, max(len(tasks), 1))
    work = [(t, settings) for t in tasks]
    if jobs > 1:
        with multiprocessing.Pool(jobs) as pool:
            _collect(pool.imap_unordered(_work, work), len(work), summary, quiet)
    else:
        _collect(map(_work, work), len(work), summary, quiet)
    _write_report(out_dir / REPORT_NAME, summary)
    return summary


def run(o: PreprocessOptions, log=print) -> int:
    """preprocess.py: converts, prints the summary; returns the exit status."""
    settings = Settings(o.codec, o.sustain, o.max_silence)
    summary = preprocess(o.midi_dir, o.out_dir, settings, o.jobs or 0, o.quiet)
    for line in summary.lines():
        log(line)
    if summary.report:
        log(f"details: {o.out_dir / REPORT_NAME}")
    return summary.exit_code


def _collect(results, total: int, summary: Summary, quiet: bool) -> None:
    for task, reason, meta in progress(results, total=total, desc="preprocess", quiet=quiet):
        if reason is None:
            summary.processed += 1
            summary.notes += meta["notes"]
            summary.events += meta["events"]
            summary.dropped_notes += meta["dropped_notes"]
        else:
            summary.skipped[reason.split(" (")[0]] += 1
            summary.report.append(f"{task.relative}\t{reason}")


def _write_report(path: Path, summary: Summary) -> None:
    lines = [f"# {line}" for line in summary.lines()] + sorted(summary.report)
    write_bytes(path, "".join(f"{line}\n" for line in lines).encode())
