"""The learning-rate schedule, the augmentations, and what a session records of them."""

import numpy as np
import pytest
from test_training import make_dataset, options

from amadeus.data import augment
from amadeus.data import controls as ctl
from amadeus.data.codec import EventCodec
from amadeus.data.dataset import Piece
from amadeus.data.notes import Notes
from amadeus.model.session import Session
from amadeus.train import loop as training
from amadeus.train.loop import prepare, save, train_step
from amadeus.train.schedule import Schedule, estimated_horizon

CODEC = EventCodec("prnn")


def test_cosine_warms_up_then_decays_to_its_floor():
    s = Schedule(3e-3, "cosine", warmup=10, floor=0.1, horizon=110)
    assert s.rate(0) == pytest.approx(3e-4) and s.rate(9) == pytest.approx(3e-3)
    rates = [s.rate(step) for step in range(10, 111)]
    assert rates == sorted(rates, reverse=True)
    assert s.rate(60) == pytest.approx(3e-3 * (0.1 + 0.9 * 0.5))  # halfway down the cosine
    assert s.rate(110) == s.rate(500) == pytest.approx(3e-4)
    assert Schedule(1e-3, "constant").rate(0) == 1e-3
    assert Schedule(1e-3, "cosine", warmup=10).rate(1000) == 1e-3  # no length known: the peak
    assert Schedule(1e-3, "cosine", warmup=50, horizon=20).rate(4) == pytest.approx(1e-3)


def test_the_length_of_a_timed_run_is_estimated_from_its_speed():
    assert estimated_horizon(8, seconds_per_step=2.0, seconds_left=100.0) == 8 + 47


def test_a_timed_run_renews_its_cosine_when_the_machine_slows(tmp_path, monkeypatch):
    make_dataset(tmp_path / "data")
    run = prepare(options(tmp_path, max_time=100.0))
    clock = [0.0]
    monkeypatch.setattr(training.time, "monotonic", lambda: clock[0])
    said = []
    horizons = []
    for done, now in enumerate([0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14]):
        clock[0], run.step = float(now), done
        training._estimate_horizon(run, done, 0.0, said.append)
        horizons.append(run.schedule.horizon)
    assert horizons[:8] == [None] * 8  # nothing known before step 8
    assert horizons[8] == 8 + int(0.95 * 92 / 1.0)  # 1 s a step from step 3 on, 92 s left
    assert horizons[11] == 11 + int(0.95 * 86 / (11 / 8))  # now 11 s for 8 steps, 86 s left
    assert horizons[8] > horizons[9] > horizons[10] > horizons[11]
    assert said == ["learning rate: cosine over 95 steps (1.00 s/step)"]


def test_a_session_keeps_its_schedule_across_a_resume(tmp_path):
    make_dataset(tmp_path / "data")
    run = prepare(options(tmp_path, max_steps=40, learning_rate=2e-3, warmup_steps=20))
    train_step(run)
    save(run)
    recorded = Session.load(tmp_path / "m.sess").extra["lr_schedule"]
    assert recorded == Schedule(2e-3, "cosine", 20, 0.1, 40).to_dict()
    resumed = prepare(options(tmp_path, max_steps=80, learning_rate=2e-3))
    assert resumed.schedule.horizon == 40  # the curve it started on


def test_a_warm_restart_starts_a_new_curve_from_the_sessions_step(tmp_path):
    s = Schedule(1e-3, "cosine", warmup=10, floor=0.1, horizon=1110, start=1000)
    assert s.rate(1000) == pytest.approx(1e-4) and s.rate(1009) == pytest.approx(1e-3)
    assert s.rate(1060) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))
    assert s.rate(1110) == pytest.approx(1e-4)
    make_dataset(tmp_path / "data")
    run = prepare(options(tmp_path, max_steps=4, learning_rate=2e-3, warmup_steps=2))
    for _ in range(4):
        train_step(run)
    save(run)
    going_on = prepare(options(tmp_path, max_steps=20, learning_rate=1e-3))
    assert going_on.schedule == Schedule(1e-3, "cosine", 2, 0.1, 4)  # its curve's end: the floor
    restarted = prepare(options(tmp_path, max_steps=20, learning_rate=1e-3, restart_schedule=True))
    assert restarted.schedule == Schedule(1e-3, "cosine", 10, 0.1, 20, start=4)
    assert restarted.schedule.rate(4) == pytest.approx(1e-3 / 4)  # warming up again (16 steps)


def test_each_window_is_transposed_by_its_own_draw():
    notes = Notes.build(np.arange(8) * 0.25, np.arange(8) * 0.25 + 0.2, [60] * 8, [80] * 8)
    tokens = CODEC.encode(notes).astype(np.int64)
    compact = ctl.compute(tokens, CODEC)
    events = np.repeat(tokens[:, None], 64, axis=1)
    controls = np.repeat(compact[:, None], 64, axis=1)
    moved, moved_controls = augment.transpose_windows(
        events, controls, CODEC, np.random.default_rng(0)
    )
    offsets = set()
    for column in range(64):
        pitches = moved[:, column][moved[:, column] < 88] + 21  # note-ons
        offset = int(pitches[0]) - 60
        offsets.add(offset)
        assert (pitches == 60 + offset).all()
        np.testing.assert_array_equal(moved_controls[:, column], ctl.transpose(compact, offset))
    assert offsets == set(augment.TRANSPOSITIONS.tolist())  # every draw, across the batch


def test_time_stretch_replays_each_piece_at_each_tempo():
    notes = Notes.build([0, 1, 2], [0.5, 1.5, 3.0], [60, 64, 67], [80, 80, 80])
    tokens = CODEC.encode(notes)
    pieces = augment.time_stretched([Piece(tokens, ctl.compute(tokens, CODEC), "prnn")], CODEC)
    assert len(pieces) == len(augment.STRETCH_FACTORS)
    for factor, piece in zip(augment.STRETCH_FACTORS, pieces):
        decoded = CODEC.decode(piece.tokens)
        np.testing.assert_allclose(decoded.start, notes.start * factor, atol=CODEC.shift_seconds[0])
        np.testing.assert_array_equal(piece.controls, ctl.compute(piece.tokens, CODEC))
