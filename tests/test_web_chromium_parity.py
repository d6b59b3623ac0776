"""The page's model and engine in a real browser: Debian's Chromium (through Playwright) runs
web/js/engine/ in a module Web Worker, as the page does, with onnxruntime-web's WebAssembly
runtime served as the built site serves it (web/build.py). Tiny models exported here step a few
hundred tokens of real music, with and without controls, as Python's steppers do (int8 on the
reference kernel: to the bit; fp32 within 1e-4), to the bar of the Node test
(tests/test_web_stepper.py); the engine's Phrase gives the tokens amadeus/live/phrase.py gives.
One browser, one worker run: web/test/parity.html, parity.js and drive.js.

Without /usr/bin/chromium or web/node_modules (cd web && npm ci) the tests skip, except in CI
(CI set), where they fail."""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import asdict
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from test_browser import ARGS, CHROMIUM
from test_export import STEPS, nll, python_logits, real_music
from test_live_phrase import CASES, playing
from test_live_phrase import play as play_phrase
from test_site import _needed
from test_web_engine import events_json
from web_fixtures import WEB, tiny_session

from amadeus.data.codec import EventCodec
from amadeus.generate.loaded import load
from amadeus.live.manifest import codec_table
from amadeus.live.onnx_export import export_onnx
from amadeus.live.phrase import Phrase
from amadeus.quant import kernel
from web.build import RUNTIME, RUNTIME_FILES, RUNTIME_MODULE, RUNTIME_WASM

PRECISIONS = {"int8": True, "fp32": False}
PHRASE_SEED = 1
LOAD_MS = 120_000  # the runtime's 15 MB of WebAssembly compiled, then the steps, on a busy machine


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def site(folder: Path) -> None:
    """`folder` laid out as the built site and web/: the engine (js/engine), the runtime under
    the names the site gives it (ort/), this test's page (test/), linked, not copied."""
    (folder / "js").mkdir()
    (folder / "js/engine").symlink_to(WEB / "js/engine")
    (folder / "test").symlink_to(WEB / "test")
    (folder / "ort").mkdir()
    for source, name in {**RUNTIME_FILES, RUNTIME_WASM: RUNTIME_WASM}.items():
        (folder / "ort" / name).symlink_to(RUNTIME / source)


def phrases() -> tuple[list[dict], list[dict]]:
    """Each of test_live_phrase's cases played once: the worker's tasks, Python's takes."""
    tasks, want = [], []
    for preset, settings, presses, (low, high), steps in CASES.values():
        codec = EventCodec(preset)
        events = playing(PHRASE_SEED, presses, low, high, steps)
        end = events[-1][0] + 0.7  # keys and the pedal may be down until then
        takes, latest = play_phrase(Phrase(codec, settings, origin=100.0), events, end)
        want.append({"takes": [t.tolist() for t in takes], "latest": latest})
        tasks.append(
            {
                "codec": codec_table(codec),
                "encoding": asdict(settings),
                "origin": 100.0,
                "events": events_json(events),
                "end": end,
            }
        )
    return tasks, want


@pytest.fixture(scope="module")
def browser_run(tmp_path_factory):
    """Everything run once in Chromium: the exported models, the music, each model's logits
    [piece, step, V] from the worker, the phrases (Python's and the worker's), the seconds."""
    _needed(CHROMIUM, "apt-get install -y chromium")
    _needed(RUNTIME / RUNTIME_WASM, "cd web && npm ci")
    from playwright.sync_api import sync_playwright

    folder = tmp_path_factory.mktemp("parity")
    site(folder)
    (folder / "model").mkdir()
    loaded = {}
    for name, int8 in PRECISIONS.items():
        loaded[name] = load(tiny_session(tmp_path_factory.mktemp(name), int8=int8))
        manifest = export_onnx(loaded[name], folder / "model" / f"{name}.onnx")
        (folder / "model" / f"{name}.json").write_text(json.dumps(manifest))
    events, controls = real_music(folder)
    tasks, want = phrases()
    task = {
        "runtime": f"../ort/{RUNTIME_MODULE}",
        "models": [f"../model/{name}.json" for name in loaded],
        "pieces": [{"events": events.tolist(), "controls": c} for c in (None, controls.tolist())],
        "phrases": tasks,
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    problems = []
    began = time.monotonic()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
            page = browser.new_page()
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.set_default_timeout(LOAD_MS)
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/test/parity.html")
            page.wait_for_function("typeof window.parity === 'function'")
            got = page.evaluate("(task) => window.parity(task)", task)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    assert problems == []
    logits = np.frombuffer(bytearray(base64.b64decode(got["logits"])), np.float32)
    got["logits"] = dict(zip(loaded, logits.reshape(len(loaded), 2, STEPS, -1)))
    print(
        f"\nChromium, one worker: {got['steps']} steps in {got['seconds']:.2f} s "
        f"({got['steps'] / got['seconds']:.0f} steps/s), {time.monotonic() - began:.1f} s "
        "from the browser's launch to its answer"
    )
    return {"loaded": loaded, "events": events, "controls": controls, "want": want, "got": got}


@pytest.mark.parametrize("name", PRECISIONS)
def test_the_worker_steps_as_the_python_stepper(browser_run, name):
    loaded, events = browser_run["loaded"][name], browser_run["events"]
    got = browser_run["got"]
    assert got["steps"] == len(PRECISIONS) * 2 * STEPS
    for piece, control in zip(got["logits"][name], (None, browser_run["controls"]), strict=True):
        want, _ = python_logits(loaded, events, control)
        agreement = (want.argmax(1) == piece.argmax(1)).mean()
        print(
            f"{name}, {'control' if control is not None else 'no control'}: max |logit "
            f"difference| {np.abs(piece - want).max():.2e}, top-1 agreement {agreement:.3f}, "
            f"NLL {nll(piece, events):.5f} vs {nll(want, events):.5f}"
        )
        assert agreement >= 0.98
        assert nll(piece, events) == pytest.approx(nll(want, events), rel=0.01)
        if not loaded.int8:
            np.testing.assert_allclose(piece, want, atol=1e-4)
        elif not kernel.FBGEMM_EXACT:  # the reference kernel: the same arithmetic
            assert np.array_equal(piece, want)


def test_the_worker_encodes_phrases_as_python(browser_run):
    got, want = browser_run["got"]["phrases"], browser_run["want"]
    for case, ours, theirs in zip(CASES, got, want, strict=True):
        assert ours["takes"] == theirs["takes"], case
        assert ours["latest"] == theirs["latest"], case
