// The page's transport when the model runs in the page (the static site): the same interface as
// socket.js's Socket (an EventTarget with "message" and "state" events, send(message, time)),
// talking to worker.js, which runs the model and the engine off the page's thread. The messages
// are the live protocol's, unchanged. What the worker needs to start comes from site.json,
// which the build writes (web/build.py).

import { now } from "./socket.js";

export class Local extends EventTarget {
  constructor(site) {
    super();
    this.site = site; // site.json: {version, model, runtime, samples, live, files}
    this.worker = null;
    this.state = "idle"; // connecting | open | welcome | closed
  }

  connect() {
    this.setState("connecting");
    let worker;
    try {
      worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    } catch (e) {
      this.setState("closed", `this browser cannot run the model here (${e.message})`);
      return;
    }
    this.worker = worker;
    worker.addEventListener("message", (e) => this.receive(e.data));
    worker.addEventListener("error", (e) => {
      e.preventDefault();
      this.fail(e.message || "the model's worker stopped");
    });
    // The worker's clock starts when it does: the page's origin lets it tell the page's time.
    const base = new URL(".", location.href).href;
    worker.postMessage({ type: "start", site: this.site, base, origin: performance.timeOrigin });
  }

  receive(m) {
    if (m.type === "loaded") {
      this.setState("open");
      this.send({ type: "hello", protocol: m.protocol });
      return;
    }
    if (m.type === "failed") {
      this.fail(m.message);
      return;
    }
    if (m.type === "welcome") this.setState("welcome");
    this.dispatchEvent(new CustomEvent("message", { detail: m }));
  }

  fail(why) {
    this.worker?.terminate();
    this.worker = null;
    this.setState("closed", why);
  }

  // Sends a message with its time: `time` given (a player event's own time) or now.
  send(message, time = now()) {
    if (!this.worker || this.state === "connecting") return false;
    this.worker.postMessage({ ...message, time });
    return true;
  }

  setState(state, detail = "") {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, detail } }));
  }
}
