"""generate.py end to end on a tiny session: outputs, priming, controls and every bad input.

Real processes (about 2 s each, mostly importing torch) run the cases that prove the whole
contract; the others call the same `cli.run(main)` in process. One fixture runs them all.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import midi_factory as mf
import mido
import numpy as np
import pretty_midi
import pytest
import scripts
import symusic
import torch

from amadeus.data import controls as ctl
from amadeus.data import midi
from amadeus.data.codec import EventCodec
from amadeus.data.dataset import Piece, write_data
from amadeus.model.network import PerformanceRNN
from amadeus.model.session import Session

ROOT = Path(__file__).resolve().parents[1]
HELD = "1,0,0,0,1,0,0,1,0,0,0,0;4"
PRIMER = [(0, 480, 60, 80), (480, 960, 64, 90), (960, 1920, 67, 100)]  # ticks at 120 bpm


def files(tmp: Path) -> dict[str, Path]:
    """Every input the runs use, built once."""
    torch.manual_seed(0)
    model = PerformanceRNN(240, 24, 8, 16, 2)
    Session(model.config, model.state_dict()).save(tmp / "tiny.sess")
    (tmp / "corrupt.sess").write_bytes(b"PK\x03\x04 not really a zip")
    mf.write_midi(tmp / "phrase.mid", PRIMER)
    (tmp / "noise.mid").write_bytes(mf.random_bytes())
    (tmp / "silent.mid").write_bytes(mf.no_notes())
    codec = EventCodec("prnn")
    tokens = codec.encode(midi.read(tmp / "phrase.mid"))
    write_data(tmp / "c.data", Piece(tokens, ctl.compute(tokens, codec), "prnn"))
    (tmp / "a_file").write_text("not a folder")
    return {p.stem: p for p in tmp.iterdir()}


def good_runs(f: dict, out: Path) -> dict[str, list]:
    base = ["-s", f["tiny"], "-b", "2", "-l", "120"]
    return {
        "plain": [*base, "-o", out / "plain", "--seed", "3", "--png"],
        "again": [*base, "-o", out / "again", "--seed", "3"],
        "other seed": [*base, "-o", out / "other", "--seed", "4"],
        "primed": [*base, "-o", out / "primed", "-i", f["phrase"], "-z"],
        "with primer": [*base, "-o", out / "with", "-i", f["phrase"], "-z", "--with-primer"],
        "control file": ["-s", f["tiny"], "-b", "1", "-o", out / "ctl", "-c", f["c"], "-B", "3"],
        "held control": [*base, "-o", out / "held", "-c", HELD, "-S", "-B", "2"],
        "wav": [*base, "-o", out / "wav", "-b", "1", "--wav"],
    }


def bad_runs(f: dict, out: Path) -> dict[str, tuple[list, str]]:
    """name: (arguments, a fragment the error line must hold)."""
    base = ["-s", f["tiny"], "-o", out / "bad", "-l", "10"]
    runs = {
        "no session": (["-s", out / "missing.sess"], "missing.sess: no such file"),
        "corrupt session": (["-s", f["corrupt"]], "corrupt.sess: corrupt"),
        "control count": ([*base, "-c", "1,2,3;4"], "3 histogram values, not 12"),
        "control negative": ([*base, "-c", "1,1,1,1,1,1,1,1,1,1,1,-1;4"], "not negative"),
        "control density": ([*base, "-c", ";12"], "density 12 is outside 0-11"),
        "length zero": (["-s", f["tiny"], "-o", out / "bad", "-l", "0"], "-l 0"),
        "length over controls": ([*base, "-c", f["c"], "-l", "100000"], "control sequence has"),
        "primer unreadable": ([*base, "-i", f["noise"]], "noise.mid"),
        "primer missing": ([*base, "-i", out / "nowhere.mid"], "nowhere.mid: cannot read"),
        "primer without notes": ([*base, "-i", f["silent"]], "silent.mid: no notes"),
        "output not writable": (["-s", f["tiny"], "-o", f["a_file"] / "sub"], "cannot create"),
        "beam too wide": ([*base, "-B", "241"], "-B 241"),
        "codec mismatch": ([*base, "--codec", "magenta"], "trained with codec 'prnn'"),
    }
    runs["stats missing"] = ([*base, "-q", out / "nostats.yaml"], "nostats.yaml")
    return runs


# Real processes for the runs that prove the whole contract (exit status, bytes on disk across
# processes); the others call the same `cli.run(main)` in this process, about 100x cheaper.
SUBPROCESS = ("plain", "again", "corrupt session")


def start(args: list) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "generate.py"), "--device", "cpu", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, CI="true"),
    )


def in_process(args: list) -> tuple[int, str, str]:
    return scripts.in_process("generate.py", args)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("generate")
    f = files(tmp)
    out = tmp / "out"
    good, bad = good_runs(f, out), bad_runs(f, out)
    runs = good | {name: args for name, (args, _) in bad.items()}
    processes = {name: start(args) for name, args in runs.items() if name in SUBPROCESS}
    results = {name: in_process(args) for name, args in runs.items() if name not in SUBPROCESS}
    results |= {name: (p.wait(), *p.communicate()) for name, p in processes.items()}
    return {"files": f, "out": out, "results": results, "bad": bad}


def ok(world, name):
    code, stdout, stderr = world["results"][name]
    assert code == 0, stderr
    return stdout


def test_outputs_readable_by_three_libraries(world):
    stdout = ok(world, "plain")
    folder = world["out"] / "plain"
    assert sorted(p.name for p in folder.iterdir()) == [
        "tiny-000.mid",
        "tiny-000.png",
        "tiny-001.mid",
        "tiny-001.png",
    ]
    for path in sorted(folder.glob("*.mid")):
        line = next(line for line in stdout.splitlines() if line.startswith(f"{path}: "))
        count = int(line.split(": ")[1].split()[0])  # "<path>: N notes, S s"
        assert count > 0
        assert sum(len(t.notes) for t in symusic.Score(str(path)).tracks) == count
        pm = pretty_midi.PrettyMIDI(str(path))
        assert [i.program for i in pm.instruments] == [0]
        assert len(pm.instruments[0].notes) == count
        on = [m for t in mido.MidiFile(path).tracks for m in t if m.type == "note_on"]
        assert len([m for m in on if m.velocity > 0]) == count
        assert f"{pm.get_end_time():.1f} s" in line


def test_same_seed_same_music(world):
    ok(world, "again")
    ok(world, "other seed")
    out = world["out"]
    for name in ("tiny-000.mid", "tiny-001.mid"):
        assert (out / "plain" / name).read_bytes() == (out / "again" / name).read_bytes()
        assert (out / "plain" / name).read_bytes() != (out / "other" / name).read_bytes()


def test_primer_written_before_the_response_only_when_asked(world):
    ok(world, "primed")
    ok(world, "with primer")
    phrase = midi.read(world["files"]["phrase"])
    for i in range(2):
        response = midi.read(world["out"] / "primed" / f"tiny-00{i}.mid")
        both = midi.read(world["out"] / "with" / f"tiny-00{i}.mid")
        first = both.select(np.arange(len(both)) < 3)
        assert first.pitch.tolist() == [60, 64, 67]
        np.testing.assert_allclose(first.start, phrase.start, atol=0.01)
        # The response follows the phrase: the same notes, shifted by the phrase's length.
        later = both.select(both.start >= phrase.end.max() - 1e-6)
        assert later.pitch.tolist() == response.pitch.tolist()
    rows = [midi.read(world["out"] / "primed" / f"tiny-00{i}.mid") for i in range(2)]
    assert rows[0].pitch.tolist() != rows[1].pitch.tolist()  # each row its own continuation


def test_wav(world):
    code, _, stderr = world["results"]["wav"]
    if shutil.which("fluidsynth") is None:
        assert code == 2 and "apt-get install fluidsynth fluid-soundfont-gm" in stderr
    else:
        assert code == 0, stderr
        assert (world["out"] / "wav" / "tiny-000.wav").read_bytes()[:4] == b"RIFF"


def test_controls(world):
    assert "controls of" in ok(world, "control file")
    assert len(list((world["out"] / "ctl").glob("*.mid"))) == 1
    stdout = ok(world, "held control")
    assert "density 4, histogram [0.333, 0.0, 0.0, 0.0, 0.333" in stdout


@pytest.mark.parametrize(
    "name",
    [
        "no session",
        "corrupt session",
        "control count",
        "control negative",
        "control density",
        "length zero",
        "length over controls",
        "primer unreadable",
        "primer missing",
        "primer without notes",
        "output not writable",
        "beam too wide",
        "codec mismatch",
        "stats missing",
    ],
)
def test_bad_input(world, name):
    code, stdout, stderr = world["results"][name]
    scripts.assert_one_error(code, stderr, world["bad"][name][1])
    assert not (world["out"] / "bad").exists() or not list((world["out"] / "bad").iterdir())


def test_runs_number_on_and_never_overwrite(world, tmp_path):
    base = ["-s", world["files"]["tiny"], "-b", "2", "-l", "30", "-o", tmp_path]
    for seed in ("1", "2"):
        code, _, stderr = in_process([*base, "--seed", seed])
        assert code == 0, stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"tiny-{i:03d}.mid" for i in range(4)]
    first = (tmp_path / "tiny-000.mid").read_bytes()
    assert (tmp_path / "tiny-002.mid").read_bytes() != first  # the second run, another seed
    code, _, stderr = in_process([*base, "--seed", "2", "--overwrite"])
    assert code == 0, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == names
    assert (tmp_path / "tiny-000.mid").read_bytes() == (tmp_path / "tiny-002.mid").read_bytes()
