"""The page's stepper (web/js/engine/stepper.js) in onnxruntime-web's WebAssembly build, under
Node: an exported tiny model steps a few hundred tokens of real music as the Python stepper
does (int8 on the reference kernel: to the bit), with and without controls.

Without node or web/node_modules (cd web && npm ci) the tests skip, except in CI (CI set), where
they fail."""

import json
import os
import subprocess

import numpy as np
import pytest
from test_export import STEPS, nll, python_logits, real_music
from web_fixtures import WEB, node, tiny_session

from amadeus.generate.loaded import load
from amadeus.live.onnx_export import export_onnx
from amadeus.quant import kernel

SCRIPT = WEB / "test/stepper_logits.mjs"


def runtime() -> str:
    """Node, with onnxruntime-web installed beside the page."""
    if not (WEB / "node_modules/onnxruntime-web").is_dir():
        message = "web/node_modules/onnxruntime-web is missing: cd web && npm ci"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return node()


@pytest.mark.parametrize("int8", [True, False], ids=["int8", "fp32"])
def test_node_steps_as_the_python_stepper(tmp_path, int8):
    binary = runtime()
    loaded = load(tiny_session(tmp_path, int8=int8))
    manifest = export_onnx(loaded, tmp_path / "model.onnx")
    (tmp_path / "model.json").write_text(json.dumps(manifest))
    events, controls = real_music(tmp_path)
    pieces = [{"events": events.tolist(), "controls": c} for c in (None, controls.tolist())]
    (tmp_path / "pieces.json").write_text(json.dumps({"pieces": pieces}))
    files = [tmp_path / name for name in ("model.onnx", "model.json", "pieces.json", "out.f32")]
    done = subprocess.run(
        [binary, SCRIPT, *files], capture_output=True, text=True, cwd=WEB, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["steps"] == 2 * STEPS
    got = np.fromfile(tmp_path / "out.f32", np.float32).reshape(2, STEPS, -1)
    for piece, control in zip(got, (None, controls)):
        want, _ = python_logits(loaded, events, control)
        assert (want.argmax(1) == piece.argmax(1)).mean() >= 0.98
        assert nll(piece, events) == pytest.approx(nll(want, events), rel=0.01)
        if not int8:
            np.testing.assert_allclose(piece, want, atol=1e-4)
        elif not kernel.FBGEMM_EXACT:  # the reference kernel: the same arithmetic
            assert np.array_equal(piece, want)


CHECKS = """
import * as ort from "onnxruntime-web";
import { readFileSync } from "node:fs";
import { OnnxStepper } from "./js/engine/stepper.js";
ort.env.wasm.numThreads = 1;
const [model, manifestFile] = process.argv.slice(1);
const manifest = JSON.parse(readFileSync(manifestFile, "utf8"));
const stepper = await OnnxStepper.create(ort, readFileSync(model), manifest);
const errors = [];
const bad = [[240, null], [-1, null], [1.5, null], [0, new Float32Array(3)], [0, null, 5]];
for (const [event, control, size] of bad) {
  const hidden = size ? new Float32Array(size) : stepper.initial();
  try { await stepper.step(event, hidden, control); } catch (e) { errors.push(e.name); }
}
const start = stepper.initial();
start[0] = 99;
const { logits, hidden } = await stepper.step(0, stepper.initial(), new Float32Array(24));
console.log(JSON.stringify({ errors, fresh: stepper.initial()[0] !== 99,
  sizes: [logits.length, hidden.length] }));
"""


def test_the_stepper_refuses_what_the_model_cannot_take(tmp_path):
    binary = runtime()
    loaded = load(tiny_session(tmp_path, int8=True))
    manifest = export_onnx(loaded, tmp_path / "model.onnx")
    (tmp_path / "model.json").write_text(json.dumps(manifest))
    done = subprocess.run(
        [
            binary,
            "--input-type=module",
            "-e",
            CHECKS,
            tmp_path / "model.onnx",
            tmp_path / "model.json",
        ],
        capture_output=True,
        text=True,
        cwd=WEB,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["errors"] == ["RangeError"] * 5
    assert result["fresh"]  # initial() hands out a copy
    assert result["sizes"] == [240, 2 * 32]
