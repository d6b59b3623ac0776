#!/usr/bin/env python3
"""How faithfully the codec keeps a performance: note-level precision, recall and F1 of
decode(encode(notes)) against the notes read from each MIDI file under DIR, once on onsets
alone and once on onsets and velocities.

A decoded note matches a reference note when the pitch is equal and the onset is within half
the smallest time bin; with velocity, also when the velocity is within one bin. Notes the codec
drops by design (pitch out of range, zero length, a same-pitch twin) are counted separately,
not as misses, and so are notes whose velocity lies outside the layout's range (the `prnn`
layout spans 21..108, as the original's did, so louder and softer notes are clamped).

    python bench/codec_roundtrip.py DIR [--codec prnn|magenta] [--no-sustain]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amadeus.data.codec import PRESETS, EventCodec  # noqa: E402
from amadeus.data.midi import read  # noqa: E402
from amadeus.data.notes import Notes  # noqa: E402
from amadeus.data.preprocessing import find_midi_files  # noqa: E402
from amadeus.errors import AmadeusError  # noqa: E402


def matches(reference: Notes, decoded: Notes, codec: EventCodec) -> tuple[int, int]:
    """(onset matches, onset and velocity matches): greedy one-to-one per pitch, in onset order."""
    onset_tol = codec.shift_seconds[0] / 2 + 1e-9
    velocity_tol = np.diff(codec.velocity_values).max()
    onsets = both = 0
    for pitch in np.intersect1d(reference.pitch, decoded.pitch):
        ref = reference.select(reference.pitch == pitch)
        dec = decoded.select(decoded.pitch == pitch)
        i = j = 0
        while i < len(ref) and j < len(dec):
            if abs(ref.start[i] - dec.start[j]) <= onset_tol:
                onsets += 1
                both += abs(int(ref.velocity[i]) - int(dec.velocity[j])) <= velocity_tol
                i, j = i + 1, j + 1
            elif ref.start[i] < dec.start[j]:
                i += 1
            else:
                j += 1
    return onsets, both


def f1(matched: int, reference: int, decoded: int) -> tuple[float, float, float]:
    precision, recall = matched / max(decoded, 1), matched / max(reference, 1)
    return precision, recall, 2 * precision * recall / max(precision + recall, 1e-12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--codec", choices=sorted(PRESETS), default="prnn")
    parser.add_argument("--no-sustain", action="store_true")
    args = parser.parse_args()
    codec = EventCodec(args.codec)
    low, high = codec.preset.min_velocity, codec.preset.max_velocity
    reference_total = decoded_total = onsets = both = by_design = clamped = files = unreadable = 0
    for path in find_midi_files(args.dir):
        try:
            notes = read(path, sustain=not args.no_sustain)
        except AmadeusError:
            unreadable += 1
            continue
        kept, dropped = codec.in_range(notes)
        reference = kept.playable()
        by_design += dropped + len(kept) - len(reference)
        clamped += int(((reference.velocity < low) | (reference.velocity > high)).sum())
        decoded = codec.decode(codec.encode(reference))
        reference_total += len(reference)
        decoded_total += len(decoded)
        found = matches(reference, decoded, codec)
        onsets, both = onsets + found[0], both + found[1]
        files += 1
    flags = " --no-sustain" if args.no_sustain else ""
    print(f"command: python bench/codec_roundtrip.py {args.dir} --codec {args.codec}{flags}")
    print(f"unreadable files {unreadable}; notes dropped by design {by_design}")
    print(
        f"velocities outside {low}..{high}, clamped by the layout: {clamped} notes "
        f"({100 * clamped / max(reference_total, 1):.2f}%)"
    )
    for what, matched in (("onsets", onsets), ("onsets and velocities", both)):
        precision, recall, score = f1(matched, reference_total, decoded_total)
        print(
            f"{what}: note F1 {score:.4f} (precision {precision:.4f}, recall {recall:.4f}) "
            f"over {reference_total} notes in {files} files"
        )


if __name__ == "__main__":
    main()
