#!/usr/bin/env python3
"""Preprocessing speed: files/s and events/s of Amadeus's preprocess, and in the same run the
same files processed the original project's way (pretty_midi parsing, one Python object per
note and per event), with the same number of worker processes.

    python bench/preprocess_speed.py DIR [-j N]
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pretty_midi

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amadeus.data.codec import EventCodec  # noqa: E402
from amadeus.data.controls import DENSITY_EDGES, WINDOW_SECONDS  # noqa: E402
from amadeus.data.preprocessing import Settings, find_midi_files, preprocess  # noqa: E402

CODEC = EventCodec("prnn")


class Event:
    """The original's one Python object per event."""

    def __init__(self, kind: str, time: float, value: int):
        self.kind, self.time, self.value = kind, time, value


def original_way(path: Path) -> int:
    """The original's pipeline, in its shape: PrettyMIDI, one object per note and per event
    (deep-copied by its sequence classes), a greedy time-shift loop, a sliding-window loop for
    the controls, and a pickled result. Returns the number of events (0 when refused)."""
    try:
        midi = pretty_midi.PrettyMIDI(str(path))
    except Exception:
        return 0
    notes = [n for inst in midi.instruments if not inst.is_drum for n in inst.notes]
    notes.sort(key=lambda n: n.start)
    lo, hi = CODEC.preset.min_pitch, CODEC.preset.max_pitch
    velocity_edges = np.arange(21, 109, 88 / 31)
    marks = []
    for n in notes:
        if lo <= n.pitch <= hi:
            marks.append(
                Event("velocity", n.start, int(np.searchsorted(velocity_edges, n.velocity)))
            )
            marks.append(Event("note_on", n.start, n.pitch - lo))
            marks.append(Event("note_off", n.end, n.pitch - lo))
    marks.sort(key=lambda m: m.time)
    events = []
    bins = CODEC.shift_seconds
    for i, mark in enumerate(marks):
        events.append(mark)
        if i + 1 == len(marks):
            break
        interval, shift = marks[i + 1].time - mark.time, 0.0
        while interval - shift >= bins[0]:
            k = int(np.searchsorted(bins, interval - shift, side="right")) - 1
            events.append(Event("time_shift", mark.time + shift, k))
            shift += bins[k]
    events = copy.deepcopy(events)  # the original's EventSeq copied its events
    tokens = np.array([CODEC.offset[e.kind] + e.value for e in events], dtype=np.uint8)
    # Controls: histogram and density of the note-ons in the next two seconds of each event.
    start = end = 0
    counts, total, rows = np.zeros(12), 0, []
    for i, event in enumerate(events):
        while start < i:
            if events[start].kind == "note_on":
                counts[(events[start].value + lo) % 12] -= 1
                total -= 1
            start += 1
        while end < len(events) and events[end].time - event.time <= WINDOW_SECONDS:
            if events[end].kind == "note_on":
                counts[(events[end].value + lo) % 12] += 1
                total += 1
            end += 1
        histogram = (counts / total if total else np.ones(12) / 12).tolist()
        density = max(int(np.searchsorted(DENSITY_EDGES, total, side="right")) - 1, 0)
        rows.append((histogram, density))
    rows = copy.deepcopy(rows)  # ... and its ControlSeq its controls
    compact = np.array([[d] + [round(h * 255) for h in hist] for hist, d in rows], np.uint8)
    pickle.dumps((tokens, compact))
    return len(events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count())
    args = parser.parse_args()
    files = find_midi_files(args.dir)

    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        summary = preprocess(args.dir, Path(out), Settings(), jobs=args.jobs, quiet=True)
        ours = time.perf_counter() - t0

    t0 = time.perf_counter()
    with multiprocessing.Pool(args.jobs) as pool:
        events = pool.map(original_way, files, chunksize=1)
    theirs = time.perf_counter() - t0

    print(f"command: python bench/preprocess_speed.py {args.dir} -j {args.jobs}")
    print(f"files {len(files)}, processes {args.jobs}")
    print(
        f"amadeus  {summary.processed / ours:8.1f} files/s {summary.events / ours:12,.0f} events/s"
        f"  ({summary.processed} files, {summary.events:,} events, {ours:.2f} s)"
    )
    done = sum(e > 0 for e in events)
    print(
        f"original {done / theirs:8.1f} files/s {sum(events) / theirs:12,.0f} events/s"
        f"  ({done} files, {sum(events):,} events, {theirs:.2f} s)"
    )
    print(f"speed-up {theirs / ours:.1f}x")


if __name__ == "__main__":
    main()
