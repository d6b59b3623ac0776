// The live protocol's client side (amadeus/live/protocol.py is the contract): one WebSocket at
// /ws, JSON text frames. Every message sent carries "time" on the page's clock, performance.now()
// in seconds; the server learns the offset between the clocks from it. The protocol's version
// comes from the server's /api/info, its limits and settings from "welcome": nothing of it is
// restated here.

export const now = () => performance.now() / 1000;

// Close codes after which retrying cannot help (amadeus/live/server.py, connection.py).
const FINAL = {
  1008: "refused by the server: another site's page",
  1013: "server busy",
  4000: "closed: idle, or no hello in time (reload to play again)",
  4003: "refused: open the address play.py printed",
};

// The page's own address may carry the secret play.py made for this run (network mode); the
// WebSocket must carry it too.
export function socketUrl(location) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const token = new URLSearchParams(location.search).get("token");
  return `${scheme}://${location.host}/ws` + (token ? `?token=${encodeURIComponent(token)}` : "");
}

const CLOCK_EVERY_MS = 10000; // a "clock" message now and then keeps the server's offset fresh

export class Socket extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.ws = null;
    this.state = "idle"; // connecting | open | welcome | closed
    this.retry = 1000;
    this.clockTimer = null;
    this.stopRetrying = false;
  }

  async connect() {
    this.setState("connecting");
    let info;
    try {
      info = await (await fetch("/api/info", { cache: "no-store" })).json();
    } catch {
      this.retryLater();
      return;
    }
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.setState("open");
      this.send({ type: "hello", protocol: info.protocol });
      // Two more readings early on: the server keeps the least delayed one.
      setTimeout(() => this.send({ type: "clock" }), 300);
      setTimeout(() => this.send({ type: "clock" }), 900);
      this.clockTimer = setInterval(() => this.send({ type: "clock" }), CLOCK_EVERY_MS);
    });
    ws.addEventListener("message", (e) => {
      let message;
      try {
        message = JSON.parse(e.data);
      } catch {
        return;
      }
      if (message.type === "welcome") {
        this.retry = 1000;
        this.setState("welcome");
      }
      if (message.type === "error" && /^busy/.test(message.message)) this.stopRetrying = true;
      this.dispatchEvent(new CustomEvent("message", { detail: message }));
    });
    ws.addEventListener("close", (e) => {
      clearInterval(this.clockTimer);
      this.ws = null;
      // None of these gets better by retrying: say why, and stop.
      const final = FINAL[e.code] ?? (this.stopRetrying ? "server busy" : null);
      if (final) {
        this.setState("closed", e.code >= 4000 && e.reason ? e.reason : final);
        return;
      }
      this.retryLater();
    });
  }

  retryLater() {
    const wait = this.retry;
    this.retry = Math.min(this.retry * 2, 10000);
    this.setState("closed", `reconnecting in ${Math.round(wait / 1000)} s`);
    setTimeout(() => this.connect(), wait);
  }

  // Sends a message with its time: `time` given (a player event's own time) or now.
  send(message, time = now()) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify({ ...message, time }));
    return true;
  }

  setState(state, detail = "") {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, detail } }));
  }
}
