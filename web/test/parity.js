// The model and the engine in a Web Worker of a real browser, as the page runs them
// (web/js/worker.js): onnxruntime-web loaded from the site's own files, one thread, OnnxStepper
// stepping exported models teacher-forced, and the engine's Phrase encoding played phrases. For
// tests/test_web_chromium_parity.py (through parity.html) to hold against Python's steppers and
// amadeus/live/phrase.py, as the Node scripts beside it do under Node.
//
// Task in (addresses from here): {runtime (onnxruntime-web's module), models (export.py's JSON
// files, each .onnx beside its JSON), pieces: [{events, controls or null}], phrases: [{codec,
// encoding, origin, events, end}]}. Answer out: {logits (float32 ArrayBuffer: model after model,
// piece after piece, step after step), steps, seconds (of the stepping), phrases: [{takes,
// latest}]}, or {error}.

import { Codec } from "../js/engine/codec.js";
import { Phrase } from "../js/engine/phrase.js";
import { loadModel } from "../js/engine/stepper.js";
import { joined, playPhrase, teacherForced } from "./drive.js";

self.addEventListener("message", async ({ data }) => {
  try {
    const answer = await run(data);
    self.postMessage(answer, [answer.logits]);
  } catch (error) {
    self.postMessage({ error: String(error?.stack ?? error) });
  }
});

async function run({ runtime, models, pieces, phrases }) {
  const ort = await import(new URL(runtime, import.meta.url).href);
  ort.env.wasm.numThreads = 1;
  const runs = [];
  for (const model of models) {
    const { manifest, stepper } = await loadModel(ort, new URL(model, import.meta.url));
    runs.push(await teacherForced(stepper, manifest.onnx.start_token, pieces));
  }
  return {
    logits: joined(runs.map((r) => r.logits)).buffer,
    steps: runs.reduce((n, r) => n + r.steps, 0),
    seconds: runs.reduce((s, r) => s + r.seconds, 0),
    phrases: phrases.map((p) =>
      playPhrase(new Phrase(new Codec(p.codec), p.encoding, p.origin), p.events, p.end),
    ),
  };
}
