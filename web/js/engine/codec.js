// The event codec (amadeus/data/codec.py): notes <-> tokens, every size, offset and bin taken
// from the manifest's codec table. Four kinds of event: NOTE_ON(pitch), NOTE_OFF(pitch),
// VELOCITY(bin) for the note-ons that follow, TIME_SHIFT(bin) moving the clock on. Strict
// encoding, lenient decoding, as in Python.

import { bisectRight, byKeys, clamp, roundHalfEven } from "./numeric.js";
import { build, playable, withSilencesCapped } from "./notes.js";

export class Codec {
  constructor(table) {
    this.table = table;
    this.name = table.name;
    this.size = table.size;
    this.startToken = table.start_token;
    this.minPitch = table.min_pitch;
    this.maxPitch = table.max_pitch;
    this.offset = table.offset;
    this.shiftSeconds = table.time_shifts;
    this.velocityValues = table.velocity_values;
    this.ranges = {};
    this.tokenKind = new Array(this.size);
    this.tokenValue = new Int32Array(this.size);
    this.tokenSeconds = new Float64Array(this.size);
    for (const kind of table.kinds) {
      const from = table.offset[kind];
      this.ranges[kind] = { start: from, stop: from + table.count[kind] };
      for (let v = 0; v < table.count[kind]; v++) {
        this.tokenKind[from + v] = kind;
        this.tokenValue[from + v] = v;
      }
    }
    this.shiftSeconds.forEach((s, k) => (this.tokenSeconds[this.offset.time_shift + k] = s));
  }

  inRange(pitch) {
    return this.minPitch <= pitch && pitch <= this.maxPitch;
  }

  // The nearest velocity bin; velocities beyond the range go to the end bins.
  velocityBin(velocity) {
    const t = this.table;
    const step = (t.max_velocity - t.min_velocity) / (t.velocity_bins - 1);
    return clamp(roundHalfEven((velocity - t.min_velocity) / step), 0, t.velocity_bins - 1);
  }

  // TIME_SHIFT tokens moving the clock on by `seconds` (within half the smallest bin).
  shiftsFor(seconds) {
    return this.shiftsFrom(0, [seconds]).groups[0];
  }

  // TIME_SHIFT tokens moving the clock from `clock` to each target in turn, largest bin first,
  // stopping within half the smallest: the clock follows the true times. {groups, clock}.
  shiftsFrom(clock, targets) {
    const bins = this.shiftSeconds;
    const base = this.offset.time_shift;
    const half = bins[0] / 2;
    const groups = targets.map((target) => {
      const group = [];
      while (target - clock >= half) {
        const k = Math.max(bisectRight(bins, target - clock) - 1, 0);
        group.push(base + k);
        clock += bins[k];
      }
      return group;
    });
    return { groups, clock };
  }

  // Tokens of notes (sorted, every pitch in range): by time, note-offs first, then note-ons by
  // pitch, each onset within half the smallest shift of its true time.
  encode(notes) {
    if (notes.some((n) => !this.inRange(n.pitch))) {
      throw new RangeError(`pitch outside ${this.minPitch}..${this.maxPitch}`);
    }
    const heard = playable(notes);
    return this.eventTokens(sortEvents(this.events(heard, heard)), { clock: 0, velocity: -1 });
  }

  // The note-offs of `offs` (at their ends), then the note-ons of `ons` (at their starts).
  events(offs, ons) {
    const pitch = (n) => n.pitch - this.minPitch;
    const ended = offs.map((n) => ({ time: n.end, on: false, pitch: pitch(n), bin: 0 }));
    const started = ons.map((n) => ({ time: n.start, on: true, pitch: pitch(n), bin: this.velocityBin(n.velocity) }));
    return ended.concat(started);
  }

  // Tokens of events sorted as `encode` sorts them, continuing from `state` ({clock, velocity:
  // the last note-on's bin}), which moves on with them: the live phrase encodes piece by piece.
  eventTokens(events, state) {
    const every = this.table.velocity_every_note;
    const { groups, clock } = this.shiftsFrom(state.clock, events.map((e) => e.time));
    state.clock = clock;
    const tokens = [];
    events.forEach((e, i) => {
      tokens.push(...groups[i]);
      if (e.on) {
        if (every || e.bin !== state.velocity) tokens.push(this.offset.velocity + e.bin);
        state.velocity = e.bin;
      }
      tokens.push(this.offset[e.on ? "note_on" : "note_off"] + e.pitch);
    });
    return tokens;
  }

  // encoding.encode_notes: the notes the layout can express, silences capped as the training
  // data's were (`maxSilence` seconds), as tokens.
  encodeNotes(notes, maxSilence) {
    const kept = build(notes).filter((n) => this.inRange(n.pitch));
    return this.encode(withSilencesCapped(kept, maxSilence));
  }

  // The clock time of each token: the sum of the shifts before it (as numpy's cumsum - own).
  eventTimes(tokens) {
    let sum = 0;
    return tokens.map((t) => {
      sum += this.tokenSeconds[t];
      return sum - this.tokenSeconds[t];
    });
  }

  // Notes of any token stream, and what did not decode as written, by reason (the same
  // reasons and rules as EventCodec.decode_counted); nothing throws.
  decode(tokens, maxNoteSeconds = null) {
    const skipped = {};
    const count = (reason, n = 1) => n && (skipped[reason] = (skipped[reason] ?? 0) + n);
    const valid = tokens.filter((t) => Number.isInteger(t) && t >= 0 && t < this.size);
    count("outside the vocabulary", tokens.length - valid.length);
    const times = this.eventTimes(valid);
    const last = valid.length - 1;
    const finalTime = valid.length ? times[last] + this.tokenSeconds[valid[last]] : 0;
    const sounding = new Map(); // pitch -> [start, velocity], in the order Python's dict keeps
    const out = [];
    const expire = (time) => {
      if (maxNoteSeconds == null) return;
      for (const [p, [start, velocity]] of [...sounding]) {
        if (time - start > maxNoteSeconds) {
          sounding.delete(p);
          out.push({ start, end: start + maxNoteSeconds, pitch: p, velocity });
          count("note cut at the limit");
        }
      }
    };
    const t = this.table;
    let velocity = t.default_velocity;
    valid.forEach((token, i) => {
      expire(times[i]);
      const kind = this.tokenKind[token];
      const value = this.tokenValue[token];
      const p = value + this.minPitch;
      if (kind === "velocity") velocity = this.velocityValues[value];
      else if (kind === "note_off" && !sounding.has(p)) count("orphan note-off");
      else if (kind === "note_on" || kind === "note_off") {
        if (sounding.has(p)) {
          const [start, v] = sounding.get(p);
          sounding.delete(p);
          out.push({ start, end: Math.max(times[i], start + t.min_note_seconds), pitch: p, velocity: v });
          if (kind === "note_on") count("note-on over a sounding note");
        }
        if (kind === "note_on") sounding.set(p, [times[i], velocity]);
      }
    });
    expire(finalTime);
    count("note never released", sounding.size);
    for (const [p, [start, v]] of sounding) {
      const end = Math.min(Math.max(finalTime, start + t.min_note_seconds), start + t.default_note_seconds);
      out.push({ start, end, pitch: p, velocity: v });
    }
    return { notes: build(out), skipped };
  }
}

// Events at one instant go note-offs first, then note-ons, each by pitch (a stable sort).
export const sortEvents = (events) => events.sort(byKeys((e) => e.time, (e) => e.on, (e) => e.pitch));
