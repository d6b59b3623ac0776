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
import { teacherForced } from "./drive.js";

const [model, manifestFile, piecesFile, output] = process.argv.slice(2);
ort.env.wasm.numThreads = 1;
const manifest = JSON.parse(readFileSync(manifestFile, "utf8"));
const { pieces } = JSON.parse(readFileSync(piecesFile, "utf8"));
const stepper = await OnnxStepper.create(ort, readFileSync(model), manifest);

const cpu = process.cpuUsage();
const { logits, steps, seconds } = await teacherForced(stepper, manifest.onnx.start_token, pieces);
const used = process.cpuUsage(cpu);
const cpuSeconds = (used.user + used.system) / 1e6;
writeFileSync(output, logits);
console.log(JSON.stringify({ steps, seconds, cpu_seconds: cpuSeconds }));
