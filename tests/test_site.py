"""The static site in a real browser: built by web/build.py from a tiny session, served by a
plain static file server (`python3 -m http.server`, no Python engine behind it), and played in
Debian's Chromium through Playwright, as tests/test_browser.py plays the served page. The page
says the model is in the page and opens no WebSocket; a phrase on the on-screen keys and one on
a fake Web MIDI keyboard are each answered, and the export holds both players' tracks; then the
network goes off, the page reloads from what the service worker kept and answers again. On a
phone's screen without Web MIDI the page says so, fits 390 px and plays by touch. Screenshots
go to /tmp/shots/.

Without /usr/bin/chromium or web/node_modules (onnxruntime-web) the tests skip, except in CI."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import symusic
from test_browser import (
    ARGS,
    CHROMIUM,
    FAKE_MIDI,
    PHONE,
    _fits_the_screen,
    _free_port,
    _keep,
    watched_page,
)

from amadeus.live.settings import IN_PAGE

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "web/node_modules/onnxruntime-web"
LOAD_MS = 60_000  # the runtime's 15 MB of WebAssembly compiled on a loaded CI machine
WAIT_MS = 30_000  # for an answer, on a loaded machine
NO_MIDI = "delete Navigator.prototype.requestMIDIAccess;"  # a browser without Web MIDI (iOS)
PHRASE = (60, 64, 67, 72, 71, 67, 62, 60)


def _needed(path: Path, why: str) -> None:
    if path.exists():
        return
    message = f"{path} is missing: {why}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def site(tiny_session, tmp_path_factory):
    """The site built from the tiny session and served by `python3 -m http.server`: its address."""
    _needed(RUNTIME, "cd web && npm ci")
    out = tmp_path_factory.mktemp("site") / "dist"
    build = [sys.executable, "web/build.py", "-s", str(tiny_session), "-o", str(out)]
    done = subprocess.run(build, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    print("\n" + done.stdout.strip())
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "-b", "127.0.0.1", "-d", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not _listening(port):
        assert server.poll() is None and time.monotonic() < deadline, "http.server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.terminate()
    server.wait(10)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def browser():
    _needed(CHROMIUM, "apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_site(site, browser):
    """Opens the site in a fresh browser profile (after `init_script`, if any) and waits for
    the model's welcome; no console error, page error or WebSocket may occur."""
    contexts, problems, sockets = [], [], []

    def opener(init_script: str | None = None, **context):
        page = watched_page(browser, contexts, problems, init_script, **context)
        page.on("websocket", lambda ws: sockets.append(ws.url))
        page.goto(site)
        _ready(page)
        return page

    yield opener
    for context in contexts:
        context.close()
    assert problems == []
    assert sockets == []


def _ready(page) -> float:
    """Waits for the model's welcome; the page's time to it, in ms."""
    page.wait_for_function("window.amadeus && window.amadeus.ready", timeout=LOAD_MS)
    assert page.evaluate("window.amadeus.mode") == "static"
    assert page.text_content("#conn-text") == "model in this page"
    settings = page.evaluate("window.amadeus.settings")
    assert {name: settings[name] for name in IN_PAGE} == IN_PAGE  # site.json's, in the worker
    return page.evaluate("performance.now()")


def _play_keys(page, tap: bool = False) -> int:
    """The phrase on the on-screen keys (clicked low on each key, or tapped), then Hand over;
    the answer notes scheduled before the hand-over."""
    before = page.evaluate("window.amadeus.roll.player")
    for pitch in PHRASE:
        box = page.locator(f'#keyboard .key[data-pitch="{pitch}"]').bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.8
        if tap:
            page.touchscreen.tap(x, y)
        else:
            page.mouse.move(x, y)
            page.mouse.down()
            page.wait_for_timeout(90)
            page.mouse.up()
        page.wait_for_timeout(40)
    page.wait_for_function(f"window.amadeus.roll.player >= {before + len(PHRASE)}")
    scheduled = page.evaluate("window.amadeus.scheduled.length")
    box = page.locator("#handover").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.touchscreen.tap(x, y) if tap else page.mouse.click(x, y)
    return scheduled


def _answered(page, scheduled: int) -> float:
    """Waits for an answer note scheduled after the first `scheduled`; the time from its
    answer's hand-over to it, in ms. (A tiny random model's answer may have no note, or only
    notes dropped for coming late on a loaded machine: the next answer counts then.)"""
    page.wait_for_function(f"window.amadeus.scheduled.length > {scheduled}", timeout=WAIT_MS)
    hooks = page.evaluate("window.amadeus")
    first = hooks["scheduled"][scheduled]
    answer = next(a for a in reversed(hooks["answers"]) if a["answer"] == first["answer"])
    assert "answered in" in page.text_content("#latency")
    assert first["time"] >= answer["phrase_end"] + IN_PAGE["start_delay"] - 1e-6
    return first["scheduledAt"] - answer["phrase_end"] * 1000


def test_static_site_answers_keys_and_midi_and_plays_offline(open_site, tmp_path):
    page = open_site(FAKE_MIDI)
    print(f"first visit: the model answers {page.evaluate('performance.now()'):.0f} ms in")
    assert "tiny" in page.text_content("#model")
    page.locator("#silence").press("End")  # 2 s: the button ends the phrase, not a pause
    page.wait_for_function("document.getElementById('silence-value').textContent === '2.00 s'")
    scheduled = _play_keys(page)
    print(f"keys: hand-over to first answer note scheduled {_answered(page, scheduled):.1f} ms")

    page.wait_for_function(
        "document.getElementById('turn').dataset.turn === 'idle'", timeout=WAIT_MS
    )
    page.select_option("#midi-in", label="Test keyboard")
    scheduled = page.evaluate("window.amadeus.scheduled.length")
    page.evaluate(
        """async () => {
          const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
          for (const pitch of [62, 65, 69, 74]) {
            window.__midi([0x90, pitch, 96]);
            await sleep(80);
            window.__midi([0x80, pitch, 0]);
            await sleep(20);
          }
          window.__midi([0xb0, 67, 127]);
        }"""
    )
    print(f"MIDI: hand-over to first answer note scheduled {_answered(page, scheduled):.1f} ms")
    page.wait_for_timeout(1000)
    page.screenshot(path=tmp_path / "static.png")
    _keep(tmp_path / "static.png", "static-1280.png")

    with page.expect_download():
        page.click("#export")
    page.wait_for_function("window.amadeus.lastExport !== null")
    midi = base64.b64decode(page.evaluate("window.amadeus.lastExport"))
    tracks = {t.name: len(t.notes) for t in symusic.Score.from_midi(midi).tracks}
    assert tracks["player"] == len(PHRASE) + 4
    assert tracks["Amadeus"] > 0

    # Offline: the service worker kept the site; the page comes back from it and plays.
    page.wait_for_function("window.amadeus.offline", timeout=LOAD_MS)
    assert "offline" in page.text_content("#site")
    page.context.set_offline(True)
    page.reload()
    ready = _ready(page)
    print(f"offline reload: the model answers {ready:.0f} ms in")
    scheduled = _play_keys(page)
    print(f"offline: hand-over to first answer note scheduled {_answered(page, scheduled):.1f} ms")
    assert page.evaluate("window.amadeus.errors") == []


def test_phone_without_web_midi(open_site, tmp_path):
    """A phone's browser without Web MIDI: the page says so above the keys, which are sized
    for a finger, fit the 390 px screen and play."""
    page = open_site(NO_MIDI, **PHONE)
    _fits_the_screen(page)
    note = page.locator("#no-midi")
    assert note.is_visible()
    assert "no Web MIDI" in note.text_content()
    whites = page.locator("#keyboard .key.white")
    boxes = [whites.nth(i).bounding_box() for i in range(whites.count())]
    assert len(boxes) >= 8
    assert all(b["width"] >= 40 and b["x"] >= 0 and b["x"] + b["width"] <= 390 for b in boxes)
    assert all(b["y"] + b["height"] <= 844 for b in boxes)  # on the first screen
    page.locator("#silence").press("End")
    page.evaluate("window.scrollTo(0, 0)")
    _answered(page, _play_keys(page, tap=True))
    page.wait_for_timeout(1000)
    _fits_the_screen(page)
    page.screenshot(path=tmp_path / "phone.png")
    _keep(tmp_path / "phone.png", "static-phone-390.png")
    page.screenshot(path=tmp_path / "phone-full.png", full_page=True)
    _keep(tmp_path / "phone-full.png", "static-phone-390-full.png")
