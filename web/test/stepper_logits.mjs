// Teacher-forced logits of token sequences through OnnxStepper (web/js/engine/stepper.js) in
// onnxruntime-web's WebAssembly backend, for the Python side to compare with its own steppers
// (tests/test_web_stepper.py, bench/web_parity.py).
//
//   node web/test/stepper_logits.mjs MODEL.onnx MANIFEST.json PIECES.json LOGITS.f32
//
// PIECES.json: {"pieces": [{"events": [int...], "controls": [[C floats]...] or null}]}. Each piece
// starts from the stepper's initial state and the start token; step t sees events[t - 1] and
// controls[t], as PerformanceRNN.logits. LOGITS.f32: every step's logits, float32, piece after
// piece. Prints {"steps", "seconds", "cpu_seconds"} of the stepping (not the loading) as JSON.

import { readFileSync, writeFileSync } from "node:fs";
import * as ort from "onnxruntime-web";
import { OnnxStepper } from "../js/engine/stepper.js";

const [model, manifestFile, piecesFile, output] = process.argv.slice(2);
ort.env.wasm.numThreads = 1;
const manifest = JSON.parse(readFileSync(manifestFile, "utf8"));
const { pieces } = JSON.parse(readFileSync(piecesFile, "utf8"));
const stepper = await OnnxStepper.create(ort, readFileSync(model), manifest);

const chunks = [];
let steps = 0;
const began = performance.now();
const cpu = process.cpuUsage();
for (const { events, controls } of pieces) {
  let hidden = stepper.initial();
  let event = manifest.onnx.start_token;
  for (let t = 0; t < events.length; t++) {
    const result = await stepper.step(event, hidden, controls ? controls[t] : null);
    chunks.push(result.logits);
    hidden = result.hidden;
    event = events[t];
    steps++;
  }
}
const seconds = (performance.now() - began) / 1000;
const used = process.cpuUsage(cpu);
const cpuSeconds = (used.user + used.system) / 1e6;
const all = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
chunks.reduce((at, c) => (all.set(c, at), at + c.length), 0);
writeFileSync(output, all);
console.log(JSON.stringify({ steps, seconds, cpu_seconds: cpuSeconds }));
