"""The live engine with a fake clock: the phrase heard live is the phrase encoded at once, phrase
ends (silence, pedal, hand-over), answers streamed ahead of playback, barge-in, takes and undo,
conditioning from the phrase, and the session's export."""

import io
import time

import midi_factory as mf
import mido
import numpy as np
import pretty_midi
import pytest
import symusic
import torch

from amadeus.data import controls as ctl
from amadeus.data.codec import EventCodec
from amadeus.data.dataset import Settings
from amadeus.data.encoding import encode_file
from amadeus.generate.sampling import SamplingRules
from amadeus.generate.search import begin
from amadeus.live.engine import AnswerEnded, AnswerStarted, Delayed, Engine, NoteEvent, Stopped
from amadeus.live.settings import LiveSettings
from amadeus.model.network import PerformanceRNN
from amadeus.model.stepper import NumpyStepper

CODEC, SETTINGS = EventCodec("prnn"), Settings()
RULES = SamplingRules(max_note_seconds=3.0)  # the model's own, as the instrument gives them
TICK = 1 / 960  # seconds, at midi_factory's 480 ticks a quarter and 120 bpm


@pytest.fixture(scope="module")
def stepper():
    torch.manual_seed(0)
    return NumpyStepper(PerformanceRNN(240, 24, 8, 32, 2).eval())


def engine(stepper, **live) -> Engine:
    return Engine(
        stepper, CODEC, SETTINGS, 8, LiveSettings(**live), SamplingRules(max_note_seconds=3)
    )


def performance(seed: int, notes: int = 40):
    """Random playing on a tick grid: chords, repeated keys, overlapping hands, and the sustain
    pedal pressed and lifted mid-phrase. Notes (start, end, pitch, velocity) and pedal (down,
    up) in ticks; no key pressed while it is down, as on a keyboard."""
    rng = np.random.default_rng(seed)
    out, free_at = [], {}
    t = 0
    for _ in range(notes):  # the first at tick 0: the phrase starts with its first note
        pitch = int(rng.integers(40, 80))
        if free_at.get(pitch, -1) <= t:
            end = t + int(rng.choice([30, 120, 240, 600, 1500]))
            out.append((t, end, pitch, int(rng.integers(20, 127))))
            free_at[pitch] = end + 1
        t += int(rng.choice([0, 0, 60, 120, 240, 480]))  # 0: a chord
    last = max(end for _, end, _, _ in out)
    pedal = [(240, 1200), (1700, last + 300)]
    return out, pedal


def timed_events(notes, pedal):
    """The performance as (seconds, kind, args), in the file's order at equal times."""
    events = []
    for down, up in pedal:
        events += [(down, 2, "pedal", (64, 127)), (up, 2, "pedal", (64, 0))]
    for start, end, pitch, velocity in notes:
        events += [(start, 3, "on", (pitch, velocity)), (end, 2, "off", (pitch,))]
    events.sort(key=lambda e: e[:2])
    return [(tick * TICK, kind, args) for tick, _, kind, args in events]


def play(e: Engine, events, start: float = 0.0) -> list:
    out = []
    for seconds, kind, args in events:
        t = start + seconds
        out += e.tick(t)
        if kind == "on":
            out += e.note_on(t, *args)
        elif kind == "off":
            out += e.note_off(t, *args)
        else:
            out += e.pedal(t, *args)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_phrase_heard_live_is_the_phrase_read_as_a_file(stepper, tmp_path, seed):
    notes, pedal = performance(seed)
    path = mf.write_midi(tmp_path / "phrase.mid", notes, pedal=pedal)
    at_once = encode_file(path, CODEC, SETTINGS).tokens.astype(np.int64)

    e = engine(stepper, silence=0.5)
    events = timed_events(notes, pedal)
    play(e, events)
    end = events[-1][0]
    e.handover(end)  # after the pedal lifts: the phrase is over
    pause = CODEC.shifts_for(e.live.start_delay)
    want_hidden, want_event = begin(stepper, np.zeros((1, 8), np.float32), [*at_once, *pause])
    start = e.last.start if e.answer is None else e.answer.start
    assert np.array_equal(start.hidden, want_hidden)  # bit for bit
    assert np.array_equal(start.event, want_event)


def test_a_phrase_ends_after_the_silence_once_keys_and_pedal_are_up(stepper):
    e = engine(stepper, silence=0.8)
    e.note_on(0.0, 60, 80)
    e.pedal(0.2, 64, 127)
    e.note_off(0.5, 60)
    assert e.tick(2.0) == [] and e.phrase is not None  # the pedal still holds the note
    e.pedal(2.5, 64, 0)
    assert e.tick(3.2) == []  # 0.7 s of silence
    out = e.tick(3.31)
    assert e.answering or e.last is not None
    assert isinstance(out[0], AnswerStarted) and out[0].phrase_end == pytest.approx(3.3)


def test_hand_over_and_soft_pedal_end_the_phrase_at_once(stepper):
    for hand_over in (lambda e: e.handover(0.3), lambda e: e.pedal(0.3, 67, 127)):
        e = engine(stepper)
        e.note_on(0.0, 60, 80)  # still held: the hand-over ends it
        out = hand_over(e)
        assert isinstance(out[0], AnswerStarted) and out[0].phrase_end == 0.3
        assert isinstance(out[1], NoteEvent) and out[1].time >= 0.3 + e.live.start_delay - 1e-9
        answer = e.answer or e.last
        assert not np.isfinite(answer.start.onset).any()  # the model heard the held key end


def answer_to_end(e: Engine, start: float, step: float = 0.05) -> tuple[list, float]:
    out, t = [], start
    while e.answering and t < start + 60:
        t += step
        out += e.tick(t)
    return out, t


def test_the_answer_streams_ahead_of_playback_and_lasts_as_long_as_the_phrase(stepper):
    e = engine(stepper, lookahead=0.5)
    play(e, timed_events(*performance(4, notes=12)))
    phrase_seconds = e.phrase.latest
    out = e.handover(10.0)
    more, _ = answer_to_end(e, 10.0)
    out += more
    notes = [o for o in out if isinstance(o, NoteEvent)]
    ended = [o for o in out if isinstance(o, AnswerEnded)]
    assert len(ended) == 1 and ended[0].notes == sum(n.velocity > 0 for n in notes) > 0
    assert e.min_lead >= 0  # never behind the clock
    times = [n.time for n in notes]
    assert times == sorted(times) and times[0] >= 10.0 + e.live.start_delay
    onsets = [n.time for n in notes if n.velocity]
    length = np.clip(phrase_seconds, e.live.shortest, e.live.longest)
    assert max(onsets) <= 10.0 + e.live.start_delay + length  # no note starts after its length
    assert ended[0].time >= max(times)  # its notes rang out first


def test_barge_in_stops_the_answer_and_ends_its_notes(stepper):
    e = engine(stepper, answer_seconds=8.0)
    e.note_on(0.0, 60, 90)
    e.note_off(0.4, 60)
    out = e.handover(0.5)
    t = 0.5
    while t < 3.0:
        t += 0.05
        out += e.tick(t)
    cut = e.note_on(3.0, 64, 70)
    assert cut[0] == Stopped(3.0) and not e.answering
    assert not np.isfinite(e.sampler.state.onset).any()  # the model heard every note end
    amadeus = e.record.tracks()[1][1]
    assert len(amadeus) and amadeus.end.max() <= 3.0 - e.record.origin + 1e-9
    assert e.phrase is not None and e.phrase.origin == 3.0


def test_again_is_a_new_take_from_the_same_state_and_undo_returns_to_it(stepper):
    e = engine(stepper, answer_seconds=2.0)
    e.note_on(0.0, 60, 90)
    e.note_off(0.4, 60)
    first = e.handover(0.5)
    before = e.answer.start
    answer_to_end(e, 0.5)
    second = e.again(5.0)
    assert (first[0].take, second[0].take) == (1, 2) and second[0].answer == 1
    assert e.answer.start is before
    answer_to_end(e, 5.0)
    kept, other = e.record.tracks()[1][1], e.record.tracks()[2][1]
    assert len(kept) and len(other)  # the second take stands, the first is kept aside
    e.undo(10.0)
    assert np.array_equal(e.hidden, before.hidden) and np.array_equal(e.event, before.event)
    assert len(e.record.tracks()[1][1]) == 0  # no take of answer 1 stands now


def test_the_answer_is_conditioned_on_the_phrase(stepper):
    e = engine(stepper, conditioning=True)
    for i, pitch in enumerate([60, 64, 67, 72]):  # C major, 4 notes in 2 s
        e.note_on(0.5 * i, pitch, 80)
        e.note_off(0.5 * i + 0.4, pitch)
    e.handover(2.5)
    histogram = np.zeros(12)
    histogram[[0, 4, 7]] = [2, 1, 1]
    want = ctl.held(histogram, ctl.density_bin(4 * ctl.WINDOW_SECONDS / 1.9), even_share=0.5)
    np.testing.assert_array_equal(e.answer.control[0], want)
    keys = e.answer.control[0][ctl.DENSITY_DIM :]  # half the phrase's (2, 1, 1 of 4), half even
    np.testing.assert_allclose(
        keys[[0, 4, 7, 1]], [0.25 + 1 / 24, 0.125 + 1 / 24, 0.125 + 1 / 24, 1 / 24], rtol=1e-6
    )
    assert keys.sum() == pytest.approx(1.0, abs=1e-6)
    off = engine(stepper, conditioning=False)
    off.note_on(0.0, 60, 80)
    off.handover(0.5)
    assert off.answer.control is None


def test_export_holds_both_tracks_and_reads_in_three_libraries(stepper, tmp_path):
    e = engine(stepper, answer_seconds=2.0)
    play(e, timed_events(*performance(5, notes=8)), start=1.0)
    e.handover(6.0)
    answer_to_end(e, 6.0)
    e.again(12.0)
    answer_to_end(e, 12.0)
    data = e.record.midi_bytes()
    path = tmp_path / "session.mid"
    path.write_bytes(data)
    score = symusic.Score.from_midi(data)
    names = [t.name for t in score.tracks]
    assert names == ["player", "Amadeus", "Amadeus, other takes"]
    assert all(len(t.notes) for t in score.tracks)
    assert [m.text for m in score.markers] == ["answer 1, take 1", "answer 1, take 2"]
    assert len(pretty_midi.PrettyMIDI(io.BytesIO(data)).instruments) == 3
    named = [m.name for t in mido.MidiFile(path).tracks for m in t if m.type == "track_name"]
    assert named == names


class SlowStepper:
    """The same model, `seconds` slower a step: a machine whose cores another process holds."""

    def __init__(self, stepper, seconds: float):
        self.stepper, self.seconds = stepper, seconds
        self.start_token, self.event_dim = stepper.start_token, stepper.event_dim

    def initial(self, init):
        return self.stepper.initial(init)

    def step(self, *args):
        time.sleep(self.seconds)
        return self.stepper.step(*args)


def planned_notes(e: Engine, handover_at: float) -> tuple[list, float]:
    """A three-note phrase handed over at `handover_at`, the answer played to its end in real
    time: ((pitch, velocity, time as planned) of each note, the answer's delay in seconds). The
    planned time is the time sent less the delay announced before it."""
    for i, pitch in enumerate((60, 64, 67)):
        e.note_on(handover_at - 0.6 + 0.2 * i, pitch, 80)
        e.note_off(handover_at - 0.5 + 0.2 * i, pitch)
    out = e.handover(handover_at)
    began = time.perf_counter()
    while e.answering:
        out += e.tick(handover_at + time.perf_counter() - began)
    notes, delay = [], 0.0
    for item in out:
        if isinstance(item, Delayed):
            assert item.ms / 1000 >= delay  # the timeline only ever moves later
            delay = item.ms / 1000
        elif isinstance(item, NoteEvent):
            notes.append((item.pitch, item.velocity, item.time - delay))
    return notes, delay


def test_a_busy_machine_moves_the_answer_later_and_never_sends_a_note_late(stepper):
    live = dict(answer_seconds=0.5, release=0.2, lookahead=0.2)
    quick, _ = planned_notes(engine(stepper, **live), 10.0)
    e = engine(SlowStepper(stepper, 0.03), **live)  # slower than the music it computes
    slow, delay = planned_notes(e, 10.0)
    assert delay > 0.1  # the first note alone took longer than the start delay
    assert [n[:2] for n in slow] == [n[:2] for n in quick]  # the same music...
    np.testing.assert_allclose([n[2] for n in slow], [n[2] for n in quick], atol=1e-6)  # spacing
    assert e.min_lead >= e.live.min_lead - 1e-3  # ...and every note went out ahead of its time


def test_a_phrase_does_not_end_before_its_late_notes_arrived(stepper):
    """The server's tick comes after the silence, but a note played before it is still on its
    way (a busy machine): the phrase waits for it, and is answered once."""
    e = engine(stepper, silence=0.5)
    e.note_on(0.0, 60, 80)
    e.note_off(0.2, 60)
    assert e.tick(0.8, heard=0.6) == [] and e.phrase is not None  # 0.7 s: not all heard yet
    e.note_on(0.65, 64, 80)  # played before the silence ended, arrives now
    e.note_off(0.7, 64)
    assert e.tick(1.1, heard=1.1) == []
    out = e.tick(1.3, heard=1.3)
    starts = [o for o in out if isinstance(o, AnswerStarted)]
    assert len(starts) == 1 and starts[0].phrase_end == pytest.approx(1.2)


def test_an_answer_ends_within_its_release(stepper):
    e = engine(stepper, answer_seconds=2.0, release=0.3)
    e.note_on(0.0, 60, 80)
    out = e.handover(0.5)
    out += answer_to_end(e, 0.5)[0]
    origin = 0.5 + e.live.start_delay + e.last.delay  # (later if this machine was busy)
    ends = [o.time for o in out if isinstance(o, NoteEvent) and o.velocity == 0]
    assert ends and max(ends) <= origin + 2.3 + 1e-6  # 2 s, then at most 0.3 s of release
    assert e.sampler.rules.max_note_seconds == 3.0  # the model's own limit again after it


def test_the_note_limit_fits_the_answer_while_it_plays(stepper):
    e = engine(stepper, answer_seconds=1.0, release=0.5)
    e.note_on(0.0, 60, 80)
    e.handover(0.5)
    assert e.answering or e.last is not None
    if e.answering:  # the performance state ends notes at the answer's length and release
        assert e.sampler.state.rules.max_note_seconds == e.sampler.rules.max_note_seconds == 1.5
    answer_to_end(e, 0.5)
    assert e.sampler.state.rules.max_note_seconds == 3.0  # the model's own limit again


def test_undo_after_a_moved_answer_keeps_the_next_phrase_in_time(stepper):
    e = engine(SlowStepper(stepper, 0.03), answer_seconds=0.5, release=0.2, lookahead=0.2)
    planned_notes(e, 10.0)  # an answer whose timeline moved
    assert e.last.delay > 0
    e.undo(20.0)
    assert e.heard_until == pytest.approx(10.0 + e.live.start_delay)  # where the model was
