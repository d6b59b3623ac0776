"""Evaluation: exact feature values on known music, the overlap of distributions, whole-piece
likelihood against the model's own logits, control adherence, and evaluate.py end to end on a
tiny trained session."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_training import make_dataset, options

from amadeus.data import controls as ctl
from amadeus.data.codec import EventCodec
from amadeus.data.dataset import Piece, load_split
from amadeus.data.notes import Notes
from amadeus.evaluation import adherence
from amadeus.evaluation import features as ft
from amadeus.evaluation.likelihood import piece_likelihood
from amadeus.model.session import Session, build_model
from amadeus.train.loop import prepare, train

ROOT = Path(__file__).resolve().parents[1]
CODEC = EventCodec("prnn")


def test_features_of_a_known_piece():
    # A C major triad held 1 s, then E and G as two half-second notes, velocity 60 and 100.
    notes = Notes.build(
        [0, 0, 0, 1, 1.5], [1, 1, 1, 1.5, 2], [60, 64, 67, 64, 67], [60] * 3 + [100] * 2
    )
    values = ft.values(notes)
    np.testing.assert_allclose(values["note duration"], [1, 1, 1, 0.5, 0.5])
    poly = values["polyphony"]
    assert len(poly) == 40 and (poly[:20] == 3).all() and (poly[20:] == 1).all()  # 20 a second
    assert values["pitch range"].tolist() == [7.0]
    p = np.array([1, 2, 2]) / 5  # C once, E twice, G twice
    assert values["pitch-class entropy"][0] == pytest.approx(-(p * np.log2(p)).sum())
    np.testing.assert_allclose(values["inter-onset interval"], [1.0, 0.5])
    assert values["note density"].tolist() == [2.5]  # 5 notes in 2 s
    assert values["velocity"].tolist() == [60, 60, 60, 100, 100]


def test_overlap_is_one_for_the_same_music_and_near_zero_for_disjoint():
    rng = np.random.default_rng(0)
    a = rng.normal(5, 1, 4000)
    feature = ft.Feature("x", "", "note", False, 0.01)
    assert ft.overlap(a, a, feature) == pytest.approx(1.0, abs=1e-3)
    assert ft.overlap(a, rng.normal(5, 1, 4000), feature) > 0.95
    assert ft.overlap(a, a + 20, feature) < 0.01
    b = rng.normal(6, 1, 4000)  # two unit normals one apart overlap by 2 * Phi(-0.5) = 0.617
    assert ft.overlap(a, b, feature) == pytest.approx(0.617, abs=0.03)
    assert ft.overlap(a, b, feature) == pytest.approx(ft.overlap(b, a, feature))
    assert ft.histogram_overlap(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == 0.5


def pieces_of(folder: Path) -> list[Piece]:
    return load_split(folder, 0.5).validation


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaluation")
    make_dataset(tmp / "data", files=4)
    run = prepare(options(tmp, max_steps=30, learning_rate=1e-2, val_fraction=0.5))
    train(run, log=lambda _: None)
    return tmp, build_model(Session.load(tmp / "m.sess")).eval()


@pytest.mark.parametrize("conditioned", [False, True])
def test_piece_likelihood_is_the_models_own_cross_entropy(trained, conditioned):
    tmp, model = trained
    pieces = pieces_of(tmp / "data")
    total, second, agreement = piece_likelihood(
        model, pieces, CODEC, conditioned, other=model, batch_size=3
    )
    nats = events = 0.0
    for piece in pieces:
        target = torch.from_numpy(piece.tokens.astype(np.int64))[:, None]
        controls = torch.from_numpy(ctl.expand(piece.controls))[:, None] if conditioned else None
        with torch.no_grad():
            logits = model.logits(torch.zeros(1, model.config.init_dim), target, controls)[:, 0]
        nats += F.cross_entropy(logits, target[:, 0], reduction="sum").item()
        events += len(target)
    assert total.nats == pytest.approx(nats, rel=1e-5) and total.events == events
    seconds = sum(CODEC.token_seconds[p.tokens.astype(np.int64)].sum() for p in pieces)
    assert total.per_second == pytest.approx(nats / seconds, rel=1e-5)
    assert total.notes == sum(int((p.tokens < 88).sum()) for p in pieces)
    assert sum(total.share(k) for k in CODEC.ranges) == pytest.approx(1.0)
    assert second.nats == pytest.approx(total.nats) and agreement.top1 == 1.0
    assert agreement.kl == pytest.approx(0.0, abs=1e-6)


def test_control_adherence_of_exact_music():
    scale = [60, 62, 64, 65, 67, 69, 71]  # C major, one note each, 2 a second
    start = np.arange(28) * 0.5
    notes = Notes.build(start, start + 0.4, [scale[i % 7] for i in range(28)], np.full(28, 80))
    tokens = CODEC.encode(notes).astype(np.int64)
    target = adherence.Target("C major", adherence.C_MAJOR, density=1)
    measured = adherence.measure(np.stack([tokens]), CODEC, target)
    assert measured.histogram_error == pytest.approx(0.0, abs=1e-12)
    bins = ctl.compute(tokens, CODEC)[:, 0].astype(np.float64)
    assert measured.realized_density == pytest.approx(bins.mean())
    assert measured.density_error == pytest.approx(np.abs(bins - 1).mean())


def run_evaluate(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), "--device", "cpu", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_evaluate_writes_a_report_with_figures(trained):
    tmp, _ = trained
    out = tmp / "report"
    done = run_evaluate("-s", tmp / "m.sess", "--samples", 3, "-l", 120, "-o", out, "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") >= 5 and "likelihood on 2 validation files" in done.stdout
    report = (out / "report.md").read_text()
    for section in ("## Likelihood", "## Generated against real", "## Control adherence"):
        assert section in report
    assert "## How this report was made" in report
    assert f"evaluate.py --device cpu -s {tmp / 'm.sess'} --samples 3" in report  # the command
    for picture in ("distributions.png", "piano-roll.png"):
        assert (out / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_measures_answers_when_asked(trained):
    tmp, _ = trained
    out = tmp / "answers"
    done = run_evaluate("-s", tmp / "m.sess", "--samples", 0, "--answers", 2, "-o", out)
    assert done.returncode == 0, done.stderr
    assert "overall distance" in done.stdout and "targets (conditioned):" in done.stdout
    report = (out / "report.md").read_text()
    assert "## Answers measured as answers" in report
    assert "| feature | composer | conditioned | unconditioned | naive |" in report
    assert "| in-key share (%) |" in report and "| 100 |" in report  # the velocity study


@pytest.mark.parametrize(
    "args, reason",
    [
        (["-s", "missing.sess"], "missing.sess: no such file"),
        (["--samples", "-1"], "must be 0 or more"),
        (["--int8", "{session}"], "not an int8 session"),
    ],
)
def test_evaluate_bad_input_is_one_line(trained, args, reason):
    tmp, _ = trained
    args = [a.replace("{session}", str(tmp / "m.sess")) for a in args]
    if "-s" not in args:
        args = ["-s", tmp / "m.sess", *args]
    done = run_evaluate(*args, "-o", tmp / "bad")
    lines = done.stderr.strip().splitlines()  # a bad flag: argparse's usage, then one line
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert reason in lines[-1] and lines[-1].startswith(("error: ", "evaluate.py: error: "))
    assert not (tmp / "bad" / "report.md").exists()


def test_per_second_compares_across_codecs():
    """The same music in both layouts: per-event figures differ with the number of events, the
    seconds do not."""
    notes = Notes.build([0, 0.5, 1.0], [0.5, 1.0, 2.0], [60, 64, 67], [80, 80, 80])
    seconds = {
        name: float(EventCodec(name).token_seconds[EventCodec(name).encode(notes)].sum())
        for name in ("prnn", "magenta")
    }
    assert seconds["prnn"] == pytest.approx(seconds["magenta"], abs=0.01)
    assert math.isclose(seconds["magenta"], 2.0, abs_tol=0.01)
