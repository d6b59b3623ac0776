"""The token layout pinned by tables, exact tokens for small performances, round trips and a
decoder that never fails on model output."""

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amadeus.data import codec as codec_module
from amadeus.data.codec import DEFAULT_NOTE_SECONDS, MIN_NOTE_SECONDS, EventCodec
from amadeus.data.notes import Notes

PRNN, MAGENTA = EventCodec("prnn"), EventCodec("magenta")

# (codec, kind, value, token): the layout, checked both ways.
LAYOUT = [
    (PRNN, "note_on", 0, 0),  # pitch 21 (A0)
    (PRNN, "note_on", 87, 87),  # pitch 108 (C8)
    (PRNN, "note_off", 0, 88),
    (PRNN, "note_off", 87, 175),
    (PRNN, "velocity", 0, 176),
    (PRNN, "velocity", 31, 207),
    (PRNN, "time_shift", 0, 208),
    (PRNN, "time_shift", 31, 239),
    (MAGENTA, "note_on", 0, 0),
    (MAGENTA, "note_on", 127, 127),
    (MAGENTA, "note_off", 0, 128),
    (MAGENTA, "note_off", 127, 255),
    (MAGENTA, "time_shift", 0, 256),  # 10 ms
    (MAGENTA, "time_shift", 99, 355),  # 1 s
    (MAGENTA, "velocity", 0, 356),
    (MAGENTA, "velocity", 31, 387),
]


@pytest.mark.parametrize("codec,kind,value,token", LAYOUT)
def test_layout_both_ways(codec, kind, value, token):
    assert codec.offset[kind] + value == token
    assert (codec.token_kind[token], codec.token_value[token]) == (kind, value)


def test_sizes_and_start_token():
    assert (PRNN.size, PRNN.start_token, PRNN.dtype) == (240, 239, np.uint8)
    assert (MAGENTA.size, MAGENTA.start_token, MAGENTA.dtype) == (388, 387, np.uint16)


def test_prnn_time_bins_are_the_originals():
    assert PRNN.shift_seconds[0] == pytest.approx(1 / 65)  # 15.4 ms
    assert PRNN.shift_seconds[31] == pytest.approx(1.15**31 / 65)  # 1.17 s
    assert PRNN.shift_seconds[31] == pytest.approx(1.1714, abs=1e-4)


def test_velocity_has_one_value_per_token():
    # The original had 31 edges for 32 tokens; ours spans 21..108 in 32 values.
    assert len(PRNN.velocity_values) == 32
    assert (PRNN.velocity_values[0], PRNN.velocity_values[-1]) == (21, 108)
    assert PRNN.velocity_bin([1, 21, 64, 108, 127]).tolist() == [0, 0, 15, 31, 31]
    assert MAGENTA.velocity_values[:3].tolist() == [1, 5, 9]


def notes(*rows):
    start, end, pitch, velocity = zip(*rows)
    return Notes.build(start, end, pitch, velocity)


def test_exact_tokens_prnn():
    # C4 at velocity 64 from 0 to 0.5 s, then E4 at 100 from 0.5 s to 1 s.
    tokens = PRNN.encode(notes((0, 0.5, 60, 64), (0.5, 1.0, 64, 100)))
    # 0.5 s = bin 24 (0.4404 s) + bin 9 (0.0541 s) = 0.4945 s; the 5.5 ms left is under half
    # the smallest bin, so E4 starts with no shift: the clock is already within 7.7 ms.
    expected = [176 + 15, 60 - 21, 208 + 24, 208 + 9, 88 + 60 - 21, 176 + 28, 64 - 21]
    # The remainder is carried: the next gap is measured from 0.4945 s, 0.5055 s = 24 + 10.
    expected += [208 + 24, 208 + 10, 88 + 64 - 21]
    assert tokens.tolist() == expected


def test_exact_tokens_magenta():
    tokens = MAGENTA.encode(notes((0, 0.5, 60, 64), (0.5, 1.0, 60, 64), (0.5, 1.25, 67, 64)))
    # Velocity only when it changes; at 0.5 s the off of the first C comes before the ons.
    assert tokens.tolist() == [
        356 + 16, 60,
        256 + 49,  # 0.5 s
        128 + 60, 60, 67,
        256 + 49,  # 1.0 s
        128 + 60,
        256 + 24,  # 1.25 s
        128 + 67,
    ]  # fmt: skip


def test_onset_error_does_not_accumulate():
    # 200 notes 0.1 s apart: the original dropped each gap's remainder below 15.4 ms, so its
    # clock fell behind by several seconds over the piece; ours stays within half a bin.
    starts = np.arange(200) * 0.1
    original = notes(*[(s, s + 0.05, 60 + i % 12, 80) for i, s in enumerate(starts)])
    decoded = PRNN.decode(PRNN.encode(original))
    assert len(decoded) == 200
    assert np.abs(decoded.start - original.start).max() <= PRNN.shift_seconds[0] / 2 + 1e-9


@pytest.mark.parametrize("codec", [PRNN, MAGENTA], ids=["prnn", "magenta"])
def test_round_trip_random_performance(codec):
    rng = np.random.default_rng(0)
    n = 300
    start = np.sort(rng.uniform(0, 60, n))
    end = start + rng.uniform(0.05, 3, n)
    lo, hi = codec.preset.min_pitch, codec.preset.max_pitch
    original = Notes.build(start, end, rng.integers(lo, hi + 1, n), rng.integers(1, 128, n))
    original = original.without_overlaps()
    decoded = codec.decode(codec.encode(original))
    half_bin = codec.shift_seconds[0] / 2 + 1e-9
    assert len(decoded) == len(original)
    # Onsets closer than a bin may swap places; compare note by note in (pitch, start) order.
    original = original.select(np.lexsort((original.start, original.pitch)))
    decoded = decoded.select(np.lexsort((decoded.start, decoded.pitch)))
    assert np.array_equal(decoded.pitch, original.pitch)
    assert np.abs(decoded.start - original.start).max() <= half_bin
    ends_ok = np.abs(decoded.end - original.end) <= half_bin
    short = decoded.end - decoded.start <= MIN_NOTE_SECONDS + 1e-9  # on and off met in one bin
    assert (ends_ok | short).all()
    step = (codec.preset.max_velocity - codec.preset.min_velocity) / 31
    inside = np.clip(original.velocity, codec.preset.min_velocity, codec.preset.max_velocity)
    assert np.abs(decoded.velocity - inside).max() <= step / 2 + 1


def test_out_of_range_pitches_are_dropped_and_counted():
    kept, dropped = PRNN.in_range(notes((0, 1, 20, 80), (0, 1, 21, 80), (0, 1, 109, 80)))
    assert (kept.pitch.tolist(), dropped) == ([21], 2)
    with pytest.raises(ValueError, match="pitch outside"):
        PRNN.encode(notes((0, 1, 20, 80)))


def test_decode_lenient_rules():
    on, off, shift = PRNN.offset["note_on"], PRNN.offset["note_off"], PRNN.offset["time_shift"]
    tokens = [
        off + 5,  # a note-off with no note: ignored
        on + 10, shift + 31,  # A: pitch 31 ...
        on + 10, shift + 31,  # ... ended by the same pitch struck again (B)
        on + 20,  # C: never released
        shift + 31, shift + 31, shift + 31,
    ]  # fmt: skip
    decoded = PRNN.decode(np.array(tokens))
    one = PRNN.shift_seconds[31]
    assert decoded.pitch.tolist() == [31, 31, 41]
    assert decoded.start.tolist() == pytest.approx([0, one, 2 * one])
    assert decoded.end[0] == pytest.approx(one)
    # B and C are unreleased: they last until the end, at most DEFAULT_NOTE_SECONDS.
    assert decoded.end[1] == pytest.approx(one + DEFAULT_NOTE_SECONDS)
    assert decoded.end[2] == pytest.approx(2 * one + DEFAULT_NOTE_SECONDS)


def test_decode_counts_what_it_skipped():
    on, off, shift = PRNN.offset["note_on"], PRNN.offset["note_off"], PRNN.offset["time_shift"]
    tokens = [-1, off + 5, on + 10, shift, on + 10, shift, off + 10, off + 10, on + 20, 240]
    notes, skipped = PRNN.decode_counted(np.array(tokens))
    assert len(notes) == 3
    assert skipped == {
        "outside the vocabulary": 2,
        "orphan note-off": 2,  # off + 5, and the second off + 10
        "note-on over a sounding note": 1,
        "note never released": 1,
    }
    clean = PRNN.encode(Notes.build([0, 0.5], [1, 2], [60, 64], [80, 80]))
    assert PRNN.decode_counted(clean)[1] == {}


def test_worked_example_in_the_docstring():
    result = doctest.testmod(codec_module)
    assert result.attempted >= 5 and result.failed == 0


def test_decode_empty_and_foreign_tokens():
    assert len(PRNN.decode(np.array([], dtype=np.int64))) == 0
    assert len(PRNN.decode(np.array([-1, 240, 1000]))) == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-5, 400), max_size=300), st.sampled_from(["prnn", "magenta"]))
def test_decode_never_raises(tokens, preset):
    codec = EventCodec(preset)
    decoded = codec.decode(np.array(tokens, dtype=np.int64))
    assert np.all(decoded.end > decoded.start)
    assert np.all(np.isfinite(decoded.end))
    assert np.all(decoded.end - decoded.start <= max(DEFAULT_NOTE_SECONDS, 1000))


def test_transpose_wraps_by_octave():
    on, off = PRNN.offset["note_on"], PRNN.offset["note_off"]
    tokens = np.array([on + 0, on + 87, off + 86, PRNN.offset["velocity"] + 3], dtype=np.uint8)
    up = PRNN.transpose(tokens, 2)
    # 87+2 = 89 is out of range -> back an octave to 77; 86+2 = 88 -> 76.
    assert up.tolist() == [on + 2, on + 77, off + 76, PRNN.offset["velocity"] + 3]
    assert up.dtype == np.uint8
    assert PRNN.transpose(tokens, -3).tolist()[:2] == [on + 9, on + 84]


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown codec preset"):
        EventCodec("midi-like")


def test_zero_length_and_duplicate_notes_are_not_encoded():
    # A zero-length note, and the same pitch struck twice at one instant: one note is heard.
    tokens = PRNN.encode(notes((0, 0, 50, 80), (1, 2, 60, 80), (1, 1.5, 60, 80)))
    decoded = PRNN.decode(tokens)
    assert decoded.pitch.tolist() == [60]
    assert decoded.end[0] - decoded.start[0] == pytest.approx(1.0, abs=PRNN.shift_seconds[0])
