// A phrase being played, encoded as it is played (amadeus/live/phrase.py, rule for rule): keys
// and sustain pedal in, tokens out as soon as they are final, the same tokens the codec gives
// the finished phrase read as a file. The tokens given out are frozen with the encoder's state
// where they stop (clock, last velocity, silence cut so far); each event re-reads only the open
// notes, those not fully encoded yet, so a key costs what the notes still sounding cost.

import { sortEvents } from "./codec.js";
import { performance, withoutOverlaps } from "./notes.js";

const NEVER = Infinity; // the release of a key still down

export class Phrase {
  // `encoding`: the manifest's {sustain, max_silence}; times in seconds from `origin`.
  constructor(codec, encoding, origin) {
    this.codec = codec;
    this.encoding = encoding;
    this.origin = origin;
    this.keys = []; // [start, release, pitch, velocity]
    this.down = new Map(); // pitch -> index in keys, for keys held down
    this.pedal = []; // [time, CC64 value] where it goes down or up
    this.latest = 0; // the newest event's time
    this.open = []; // keys in the codec's range whose note is not fully encoded
    this.pedalFrom = 0; // the first pedal change an open key's release can need
    // The encoder where the tokens given out stop: their events are those before `frozen`.
    this.frozen = 0;
    this.state = { clock: 0, velocity: -1 }; // the codec's clock, the last note-on's bin
    this.cut = 0; // silence cut before the last onset given out (the silence cap)
    this.soundingUntil = 0; // the latest end of the notes done: silence counts from it
    this.shift = new Map(); // onset given out -> silence cut before it
  }

  get length() {
    return this.keys.length;
  }

  get pedalDown() {
    return this.pedal.length > 0 && this.pedal[this.pedal.length - 1][1] >= 64;
  }

  // A key or the sustain pedal is down: the phrase cannot end by silence yet.
  get held() {
    return this.down.size > 0 || this.pedalDown;
  }

  press(time, pitch, velocity) {
    const t = this.at(time);
    if (this.down.has(pitch)) this.keys[this.down.get(pitch)][1] = t; // struck again unreleased
    this.down.set(pitch, this.keys.length);
    if (this.codec.inRange(pitch)) this.open.push(this.keys.length);
    this.keys.push([t, NEVER, pitch, velocity]);
  }

  release(time, pitch) {
    const t = this.at(time);
    if (this.down.has(pitch)) {
      this.keys[this.down.get(pitch)][1] = t;
      this.down.delete(pitch);
    }
  }

  sustain(time, value) {
    const t = this.at(time);
    if (value >= 64 !== this.pedalDown) this.pedal.push([t, value]); // only changes matter
  }

  // Seconds from the origin; an event never goes back before the newest one.
  at(time) {
    this.latest = Math.max(this.latest, time - this.origin);
    return this.latest;
  }

  // The phrase by the file-reading rules, every note still sounding ended at `until`.
  notes(until = NEVER) {
    return this.keys.length ? this.performed(this.keys, this.pedal, until) : [];
  }

  performed(keys, pedal, until) {
    const lifted = this.pedalDown ? pedal.concat([[until, 0]]) : pedal;
    const notes = performance(keys, lifted, this.encoding.sustain);
    return notes.map((n) => ({ ...n, end: Math.min(n.end, until) }));
  }

  // The tokens that became final since the last take.
  takeFinal() {
    if (this.latest === this.frozen) return []; // no time has passed: nothing new is final
    return this.encode(this.latest, this.latest);
  }

  // The phrase ends at `time`: keys still down and the pedal lift then (a phrase whose keys are
  // all up ended with its last event); the rest of its tokens.
  finish(time) {
    const t = this.held ? this.at(time) : this.latest;
    for (const index of this.down.values()) this.keys[index][1] = t;
    this.down.clear();
    return this.encode(t, NEVER);
  }

  // The tokens of the open notes' events before `before`, the notes still sounding ended at
  // `until`; the notes whose events have all gone out are done.
  encode(until, before) {
    if (!this.open.length) {
      this.frozen = before;
      return [];
    }
    const notes = this.openNotes(until);
    const isNew = notes.map((n) => n.start >= this.frozen); // onsets not given out yet
    const shift = this.shifts(notes, isNew);
    const capped = notes.map((n, i) => ({ ...n, start: n.start - shift[i], end: n.end - shift[i] }));
    const heard = withoutOverlaps(capped).map((n) => n.end > n.start); // what the codec keeps
    const given = notes.map((n, i) => isNew[i] && n.start < before);
    const done = notes.map((n) => n.end < before);
    const tokens = this.tokens(
      capped.filter((_, i) => heard[i] && done[i]),
      capped.filter((_, i) => heard[i] && given[i]),
    );
    const last = given.lastIndexOf(true);
    if (last >= 0) this.cut = shift[last];
    this.shift = new Map();
    const finished = new Set();
    notes.forEach((n, i) => {
      if (done[i]) {
        this.soundingUntil = Math.max(this.soundingUntil, n.end);
        finished.add(`${n.start} ${n.pitch}`);
      } else if (n.start < before) this.shift.set(n.start, shift[i]);
    });
    this.open = this.open.filter((i) => !finished.has(`${this.keys[i][0]} ${this.keys[i][2]}`));
    this.frozen = before;
    return tokens;
  }

  // The open keys' notes (their twins and same-key overlaps are all open too), with the pedal
  // from its last change at or before their earliest release.
  openNotes(until) {
    const keys = this.open.map((i) => this.keys[i]);
    const firstRelease = Math.min(...keys.map((k) => k[1]));
    while (this.pedalFrom + 1 < this.pedal.length && this.pedal[this.pedalFrom + 1][0] <= firstRelease) {
      this.pedalFrom += 1;
    }
    return this.performed(keys, this.pedal.slice(this.pedalFrom), until);
  }

  // The silence cut before each note, as the silence cap cuts it over the whole phrase: onsets
  // given out keep theirs, new ones (last by onset) continue the running cut.
  shifts(notes, isNew) {
    let sounding = this.soundingUntil;
    let cut = this.cut;
    return notes.map((n, i) => {
      const gap = Math.max(n.start - sounding, 0);
      sounding = Math.max(sounding, n.end);
      if (!isNew[i]) return this.shift.get(n.start);
      cut += Math.max(gap - this.encoding.max_silence, 0);
      return cut;
    });
  }

  // Note-offs and note-ons (capped times) as the codec writes them, from the frozen clock.
  tokens(offs, ons) {
    return this.codec.eventTokens(sortEvents(this.codec.events(offs, ons)), this.state);
  }
}
