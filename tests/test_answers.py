"""Answers measured as answers: the key estimate, exact feature values on hand-made notes, phrases
cut between notes, the engine's events paired into notes, and measure() end to end with a tiny
random model over three phrases."""

import numpy as np
import pytest
from test_training import make_dataset

from amadeus.data.codec import EventCodec
from amadeus.data.dataset import load_split
from amadeus.data.notes import Notes
from amadeus.evaluation import answer_features as af
from amadeus.evaluation import answers as an
from amadeus.evaluation import cuts as ct
from amadeus.evaluation import key as ky
from amadeus.generate.loaded import load
from amadeus.live.engine import Delayed, NoteEvent
from amadeus.live.instrument import Instrument
from amadeus.live.protocol import TICK_SECONDS
from amadeus.live.settings import LiveSettings


def melody(pitches, seconds=0.5) -> Notes:
    start = np.arange(len(pitches)) * seconds
    return Notes.build(start, start + seconds, pitches, np.full(len(pitches), 80))


def transposed(notes: Notes, semitones: int) -> Notes:
    return Notes(notes.start, notes.end, notes.pitch + semitones, notes.velocity)


C_MAJOR = melody([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60])
A_MINOR = melody([57, 59, 60, 62, 64, 65, 68, 69, 68, 64, 60, 57])  # harmonic minor, up and down


def test_the_key_of_a_scale_and_of_its_transposition():
    assert ky.estimate_key(C_MAJOR) == ky.Key(0, False)
    assert ky.estimate_key(A_MINOR) == ky.Key(9, True)
    assert ky.estimate_key(transposed(C_MAJOR, 7)).name == "G major"
    assert ky.estimate_key(transposed(A_MINOR, 3)).name == "C minor"
    assert ky.Key(9, True).scale.nonzero()[0].tolist() == [0, 2, 4, 5, 8, 9, 11]  # G#, no G


def test_features_of_hand_made_notes():
    # A C major triad for 1 s, E and G for half a second each, a rest, then F# (out of key).
    notes = Notes.build(
        [0, 0, 0, 1, 1.5, 3], [1, 1, 1, 1.5, 2, 3.5], [60, 64, 67, 64, 67, 66], [80] * 6
    )
    triad = Notes.build([0, 0, 0], [2, 2, 2], [60, 64, 67], [80] * 3)
    soprano_held = Notes.build([0, 0, 1], [2, 1, 2], [72, 48, 50], [80] * 3)
    context = af.Context(ky.Key(0, False), af.Context.of(triad).histogram, 72)
    assert af.Context.of(soprano_held).last_pitch == 72  # the melody sounding, not the bass's
    values = af.features(notes, 4.0, context)
    assert values["notes per second"] == 1.5  # 6 notes in 4 s
    assert values["median inter-onset interval"] == 1.0  # onsets 0, 1, 1.5, 3
    assert values["mean polyphony"] == pytest.approx(4.5 / 2.5)  # 4.5 note-seconds in 2.5 s
    assert values["pitch range"] == 7
    assert values["in-key share"] == pytest.approx(100 * 5 / 6)
    assert values["histogram distance"] == pytest.approx(1 / 6)  # (1/6 of C, 1/6 of F#) / 2
    assert values["first-note leap"] == 5  # from C5 to the triad's G4
    naive = af.features(triad, 2.0, af.Context.of(triad))
    assert naive["histogram distance"] == 0 and naive["in-key share"] == 100
    empty = af.features(Notes.empty(), 2.0, context)
    assert empty["notes per second"] == 0 and np.isnan(empty["in-key share"])


def test_phrases_are_cut_between_notes():
    # Half-second notes, with a note held across the onsets of seconds 9-11.
    piece = melody(60 + np.arange(120) % 12)
    start, end = np.append(piece.start, 9.0), np.append(piece.end, 11.0)
    piece = Notes.build(start, end, np.append(piece.pitch, 40), np.full(len(start), 80))
    points = ct.cut_points(piece)
    assert 9.0 in points and 11.0 in points and not ((points > 9) & (points < 11)).any()
    cuts = ct.cut_phrases([piece], 5, seed=1)
    assert len(cuts) == 5
    for cut in cuts:
        assert 4 <= cut.seconds <= 12 and cut.start in points and cut.start + cut.seconds in points
        assert cut.phrase.start.min() == 0 and cut.phrase.end.max() <= cut.seconds + 1e-9
        assert cut.continuation(cut.seconds).start.max() < cut.seconds
    spans = sorted((c.start, c.start + c.seconds) for c in cuts)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # no two overlap


def test_answer_events_become_notes_with_delays_taken_out():
    events = [
        NoteEvent(10.1, 60, 70),
        NoteEvent(10.5, 60, 0),
        Delayed(1, 0, 200.0),
        NoteEvent(10.7, 64, 80),  # planned at 10.5
        NoteEvent(11.2, 64, 0),
        NoteEvent(11.2, 67, 90),  # never ended: ends at the last event
    ]
    notes = an.paired(events, zero=10.0)
    np.testing.assert_allclose(notes.start, [0.1, 0.5, 1.0])
    np.testing.assert_allclose(notes.end, [0.5, 1.0, 1.0])
    assert notes.pitch.tolist() == [60, 64, 67] and notes.velocity.tolist() == [70, 80, 90]


def test_measure_end_to_end(tiny_session, tmp_path):
    codec = EventCodec("prnn")
    validation = load_split(make_dataset(tmp_path / "data", files=4), 0.5).validation
    pieces = [codec.decode(piece.tokens) for piece in validation]
    instrument = Instrument(load(tiny_session))

    def engines(conditioning: bool, seed: int):
        return instrument.engine(LiveSettings(conditioning=conditioning), seed)

    result = an.measure(pieces, engines, TICK_SECONDS, phrases=3, seed=0, velocities=(40, 100))
    assert result.phrases == 3
    for row in an.ROWS:
        for feature in af.FEATURES:
            assert len(result.values[row][feature.name]) == 3
            assert np.isfinite(an.summary(result, row, feature.name, "mean")), (row, feature)
    assert result.values["naive"]["histogram distance"] == [0.0] * 3
    distances = an.distances(result)
    assert distances["composer"] == 0 and all(np.isfinite(list(distances.values())))
    assert [label for label, _, _ in result.velocity][1:] == ["40", "100"]
    assert all(np.isfinite(v) for _, _, v in result.velocity)
    markdown = an.answers_markdown(result)
    assert any(line.startswith("| in-key share") for line in markdown)
    assert len(an.targets(result)) == 4 and len(an.lines(result)) > len(af.FEATURES)
