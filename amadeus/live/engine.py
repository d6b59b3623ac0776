"""Turn-taking: the player plays a phrase, Amadeus answers, and so on, as one performance that
the model hears from start to end.

Every call takes the time of its event on the caller's clock (seconds), so tests and benchmarks
drive it with a fake one. The player's notes are encoded as they arrive (`phrase.Phrase`, with
the training data's own settings) and fed through the stepper, so when the phrase ends the model
is ready to answer at once. A phrase ends when every key and the sustain pedal have been up for
`silence` seconds, or on a hand-over (a button, the soft pedal). The answer is sampled with
generate.py's rules, `lookahead` seconds ahead of playback, each note with its absolute time; it
lasts as long as the phrase (clamped), or a chosen length, then its notes ring out. The player can
cut in (barge-in): the answer stops there, its sounding notes end, and the model forgets what it
had sampled beyond that instant. `again` plays a new take of the last answer from the state before
it; `undo` returns to that state.
"""

from __future__ import annotations

import time as wall
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from amadeus.data import controls as ctl
from amadeus.data.codec import EventCodec
from amadeus.data.dataset import Settings
from amadeus.data.dynamics import Dynamics
from amadeus.data.midi import SUSTAIN
from amadeus.generate.sampling import Sampler, SamplingRules
from amadeus.live.phrase import Phrase
from amadeus.live.record import Record
from amadeus.live.settings import LiveSettings

SOFT_PEDAL = 67  # CC67 down hands over, as in EleutherAI's Aria demo
MAX_TOKENS_PER_CALL = 2000  # a model that never moves its clock cannot hang a call


@dataclass(frozen=True)
class NoteEvent:
    """An answer note starting (velocity > 0) or ending (velocity 0) at `time`."""

    time: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class AnswerStarted:
    answer: int
    take: int
    phrase_end: float  # the hand-over's time
    compute_ms: float  # wall time from the hand-over call to the first answer note


@dataclass(frozen=True)
class AnswerEnded:
    answer: int
    take: int
    time: float
    notes: int


@dataclass(frozen=True)
class Delayed:
    """The machine was busy: the answer's timeline moved, its notes from here on come `ms`
    later than planned (all of its delays so far), keeping their spacing."""

    answer: int
    take: int
    ms: float


@dataclass(frozen=True)
class Stopped:
    """The answer was cut at `time`: its events after it are void, its sounding notes end."""

    time: float


@dataclass
class Snapshot:
    """What the model knew at one point of an answer: enough to go back there."""

    hidden: Any
    event: np.ndarray  # the next input [1]
    onset: np.ndarray  # the sampler's per-pitch onsets [1, P]
    now: float  # the sampler's clock, model seconds


@dataclass
class Answer:
    called_at: float  # caller's time of the hand-over (or again)
    origin: float  # caller's time of the answer's start
    length: float  # seconds before it stops starting notes
    control: np.ndarray | None  # [1, C] held control, or None
    start: Snapshot  # before the answer: for again and undo
    loudness: float | None = None  # the phrase's mean velocity as played (None: no phrase)
    answer: int = 0
    take: int = 0
    history: list[tuple[float, Snapshot]] = field(default_factory=list)  # (time, after a token)
    delay: float = 0.0  # seconds the timeline moved because notes were computed late
    velocity: int = 64  # the last VELOCITY token's
    notes: int = 0
    called: float = 0.0  # wall clock of the call that started it
    heard: bool = False  # its first note went out

    def at(self, model_now: float) -> float:
        """Caller's time of a model clock reading."""
        return self.origin + model_now - self.start.now


class Engine:
    """One player's session with a model. The stepper may be shared between engines: each keeps
    its own hidden state."""

    def __init__(
        self,
        stepper: Any,
        codec: EventCodec,
        encoding: Settings,
        init_dim: int,
        live: LiveSettings,
        rules: SamplingRules,  # the model's own (its note limit); the settings pick the rest
        seed: int = 0,
        dynamics: Dynamics | None = None,  # the loudness the model knows (None: as played)
    ):
        self.dynamics = dynamics
        self.clock: Callable[[], float] | None = None  # the caller's clock, where it has one
        self.played: list[int] = []  # the velocities of the phrase being played
        self.stepper, self.codec, self.encoding = stepper, codec, encoding
        self.live, self.model_rules = live, rules
        self.rng = np.random.default_rng(seed)
        self.sampler = Sampler(codec, 1, self._rules())
        self.hidden = stepper.initial(np.zeros((1, init_dim), dtype=np.float32))
        self.event = np.array([stepper.start_token])
        self.heard_until: float | None = None  # caller's time the model has heard up to
        self.phrase: Phrase | None = None
        self.answer: Answer | None = None  # while answering
        self.last: Answer | None = None  # the answer `again` and `undo` act on
        self.record = Record()
        self.min_lead = np.inf  # seconds: the least an answer event went out ahead of its time
        self.late_notes = 0  # answer events that went out after their time (none should)
        self.latencies: list[float] = []  # ms from each hand-over call to its first answer note
        self.called = (0.0, wall.perf_counter())  # (caller's time, wall clock) of this call

    def _rules(self) -> SamplingRules:
        return replace(self.model_rules, temperature=self.live.temperature, top_p=self.live.top_p)

    def configure(self, **changes: Any) -> None:
        """New settings (LiveSettings' fields) for what follows."""
        self.live = replace(self.live, **changes)
        self.sampler.use(self._rules())

    @property
    def answering(self) -> bool:
        return self.answer is not None

    # -- the player -----------------------------------------------------------------------------

    def note_on(self, time: float, pitch: int, velocity: int) -> list:
        self._call(time)
        out = self._stop(time) if self.answering else []
        if self.phrase is None:
            origin = time if self.heard_until is None else self.heard_until
            self.phrase, self.played = Phrase(self.codec, self.encoding, origin), []
        heard = velocity if self.dynamics is None else self.dynamics.to_model(velocity)
        self.phrase.press(time, pitch, heard)
        self.played.append(velocity)
        self.record.player_on(time, pitch, velocity)
        return out + self._hear_phrase()

    def note_off(self, time: float, pitch: int) -> list:
        self._call(time)
        self.record.player_off(time, pitch)
        if self.phrase is not None:
            self.phrase.release(time, pitch)
        return self._hear_phrase()

    def pedal(self, time: float, controller: int, value: int) -> list:
        self._call(time)
        if controller == SOFT_PEDAL and value >= 64:
            return self.handover(time)
        if controller == SUSTAIN and self.phrase is not None:
            self.phrase.sustain(time, value)
        return self._hear_phrase()

    def handover(self, time: float) -> list:
        """The phrase ends at `time` and the answer begins."""
        if self.answering:
            return []
        self._call(time)
        phrase, self.phrase = self.phrase, None
        if phrase is not None:
            self._feed(phrase.finish(time))
            self.heard_until = phrase.origin + phrase.latest
        origin = time + self.live.start_delay
        self._feed_pause(origin)
        answer = Answer(
            time,
            origin,
            self.live.answer_seconds or self._as_long_as(phrase),
            self._control_of(phrase),
            self._snapshot(),
            loudness=float(np.mean(self.played)) if phrase is not None else None,
        )
        return self._begin(answer, again=False)

    def again(self, time: float) -> list:
        """A new take of the last answer, from the state before it."""
        previous, out = self._back_before_last(time)
        if previous is None:
            return out
        origin = time + self.live.start_delay
        answer = Answer(
            time, origin, previous.length, previous.control, previous.start, previous.loudness
        )
        return out + self._begin(answer, again=True)

    def undo(self, time: float) -> list:
        """Drops the last answer: the model is back where it was before it."""
        previous, out = self._back_before_last(time)
        if previous is not None:
            self.record.drop()
            self.heard_until, self.last = previous.origin - previous.delay, None  # as planned
        return out

    def _back_before_last(self, time: float) -> tuple[Answer | None, list]:
        """(the last answer, stopped if it still plays; the model restored to before it)."""
        previous = self.answer or self.last
        if previous is None:
            return None, []
        self._call(time)
        out = self._stop(time) if self.answering else []
        self._restore(previous.start)
        return previous, out

    # -- the clock ------------------------------------------------------------------------------

    def tick(self, time: float, heard: float | None = None) -> list:
        """Time passes: a phrase may end by silence; an answer streams up to the lookahead.
        `heard`: the time up to which every player event has surely arrived (default `time`):
        on a busy machine events arrive late, and a phrase must not end before its last note
        came in (it would be answered twice, split in two)."""
        self._call(time)
        if self.answering:
            return self._stream(until=time + self.live.lookahead)
        p = self.phrase
        if p is not None and len(p) and not p.held:
            ends = p.origin + p.latest + self.live.silence
            if min(time, time if heard is None else heard) >= ends:
                return self.handover(ends)
        return []

    # -- hearing --------------------------------------------------------------------------------

    def _hear_phrase(self) -> list:
        if self.phrase is not None:
            self._feed(self.phrase.take_final())
        return []

    def _feed(self, tokens: np.ndarray, control: np.ndarray | None = None) -> None:
        """The model hears tokens: each is the input of the next step."""
        for token in tokens.tolist():
            _, self.hidden = self.stepper.step(self.event, self.hidden, control)
            self.event = np.array([token])
            self.sampler.feed(self.event)

    def _feed_pause(self, until: float) -> None:
        """The pause from what the model heard last to `until`, as time shifts (capped at the
        data's longest silence)."""
        if self.heard_until is not None and until > self.heard_until:
            pause = min(until - self.heard_until, self.encoding.max_silence)
            self._feed(np.array(self.codec.shifts_for(pause), dtype=np.int64))
        self.heard_until = until

    def _as_long_as(self, phrase: Phrase | None) -> float:
        seconds = phrase.latest if phrase is not None else 0.0
        return float(np.clip(seconds, self.live.shortest, self.live.longest))

    def _control_of(self, phrase: Phrase | None) -> np.ndarray | None:
        """[1, C]: the phrase's note density and, loosened by `phrase_keys`, its pitch-class
        histogram, held for the answer."""
        if not self.live.conditioning or phrase is None or len(phrase) == 0:
            return None
        notes = phrase.notes(phrase.latest)
        per_window = len(notes) * ctl.WINDOW_SECONDS / max(phrase.latest, ctl.WINDOW_SECONDS)
        histogram = np.bincount(notes.pitch.astype(np.int64) % 12, minlength=12)
        loose = 1 - self.live.phrase_keys
        return ctl.held(histogram, ctl.density_bin(per_window), loose)[None]

    # -- answering ------------------------------------------------------------------------------

    def _call(self, time: float) -> None:
        self.called = (time, wall.perf_counter())

    def _now(self) -> float:
        """The caller's clock now: its own reading where it gives one (a server's estimate of
        the client's clock: an event's time is when it was sent, not now), else its time at the
        call plus the wall time spent since."""
        if self.clock is not None:
            return self.clock()
        time, began = self.called
        return time + wall.perf_counter() - began

    def _begin(self, answer: Answer, again: bool) -> list:
        answer.take = self.record.new_take(again)
        answer.answer, answer.called = self.record.answers, self.called[1]
        if self.dynamics is not None and self.dynamics.flat:  # before the model's first VELOCITY
            answer.velocity = self._loud(answer, answer.velocity)
        self.answer = answer
        self.sampler.state.closing = False
        # No note of the answer may outlast it by more than the release.
        limit = min(self.model_rules.max_note_seconds or np.inf, answer.length + self.live.release)
        self.sampler.use(replace(self._rules(), max_note_seconds=limit))
        return self._stream(until=None)

    def _stream(self, until: float | None) -> list:
        """Samples the answer up to caller's time `until`; with None, up to its first note
        (and the notes struck with it), wherever that falls, so that it goes out at once."""
        a, state, out = self.answer, self.sampler.state, []
        for _ in range(MAX_TOKENS_PER_CALL):
            if until is None and out:
                until = out[-1].time
            if until is not None and a.at(state.now[0]) > until:
                break
            played = state.now[0] - a.start.now
            state.closing = played >= a.length
            if state.closing and played >= a.length + self.live.release:
                return out + self._release(a) + self._end()
            if state.closing and not np.isfinite(state.onset).any():
                return out + self._end()
            logits, self.hidden = self.stepper.step(self.event, self.hidden, a.control)
            self.event = self.sampler.draw(logits, self.rng)
            snapshot = self._snapshot()
            out += self._sounded(a, int(self.event[0]))  # (may move the timeline)
            a.history.append((a.at(state.now[0]), snapshot))
        return out

    def _sounded(self, a: Answer, token: int) -> list:
        """What the answer's new token means for the listener: notes the limit ended during
        its time shift, or the note it starts or ends, or nothing."""
        pitch0, delay, cap = self.codec.preset.min_pitch, a.delay, self._last_moment(a)
        expired = self.sampler.state.expired
        out = [self._emit(a, min(end, cap), pitch0 + p, 0) for _, p, end in expired]
        kind, value = self.codec.token_kind[token], int(self.codec.token_value[token])
        if kind == "velocity":
            a.velocity = self._loud(a, int(self.codec.velocity_values[value]))
        elif kind in ("note_on", "note_off"):
            velocity = a.velocity if kind == "note_on" else 0
            moment = min(self.sampler.state.now[0], cap)  # a long time shift may overshoot it
            out.append(self._emit(a, moment, pitch0 + value, velocity))
        out = self._announced(a, delay, out)
        if out and not a.heard:  # wall time, not the caller's: what the computation cost
            a.heard = True
            self.latencies.append(1000 * (wall.perf_counter() - a.called))
            out.insert(0, AnswerStarted(a.answer, a.take, a.called_at, self.latencies[-1]))
        return out

    def _last_moment(self, a: Answer) -> float:
        """Model time by which every note of the answer has ended: its length and release."""
        return a.start.now + a.length + self.live.release

    def _loud(self, a: Answer, velocity: int) -> int:
        """The model's velocity on the player's scale: a soft phrase gets a soft answer."""
        if self.dynamics is None or (self.dynamics.flat and a.loudness is None):
            return velocity
        return self.dynamics.to_player(velocity, a.loudness or 0.0)

    def _release(self, a: Answer) -> list:
        """The answer's release is over: its notes still sounding end then, as the model hears."""
        state, pitch0, delay = self.sampler.state, self.codec.preset.min_pitch, a.delay
        sounding = np.flatnonzero(np.isfinite(state.onset[0])).tolist()
        out = [self._emit(a, self._last_moment(a), pitch0 + p, 0) for p in sounding]
        offs = [self.codec.ranges["note_off"].start + p for p in sounding]
        self._feed(np.array(offs, dtype=np.int64), a.control)
        return self._announced(a, delay, out)

    def _announced(self, a: Answer, delay_before: float, out: list) -> list:
        """`out`, after a `Delayed` when emitting it moved the answer's timeline."""
        return ([Delayed(a.answer, a.take, 1000 * a.delay)] if a.delay > delay_before else []) + out

    def _emit(self, a: Answer, model_time: float, pitch: int, velocity: int) -> NoteEvent:
        """The answer event at `model_time`, on the caller's clock; one computed too late to go
        out `min_lead` ahead of its time moves the answer's timeline instead of sounding late."""
        at = a.at(model_time)
        late = self._now() + self.live.min_lead - at
        if late > 0:  # moved a little further, so that the notes after it need not move again
            late += self.live.min_lead / 2
            a.origin, a.delay, at = a.origin + late, a.delay + late, at + late
        note = NoteEvent(float(at), pitch, velocity)
        self.record.answer_note(note.time, note.pitch, note.velocity)
        a.notes += velocity > 0
        lead = at - self._now()
        self.min_lead, self.late_notes = min(self.min_lead, lead), self.late_notes + (lead < 0)
        return note

    def _end(self) -> list:
        a = self.answer
        self.answer, self.last = None, a
        self.sampler.use(self._rules())
        self.heard_until = a.at(self.sampler.state.now[0])
        a.history.clear()
        return [AnswerEnded(a.answer, a.take, self.heard_until, a.notes)]

    def _stop(self, time: float) -> list:
        """Cuts the answer at `time`: back to the state after its last token at or before it,
        then its sounding notes end there, as the model hears them."""
        a = self.answer
        kept = [(t, snapshot) for t, snapshot in a.history if t <= time]
        at, snapshot = kept[-1] if kept else (a.origin - a.delay, a.start)  # as the model knew it
        self._restore(snapshot)
        self.record.cut(time)
        sounding = np.flatnonzero(np.isfinite(self.sampler.state.onset[0]))
        pause = max(time - at, 0.0)
        offs = [self.codec.ranges["note_off"].start + int(p) for p in sounding]
        self._feed(np.array(self.codec.shifts_for(pause) + offs, dtype=np.int64), a.control)
        self.answer, self.last, self.heard_until = None, a, time
        self.sampler.use(self._rules())
        a.history.clear()
        return [Stopped(time)]

    def _snapshot(self) -> Snapshot:
        s = self.sampler.state
        return Snapshot(self.hidden, self.event, s.onset.copy(), float(s.now[0]))

    def _restore(self, snapshot: Snapshot) -> None:
        self.hidden, self.event = snapshot.hidden, snapshot.event
        s = self.sampler.state
        s.onset, s.now = snapshot.onset.copy(), np.array([snapshot.now])
