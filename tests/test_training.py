"""train.py and amadeus.train.loop: loss goes down, resume is exact, DDP stays in sync, and every
bad input is one clear line with nothing overwritten."""

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from amadeus.data import controls
from amadeus.data.codec import EventCodec
from amadeus.data.dataset import DataRecord, Piece, Settings, write_data
from amadeus.data.notes import Notes
from amadeus.errors import DatasetError, UsageError
from amadeus.model.session import Session
from amadeus.train.loop import (
    Run,
    TrainOptions,
    parse_model_params,
    prepare,
    save,
    train,
    train_step,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = {"hidden_dim": 24, "gru_layers": 2}


def make_dataset(folder: Path, files: int = 6, notes: int = 150, codec: str = "prnn") -> Path:
    """Scales of quarter notes: easy to learn, so the loss must fall."""
    c = EventCodec(codec)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        start = np.arange(notes) * 0.25
        pitch = 60 + (np.arange(notes) + i) % 12
        tokens = c.encode(Notes.build(start, start + 0.2, pitch, np.full(notes, 80)))
        write_data(folder / f"scale{i}.data", Piece(tokens, controls.compute(tokens, c), codec))
    return folder


def options(tmp_path, **kw) -> TrainOptions:
    base = dict(
        session=tmp_path / "m.sess",
        dataset=tmp_path / "data",
        batch_size=4,
        window_size=32,
        stride_size=8,
        model_params=TINY,
        quiet=True,
        val_interval=1000,
        saving_interval=1e9,
        device="cpu",
    )
    return TrainOptions(**{**base, **kw})


def run_cli(*args, **popen):
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *map(str, args)],
        capture_output=True,
        text=True,
        env=dict(os.environ, CI="true"),
        **popen,
    )


def test_parse_model_params():
    assert parse_model_params("hidden_dim=1024, gru_layers=2") == {
        "hidden_dim": 1024,
        "gru_layers": 2,
    }
    assert parse_model_params("gru_dropout=0.1") == {"gru_dropout": 0.1}
    assert parse_model_params("") == {}
    for bad in ("hidden=3", "hidden_dim=__import__('os')", "hidden_dim", "gru_layers=2.5"):
        with pytest.raises(UsageError, match="-p"):
            parse_model_params(bad)


def test_training_lowers_the_loss(tmp_path):
    make_dataset(tmp_path / "data")
    run = prepare(options(tmp_path, max_steps=60, learning_rate=1e-2))
    logs = []
    train(run, log=logs.append)
    losses = [float(line.split()[3]) for line in logs if " loss " in line and "valid" not in line]
    assert losses[-1] < losses[0] - 1.0
    saved = Session.load(tmp_path / "m.sess")
    assert saved.step == 60 and saved.codec == "prnn" and saved.best_val_loss is not None
    assert (tmp_path / "m.best.sess").exists()


@pytest.mark.parametrize("extra", [{}, {"teacher_forcing_ratio": 0.5, "use_transposition": True,
                                        "control_ratio": 0.5}])  # fmt: skip
def test_resume_equals_uninterrupted(tmp_path, extra):
    make_dataset(tmp_path / "data")
    straight = train(prepare(options(tmp_path, max_steps=12, **extra)), log=lambda _: None)
    expected = {k: v.clone() for k, v in straight.model.state_dict().items()}

    (tmp_path / "m.sess").unlink()
    (tmp_path / "m.best.sess").unlink()
    stopped = prepare(options(tmp_path, max_steps=12, **extra))  # as if Ctrl-C came at step 5
    for _ in range(5):
        train_step(stopped)
    save(stopped)
    resumed = train(prepare(options(tmp_path, max_steps=12, **extra)), log=lambda _: None)
    assert resumed.step == 12
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, expected[name]), name


def test_a_resumed_run_changes_its_dropout_and_records_it(tmp_path):
    make_dataset(tmp_path / "data")
    train(prepare(options(tmp_path, max_steps=2, output_dropout=0.25)), log=lambda _: None)
    saved = Session.load(tmp_path / "m.sess")
    assert saved.extra["output_dropout"] == 0.25 and saved.config.gru_dropout == 0.3
    kept = prepare(options(tmp_path, max_steps=4, model_params={}))
    assert kept.model.output_dropout == 0.25  # the session's, when not asked for another
    changed = prepare(
        options(tmp_path, max_steps=4, model_params={"gru_dropout": 0.5}, output_dropout=0.0)
    )
    assert changed.model.config.gru_dropout == 0.5 and changed.model.output_dropout == 0.0
    train(changed, log=lambda _: None)
    resumed = Session.load(tmp_path / "m.sess")
    assert resumed.config.gru_dropout == 0.5 and resumed.extra["output_dropout"] == 0.0
    assert resumed.config.hidden_dim == TINY["hidden_dim"] and resumed.step == 4


def test_a_run_is_built_from_keywords_only():
    """Run has many fields of like types: a positional call could swap two silently."""
    assert all(f.kw_only for f in dataclasses.fields(Run))


def test_bad_inputs_exit_2_and_overwrite_nothing(tmp_path):
    data = make_dataset(tmp_path / "data")
    magenta = make_dataset(tmp_path / "magenta", codec="magenta")
    (tmp_path / "empty").mkdir()
    common = ["-b", "4", "-w", "32", "--max-steps", "1", "--device", "cpu", "--quiet"]
    sess = tmp_path / "save" / "m.sess"  # a missing folder is made
    tiny = ["-p", "hidden_dim=24,gru_layers=1"]
    assert run_cli("-s", sess, "-d", data, *tiny, *common).returncode == 0
    forced = run_cli("-s", tmp_path / "f.sess", "-d", data, *tiny, "--precision", "bf16", *common)
    assert "device cpu, products in bf16, 1 process(es)" in forced.stdout.splitlines()[0]
    before = sess.read_bytes()
    corrupt = tmp_path / "corrupt.sess"
    corrupt.write_bytes(b"\x80\x02garbage")
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")

    cases = [
        (["-s", sess, "-d", tmp_path / "missing"], "does not exist"),
        (["-s", sess, "-d", tmp_path / "empty"], "no .data files"),
        (["-s", sess, "-d", magenta], "made with codec 'magenta', expected 'prnn'"),
        (["-s", sess, "-d", data, "-b", "100000"], "fewer than the batch size"),
        (["-s", tmp_path / "new.sess", "-d", data, "-p", "hidden=3"], "-p 'hidden=3'"),
        (["-s", tmp_path / "new.sess", "-d", data, "-p", "hidden_dim=big"], "not a int"),
        (["-s", tmp_path / "new.sess", "-d", data, "-p", "gru_dropout=1.5"], "gru_dropout must"),
        (["-s", tmp_path / "new.sess", "-d", data, "--output-dropout", "1"], "below 1"),
        (["-s", sess, "-d", data, "-p", "hidden_dim=32"], "has its shape already"),
        (["-s", corrupt, "-d", data], "corrupt.sess"),
        (["-s", not_a_folder / "m.sess", "-d", data], "file: cannot create output folder"),
    ]
    for args, message in cases:
        result = run_cli(*common, *args)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines
    assert sess.read_bytes() == before
    assert corrupt.read_bytes() == b"\x80\x02garbage"
    assert not (tmp_path / "new.sess").exists()


def test_sigint_saves_and_exits_cleanly(tmp_path):
    data = make_dataset(tmp_path / "data")
    sess = tmp_path / "m.sess"
    args = ["-s", sess, "-d", data, "-b", "4", "-w", "32", "-p", "hidden_dim=24,gru_layers=1"]
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *map(str, args), "--device", "cpu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, CI="true"),
    )
    for line in proc.stdout:
        if line.startswith("step 1 "):
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "saved" in out
    assert Session.load(sess).step >= 1


DDP_SCRIPT = """
import sys, torch
from pathlib import Path
from amadeus.train.loop import TrainOptions, distributed_context, prepare, train
from amadeus.data.dataset import Windows

seen = []
original = Windows.gather
def recording(self, starts):
    seen.append((self, starts.tolist()))
    return original(self, starts)
Windows.gather = recording

out = Path(sys.argv[1])
rank, world = distributed_context()
run = prepare(TrainOptions(session=out / "m.sess", dataset=out / "data", batch_size=4,
    window_size=32, stride_size=8, model_params={"hidden_dim": 24, "gru_layers": 2},
    quiet=True, max_steps=6, device="cpu", saving_interval=1e9, val_interval=1000), rank, world)
train(run, log=lambda _: None)
batches = [starts for windows, starts in seen if windows is run.train]
torch.save({"seen": batches, "state": run.model.state_dict()}, out / f"rank{rank}.pt")
"""


def test_ddp_two_cpu_processes(tmp_path):
    make_dataset(tmp_path / "data")
    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    proc = subprocess.Popen(
        [*command, "--standalone", str(script), str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, CI="true", PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1"),
        start_new_session=True,  # so a hung run's workers can be killed with it
    )
    try:
        _, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    windows0 = {start for batch in r0["seen"] for start in batch}
    windows1 = {start for batch in r1["seen"] for start in batch}
    assert len(r0["seen"]) == len(r1["seen"]) == 6
    assert windows0 and windows1 and not windows0 & windows1  # different batches
    for name, value in r0["state"].items():
        assert torch.allclose(value, r1["state"][name], atol=1e-6), name  # in sync
    assert Session.load(tmp_path / "m.sess").step == 6  # rank 0 saved


def test_the_session_records_how_its_data_was_cut_and_made(tmp_path):
    make_dataset(tmp_path / "data")
    train(prepare(options(tmp_path, max_steps=1, val_fraction=0.2)), log=lambda _: None)
    record = Session.load(tmp_path / "m.sess").data
    longest = record.longest_note  # 0.2 s notes, onsets within half the smallest time shift
    assert longest == pytest.approx(0.2, abs=EventCodec("prnn").shift_seconds[0])
    data = str(tmp_path / "data")
    want = DataRecord(data, 32, 8, 0.2, settings=Settings(), longest_note=longest)
    want = dataclasses.replace(want, dataset_resolved=data, velocities=(80.0, 80.0))  # all 80
    assert record == want


def test_a_session_finds_its_dataset_from_any_folder(tmp_path, monkeypatch):
    """train.py ran with a relative path; the session still finds the folder from elsewhere,
    and says what to do where neither path exists."""
    make_dataset(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    o = options(Path("."), max_steps=1, val_fraction=0.2)
    train(prepare(dataclasses.replace(o, dataset=Path("data"))), log=lambda _: None)
    record = Session.load(tmp_path / "m.sess").data
    assert record.dataset == "data"
    monkeypatch.chdir(tmp_path.parent)
    assert record.folder() == tmp_path / "data"
    (tmp_path / "data").rename(tmp_path / "moved")
    with pytest.raises(DatasetError, match="not on this machine .* give it with --dataset"):
        record.folder()
