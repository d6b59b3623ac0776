"""The player's loudness and the model's: velocities mapped into the range the training data
used before the model hears them, and the answer's mapped back, so a soft phrase gets a soft
answer; sessions record the range, generate.py's primer is mapped too."""

import midi_factory as mf
import numpy as np
import pytest
import torch

from amadeus.data.codec import EventCodec
from amadeus.data.dataset import Piece, Settings
from amadeus.data.dynamics import Dynamics
from amadeus.data.notes import Notes
from amadeus.generate.inputs import read_primer
from amadeus.generate.sampling import SamplingRules
from amadeus.live.engine import Engine, NoteEvent
from amadeus.live.settings import LiveSettings
from amadeus.model.network import PerformanceRNN
from amadeus.model.stepper import NumpyStepper

CODEC = EventCodec("prnn")


def piece_at(velocities: list[int]) -> Piece:
    n = len(velocities)
    notes = Notes.build(np.arange(n) * 0.5, np.arange(n) * 0.5 + 0.4, [60] * n, velocities)
    tokens = CODEC.encode(notes)
    return Piece(tokens, np.zeros((len(tokens), 13), np.uint8), "prnn", {})


def test_the_range_of_a_data_set_and_the_maps_both_ways():
    chorales = Dynamics.of([piece_at([90] * 20)], CODEC)
    assert chorales.flat and chorales.low == chorales.high == pytest.approx(90, abs=2)
    assert {chorales.to_model(v) for v in (1, 40, 127)} == {round(chorales.low)}
    assert chorales.to_player(chorales.low, played=40.0) == 40  # one loudness: the player's
    wide = Dynamics(30.0, 110.0)
    assert (wide.to_model(1), wide.to_model(64), wide.to_model(127)) == (30, 70, 110)
    assert [wide.to_player(v, played=0) for v in (30, 70, 110)] == [1, 64, 127]  # the inverse
    assert Dynamics.of([], CODEC) is None


@pytest.fixture(scope="module")
def stepper():
    torch.manual_seed(0)
    return NumpyStepper(PerformanceRNN(240, 24, 8, 32, 2).eval())


@pytest.mark.parametrize("played", [40, 70, 100])
def test_a_soft_phrase_gets_a_soft_answer(stepper, played):
    chorales = Dynamics(90.0, 90.0)
    live = LiveSettings(answer_seconds=2.0)
    e = Engine(stepper, CODEC, Settings(), 8, live, SamplingRules(max_note_seconds=2), 0, chorales)
    for i, pitch in enumerate((60, 64, 67, 72)):
        e.note_on(0.3 * i, pitch, played)
        e.note_off(0.3 * i + 0.2, pitch)
    out, t = e.handover(1.2), 1.2
    while e.answering:
        t += 0.05
        out += e.tick(t)
    onsets = [o.velocity for o in out if isinstance(o, NoteEvent) and o.velocity]
    assert onsets and all(v == played for v in onsets)
    tracks = dict(e.record.tracks())
    assert set(tracks["player"].velocity.tolist()) == {played}  # the export keeps the playing


def test_the_primer_is_mapped_into_the_models_loudness(tmp_path):
    path = mf.write_midi(tmp_path / "soft.mid", [(0, 480, 60, 30), (480, 960, 64, 35)])
    as_played = read_primer(path, CODEC, Settings())
    mapped = read_primer(path, CODEC, Settings(), dynamics=Dynamics(90.0, 90.0))
    known = int(CODEC.velocity_values[CODEC.velocity_bin(np.array([90]))][0])  # 90's bin: 91
    assert {int(n) for n in CODEC.decode(mapped.tokens).velocity} == {known}
    assert {int(n) for n in CODEC.decode(as_played.tokens).velocity} == {29, 35}  # their bins
