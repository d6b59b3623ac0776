"""preprocess.py end to end in a temporary folder: outputs, report, exit codes and re-runs."""

import os
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest

from amadeus.data.codec import EventCodec
from amadeus.data.dataset import read_data
from amadeus.data.preprocessing import REPORT_NAME, find_midi_files

ROOT = Path(__file__).resolve().parents[1]


def write_song(path: Path, pitches=(60, 64, 67), tpq=480) -> None:
    """A small format-1 file: one quarter note per pitch at 120 bpm."""
    mid = mido.MidiFile(type=1, ticks_per_beat=tpq)
    track = mido.MidiTrack()
    for p in pitches:
        track.append(mido.Message("note_on", note=p, velocity=80, time=0))
        track.append(mido.Message("note_off", note=p, velocity=0, time=tpq))
    mid.tracks.append(track)
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(path)


def run(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, str(ROOT / "preprocess.py"), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=dict(os.environ, CI="true"),
    )


@pytest.fixture
def midi_dir(tmp_path):
    root = tmp_path / "midi"
    write_song(root / "a.mid")
    write_song(root / "sub" / "B.MIDI", pitches=(50, 52))
    write_song(root / "sub" / "copy_of_a.mid")  # same bytes as a.mid under another name
    (root / "empty.mid").write_bytes(b"")
    (root / "noise.mid").write_bytes(np.random.default_rng(0).bytes(300))
    (root / "readme.txt").write_text("not MIDI")
    (root / "folder.mid").mkdir()  # a directory named like a MIDI file
    os.symlink(root, root / "sub" / "loop")  # a symlink loop back to the top
    return root


def test_find_each_real_file_once(midi_dir):
    names = sorted(p.name for p in find_midi_files(midi_dir))
    assert names == ["B.MIDI", "a.mid", "copy_of_a.mid", "empty.mid", "noise.mid"]


def test_end_to_end(midi_dir, tmp_path):
    out = tmp_path / "processed"
    result = run(midi_dir, out, "-j", "2")
    assert result.returncode == 0, result.stderr
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.data"))
    assert written == ["a.mid.data", "sub/B.MIDI.data"]  # the copy is processed once
    piece = read_data(out / "a.mid.data")
    assert piece.codec == "prnn" and piece.meta["notes"] == 3
    decoded = EventCodec("prnn").decode(piece.tokens)
    assert decoded.pitch.tolist() == [60, 64, 67]
    assert decoded.start == pytest.approx([0, 0.5, 1.0], abs=0.008)
    assert "processed 2, up to date 0, duplicates 1, skipped 2" in result.stdout
    report = (out / REPORT_NAME).read_text()
    assert "empty.mid\t" in report and "noise.mid\t" in report
    assert "sub/copy_of_a.mid\tduplicate of a.mid" in report
    assert not [p for p in out.rglob(".*") if p.name != REPORT_NAME]  # no temporary files

    again = run(midi_dir, out)
    assert again.returncode == 0
    assert "processed 0, up to date 2" in again.stdout

    magenta = run(midi_dir, out, "--codec", "magenta")  # new settings: done again
    assert "processed 2, up to date 0" in magenta.stdout
    assert read_data(out / "a.mid.data").codec == "magenta"


def test_exit_codes(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.mid").write_bytes(b"MThd")
    result = run(bad, tmp_path / "out")
    assert result.returncode == 1
    assert "skipped 1" in result.stdout

    (tmp_path / "nothing").mkdir()
    assert run(tmp_path / "nothing", tmp_path / "out2").returncode == 0

    missing = run(tmp_path / "missing", tmp_path / "out3")
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("error:") and "missing" in missing.stderr
    assert "Traceback" not in missing.stderr

    (tmp_path / "file").write_text("")
    unwritable = run(tmp_path / "nothing", tmp_path / "file" / "out")
    assert unwritable.returncode == 2 and "cannot create output folder" in unwritable.stderr

    flag = run(tmp_path / "nothing", tmp_path / "out4", "--max-silence", "-1")
    assert flag.returncode == 2 and "Traceback" not in flag.stderr
