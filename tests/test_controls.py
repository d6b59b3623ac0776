"""Control values on known performances, the compact storage and transposition."""

import numpy as np
import pytest

from amadeus.data import controls
from amadeus.data.codec import EventCodec
from amadeus.data.notes import Notes

PRNN = EventCodec("prnn")


def test_known_example():
    # C, E, G together at 0 s, D at 3 s: the first events see C-E-G (3 notes, density bin 0:
    # edges 1, 4, 7 ...), and from after the G's note-on nothing until D enters the window.
    notes = Notes.build([0, 0, 0, 3], [1, 1, 1, 4], [60, 64, 67, 62], [80] * 4)
    tokens = PRNN.encode(notes)
    compact = controls.compute(tokens, PRNN)
    assert compact.shape == (len(tokens), 13) and compact.dtype == np.uint8
    first = controls.expand(compact[:1])[0]
    assert first[:12].tolist() == [1] + [0] * 11  # density bin 0
    histogram = first[12:]
    assert histogram[[0, 4, 7]] == pytest.approx([85 / 255] * 3)
    assert histogram.sum() == pytest.approx(1, abs=0.01)
    # The last event (D's note-off at 4 s) sees an empty window: uniform histogram.
    assert compact[-1, 1:].tolist() == [21] * 12
    # D's note-on sees only itself: all of the histogram on pitch class 2.
    d_on = np.flatnonzero(tokens == PRNN.offset["note_on"] + 62 - 21)[0]
    assert compact[d_on, 1:].tolist() == [0, 0, 255] + [0] * 9


def test_density_bins():
    # 40 note-ons within one second: every event before them sees them all, bin 11 (>= 34).
    start = np.linspace(0, 1, 40)
    notes = Notes.build(start, start + 0.01, 21 + np.arange(40), [80] * 40)
    compact = controls.compute(PRNN.encode(notes), PRNN)
    assert compact[0, 0] == 11
    # 4..6 notes -> bin 1, 7..9 -> bin 2.
    for count, expected in [(1, 0), (3, 0), (4, 1), (6, 1), (7, 2), (34, 11)]:
        start = np.arange(count) * 0.02
        notes = Notes.build(start, start + 0.01, 21 + np.arange(count), [80] * count)
        assert controls.compute(PRNN.encode(notes), PRNN)[0, 0] == expected, count


def test_window_is_two_seconds():
    notes = Notes.build([0, 1.9, 2.5], [0.1, 2.0, 2.6], [60, 61, 62], [80] * 3)
    compact = controls.compute(PRNN.encode(notes), PRNN)
    first = compact[0, 1:]
    assert first[0] == first[1] > 0 and first[2] == 0  # C and C# in, D (2.5 s) out


def test_expand_layout_density_then_histogram():
    compact = np.array([[3] + [0] * 11 + [255]], dtype=np.uint8)
    expanded = controls.expand(compact)
    assert expanded.shape == (1, 24) and expanded.dtype == np.float32
    assert expanded[0, 3] == 1 and expanded[0, :12].sum() == 1
    assert expanded[0, 23] == 1


def test_transpose_moves_the_histogram_not_the_density():
    compact = np.array([[5, 255] + [0] * 11], dtype=np.uint8)
    moved = controls.transpose(compact, 2)
    assert moved[0, 0] == 5
    assert moved[0, 1:].tolist() == [0, 0, 255] + [0] * 9
    assert controls.transpose(compact, -1)[0, 1:].tolist() == [0] * 11 + [255]


def test_transposed_tokens_and_controls_agree():
    notes = Notes.build([0, 0.5, 1.0], [0.4, 0.9, 1.4], [60, 65, 69], [80] * 3)
    tokens = PRNN.encode(notes)
    shifted = controls.compute(PRNN.transpose(tokens, 3), PRNN)
    assert np.array_equal(shifted, controls.transpose(controls.compute(tokens, PRNN), 3))


def test_held_spreads_its_even_share_over_the_twelve_pitch_classes():
    histogram = np.zeros(12)
    histogram[[0, 7]] = [3, 1]  # C three times, G once
    strict = controls.held(histogram, 5)
    assert strict[5] == 1 and strict[: controls.DENSITY_DIM].sum() == 1
    keys = strict[controls.DENSITY_DIM :]
    assert np.array_equal(keys, controls.held(histogram, 5, 0.0)[controls.DENSITY_DIM :])
    np.testing.assert_array_equal(keys[[0, 7, 1]], [0.75, 0.25, 0.0])
    loose = controls.held(histogram, 5, even_share=0.25)[controls.DENSITY_DIM :]
    np.testing.assert_allclose(loose[[0, 7, 1]], [0.5625 + 1 / 48, 0.1875 + 1 / 48, 1 / 48])
    assert loose.sum() == pytest.approx(1.0)
    even = controls.held(histogram, 5, even_share=1.0)[controls.DENSITY_DIM :]
    np.testing.assert_allclose(even, np.full(12, 1 / 12))
