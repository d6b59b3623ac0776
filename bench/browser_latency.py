#!/usr/bin/env python3
"""Browser latency (issue 22, section 4): the static site (`make web`) served by a plain static
file server and played in Debian's Chromium through Playwright, the model in the page.

Phrases of real music (consecutive 6-second cuts of the session's validation files, as
bench/live_latency.py cuts them) are played into the page in real time on a fake Web MIDI
keyboard, each handed over with the soft pedal at its last note's end; each answer lasts 2 s
and the next phrase follows it. Printed, unthrottled and with the page's CPU slowed 4 times
(DevTools' Emulation.setCPUThrottlingRate, a mid-range phone): the time from opening the page to
the model's welcome (the first key that gets an answer), the hand-over to the first answer note
scheduled (median, p99, worst; and the p99 of the engine's own part, from its hand-over call to
its first note, the rest being the wait in the worker's queue, the messages and the page), the
model's events per second at batch 1 in the page (its
generation step alone, on the page's thread), and the stream: how far ahead of its time each
answer note reached the page (the least), the notes dropped for coming late and the most an
answer was delayed.

Chromium slows only the page's own thread: it refuses Emulation.setCPUThrottlingRate for
workers ("only supported for pages"), and the answers are computed in one. So the DevTools row's
events/s is the model's on a 4x slower CPU, while its answers show the page's part only (the
keys, the messages, the scheduling). A third row slows the whole browser, the worker too: every
Chromium process in a CPU cgroup allowed a quarter of this machine's cores (the kernel's CFS
bandwidth limit, 10 ms periods; needs root and the cgroup v1 cpu controller or cgroup v2, else
the row says why it is missing). A phone's cores are slower, not fewer, so this is the harsher
of the two for the answers.

With `--load [N]`, a last row plays the phrases again unthrottled while N other processes keep
the cores busy (N: the number of cores when not given), as bench/live_latency.py loads them: a
laptop that is doing something else.

    python bench/browser_latency.py [--site web/dist] [-s models/bach.int8.sess] [-d DATASET]
        [--phrases 50] [--throttle 4] [--load [N]]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from amadeus import cli  # noqa: E402
from amadeus.data.dataset import DEFAULT_VAL_FRACTION, load_split  # noqa: E402
from amadeus.errors import UsageError  # noqa: E402
from amadeus.generate.loaded import load  # noqa: E402
from bench.live_latency import add_load, busy, phrases  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"]
ANSWER_SECONDS = 2
STEPS = 500  # generation steps timed for events per second

# One fake MIDI input; window.__midi(bytes) plays on it, stamped as a real message is.
FAKE_MIDI = """
(() => {
  const input = Object.assign(new EventTarget(), {
    id: "bench", name: "Bench", type: "input", state: "connected", onmidimessage: null,
  });
  const access = Object.assign(new EventTarget(), {
    inputs: new Map([[input.id, input]]), outputs: new Map(),
  });
  Object.defineProperty(Navigator.prototype, "requestMIDIAccess", {
    configurable: true, value: () => Promise.resolve(access),
  });
  window.__midi = (bytes) => {
    const event = new Event("midimessage");
    Object.defineProperty(event, "data", { value: new Uint8Array(bytes) });
    Object.defineProperty(event, "timeStamp", { value: performance.now() });
    input.onmidimessage?.(event);
  };
})();
"""

# Plays the phrases (lists of [seconds, status, pitch, velocity]) one after another, each
# answered before the next; returns each answer's hand-over to first note scheduled, in ms.
PLAY = """
async ({ phrases, wait }) => {
  const a = window.amadeus;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const until = async (ok) => {
    for (const end = performance.now() + wait; !ok(); await sleep(5)) {
      if (performance.now() > end) throw new Error("no answer in time");
    }
  };
  const latencies = [];
  for (const events of phrases) {
    const n = a.answers.length + 1; // (the answer may come before the soft pedal is let go)
    const start = performance.now();
    for (const [t, ...bytes] of events) {
      await sleep(start + 1000 * t - performance.now());
      window.__midi(bytes);
    }
    const first = () => a.answers.length >= n &&
      a.scheduled.find((s) => s.answer === a.answers[n - 1].answer);
    await until(first);
    latencies.push(first().scheduledAt - 1000 * a.answers[n - 1].phrase_end);
    await until(() => document.getElementById("turn").dataset.turn === "idle");
  }
  const lead = Math.min(...a.scheduled.map((s) => 1000 * s.time - s.scheduledAt));
  const delay = Math.max(0, ...a.answers.map((x) => x.delayed_ms ?? 0));
  const engine = a.answers.map((x) => x.compute_ms);
  return { latencies, engine, lead, dropped: a.dropped, delay, notes: a.scheduled.length };
}
"""

# The model's generation step alone at batch 1, on the page's thread: events per second.
STEP = """
async (steps) => {
  const site = await (await fetch("site.json")).json();
  const ort = await import(new URL(site.runtime, location.href).href);
  ort.env.wasm.numThreads = 1;
  const { loadModel } = await import("./js/engine/stepper.js");
  const { manifest, stepper } = await loadModel(ort, new URL(site.model, location.href));
  let hidden = stepper.initial();
  let event = manifest.onnx.start_token;
  const run = async (n) => {
    for (let i = 0; i < n; i++) {
      const out = await stepper.step(event, hidden, null);
      hidden = out.hidden;
      event = out.logits.indexOf(Math.max(...out.logits));
    }
  };
  await run(20);
  const began = performance.now();
  await run(steps);
  return steps / ((performance.now() - began) / 1000);
}
"""


def midi_events(notes) -> list[list]:
    """A phrase as MIDI messages in time order, the soft pedal after its last note's end."""
    events = [
        [float(s), 0x90, int(p), int(v)]
        for s, p, v in zip(notes.start, notes.pitch, notes.velocity)
    ]
    events += [[float(e), 0x80, int(p), 0] for e, p in zip(notes.end, notes.pitch)]
    events.sort(key=lambda e: (e[0], e[1] == 0x90))  # at one time, note-offs first
    events.append([float(notes.end.max()) + 0.01, 0xB0, 67, 127])
    events.append([float(notes.end.max()) + 0.05, 0xB0, 67, 0])
    return events


def measure(browser, url: str, cuts: list[list], rate: float, slowed: float) -> dict:
    """One fresh page at DevTools' CPU throttling `rate`, on a CPU `slowed` times slower in all
    (waits grow by as much): the welcome's time, events/s, the phrases."""
    context = browser.new_context(viewport={"width": 1280, "height": 820})
    context.add_init_script(FAKE_MIDI)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})
    page.goto(url)
    page.wait_for_function("window.amadeus && window.amadeus.ready", timeout=300_000)
    ready_ms = page.evaluate("performance.now()")
    if page.evaluate("window.amadeus.mode") != "static":
        raise UsageError(f"{url} is not the static site (no site.json): build it with make web")
    page.evaluate(
        """(s) => { const el = document.getElementById("answer-seconds");
                    el.value = String(s); el.dispatchEvent(new Event("change")); }""",
        ANSWER_SECONDS,
    )
    rate_events = page.evaluate(STEP, STEPS)
    played = page.evaluate(PLAY, {"phrases": cuts, "wait": 60_000 * slowed})
    context.close()
    return {"ready_ms": ready_ms, "events_per_second": rate_events, **played}


def chromium_pids() -> set[int]:
    """The processes running Debian's Chromium now."""
    pids = set()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and "chromium" in (proc / "exe").resolve().name:
                pids.add(int(proc.name))
        except OSError:
            continue
    return pids


def cpu_cgroup(rate: float) -> Path:
    """A CPU cgroup allowed 1/rate of the machine's cores, in 10 ms periods (UsageError where
    the kernel offers none to this user)."""
    period = 10_000  # microseconds
    quota = int(period * (os.cpu_count() or 1) / rate)
    v1, v2 = Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup/unified")
    try:
        if (v1 / "cpu.cfs_quota_us").exists():
            group = v1 / "amadeus-bench"
            group.mkdir(exist_ok=True)
            (group / "cpu.cfs_period_us").write_text(str(period))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
            return group
        root = v2 if (v2 / "cgroup.controllers").exists() else Path("/sys/fs/cgroup")
        group = root / "amadeus-bench"
        group.mkdir(exist_ok=True)
        (group / "cpu.max").write_text(f"{quota} {period}")
        return group
    except OSError as e:
        raise UsageError(f"no CPU cgroup for the slowed browser ({e.strerror})") from e


def serve(folder: Path):
    """`python3 -m http.server` on a free port in `folder`: the process and its address."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "http.server", str(port), "-b", "127.0.0.1", "-d", str(folder)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return server, f"http://127.0.0.1:{port}/"
        if server.poll() is not None or time.monotonic() > deadline:
            raise UsageError(f"http.server did not start in {folder}")
        time.sleep(0.05)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--site", type=Path, default=ROOT / "web/dist", help="the built site")
    p.add_argument("-s", "--session", type=Path, default=ROOT / "models/bach.int8.sess")
    p.add_argument("--phrases", type=cli.positive_int, default=50)
    p.add_argument("--throttle", type=float, default=4.0, help="the slowed run's CPU rate")
    add_load(p)
    cli.add_dataset(p)
    args = p.parse_args()
    print("$ python " + shlex.join(sys.argv))
    if not (args.site / "site.json").is_file():
        raise UsageError(f"{args.site} holds no built site: run make web")
    loaded = load(args.session)
    record, codec = loaded.data, loaded.events
    if args.dataset is None and record is None:
        raise UsageError(f"{loaded.path}: the session records no dataset: give one with -d")
    fraction = record.val_fraction if record else DEFAULT_VAL_FRACTION
    validation = load_split(args.dataset or record.folder(), fraction).validation
    cuts = phrases([codec.decode(piece.tokens) for piece in validation], args.phrases)
    seconds = sum(c.end.max() for c in cuts)
    print(f"{len(cuts)} phrases ({seconds:.0f} s) of {len(validation)} validation files")
    events = [midi_events(c) for c in cuts]
    site = json.loads((args.site / "site.json").read_text())
    print(f"site {args.site} (version {site['version']}), model {site['model']}, {CHROMIUM}")
    print(
        f"{'CPU':>6} {'welcome ms':>10} {'events/s':>8} {'median ms':>9} {'p99 ms':>7} "
        f"{'max ms':>7} {'engine p99':>10} {'least lead ms':>13} {'late':>4} {'delay ms':>8} notes"
    )
    from playwright.sync_api import sync_playwright

    server, url = serve(args.site)
    try:
        with sync_playwright() as pw:
            browser = launch(pw)
            for rate in (1.0, args.throttle):
                row(f"{rate:g}x", measure(browser, url, events, rate, rate))
            browser.close()
            whole_browser_slowed(pw, url, events, args.throttle)
            if args.load:
                browser = launch(pw)
                with busy(args.load):
                    row(f"{args.load} busy", measure(browser, url, events, 1.0, 4.0))
                browser.close()
    finally:
        server.terminate()
        server.wait(10)


def launch(pw):
    """Debian's Chromium, headless."""
    return pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)


def whole_browser_slowed(pw, url: str, events: list, rate: float) -> None:
    """The row of the whole browser, its worker too, in a CPU cgroup at 1/rate of the machine."""
    try:
        group = cpu_cgroup(rate)
    except UsageError as e:
        print(f"{rate:g}x, the whole browser: not measured: {e}")
        return
    before = chromium_pids()
    browser = launch(pw)
    for pid in chromium_pids() - before:  # later renderers inherit the group
        (group / "cgroup.procs").write_text(str(pid))
    row(f"{rate:g}x all", measure(browser, url, events, 1.0, rate))
    browser.close()


def row(label: str, r: dict) -> None:
    ms = np.array(r["latencies"])
    print(
        f"{label:>6} {r['ready_ms']:>10.0f} {r['events_per_second']:>8.0f} "
        f"{np.median(ms):>9.1f} {np.percentile(ms, 99):>7.1f} {ms.max():>7.1f} "
        f"{np.percentile(r['engine'], 99):>10.1f} "
        f"{r['lead']:>13.1f} {r['dropped']:>4} {r['delay']:>8.0f} {r['notes']}"
    )


if __name__ == "__main__":
    cli.run(main)
