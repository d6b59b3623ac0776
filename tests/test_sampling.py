"""The sampling rules: only valid events, notes that end by the limit, nucleus sampling, a piece
that closes, and the state that follows each row (and each beam)."""

import numpy as np
import pytest

from amadeus.data.codec import EventCodec
from amadeus.generate.sampling import PerformanceState, Sampler, SamplingRules, nucleus, pick

CODEC = EventCodec("prnn")
ON, OFF = CODEC.ranges["note_on"], CODEC.ranges["note_off"]
SHIFT, VELOCITY = CODEC.ranges["time_shift"], CODEC.ranges["velocity"]


def on(pitch):
    return ON.start + pitch - 21


def off(pitch):
    return OFF.start + pitch - 21


def shift_of(seconds):
    """The largest time shift not above `seconds`."""
    return SHIFT.start + int(np.searchsorted(CODEC.shift_seconds, seconds, side="right") - 1)


def state(rules=None, rows=1, tokens=()):
    s = PerformanceState(CODEC, rows, rules or SamplingRules())
    for token in tokens:
        s.feed(np.full(rows, token))
    return s


def test_only_sounding_pitches_may_end_and_only_silent_ones_start():
    mask = state(tokens=[on(60), on(64)]).allowed()[0]
    assert np.flatnonzero(mask[OFF.start : OFF.stop]).tolist() == [60 - 21, 64 - 21]
    assert not mask[on(60)] and not mask[on(64)] and mask[on(61)]
    assert mask[SHIFT.start : SHIFT.stop].all() and mask[VELOCITY.start : VELOCITY.stop].all()
    assert state(SamplingRules(valid_only=False), tokens=[on(60)]).allowed().all()


def test_a_note_ends_at_the_limit_in_the_state_and_in_the_decoder_alike():
    rules = SamplingRules(max_note_seconds=1.0)
    s = state(rules, tokens=[on(60), shift_of(0.6)])
    assert s.expired == [] and np.isfinite(s.onset[0, 60 - 21])
    s.feed(np.array([shift_of(0.6)]))  # 1.2 s: past the limit
    assert s.expired == [(0, 60 - 21, pytest.approx(1.0))]
    assert not np.isfinite(s.onset).any()
    assert s.allowed()[0, on(60)] and not s.allowed()[0, off(60)]  # struck again, not released
    tokens = [on(60), shift_of(0.6), shift_of(0.6), on(64), off(60), shift_of(0.5), off(64)]
    notes, skipped = CODEC.decode_counted(np.array(tokens), max_note_seconds=1.0)
    held = CODEC.token_seconds[shift_of(0.5)]
    np.testing.assert_allclose(notes.end - notes.start, [1.0, held])
    assert skipped == {"note cut at the limit": 1, "orphan note-off": 1}
    free, _ = CODEC.decode_counted(np.array(tokens))
    assert (free.end - free.start).max() > 1.1  # without the limit it sounds on


def test_sampling_under_the_limit_never_holds_a_note_longer():
    rng = np.random.default_rng(0)
    sampler = Sampler(CODEC, 8, SamplingRules(max_note_seconds=0.5))
    tokens = np.stack([sampler.draw(rng.normal(size=(8, CODEC.size)), rng) for _ in range(600)])
    for row in tokens.T:
        notes, skipped = CODEC.decode_counted(row, max_note_seconds=0.5)
        assert (notes.end - notes.start).max() <= 0.5 + 1e-9
        assert skipped.get("note-on over a sounding note", 0) == 0
        # a note-off after the limit cut its note is an orphan; none other is drawn
        assert skipped.get("orphan note-off", 0) <= skipped.get("note cut at the limit", 0)


def test_closing_starts_no_note():
    s = state(tokens=[on(60)])
    s.closing = True
    mask = s.allowed()[0]
    assert not mask[ON.start : ON.stop].any() and not mask[VELOCITY.start : VELOCITY.stop].any()
    assert mask[off(60)] and mask[SHIFT.start : SHIFT.stop].all()


def test_nucleus_keeps_the_smallest_set_holding_top_p():
    p = np.array([[0.5, 0.3, 0.15, 0.05], [0.25, 0.25, 0.25, 0.25]])
    np.testing.assert_array_equal(nucleus(p, 0.8), [[0.5, 0.3, 0, 0], [0.25, 0.25, 0.25, 0.25]])
    np.testing.assert_array_equal(nucleus(p, 0.81)[0], [0.5, 0.3, 0.15, 0])
    assert (nucleus(p, 1.0) == p).all()


def test_pick_draws_only_from_the_nucleus_in_proportion():
    logits = np.log(np.tile([0.5, 0.3, 0.15, 0.05], (60_000, 1)))
    picked = pick(logits, np.random.default_rng(1), SamplingRules(top_p=0.75))
    freq = np.bincount(picked, minlength=4) / len(picked)
    np.testing.assert_allclose(freq, [0.625, 0.375, 0, 0], atol=0.01)


def test_a_forbidden_event_is_never_drawn():
    logits = np.zeros((5000, 4))
    logits[:, 2] = -np.inf
    picked = pick(logits, np.random.default_rng(2), SamplingRules(temperature=2.0))
    assert 2 not in picked and set(picked) == {0, 1, 3}


def test_beams_carry_their_rows_state():
    sampler = Sampler(CODEC, 2, SamplingRules())
    sampler.feed(np.array([on(60), on(70)]))
    sampler.take(np.array([1, 1, 0]))
    assert sampler.rows == 3
    sounding = np.isfinite(sampler.state.onset)
    assert [np.flatnonzero(r).tolist() for r in sounding] == [[49], [49], [39]]


def test_constraints_need_the_codec():
    with pytest.raises(ValueError, match="need the codec"):
        Sampler(None, 1, SamplingRules())
    assert Sampler(None, 1, SamplingRules(valid_only=False)).state is None
