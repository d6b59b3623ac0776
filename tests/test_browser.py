"""The page in a real browser, end to end: Chromium (Debian's) driven by Playwright, the page
served by the real server (amadeus.live.server) with a tiny real model. A phrase on the on-screen
keyboard and one from a fake Web MIDI keyboard each get an answer that is scheduled and drawn;
the session exports as MIDI; the hand-over to first scheduled note latency is printed. Undo
disables Again and Undo and strikes the take out; late answer notes are dropped, not burst; the
roll's labels keep clear of each other; a busy server's page claims no piano; and on a phone's
screen, played by touch, nothing spills sideways. Screenshots go to /tmp/shots/.

Without /usr/bin/chromium the tests skip, except in CI (CI set), where they fail."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import symusic
import uvicorn

from amadeus.generate.loaded import load
from amadeus.live.instrument import Instrument
from amadeus.live.server import ServerOptions, create_app

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
# The browser's own autoplay policy: the audio waits for a click, a key or a tap.
GATED_ARGS = [a for a in ARGS if not a.startswith("--autoplay-policy")]
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "has_touch": True,
    "is_mobile": True,
    "device_scale_factor": 3,
}
SHOTS = Path("/tmp/shots")  # the screenshots, to look at
WAIT_MS = 10_000  # for an answer: generous, for a loaded CI machine
LATENCY_BOUND_MS = 1000  # the target is 100 ms; this only catches a page that is broken

# A fake Web MIDI with one input, "Test keyboard"; window.__midi([status, a, b]) plays on it,
# stamped with performance.now() as a real MIDIMessageEvent is.
FAKE_MIDI = """
(() => {
  const input = new EventTarget();
  Object.assign(input, {
    id: "test-keyboard", name: "Test keyboard", manufacturer: "Amadeus tests",
    type: "input", state: "connected", connection: "open", onmidimessage: null,
  });
  input.open = () => Promise.resolve(input);
  input.close = () => Promise.resolve(input);
  const access = new EventTarget();
  Object.assign(access, {
    inputs: new Map([[input.id, input]]), outputs: new Map(), sysexEnabled: false,
    onstatechange: null,
  });
  Object.defineProperty(Navigator.prototype, "requestMIDIAccess", {
    configurable: true,
    value: () => Promise.resolve(access),
  });
  window.__midi = (bytes) => {
    const event = new Event("midimessage");
    Object.defineProperty(event, "data", { value: new Uint8Array(bytes) });
    Object.defineProperty(event, "timeStamp", { value: performance.now() });
    input.dispatchEvent(event);
    if (typeof input.onmidimessage === "function") input.onmidimessage(event);
    return event.timeStamp / 1000;
  };
})();
"""


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def server(tiny_session):
    """The real server with a tiny real model, under uvicorn in a thread; its address."""
    yield from _serve(tiny_session, ServerOptions(web=ROOT / "web", samples=None))


@pytest.fixture(scope="module")
def busy_server(tiny_session, tmp_path_factory):
    """A server with the sampled piano installed and no room for another session: every page
    is told "busy"."""
    samples = tmp_path_factory.mktemp("samples")
    options = ServerOptions(web=ROOT / "web", samples=samples, max_sessions=0)
    yield from _serve(tiny_session, options)


@pytest.fixture(scope="module")
def secret_server(tiny_session):
    """A server in network mode: only a page opened with the token may play."""
    yield from _serve(tiny_session, ServerOptions(web=ROOT / "web", samples=None, token="s3cret"))


@pytest.fixture(scope="module")
def driver():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(chromium, driver):
    browser = driver.chromium.launch(executable_path=str(chromium), headless=True, args=ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def gated_browser(chromium, driver):
    """Chromium as it comes: a page's audio stays off until a gesture."""
    browser = driver.chromium.launch(executable_path=str(chromium), headless=True, args=GATED_ARGS)
    yield browser
    browser.close()


def watched_page(browser, contexts: list, problems: list, init_script: str | None, **context):
    """A page in a new context (a desktop's size unless `context` says otherwise), after
    `init_script` if any; the context goes in `contexts`, every console error and page error in
    `problems`."""
    context = browser.new_context(**({"viewport": {"width": 1280, "height": 820}} | context))
    contexts.append(context)
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    return page


@pytest.fixture
def open_page(request, server):
    """Opens the page (after `init_script`, if any), at a desktop's size unless `context` says
    otherwise, in the gated browser if `gated`, from `url` (the server's, unless given), waiting
    for the welcome if `ready`; every console error and page error is collected, and none may
    occur."""
    contexts, problems = [], []

    def opener(
        init_script: str | None = None,
        *,
        gated: bool = False,
        url: str | None = None,
        ready: bool = True,
        **context,
    ):
        browser = request.getfixturevalue("gated_browser" if gated else "browser")
        page = watched_page(browser, contexts, problems, init_script, **context)
        page.goto(url or server)
        if ready:
            page.wait_for_function("window.amadeus && window.amadeus.ready", timeout=WAIT_MS)
        return page

    yield opener
    for context in contexts:
        context.close()
    assert problems == []


def test_keyboard_phrase_is_answered_and_exported(open_page, tmp_path):
    page = open_page()
    assert "tiny.sess" in page.text_content("#model")
    assert "fp32" in page.text_content("#model")
    assert page.evaluate("window.amadeus.sound") == "synth"
    assert "synthesized piano" in page.text_content("#sound")
    # A long silence, set on the page's slider: the Hand over button ends this phrase.
    page.locator("#silence").press("End")
    page.wait_for_function("document.getElementById('silence-value').textContent === '2.00 s'")

    for pitch in (60, 64, 67, 72, 71, 67, 62, 60):
        box = page.locator(f'#keyboard .key[data-pitch="{pitch}"]').bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.85)
        page.mouse.down()
        page.wait_for_timeout(90)
        page.mouse.up()
        page.wait_for_timeout(30)
    page.wait_for_function("window.amadeus.roll.player >= 8")
    page.click("#handover")
    page.wait_for_function(
        "window.amadeus.scheduled.length > 0 && window.amadeus.roll.amadeus > 0",
        timeout=WAIT_MS,
    )
    hooks = page.evaluate("window.amadeus")
    answer = hooks["answers"][0]
    first = next(s for s in hooks["scheduled"] if s["answer"] == answer["answer"])
    latency = first["scheduledAt"] - answer["phrase_end"] * 1000
    print(
        f"\nhand-over (button) to first answer note scheduled: {latency:.1f} ms "
        f"(model {answer['compute_ms']:.1f} ms; first 'notes' message after "
        f"{answer['latency_ms']:.1f} ms)"
    )
    assert 0 <= latency < LATENCY_BOUND_MS
    assert "answered in" in page.text_content("#latency")
    assert page.locator("#history li").count() == 1

    page.wait_for_timeout(1500)  # the answer sounds a while: the roll shows both players
    page.screenshot(path=tmp_path / "amadeus-page.png")
    shutil.copy(tmp_path / "amadeus-page.png", "/tmp/amadeus-page.png")
    _keep(tmp_path / "amadeus-page.png", "desktop-1280.png")

    with page.expect_download() as download:
        page.click("#export")
    assert download.value.suggested_filename.endswith(".mid")
    page.wait_for_function("window.amadeus.lastExport !== null")
    midi = base64.b64decode(page.evaluate("window.amadeus.lastExport"))
    assert Path(download.value.path()).read_bytes() == midi
    tracks = {t.name: len(t.notes) for t in symusic.Score.from_midi(midi).tracks}
    assert tracks["player"] == 8
    assert tracks["Amadeus"] > 0

    _late_notes_are_dropped(page)
    _delayed_answer_is_said(page)
    _roll_labels_keep_clear(page, tmp_path)
    assert page.evaluate("window.amadeus.errors") == []


def _late_notes_are_dropped(page):
    """Answer notes that reach the page after their time are dropped, note-offs too, and
    counted; one still ahead of its time plays."""
    page.wait_for_function("document.getElementById('turn').dataset.turn === 'idle'")
    seen = page.evaluate(
        """() => {
          const a = window.amadeus;
          const t = performance.now() / 1000;
          const before = { scheduled: a.scheduled.length, voices: a.voices, dropped: a.dropped };
          a.receive({ type: "notes", events: [
            { time: t - 0.5, pitch: 61, velocity: 90 },
            { time: t - 0.45, pitch: 63, velocity: 90 },
            { time: t - 0.2, pitch: 66, velocity: 90 },
            { time: t - 0.1, pitch: 61, velocity: 0 },
            { time: t + 0.2, pitch: 70, velocity: 80 },
            { time: t + 0.3, pitch: 63, velocity: 0 },
            { time: t + 0.35, pitch: 66, velocity: 0 },
            { time: t + 0.5, pitch: 70, velocity: 0 },
          ] });
          return {
            before,
            scheduled: a.scheduled.slice(before.scheduled).map((s) => s.pitch),
            voices: a.voices,
            dropped: a.dropped,
          };
        }"""
    )
    assert seen["dropped"] - seen["before"]["dropped"] == 3
    assert seen["scheduled"] == [70]  # the late three were not scheduled...
    assert seen["voices"] == seen["before"]["voices"] + 1  # ...nor given a voice
    assert f"{seen['dropped']} late notes dropped" in page.text_content("#status")


def _delayed_answer_is_said(page):
    """The server's "delayed" message shows on the latency line of its answer."""
    answer = page.evaluate("window.amadeus.answers.at(-1).answer")
    page.evaluate(f"window.amadeus.receive({{type: 'delayed', answer: {answer}, ms: 180.0}})")
    assert "answer delayed 180 ms" in page.text_content("#latency-detail")
    assert "answered in" in page.text_content("#latency")  # the latency stays
    assert page.evaluate("window.amadeus.answers.at(-1).delayed_ms") == 180


def _roll_labels_keep_clear(page, tmp_path):
    """Marks all over the roll: their labels cover no pitch name, no legend, no other label."""
    page.evaluate(
        """() => {
          const t = performance.now() / 1000;
          for (let k = 0; k < 40; k++) {
            const label = k % 2 ? "cut" : `answer ${7 + k}`;
            window.amadeus.mark(t - 0.25 * k, label, k % 2 ? "player" : "amadeus");
          }
        }"""
    )
    page.wait_for_timeout(300)  # a few frames
    placed = page.evaluate("window.amadeus.labels")
    canvas = page.locator("#roll").bounding_box()
    boxes = [page.locator(s).bounding_box() for s in ("#legend", "#turn")]
    overlays = [
        {"x": b["x"] - canvas["x"], "y": b["y"] - canvas["y"], "w": b["width"], "h": b["height"]}
        for b in boxes
    ]
    labels = placed["labels"]
    assert len(labels) >= 10
    assert len(placed["pitches"]) >= 2
    for i, label in enumerate(labels):
        assert label["x"] >= 0 and label["x"] + label["w"] <= canvas["width"]
        for other in placed["pitches"] + overlays + labels[i + 1 :]:
            assert not _overlap(label, other), (label, other)
    page.screenshot(path=tmp_path / "labels.png", clip={**canvas})
    _keep(tmp_path / "labels.png", "desktop-1280-roll-labels.png")


def test_midi_keyboard_phrases_are_answered(open_page):
    page = open_page(FAKE_MIDI)
    page.wait_for_function(
        "[...document.querySelectorAll('#midi-in option')].some(o => o.text === 'Test keyboard')"
    )
    page.select_option("#midi-in", label="Test keyboard")
    page.locator("#silence").press("Home")  # 0.3 s of silence ends a phrase
    page.wait_for_function("document.getElementById('silence-value').textContent === '0.30 s'")

    # Phrase 1: note-ons, note-offs both ways (0x80, and 0x90 with velocity 0); silence ends it.
    page.evaluate(
        """async () => {
          const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
          for (const [pitch, off] of [[62, 0x80], [65, 0x90], [69, 0x80], [74, 0x90]]) {
            window.__midi([0x90, pitch, 96]);
            await sleep(80);
            window.__midi([off, pitch, 0]);
            await sleep(20);
          }
        }"""
    )
    page.wait_for_function(
        "window.amadeus.answers.length === 1 && window.amadeus.roll.amadeus > 0",
        timeout=WAIT_MS,
    )
    assert page.evaluate("window.amadeus.roll.player") == 4

    # Phrase 2, over the answer (a barge-in), with the sustain pedal; the soft pedal ends it.
    handed_over = page.evaluate(
        """async () => {
          const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
          window.__midi([0xb0, 64, 127]);
          for (const pitch of [57, 60, 64]) {
            window.__midi([0x90, pitch, 70]);
            await sleep(60);
            window.__midi([0x80, pitch, 0]);
          }
          await sleep(60);
          window.__midi([0xb0, 64, 0]);
          return window.__midi([0xb0, 67, 127]);
        }"""
    )
    page.wait_for_function(
        "window.amadeus.answers.length === 2 && window.amadeus.scheduled.some(s => s.answer === 2)",
        timeout=WAIT_MS,
    )
    hooks = page.evaluate("window.amadeus")
    second = hooks["answers"][1]
    assert second["phrase_end"] == pytest.approx(handed_over, abs=1e-6)  # the soft pedal's
    first = next(s for s in hooks["scheduled"] if s["answer"] == 2)
    latency = first["scheduledAt"] - second["phrase_end"] * 1000
    print(f"\nhand-over (soft pedal) to first answer note scheduled: {latency:.1f} ms")
    assert 0 <= latency < LATENCY_BOUND_MS
    page.wait_for_function("window.amadeus.roll.player === 7 && window.amadeus.roll.amadeus > 1")

    page.click("#again")  # a new take of answer 2
    page.wait_for_function("window.amadeus.answers.length === 3", timeout=WAIT_MS)
    assert page.evaluate("window.amadeus.answers[2]")["take"] == 2
    page.click("#undo")
    assert page.locator("#history li").count() == 3
    # Undone: the take is struck out of the list, and neither button can act on it again.
    undone = page.locator("#history li").first
    assert undone.get_attribute("class") == "undone"
    assert "answer 2, take 2" in undone.text_content()
    assert "(undone)" in undone.text_content()
    assert page.locator("#history li.undone").count() == 1
    assert page.evaluate("window.amadeus.answers[2].undone") is True
    assert page.is_disabled("#again") and page.is_disabled("#undo")
    page.wait_for_timeout(500)  # the cut take's "stopped" came: still disabled
    assert page.is_disabled("#again") and page.is_disabled("#undo")

    # Phrase 3: once its answer ends, Again and Undo act on it.
    page.evaluate(
        """async () => {
          const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
          for (const pitch of [67, 71, 74]) {
            window.__midi([0x90, pitch, 90]);
            await sleep(70);
            window.__midi([0x80, pitch, 0]);
          }
        }"""
    )
    page.wait_for_function("window.amadeus.answers.length === 4", timeout=WAIT_MS)
    page.wait_for_function(
        "!document.getElementById('again').disabled && !document.getElementById('undo').disabled",
        timeout=WAIT_MS + 20_000,  # the answer plays out first
    )
    assert page.locator("#history li.undone").count() == 1
    assert page.evaluate("window.amadeus.errors") == []


def test_busy_server_page_claims_no_piano(open_page, busy_server, tmp_path):
    """Turned away ("busy"), the page never learns which piano the server has: it says none.
    Its audio is off until a gesture: a clear button says so, and goes once the audio runs."""
    page = open_page(gated=True, url=busy_server, ready=False)
    page.wait_for_function("document.getElementById('conn').dataset.state === 'closed'")
    assert "server busy" in page.text_content("#conn-text")
    assert page.evaluate("window.amadeus.errors") == ["busy: too many sessions open"]
    sound = page.text_content("#sound")
    assert "not loaded" in sound
    assert "synthesized" not in sound and "Salamander" not in sound

    button = page.locator("#sound-on")
    assert page.evaluate("window.amadeus.audio") == "suspended"
    assert button.is_visible()
    assert "Turn the sound on" in button.text_content()
    box = button.bounding_box()
    assert box["height"] >= 40 and box["width"] >= 300  # a banner, not a footnote
    page.screenshot(path=tmp_path / "busy.png")
    _keep(tmp_path / "busy.png", "desktop-1280-busy.png")
    button.click()
    page.wait_for_function("window.amadeus.audio === 'running'")
    page.wait_for_selector("#sound-on", state="hidden")


def test_network_mode_plays_with_the_token_and_says_why_without(open_page, secret_server):
    """Opened without the secret address, the page says what to do and stops retrying; with
    it, it plays."""
    page = open_page(url=secret_server, ready=False)
    page.wait_for_function("document.getElementById('conn').dataset.state === 'closed'")
    assert "refused: open the address play.py printed" in page.text_content("#conn-text")
    page.wait_for_timeout(2500)  # no retry loop: still closed, and no "reconnecting"
    assert "reconnecting" not in page.text_content("#conn-text")
    page = open_page(url=secret_server + "?token=s3cret")
    assert "tiny.sess" in page.text_content("#model")


def test_phone_touch_phrase_is_answered(open_page, tmp_path):
    """At a phone's width, played with a finger: the page fits the screen, the keys fit a
    fingertip, the first tap turns the sound on, and the phrase is answered."""
    page = open_page(gated=True, **PHONE)
    _fits_the_screen(page)
    white = [
        page.locator("#keyboard .key.white").nth(i).bounding_box()
        for i in range(page.locator("#keyboard .key.white").count())
    ]
    assert len(white) >= 8
    assert all(k["width"] >= 40 for k in white)
    assert all(k["x"] >= 0 and k["x"] + k["width"] <= 390 for k in white)
    assert page.locator("#sound-on").is_visible()

    page.locator("#silence").press("End")  # Hand over ends this phrase, not a pause
    page.wait_for_function("document.getElementById('silence-value').textContent === '2.00 s'")
    page.evaluate("window.scrollTo(0, 0)")  # back from the slider: the roll and the keys in view
    for pitch in (60, 64, 67, 72, 71, 67, 62, 60):
        box = page.locator(f'#keyboard .key[data-pitch="{pitch}"]').bounding_box()
        assert box["y"] + box["height"] <= 844  # on the screen, and so tapped
        page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.8)
        page.wait_for_timeout(100)
    page.wait_for_function("window.amadeus.roll.player >= 8")
    page.wait_for_function("window.amadeus.audio === 'running'")  # a tap is a gesture
    assert not page.locator("#sound-on").is_visible()
    box = page.locator("#handover").bounding_box()
    assert box["y"] >= 0
    tapped = page.evaluate("performance.now() / 1000")
    page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "window.amadeus.scheduled.length > 0 && window.amadeus.roll.amadeus > 0",
        timeout=WAIT_MS,
    )
    # Handed over by the tap, not by the 2 s of silence after the last note.
    assert page.evaluate("window.amadeus.answers[0].phrase_end") - tapped < 1.0
    assert "answered in" in page.text_content("#latency")
    page.wait_for_timeout(1500)
    _fits_the_screen(page)
    page.screenshot(path=tmp_path / "phone.png")
    _keep(tmp_path / "phone.png", "phone-390.png")
    assert page.evaluate("window.amadeus.errors") == []


def _fits_the_screen(page):
    """Nothing wider than the phone's 390 px (a mobile browser would widen its layout
    viewport to fit, so innerWidth is checked too), the header within it."""
    sizes = page.evaluate(
        "({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth })"
    )
    assert sizes["inner"] == 390
    assert sizes["scroll"] <= sizes["inner"]
    header = page.locator("header").bounding_box()
    assert header["x"] >= 0 and header["x"] + header["width"] <= 390
    for part in ("header h1", "#conn", "#model"):
        box = page.locator(part).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, part


def _overlap(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def _keep(shot: Path, name: str) -> None:
    """A copy of a screenshot in /tmp/shots/, to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SHOTS / name)


def _serve(session: Path, options: ServerOptions):
    """The real server, `options` on a free port, with the model of `session`, under uvicorn in
    a thread: yields its address."""
    options.port = _free_port()
    app = create_app(Instrument(load(session)), options)
    config = uvicorn.Config(app, host="127.0.0.1", port=options.port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{options.port}/"
    server.should_exit = True
    thread.join(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
