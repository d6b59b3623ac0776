// Turn-taking (amadeus/live/engine.py): the player plays a phrase, Amadeus answers, and so on,
// as one performance that the model hears from start to end.
//
// Every call takes the time of its event on the caller's clock (seconds). The player's notes are
// encoded as they arrive (phrase.js, with the training data's own settings) and fed through the
// stepper, so when the phrase ends the model is ready to answer at once. A phrase ends when every
// key and the sustain pedal have been up for `silence` seconds, or on a hand-over (a button, the
// soft pedal). The answer is sampled `lookahead` seconds ahead of playback, each note with its
// time; it lasts as long as the phrase (clamped) or a chosen length, then its notes ring out.
// The player can cut in (barge-in): the answer stops there and the model forgets what it had
// sampled beyond that instant. `again` plays a new take of the last answer from the state before
// it; `undo` returns to that state.
//
// Outputs are plain objects, nearly the protocol's messages: {type: "note", time, pitch,
// velocity} (velocity 0 ends a note), "answer", "answer_end", "delayed", "stopped".
// The stepper: initial() -> Float32Array, async step(event, hidden, control) -> {logits,
// hidden}; it must return a new hidden array each step (snapshots keep the old ones).

import { Codec } from "./codec.js";
import { phraseControl } from "./controls.js";
import { Dynamics } from "./dynamics.js";
import { clamp } from "./numeric.js";
import { Phrase } from "./phrase.js";
import { Record } from "./record.js";
import { Sampler, seeded } from "./sampling.js";

const wallClock = () => performance.now() / 1000;

export class Engine {
  // `clock`: the caller's clock, where it has one; else its time at each call plus the wall
  // time spent since (`wall`, seconds, any origin). `budget`: wall seconds a call may spend
  // sampling the answer before it returns what it has, the first note alone (Infinity: the
  // Python engine's calls, which sample all they can); the caller then calls `tick` again at
  // once while `pending`, so notes go out as they are sampled and a barge-in never waits long.
  constructor(
    stepper,
    manifest,
    { seed = 0, live = manifest.live.defaults, clock = null, wall = wallClock, budget = Infinity } = {},
  ) {
    this.manifest = manifest;
    this.stepper = stepper;
    this.codec = new Codec(manifest.codec);
    this.encoding = manifest.encoding;
    this.dynamics = manifest.dynamics && new Dynamics(manifest.dynamics); // null: as played
    this.live = { ...live };
    this.modelRules = manifest.rules; // the model's own (its note limit); the settings pick the rest
    this.random = seeded(seed);
    this.sampler = new Sampler(this.codec, this.rules());
    this.hidden = stepper.initial();
    this.event = this.codec.startToken;
    this.clock = clock;
    this.wall = wall;
    this.played = []; // the velocities of the phrase being played
    this.heardUntil = null; // caller's time the model has heard up to
    this.phrase = null;
    this.answer = null; // while answering
    this.last = null; // the answer `again` and `undo` act on
    this.record = new Record();
    this.minLead = Infinity; // seconds: the least an answer event went out ahead of its time
    this.lateNotes = 0; // answer events that went out after their time (none should)
    this.latencies = []; // ms from each hand-over call to its first answer note
    this.called = [0, wall()]; // (caller's time, wall clock) of this call
    this.budget = budget;
    this.cut = false; // the last stream stopped for its budget
  }

  rules() {
    return { ...this.modelRules, temperature: this.live.temperature, top_p: this.live.top_p };
  }

  // New settings (the live settings' names) for what follows.
  configure(changes) {
    this.live = { ...this.live, ...changes };
    this.sampler.use(this.rules());
  }

  get answering() {
    return this.answer !== null;
  }

  // The answer's last call stopped for its budget: more of it is due now.
  get pending() {
    return this.answering && this.cut;
  }

  // -- the player -------------------------------------------------------------------------------

  async noteOn(time, pitch, velocity) {
    this.call(time);
    const out = this.answering ? await this.stop(time) : [];
    if (this.phrase === null) {
      const origin = this.heardUntil ?? time;
      this.phrase = new Phrase(this.codec, this.encoding, origin);
      this.played = [];
    }
    this.phrase.press(time, pitch, this.dynamics ? this.dynamics.toModel(velocity) : velocity);
    this.played.push(velocity);
    this.record.playerOn(time, pitch, velocity);
    return out.concat(await this.hearPhrase());
  }

  async noteOff(time, pitch) {
    this.call(time);
    this.record.playerOff(time, pitch);
    if (this.phrase !== null) this.phrase.release(time, pitch);
    return this.hearPhrase();
  }

  async pedal(time, controller, value) {
    this.call(time);
    const e = this.manifest.engine;
    if (controller === e.soft_pedal && value >= 64) return this.handover(time);
    if (controller === e.sustain_pedal && this.phrase !== null) this.phrase.sustain(time, value);
    return this.hearPhrase();
  }

  // The phrase ends at `time` and the answer begins.
  async handover(time) {
    if (this.answering) return [];
    this.call(time);
    const phrase = this.phrase;
    this.phrase = null;
    if (phrase !== null) {
      await this.feed(phrase.finish(time));
      this.heardUntil = phrase.origin + phrase.latest;
    }
    const origin = time + this.live.start_delay;
    await this.feedPause(origin);
    const length = this.live.answer_seconds || this.asLongAs(phrase);
    const loudness = phrase !== null ? this.played.reduce((a, b) => a + b, 0) / this.played.length : null;
    const answer = this.newAnswer(time, origin, length, this.controlOf(phrase), this.snapshot(), loudness);
    return this.begin(answer, false);
  }

  // A new take of the last answer, from the state before it.
  async again(time) {
    const [previous, out] = await this.backBeforeLast(time);
    if (previous === null) return out;
    const origin = time + this.live.start_delay;
    const answer = this.newAnswer(time, origin, previous.length, previous.control, previous.start, previous.loudness);
    return out.concat(await this.begin(answer, true));
  }

  // Drops the last answer: the model is back where it was before it.
  async undo(time) {
    const [previous, out] = await this.backBeforeLast(time);
    if (previous !== null) {
      this.record.drop();
      this.heardUntil = previous.origin - previous.delay; // as planned
      this.last = null;
    }
    return out;
  }

  // [the last answer (stopped if it still plays), outputs]; the model restored to before it.
  async backBeforeLast(time) {
    const previous = this.answer ?? this.last;
    if (previous === null) return [null, []];
    this.call(time);
    const out = this.answering ? await this.stop(time) : [];
    this.restore(previous.start);
    return [previous, out];
  }

  // -- the clock --------------------------------------------------------------------------------

  // Time passes: a phrase may end by silence; an answer streams up to the lookahead. `heard`:
  // the time up to which every player event has surely arrived (a phrase must not end before
  // its last note came in).
  async tick(time, heard = time) {
    this.call(time);
    if (this.answering) return this.stream(time + this.live.lookahead);
    const p = this.phrase;
    if (p !== null && p.length && !p.held) {
      const ends = p.origin + p.latest + this.live.silence;
      if (Math.min(time, heard) >= ends) return this.handover(ends);
    }
    return [];
  }

  // -- hearing ----------------------------------------------------------------------------------

  async hearPhrase() {
    if (this.phrase !== null) await this.feed(this.phrase.takeFinal());
    return [];
  }

  // The model hears tokens: each is the input of the next step.
  async feed(tokens, control = null) {
    for (const token of tokens) {
      this.hidden = (await this.stepper.step(this.event, this.hidden, control)).hidden;
      this.event = token;
      this.sampler.feed(token);
    }
  }

  // The pause from what the model heard last to `until`, as time shifts (capped at the data's
  // longest silence).
  async feedPause(until) {
    if (this.heardUntil !== null && until > this.heardUntil) {
      const pause = Math.min(until - this.heardUntil, this.encoding.max_silence);
      await this.feed(this.codec.shiftsFor(pause));
    }
    this.heardUntil = until;
  }

  asLongAs(phrase) {
    return clamp(phrase !== null ? phrase.latest : 0, this.live.shortest, this.live.longest);
  }

  // [C]: the phrase's note density and, loosened by phrase_keys, its pitch-class histogram,
  // held for the answer.
  controlOf(phrase) {
    if (!this.live.conditioning || phrase === null || phrase.length === 0) return null;
    const notes = phrase.notes(phrase.latest);
    return phraseControl(this.manifest.controls, notes, phrase.latest, this.live.phrase_keys);
  }

  // -- answering --------------------------------------------------------------------------------

  call(time) {
    this.called = [time, this.wall()];
  }

  // The caller's clock now: its own reading where it gives one, else its time at the call plus
  // the wall time spent since.
  now() {
    if (this.clock !== null) return this.clock();
    const [time, began] = this.called;
    return time + this.wall() - began;
  }

  newAnswer(calledAt, origin, length, control, start, loudness) {
    return {
      calledAt, // caller's time of the hand-over (or again)
      origin, // caller's time of the answer's start
      length, // seconds before it stops starting notes
      control, // held control, or null
      start, // the snapshot before the answer: for again and undo
      loudness, // the phrase's mean velocity as played (null: no phrase)
      answer: 0,
      take: 0,
      history: [], // [time, snapshot after a token]
      delay: 0, // seconds the timeline moved because notes were computed late
      velocity: this.codec.table.default_velocity, // the last VELOCITY token's
      notes: 0,
      called: 0, // wall clock of the call that started it
      heard: false, // its first note went out
    };
  }

  // Caller's time of a model clock reading.
  at(a, modelNow) {
    return a.origin + modelNow - a.start.now;
  }

  async begin(answer, again) {
    answer.take = this.record.newTake(again);
    answer.answer = this.record.answers;
    answer.called = this.called[1];
    if (this.dynamics?.flat) answer.velocity = this.loud(answer, answer.velocity); // before any VELOCITY
    this.answer = answer;
    this.sampler.state.closing = false;
    // No note of the answer may outlast it by more than the release.
    const limit = Math.min(this.modelRules.max_note_seconds || Infinity, answer.length + this.live.release);
    this.sampler.use({ ...this.rules(), max_note_seconds: limit });
    return this.stream(null);
  }

  // Samples the answer up to caller's time `until`; with null, up to its first note (and the
  // notes struck with it), wherever that falls, so that it goes out at once.
  // With a budget, a call returns at its first note, or once the budget is spent.
  async stream(until) {
    const a = this.answer;
    const state = this.sampler.state;
    const budgeted = this.budget < Infinity;
    let out = [];
    this.cut = false;
    for (let i = 0; i < this.manifest.engine.max_tokens_per_call; i++) {
      if (budgeted && (until === null ? out.length : i > 0 && this.wall() - this.called[1] > this.budget)) {
        this.cut = true;
        break;
      }
      if (until === null && out.length) until = out[out.length - 1].time;
      if (until !== null && this.at(a, state.now) > until) break;
      const played = state.now - a.start.now;
      state.closing = played >= a.length;
      if (state.closing && played >= a.length + this.live.release) {
        return out.concat(await this.release(a), this.end());
      }
      if (state.closing && !state.sounding.some(Boolean)) return out.concat(this.end());
      const { logits, hidden } = await this.stepper.step(this.event, this.hidden, a.control);
      this.hidden = hidden;
      this.event = this.sampler.draw(logits, this.random);
      const snapshot = this.snapshot();
      out = out.concat(this.sounded(a, this.event)); // (may move the timeline)
      a.history.push([this.at(a, state.now), snapshot]);
    }
    return out;
  }

  // What the answer's new token means for the listener: notes the limit ended during its time
  // shift, or the note it starts or ends, or nothing.
  sounded(a, token) {
    const pitch0 = this.codec.minPitch;
    const delay = a.delay;
    const cap = this.lastMoment(a);
    const state = this.sampler.state;
    let out = state.expired.map(([p, end]) => this.emit(a, Math.min(end, cap), pitch0 + p, 0));
    const kind = this.codec.tokenKind[token];
    const value = this.codec.tokenValue[token];
    if (kind === "velocity") a.velocity = this.loud(a, this.codec.velocityValues[value]);
    else if (kind === "note_on" || kind === "note_off") {
      const moment = Math.min(state.now, cap); // a long time shift may overshoot it
      out.push(this.emit(a, moment, pitch0 + value, kind === "note_on" ? a.velocity : 0));
    }
    out = this.announced(a, delay, out);
    if (out.length && !a.heard) {
      a.heard = true; // wall time, not the caller's: what the computation cost
      this.latencies.push(1000 * (this.wall() - a.called));
      const ms = this.latencies[this.latencies.length - 1];
      out.unshift({ type: "answer", answer: a.answer, take: a.take, phrase_end: a.calledAt, compute_ms: ms });
    }
    return out;
  }

  // Model time by which every note of the answer has ended: its length and release.
  lastMoment(a) {
    return a.start.now + a.length + this.live.release;
  }

  // The model's velocity on the player's scale: a soft phrase gets a soft answer.
  loud(a, velocity) {
    if (this.dynamics === null || (this.dynamics.flat && a.loudness === null)) return velocity;
    return this.dynamics.toPlayer(velocity, a.loudness || 0);
  }

  // The answer's release is over: its notes still sounding end then, as the model hears.
  async release(a) {
    const delay = a.delay;
    const sounding = this.soundingPitches();
    const out = sounding.map((p) => this.emit(a, this.lastMoment(a), this.codec.minPitch + p, 0));
    await this.feed(sounding.map((p) => this.codec.ranges.note_off.start + p), a.control);
    return this.announced(a, delay, out);
  }

  soundingPitches() {
    return this.sampler.state.sounding.flatMap((s, p) => (s ? [p] : []));
  }

  // `out`, after a "delayed" when emitting it moved the answer's timeline.
  announced(a, delayBefore, out) {
    if (a.delay <= delayBefore) return out;
    return [{ type: "delayed", answer: a.answer, take: a.take, ms: 1000 * a.delay }, ...out];
  }

  // The answer event at `modelTime`, on the caller's clock; one computed too late to go out
  // `min_lead` ahead of its time moves the answer's timeline instead of sounding late.
  emit(a, modelTime, pitch, velocity) {
    let at = this.at(a, modelTime);
    let late = this.now() + this.live.min_lead - at;
    if (late > 0) {
      late += this.live.min_lead / 2; // a little further, so the notes after it need not move
      a.origin += late;
      a.delay += late;
      at += late;
    }
    this.record.answerNote(at, pitch, velocity);
    a.notes += velocity > 0 ? 1 : 0;
    const lead = at - this.now();
    this.minLead = Math.min(this.minLead, lead);
    this.lateNotes += lead < 0 ? 1 : 0;
    return { type: "note", time: at, pitch, velocity };
  }

  end() {
    const a = this.answer;
    this.answer = null;
    this.last = a;
    this.sampler.use(this.rules());
    this.heardUntil = this.at(a, this.sampler.state.now);
    a.history = [];
    return [{ type: "answer_end", answer: a.answer, take: a.take, time: this.heardUntil, notes: a.notes }];
  }

  // Cuts the answer at `time`: back to the state after its last token at or before it, then its
  // sounding notes end there, as the model hears them.
  async stop(time) {
    const a = this.answer;
    const kept = a.history.filter(([t]) => t <= time);
    const [at, snapshot] = kept.length ? kept[kept.length - 1] : [a.origin - a.delay, a.start];
    this.restore(snapshot);
    this.record.cut(time);
    const offs = this.soundingPitches().map((p) => this.codec.ranges.note_off.start + p);
    await this.feed(this.codec.shiftsFor(Math.max(time - at, 0)).concat(offs), a.control);
    this.answer = null;
    this.last = a;
    this.heardUntil = time;
    this.sampler.use(this.rules());
    a.history = [];
    return [{ type: "stopped", time }];
  }

  snapshot() {
    return { hidden: this.hidden, event: this.event, ...this.sampler.state.snapshot() };
  }

  restore(snapshot) {
    this.hidden = snapshot.hidden;
    this.event = snapshot.event;
    this.sampler.state.restore(snapshot);
  }
}
