// One player's session with the model in the page (amadeus/live/connection.py's dispatch): the
// live protocol's messages in, its messages out, spoken to a turn-taking engine of its own.
// The page and the worker share the page's clock, so the server's clock estimate and rate
// limit have no part here; every message is still checked, and a bad one gets an "error" reply
// and changes nothing.
//
//   const session = new Session(manifest, stepper, { seed });
//   await session.handle({ type: "hello", protocol: 1, time })  // -> [{type: "welcome", ...}]
//   await session.tick(time)                                   // -> answer notes, ... ([] if none)
//
// Calls run one at a time, in the order made (the stepper is async; a tick may come while a
// note is being heard).

import { Engine } from "./engine.js";
import { messages, parse, ProtocolError, settingsOf } from "./protocol.js";

export class Session {
  // Options: seed; samples (whether the page has the sampled piano, as the server's welcome
  // says); live (settings other than the defaults); clock, wall and budget (see Engine).
  constructor(manifest, stepper, { seed = 0, samples = true, live, clock = null, wall, budget } = {}) {
    this.manifest = manifest;
    this.samples = samples;
    live = { ...manifest.live.defaults, ...live };
    this.engine = new Engine(stepper, manifest, { seed, live, clock, wall, budget });
    this.clock = clock;
    this.greeted = false;
    this.latest = -Infinity; // the newest event's time
    this.lags = []; // [when, seconds late] of late arrivals, on the clock
    this.queue = Promise.resolve();
  }

  // A client message (object or JSON text) -> the messages in reply.
  handle(message) {
    return this.serial(async () => {
      try {
        const m = parse(message, this.manifest);
        if (this.clock !== null) this.lagged(this.clock() - m.time); // how late it is handled
        this.admit(m);
        return messages(await this.dispatch(m));
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
        return [{ type: "error", message: e.message }];
      }
    });
  }

  // Time passes (the page's clock): the phrase may end by silence, the answer streams on.
  // `heard`: the time up to which every message has surely been handled.
  tick(time, heard = time) {
    return this.serial(async () => (this.greeted ? messages(await this.engine.tick(time, heard)) : []));
  }

  // The time up to which every message has surely been handled: `now`, less the longest lag
  // seen lately (messages handled late, ticks that came late), as the server's connection
  // judges it: a phrase must not end by silence while its notes still wait in a queue.
  heard(now) {
    const recent = now - this.manifest.messages.lag_memory;
    while (this.lags.length && this.lags[0][0] < recent) this.lags.shift();
    return now - Math.max(0, ...this.lags.map(([, lag]) => lag));
  }

  lagged(seconds) {
    if (seconds > 0) this.lags.push([this.clock(), seconds]); // (a session with a clock)
  }

  serial(work) {
    const result = this.queue.then(work);
    this.queue = result.catch(() => {});
    return result;
  }

  // Greeting and order: a message that fails is refused and changes nothing.
  admit(m) {
    if (!this.greeted && m.type !== "hello") throw new ProtocolError(`${m.type}: say hello first`);
    this.greeted = true;
    if (["note_on", "note_off", "pedal", "handover"].includes(m.type)) {
      if (m.time < this.latest - this.manifest.limits.out_of_order) {
        throw new ProtocolError(
          `${m.type}: time ${m.time.toFixed(3)} is before the previous event's ${this.latest.toFixed(3)}`,
        );
      }
      this.latest = Math.max(this.latest, m.time);
    }
  }

  async dispatch(m) {
    const e = this.engine;
    const t = m.time;
    switch (m.type) {
      case "hello":
        return [this.welcome()];
      case "note_on": {
        const out = await e.noteOn(t, m.pitch, m.velocity);
        if (e.phrase !== null && e.phrase.length >= this.manifest.limits.phrase_notes) {
          return out.concat(await e.handover(t));
        }
        return out;
      }
      case "note_off":
        return e.noteOff(t, m.pitch);
      case "pedal":
        return e.pedal(t, m.controller, m.value);
      case "settings":
        e.configure(settingsOf(m, this.manifest));
        return [{ type: "settings", settings: { ...e.live } }];
      case "export":
        return [this.export()];
      case "handover":
        return e.handover(t);
      case "again":
        return e.again(t);
      case "undo":
        return e.undo(t);
      default: // "clock"
        return e.tick(t);
    }
  }

  welcome() {
    const m = this.manifest;
    return {
      type: "welcome",
      protocol: m.protocol,
      model: m.model,
      samples: this.samples,
      limits: m.limits,
      settings: { ...this.engine.live },
    };
  }

  export() {
    const midi = this.engine.record.midiBytes(this.manifest.midi);
    return { type: "export", filename: `amadeus-${stamp(new Date())}.mid`, midi: base64(midi) };
  }
}

// 20250131-235959, local time (as the server names exports).
function stamp(d) {
  const two = (n) => String(n).padStart(2, "0");
  const date = `${d.getFullYear()}${two(d.getMonth() + 1)}${two(d.getDate())}`;
  return `${date}-${two(d.getHours())}${two(d.getMinutes())}${two(d.getSeconds())}`;
}

function base64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000)); // in pieces: argument limits
  }
  return btoa(text);
}
