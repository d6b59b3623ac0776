// The page: wires the socket (the live protocol), the piano, the roll, the keyboards and the
// controls together.
//
// Test hooks, read by tests/test_browser.py (and handy in the console):
//   window.amadeus = {
//     ready       true once the server's "welcome" came
//     scheduled   one entry per answer note-on scheduled for playback:
//                 {pitch, time (page clock, s), scheduledAt (performance.now() ms), answer}
//     answers     the "answer" messages, each with latency_ms once its first notes came
//     roll        {player, amadeus}: notes drawn on the roll so far
//     errors      the "error" messages' texts
//     lastExport  the last export's MIDI file, base64, or null
//     sound       "samples" | "synth": the piano in use
//   }

import { AnswerPlayer } from "./answer.js";
import { Keyboard } from "./keyboard.js";
import { Midi } from "./midi.js";
import { Roll } from "./roll.js";
import { Socket, now } from "./socket.js";
import { Piano, noteName } from "./sound.js";

const $ = (id) => document.getElementById(id);
const HISTORY = 8; // answers listed

const hooks = {
  ready: false,
  scheduled: [],
  answers: [],
  roll: null,
  errors: [],
  lastExport: null,
  sound: "synth",
};
window.amadeus = hooks;

const piano = new Piano();
const roll = new Roll($("roll"), { seconds: 10, clock: now });
hooks.roll = roll.counts;
const scheme = location.protocol === "https:" ? "wss" : "ws";
const socket = new Socket(`${scheme}://${location.host}/ws`);

// -- the player -----------------------------------------------------------------------------

const held = new Map(); // pitch -> {voice, drawn}: the player's keys down
const sustained = new Map(); // pitch -> voice: released keys the sustain pedal holds
let sustain = false;

function noteOn(pitch, velocity, time) {
  piano.resume();
  endHeld(pitch, time);
  sustained.get(pitch)?.release();
  sustained.delete(pitch);
  const voice = piano.play(pitch, velocity); // the local echo: at once
  const drawn = roll.noteOn("player", pitch, velocity, Math.min(time, now()));
  held.set(pitch, { voice, drawn });
  keyboard.show(pitch, "player", true);
  socket.send({ type: "note_on", pitch, velocity }, time);
  setTurn("listening");
}

function noteOff(pitch, time) {
  if (!endHeld(pitch, time)) return;
  socket.send({ type: "note_off", pitch }, time);
}

function endHeld(pitch, time) {
  const h = held.get(pitch);
  if (!h) return false;
  held.delete(pitch);
  if (sustain && h.voice) sustained.set(pitch, h.voice);
  else h.voice?.release();
  roll.noteOff(h.drawn, time);
  keyboard.show(pitch, "player", false);
  return true;
}

const pedals = new Map(); // controller -> down: a pedal's messages go out when it changes side

function pedal(controller, value, time) {
  piano.resume();
  const down = value >= 64;
  if (pedals.get(controller) === down) return; // a continuous pedal's many values: one change
  pedals.set(controller, down);
  socket.send({ type: "pedal", controller, value }, time);
  if (controller === 64) {
    sustain = down;
    $("sustain").classList.toggle("on", sustain);
    if (!sustain) {
      for (const voice of sustained.values()) voice.release();
      sustained.clear();
    }
  }
}

function handover() {
  piano.resume();
  socket.send({ type: "handover" });
}

const keyboard = new Keyboard(
  $("keyboard"),
  {
    noteOn,
    noteOff,
    pedal: (value, time) => pedal(64, value, time),
    handover,
    changed: showKeyboard,
  },
  now,
);

function showKeyboard() {
  const low = keyboard.low;
  $("octave-label").textContent = `${noteName(low)}–${noteName(low + 48)}`;
  $("velocity-label").textContent = keyboard.velocity;
}
showKeyboard();
$("octave-down").addEventListener("click", () => keyboard.shift(-1));
$("octave-up").addEventListener("click", () => keyboard.shift(1));

const midi = new Midi({
  inputSelect: $("midi-in"),
  outputSelect: $("midi-out"),
  status: $("midi-status"),
  handlers: { noteOn, noteOff, pedal },
  clock: now,
});
midi.start();

// -- Amadeus --------------------------------------------------------------------------------

const answers = new AnswerPlayer({ piano, roll, midi, clock: now, scheduled: hooks.scheduled });
let pending = null; // the answer whose first notes are awaited
let startDelay = 0.1; // seconds from a hand-over to the answer's first possible note
let turnTimer = null;

socket.addEventListener("state", (e) => {
  const { state, detail } = e.detail;
  const text = {
    connecting: "Connecting…",
    open: "Connecting…",
    welcome: "Connected",
    closed: `Disconnected${detail ? ` — ${detail}` : ""}`,
  }[state];
  $("conn").dataset.state = state;
  $("conn-text").textContent = text;
  hooks.ready = state === "welcome";
  for (const id of ["handover", "export"]) $(id).disabled = !hooks.ready;
  if (!hooks.ready) {
    for (const id of ["again", "undo"]) $(id).disabled = true;
  }
  if (state === "closed") answers.stop(now()); // a new connection is a new session
});

socket.addEventListener("message", (e) => {
  const m = e.detail;
  switch (m.type) {
    case "welcome":
      welcome(m);
      break;
    case "settings":
      showSettings(m.settings);
      break;
    case "answer":
      pending = { ...m, latency_ms: null };
      hooks.answers.push(pending);
      answers.answer = m.answer;
      roll.mark(m.phrase_end, m.take > 1 ? `answer ${m.answer}, take ${m.take}` : `answer ${m.answer}`, "amadeus");
      setTurn("answering");
      break;
    case "notes":
      if (pending) {
        pending.latency_ms = performance.now() - pending.phrase_end * 1000;
        showLatency(pending);
        pending = null;
      }
      answers.events(m.events);
      break;
    case "answer_end":
      $("again").disabled = $("undo").disabled = false;
      clearTimeout(turnTimer);
      turnTimer = setTimeout(() => setTurn("idle"), Math.max(0, (m.time - now()) * 1000));
      break;
    case "stopped":
      answers.stop(m.time);
      roll.mark(m.time, "cut", "player");
      clearTimeout(turnTimer);
      $("again").disabled = $("undo").disabled = false;
      setTurn(held.size ? "listening" : "idle");
      break;
    case "export":
      hooks.lastExport = m.midi;
      download(m.filename, m.midi);
      say(`Exported ${m.filename}`);
      break;
    case "error":
      hooks.errors.push(m.message);
      say(m.message, true);
      break;
  }
});

function welcome(m) {
  const model = m.model || {};
  const parts = [
    model.name,
    model.precision,
    model.megabytes != null ? `${model.megabytes} MB` : null,
    model.step != null ? `step ${Number(model.step).toLocaleString("en")}` : null,
  ].filter((p) => p != null);
  $("model").textContent = parts.join(" · ") || "model: —";
  const shape = model.layers && model.hidden ? `${model.layers}×${model.hidden} GRU` : "";
  $("model").title = `The model answering${shape ? `: ${shape}` : ""}${model.codec ? `, ${model.codec} events` : ""}`;
  $("model").dataset.precision = model.precision || "";
  showSettings(m.settings);
  loadSound(m.samples);
  say("");
}

// -- sound ----------------------------------------------------------------------------------

let soundAsked = false;

async function loadSound(samples) {
  if (soundAsked) return;
  soundAsked = true;
  if (samples) {
    showSound("Sound: loading the Salamander Grand Piano samples…");
    await piano.loadSamples();
  }
  hooks.sound = piano.kind;
  showSound();
}

function showSound(text) {
  let line =
    text ??
    (piano.kind === "samples"
      ? "Sound: Salamander Grand Piano samples (CC BY 3.0, Alexander Holm)"
      : "Sound: synthesized piano — run make play to install the sampled piano");
  if (!piano.ctx) line = "Sound: this browser has no Web Audio; the roll still shows the music";
  else if (!piano.running) line += " · click anywhere to turn the sound on";
  $("sound").textContent = line;
}

// The first gesture starts the audio (browsers keep it off until one).
for (const kind of ["pointerdown", "keydown"]) {
  window.addEventListener(kind, () => piano.resume(), { capture: true });
}
piano.ctx?.addEventListener("statechange", () => showSound());
showSound();

// -- controls -------------------------------------------------------------------------------

const controls = {
  answer_seconds: $("answer-seconds"),
  temperature: $("temperature"),
  silence: $("silence"),
  conditioning: $("conditioning"),
};

function showSettings(s) {
  if (!s) return;
  if (typeof s.start_delay === "number") startDelay = s.start_delay;
  const length = controls.answer_seconds;
  const value = s.answer_seconds == null ? "" : String(s.answer_seconds);
  if (![...length.options].some((o) => o.value === value)) length.append(new Option(`${value} s`, value));
  length.value = value;
  controls.temperature.value = s.temperature;
  $("temperature-value").textContent = Number(s.temperature).toFixed(2);
  controls.silence.value = s.silence;
  $("silence-value").textContent = `${Number(s.silence).toFixed(2)} s`;
  controls.conditioning.checked = !!s.conditioning;
}

function change(name, value) {
  socket.send({ type: "settings", [name]: value });
}

controls.answer_seconds.addEventListener("change", (e) => {
  change("answer_seconds", e.target.value === "" ? null : Number(e.target.value));
  e.target.blur(); // back to playing: letters go to the keyboard, not the list
});
controls.temperature.addEventListener("input", (e) => {
  $("temperature-value").textContent = Number(e.target.value).toFixed(2);
});
controls.temperature.addEventListener("change", (e) => change("temperature", Number(e.target.value)));
controls.silence.addEventListener("input", (e) => {
  $("silence-value").textContent = `${Number(e.target.value).toFixed(2)} s`;
});
controls.silence.addEventListener("change", (e) => change("silence", Number(e.target.value)));
controls.conditioning.addEventListener("change", (e) => change("conditioning", e.target.checked));
for (const id of ["midi-in", "midi-out"]) $(id).addEventListener("change", (e) => e.target.blur());

$("handover").addEventListener("click", handover);
$("again").addEventListener("click", () => socket.send({ type: "again" }));
$("undo").addEventListener("click", () => {
  socket.send({ type: "undo" });
  say("The last answer is dropped: Amadeus is back where it was before it.");
});
$("export").addEventListener("click", () => socket.send({ type: "export" }));
// A button clicked with the mouse gives the focus back, so space and Enter play again.
for (const button of document.querySelectorAll("button")) {
  button.addEventListener("click", (e) => {
    if (e.detail > 0) button.blur();
  });
}

function download(filename, base64) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const url = URL.createObjectURL(new Blob([bytes], { type: "audio/midi" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// -- what the page says -----------------------------------------------------------------------

function say(text, error = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", error);
}

function setTurn(turn) {
  const text = {
    idle: "Your turn — play a phrase, Amadeus answers when you pause",
    listening: "Listening…",
    answering: "Amadeus is answering — play to cut in",
  }[turn];
  const el = $("turn");
  el.textContent = text;
  el.dataset.turn = turn;
}

function showLatency(a) {
  const ms = Math.round(a.latency_ms);
  $("latency").textContent = `answered in ${ms} ms`;
  $("latency-detail").textContent = `model ${Math.round(a.compute_ms)} ms · the answer begins ${startDelay} s after your phrase`;
  const list = $("history");
  list.querySelector(".empty")?.remove();
  const item = document.createElement("li");
  const take = a.take > 1 ? `, take ${a.take}` : "";
  item.innerHTML = `<span>answer ${a.answer}${take}</span><b>${ms} ms</b><span class="muted">model ${Math.round(a.compute_ms)} ms</span>`;
  list.prepend(item);
  while (list.children.length > HISTORY) list.lastChild.remove();
}

// The keys of the answer's sounding notes light up, frame by frame.
let lit = new Set();
function frame() {
  const sounding = new Set(answers.sounding(now()));
  for (const p of lit) if (!sounding.has(p)) keyboard.show(p, "amadeus", false);
  for (const p of sounding) if (!lit.has(p)) keyboard.show(p, "amadeus", true);
  lit = sounding;
  requestAnimationFrame(frame);
}

setTurn("idle");
roll.start();
requestAnimationFrame(frame);
socket.connect();
