// The page: wires the transport (the live protocol), the piano, the roll, the keyboards and the
// controls together. One page, two modes: served by play.py it talks to the model on the server
// (socket.js); as the static site `make web` builds (its index.html is marked "static") the
// model runs in the page, in a worker (local.js), no WebSocket opened, and the site plays
// offline once visited (sw.js).
//
// Test hooks, read by tests/test_browser.py (and handy in the console):
//   window.amadeus = {
//     mode        "static" (the model in this page) | "server"
//     ready       true once the model's "welcome" came
//     offline     true once the service worker keeps the whole site (static mode)
//     scheduled   one entry per answer note-on scheduled for playback:
//                 {pitch, time (page clock, s), scheduledAt (performance.now() ms), answer}
//     answers     the "answer" messages, each with latency_ms once its first notes came,
//                 delayed_ms if the server said it moved the answer, undone: true once undone
//     roll        {player, amadeus}: notes drawn on the roll so far
//     labels      where the roll drew its last frame's mark labels, the pitch names and the
//                 overlays the labels avoid: {labels, pitches, avoided}, boxes {x, y, w, h}
//     settings    the live settings the model plays by, as it last said them
//     errors      the "error" messages' texts
//     lastExport  the last export's MIDI file, base64, or null
//     sound       "samples" | "synth": the piano in use
//     audio       the AudioContext's state: "running", "suspended"..., or "none"
//     voices      the piano's voices started and not yet over
//     dropped     answer note-ons dropped for coming late
//     receive(m)  hands the page a server message, as the socket does
//     mark(t, label, who)  a mark on the roll
//   }

import { AnswerPlayer } from "./answer.js";
import { Keyboard } from "./keyboard.js";
import { Local } from "./local.js";
import { Midi } from "./midi.js";
import { Roll } from "./roll.js";
import { Socket, now, socketUrl } from "./socket.js";
import { Piano, noteName } from "./sound.js";

const $ = (id) => document.getElementById(id);
const HISTORY = 8; // answers listed

// The built site's page says it is static (web/build.py), and its site.json says the rest.
const marked = document.querySelector('meta[name="amadeus-mode"]')?.content;
const mode = marked === "static" ? "static" : "server";
const site = mode === "static" ? await (await fetch("site.json")).json() : null;

const hooks = {
  mode,
  ready: false,
  offline: false,
  scheduled: [],
  answers: [],
  roll: null,
  settings: null,
  errors: [],
  lastExport: null,
  sound: "synth",
  dropped: 0,
  get labels() {
    return roll.placed;
  },
  get audio() {
    return piano.ctx ? piano.ctx.state : "none";
  },
  get voices() {
    return piano.voices.size;
  },
  receive: (m) => receive(m),
  mark: (time, label, who) => roll.mark(time, label, who),
};
window.amadeus = hooks;

const piano = new Piano();
const roll = new Roll($("roll"), { seconds: 10, clock: now, avoid: [$("legend"), $("turn")] });
hooks.roll = roll.counts;
const socket = mode === "static" ? new Local(site) : new Socket(socketUrl(location));

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
  $("octave-label").textContent = `${noteName(keyboard.low)}–${noteName(keyboard.high)}`;
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

const answers = new AnswerPlayer({ piano, roll, midi, clock: now, scheduled: hooks.scheduled, late });
let pending = null; // the answer whose first notes are awaited
// The take Again and Undo act on: {answer, take, undone}. They can act once an answer has ended
// (or was cut), and on the ones after it, until one is undone: the server forgets an undone
// answer, so they wait for the next answer's end.
let last = null;
let takes = false; // an answer ended since the session began or the last undo
const delays = new Map(); // "answer.take" -> ms the server moved it by, all told
let lateNotes = 0; // the current answer's note-ons dropped for coming late
let startDelay = 0.1; // seconds from a hand-over to the answer's first possible note
let turnTimer = null;

socket.addEventListener("state", (e) => {
  const { state, detail } = e.detail;
  const text = {
    static: {
      connecting: "Loading the model…",
      open: "Starting the model…",
      welcome: "model in this page",
      closed: `The model did not start${detail ? ` — ${detail}` : ""}`,
    },
    server: {
      connecting: "Connecting…",
      open: "Connecting…",
      welcome: "model on this computer's server",
      closed: `Disconnected${detail ? ` — ${detail}` : ""}`,
    },
  }[mode][state];
  $("conn").dataset.state = state;
  $("conn-text").textContent = text;
  hooks.ready = state === "welcome";
  for (const id of ["handover", "export"]) $(id).disabled = !hooks.ready;
  if (state === "welcome") [last, takes] = [null, false]; // a new connection, a new session
  showTakeButtons();
  if (state === "closed") answers.stop(now()); // a new connection is a new session
});

socket.addEventListener("message", (e) => receive(e.detail));

function receive(m) {
  switch (m.type) {
    case "welcome":
      welcome(m);
      break;
    case "settings":
      showSettings(m.settings);
      break;
    case "answer":
      pending = { ...m, latency_ms: null };
      if (delays.has(`${m.answer}.${m.take}`)) {
        pending.delayed_ms = delays.get(`${m.answer}.${m.take}`); // said before its first notes
      }
      hooks.answers.push(pending);
      last = { answer: m.answer, take: m.take, undone: false };
      answers.answer = m.answer;
      lateNotes = 0;
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
      // An answer without a note has no "answer" message: this one says which it was.
      if (last?.answer !== m.answer || last?.take !== m.take) {
        last = { answer: m.answer, take: m.take, undone: false };
      }
      takes = true;
      showTakeButtons();
      clearTimeout(turnTimer);
      turnTimer = setTimeout(() => setTurn("idle"), Math.max(0, (m.time - now()) * 1000));
      break;
    case "stopped":
      answers.stop(m.time);
      roll.mark(m.time, "cut", "player");
      clearTimeout(turnTimer);
      takes = true; // a cut answer can be taken again or undone, unless it was undone already
      showTakeButtons();
      setTurn(held.size ? "listening" : "idle");
      break;
    case "delayed":
      delayed(m);
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
}

function showTakeButtons() {
  const can = hooks.ready && takes && !!last && !last.undone;
  $("again").disabled = $("undo").disabled = !can;
}

// A note-on of the answer came too late to play.
function late() {
  hooks.dropped += 1;
  lateNotes += 1;
  const notes = `${lateNotes} late note${lateNotes === 1 ? "" : "s"}`;
  say(`${notes} dropped — they reached the page after their time`);
}

// The server moved an answer's notes later by `ms` in all (it was busy): said on the latency
// line while that answer is the latest. Its take, when not given, is the latest of the answer.
function delayed({ answer, take, ms }) {
  const of = hooks.answers.filter((a) => a.answer === answer && (take == null || a.take === take));
  const a = of.at(-1);
  delays.set(`${answer}.${take ?? a?.take ?? 1}`, ms);
  if (!a) return; // its "answer" message is yet to come
  a.delayed_ms = ms;
  if (a === hooks.answers.at(-1) && a.latency_ms != null) showLatency(a, false);
}

function welcome(m) {
  delays.clear(); // a new session numbers its answers from 1 again
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
let soundLoaded = false; // which piano plays is known once "welcome" said if there are samples

async function loadSound(samples) {
  if (soundAsked) return;
  soundAsked = true;
  if (samples) {
    showSound("Sound: loading the Salamander Grand Piano samples…");
    await piano.loadSamples();
  }
  soundText = null;
  hooks.sound = piano.kind;
  soundLoaded = true;
  showSound();
}

let soundText = null; // a passing line (loading...), or null

function showSound(text = soundText) {
  soundText = text;
  let line = text;
  if (!piano.ctx) line = "Sound: this browser has no Web Audio; the roll still shows the music";
  else if (line == null && !soundLoaded) line = "Sound: not loaded"; // no welcome (yet): say no more
  else if (line == null && piano.kind === "samples") {
    line = "Sound: Salamander Grand Piano samples (CC BY 3.0, Alexander Holm)";
  } else if (line == null) {
    line =
      mode === "static"
        ? "Sound: synthesized piano (this site was built without the sampled one)"
        : "Sound: synthesized piano — run make play to install the sampled piano";
  }
  $("sound").textContent = line;
  $("sound-on").hidden = !piano.ctx || piano.running;
}

// The first gesture starts the audio (browsers keep it off until one). A touch counts as one
// only when the finger lifts, hence pointerup and touchend.
for (const kind of ["pointerdown", "pointerup", "touchend", "keydown"]) {
  window.addEventListener(kind, () => piano.resume(), { capture: true });
}
$("sound-on").addEventListener("click", () => piano.resume());
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
  hooks.settings = s;
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
  if (!last || last.undone || !socket.send({ type: "undo" })) return;
  last.undone = true;
  takes = false;
  for (const a of hooks.answers) if (a.answer === last.answer && a.take === last.take) a.undone = true;
  markUndone(last);
  showTakeButtons();
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

function showLatency(a, listed = true) {
  const ms = Math.round(a.latency_ms);
  $("latency").textContent = `answered in ${ms} ms`;
  const when =
    a.delayed_ms != null
      ? `answer delayed ${Math.round(a.delayed_ms)} ms: the machine was busy`
      : `the answer begins ${startDelay} s after your phrase`;
  $("latency-detail").textContent = `model ${Math.round(a.compute_ms)} ms · ${when}`;
  if (!listed) return;
  const list = $("history");
  list.querySelector(".empty")?.remove();
  const item = document.createElement("li");
  item.dataset.answer = a.answer;
  item.dataset.take = a.take;
  const take = a.take > 1 ? `, take ${a.take}` : "";
  const model = `model ${Math.round(a.compute_ms)} ms`;
  item.innerHTML = `<span><span class="name">answer ${a.answer}${take}</span></span><b>${ms} ms</b><span class="muted">${model}</span>`;
  list.prepend(item);
  while (list.children.length > HISTORY) list.lastChild.remove();
  if (a.undone) markUndone(a);
}

// An undone take stays listed, struck through: it was played, and it no longer counts.
function markUndone({ answer, take }) {
  const item = $("history").querySelector(`li[data-answer="${answer}"][data-take="${take}"]`);
  if (!item || item.classList.contains("undone")) return;
  item.classList.add("undone");
  const note = document.createElement("span");
  note.className = "undone-note";
  note.textContent = " (undone)";
  item.firstElementChild.append(note);
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

// -- the static site: kept for offline play, and its updates ---------------------------------

// The service worker keeps the site; the model loads through it, so that a first visit
// downloads each file once. Without one (a plain http:// address other than localhost, a
// private window) the page plays all the same, online.
async function keepOffline() {
  const workers = navigator.serviceWorker;
  if (!workers) {
    siteLine("Not kept for offline play: browsers keep a site only from https:// or localhost.");
    return;
  }
  try {
    const claimed = new Promise((resolve) => workers.addEventListener("controllerchange", resolve));
    const registration = await workers.register("sw.js");
    offerUpdates(registration);
    await kept(registration);
    // A first visit's page is taken over at once (a reload forced past it never is).
    if (!workers.controller) await Promise.race([claimed, sleep(1000)]);
    hooks.offline = true;
    siteLine("Kept in this browser: it plays offline from now on.");
  } catch (e) {
    siteLine(`Not kept for offline play (${e.message})`);
  }
}

// Resolves once a service worker is active (its install kept every file), fails when the first
// one could not keep them (no room, a file missing): the page then plays online.
function kept(registration) {
  return new Promise((resolve, reject) => {
    const worker = registration.installing ?? registration.waiting ?? registration.active;
    const check = () => {
      if (registration.active) resolve();
      else if (worker.state === "redundant") reject(new Error("the browser could not store it"));
    };
    worker.addEventListener("statechange", check);
    check();
  });
}

let updating = false;

// A new build of the site installs beside this one and waits: the page offers to reload into it.
function offerUpdates(registration) {
  const offer = (worker) => {
    if (!navigator.serviceWorker.controller) return; // a first install, not an update
    const button = $("update");
    button.hidden = false;
    button.onclick = () => {
      updating = true;
      worker.postMessage({ type: "update" });
    };
  };
  if (registration.waiting) offer(registration.waiting);
  registration.addEventListener("updatefound", () => {
    const worker = registration.installing;
    worker?.addEventListener("statechange", () => worker.state === "installed" && offer(worker));
  });
  navigator.serviceWorker.addEventListener("controllerchange", () => updating && location.reload());
}

function siteLine(text) {
  $("site").textContent = text;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Web MIDI or not, said where the keys are: a phone without it (Safari on iOS) plays by touch.
if (!navigator.requestMIDIAccess) $("no-midi").hidden = false;

$("conn").title =
  mode === "static"
    ? "The model runs in this page, on this device: no server, and offline once visited"
    : "The model runs on the computer that play.py serves this page from";
setTurn("idle");
roll.start();
requestAnimationFrame(frame);
if (mode === "static") await keepOffline();
socket.connect();
