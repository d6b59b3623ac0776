// Runs the page's engine (web/js/engine/) on fixtures that tests/test_web_engine.py writes, and
// prints what it makes of each task as JSON, for the test to hold against Python's engine.
//
//   node web/test/engine_parity.mjs FIXTURE.json > RESULTS.json
//
// A fixture is {tasks: [{kind, ...}]}; the results are one entry per task, in order.

import { readFileSync } from "node:fs";
import { Codec } from "../js/engine/codec.js";
import { phraseControl } from "../js/engine/controls.js";
import { Dynamics } from "../js/engine/dynamics.js";
import { Phrase } from "../js/engine/phrase.js";
import { Record } from "../js/engine/record.js";
import { drawAt, distribution, nucleus, PerformanceState } from "../js/engine/sampling.js";
import { Session } from "../js/engine/session.js";
import { playPhrase } from "./drive.js";

// A stepper whose logits are a fixed table row per input event: deterministic music whatever
// the draws. The hidden state counts the steps.
class TableStepper {
  constructor(table) {
    this.table = table;
  }

  initial() {
    return new Float32Array([0]);
  }

  async step(event, hidden) {
    return { logits: Float32Array.from(this.table[event]), hidden: Float32Array.of(hidden[0] + 1) };
  }
}

// A stepper whose steps are logged: each one's event and control, the logits of the first `keep`.
class Logged {
  constructor(stepper, keep = 0) {
    this.stepper = stepper;
    this.keep = keep;
    this.log = [];
    this.logits = [];
    this.steps = 0;
  }

  initial() {
    return this.stepper.initial();
  }

  async step(event, hidden, control) {
    this.log.push([event, control === null ? null : Array.from(control)]);
    this.steps += 1;
    const result = await this.stepper.step(event, hidden, control);
    if (this.logits.length < this.keep) this.logits.push(Array.from(result.logits));
    return result;
  }
}

// The task's model: the table, or an exported ONNX model in onnxruntime-web (from web/).
async function model(task) {
  if (task.table) return new TableStepper(task.table);
  const ort = await import("onnxruntime-web");
  ort.env.wasm.numThreads = 1;
  const { OnnxStepper } = await import("../js/engine/stepper.js");
  return OnnxStepper.create(ort, readFileSync(task.onnx), task.manifest);
}

// The script played on a Session; `slow`: seconds of the fake clock each step costs (a busy
// machine), read through `clock`. With a `budget`, a call's wall time is its steps (so every
// call may take one step past its first note), and the script ticks again at once while the
// answer is pending, as the worker does; each call's number of notes is kept.
async function runSession(task) {
  const stepper = new Logged(await model(task), task.keep_logits ?? 0);
  let session;
  let mark = [null, 0]; // the call the fake clock last saw, and the steps by then
  const clock = () => {
    const called = session.engine.called;
    if (called !== mark[0]) mark = [called, stepper.steps];
    return called[0] + task.slow * (stepper.steps - mark[1]);
  };
  const budget = task.budget ? { budget: task.budget, wall: () => stepper.steps } : {};
  session = new Session(task.manifest, stepper, { seed: task.seed, clock, ...budget });
  if (task.uniforms) {
    let taken = 0; // the draws given, in turn and over again, as the Python side draws them
    session.engine.random = () => task.uniforms[taken++ % task.uniforms.length];
  }
  const replies = [];
  const calls = []; // each call's notes
  const counted = (reply) => {
    calls.push(reply.filter((m) => m.type === "notes").reduce((n, m) => n + m.events.length, 0));
    return reply;
  };
  for (const [kind, payload] of task.script) {
    const time = kind === "tick" ? payload : payload.time;
    const reply = counted(await (kind === "tick" ? session.tick(payload) : session.handle(payload)));
    while (session.engine.pending) reply.push(...counted(await session.tick(time)));
    replies.push(reply);
  }
  const e = session.engine;
  const exported = await session.handle({ type: "export", time: task.script.at(-1)[1].time ?? 0 });
  return {
    replies,
    log: stepper.log,
    logits: stepper.logits,
    hidden: Array.from(e.hidden),
    event: e.event,
    midi: exported[0].midi,
    latencies: e.latencies.length,
    calls,
  };
}

// A phrase's messages handled late (the clock at `handled_at`), then ticks as the worker makes
// them (heard: the clock less the lag seen lately): for each tick, the hand-over time of the
// answer it started, or null.
async function runLag(task) {
  let time = task.handled_at;
  const session = new Session(task.manifest, new TableStepper(task.table), { clock: () => time });
  for (const m of task.played) await session.handle(m);
  const answered = [];
  for (const t of task.ticks) {
    time = t;
    const reply = await session.tick(t, session.heard(t));
    answered.push(reply.find((m) => m.type === "answer")?.phrase_end ?? null);
  }
  return answered;
}

const tasks = {
  phrase(task) {
    const phrase = new Phrase(new Codec(task.codec), task.encoding, task.origin);
    return playPhrase(phrase, task.events, task.end);
  },
  encode: (task) => new Codec(task.codec).encodeNotes(task.notes, task.encoding.max_silence),
  decode: (task) => new Codec(task.codec).decode(task.tokens, task.max_note_seconds),
  control(task) {
    const phrase = new Phrase(new Codec(task.codec), task.encoding, task.origin);
    playPhrase(phrase, task.events, task.end);
    const notes = phrase.notes(phrase.latest);
    return Array.from(phraseControl(task.controls, notes, phrase.latest, task.phrase_keys));
  },
  dynamics(task) {
    const d = new Dynamics(task.dynamics);
    return {
      flat: d.flat,
      to_model: task.velocities.map((v) => d.toModel(v)),
      to_player: task.velocities.map((v) => d.toPlayer(v, task.played)),
    };
  },
  mask(task) {
    const state = new PerformanceState(new Codec(task.codec), task.rules);
    return task.tokens.map((token, i) => {
      state.closing = i >= task.closing_from;
      state.feed(token);
      const allowed = state.allowed().map(Number).join("");
      return { allowed, expired: state.expired, now: state.now };
    });
  },
  draws(task) {
    const rows = task.logits.map((row) => row.map((x) => x ?? -Infinity)); // (null: forbidden)
    return rows.map((row) => task.us.map((u) => drawAt(distribution(row, task.rules), u)));
  },
  nucleus: (task) => task.p.map((row) => nucleus(row, task.top_p)),
  record(task) {
    const record = new Record();
    for (const [op, ...args] of task.ops) record[op](...args);
    return Buffer.from(record.midiBytes(task.midi)).toString("base64");
  },
  session: runSession,
  lag: runLag,
};

const fixture = JSON.parse(readFileSync(process.argv[2], "utf8"));
const results = [];
for (const task of fixture.tasks) results.push(await tasks[task.kind](task));
process.stdout.write(JSON.stringify(results));
