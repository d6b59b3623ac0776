// The model in the page, off the page's thread so the audio and the keys never wait on it:
// onnxruntime-web (WebAssembly, from the site's own files) runs the exported generation step,
// engine/session.js the live engine, and the messages both ways are the live protocol's, as the
// server's are. The engine is told the time every tick, as the server's loop tells its own, and
// samples an answer in short calls, each posting its notes at once.
//
// First message from the page: {type: "start", site (site.json), base (the site's address),
// origin (the page's performance.timeOrigin)}; answered by {type: "loaded", protocol}, or
// {type: "failed", message}. Every later message is a protocol message for the engine.

import { Session } from "./engine/session.js";
import { loadModel } from "./engine/stepper.js";

const BUDGET = 0.01; // seconds of sampling per engine call: a note goes out as soon as it is sampled

let session = null;
let clock = null; // the page's clock, seconds: its performance.now() / 1000
let ticking = false; // a tick is queued: another would only repeat it
const soon = new MessageChannel(); // a tick at once (timers would clamp it to 4 ms and more)

self.addEventListener("message", (e) => {
  const m = e.data;
  if (m.type === "start") {
    start(m).catch((error) => self.postMessage({ type: "failed", message: reason(error) }));
  } else if (session) {
    run(() => session.handle(m));
  }
});

async function start({ site, base, origin }) {
  // Both clocks count from their own origin; the origins are on one wall clock.
  clock = () => (performance.timeOrigin - origin + performance.now()) / 1000;
  const ort = await import(new URL(site.runtime, base).href);
  // One thread: a batch-1 step gains nothing from more (README, Performance), and a static
  // host is rarely cross-origin isolated, which threads need.
  ort.env.wasm.numThreads = 1;
  const { manifest, stepper } = await loadModel(ort, new URL(site.model, base));
  const seed = site.seed ?? randomSeed();
  session = new Session(manifest, stepper, {
    seed,
    samples: site.samples,
    live: site.live, // the page's thread gets the notes further ahead than a server's client
    clock,
    budget: BUDGET,
  });
  self.postMessage({ type: "loaded", protocol: manifest.protocol });
  // The server's tick; one that comes late (a busy machine) counts as lag, as the server's does.
  const every = manifest.messages.tick_seconds;
  let last = clock();
  setInterval(() => {
    const now = clock();
    session.lagged(now - last - every);
    last = now;
    tick();
  }, 1000 * every);
  soon.port1.onmessage = tick;
}

// The engine told the time, as it is when the tick is asked for: every message the page sent
// before then is queued ahead of it.
function tick() {
  if (ticking) return;
  ticking = true;
  const now = clock();
  run(() => {
    ticking = false;
    return session.tick(now, session.heard(now));
  });
}

// The engine's replies go to the page, in order (the session runs its calls one at a time); an
// answer that stopped for its budget goes on at once. A failure in the engine is the page's to
// say, and the session goes on, as the server's does.
async function run(call) {
  try {
    for (const reply of await call()) self.postMessage(reply);
  } catch (error) {
    console.error(error);
    self.postMessage({ type: "error", message: `the engine failed: ${reason(error)}` });
  }
  if (session.engine.pending) soon.port2.postMessage(null);
}

function randomSeed() {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

function reason(error) {
  return String(error?.message ?? error).replace(/\.$/, "");
}
