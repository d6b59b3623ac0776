// The live piano roll: time scrolls right to left, the present is the line near the right edge,
// pitch goes up. A note is drawn from the moment it sounds (an answer note scheduled ahead stays
// hidden until its time), growing until its note-off. Times are page-clock seconds.

import { noteName } from "./sound.js";

const MIN_SPAN = 30; // semitones always in view
const PAD = 3; // semitones above and below the notes in view

export class Roll {
  constructor(canvas, { seconds = 10, clock }) {
    this.canvas = canvas;
    this.g = canvas.getContext("2d");
    this.seconds = seconds;
    this.clock = clock;
    this.notes = [];
    this.marks = []; // {time, label, who}
    this.counts = { player: 0, amadeus: 0 }; // notes drawn so far
    this.low = 48;
    this.high = 84;
    const css = getComputedStyle(document.documentElement);
    const color = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    this.colors = {
      player: color("--player", "#f2a541"),
      amadeus: color("--amadeus", "#57c7e3"),
      grid: color("--roll-grid", "rgba(255,255,255,0.06)"),
      black: color("--roll-black", "rgba(0,0,0,0.18)"),
      text: color("--muted", "#8a93a6"),
      now: color("--roll-now", "rgba(255,255,255,0.5)"),
    };
    new ResizeObserver(() => this.resize()).observe(canvas);
    this.resize();
  }

  resize() {
    const ratio = window.devicePixelRatio || 1;
    const { width, height } = this.canvas.getBoundingClientRect();
    this.width = Math.max(1, width);
    this.height = Math.max(1, height);
    this.canvas.width = Math.round(this.width * ratio);
    this.canvas.height = Math.round(this.height * ratio);
    this.g.setTransform(ratio, 0, 0, ratio, 0, 0);
  }

  noteOn(who, pitch, velocity, start) {
    const note = { who, pitch, velocity, start, end: Infinity, shown: false };
    this.notes.push(note);
    return note;
  }

  noteOff(note, end) {
    if (note && end < note.end) note.end = Math.max(end, note.start);
  }

  // An answer cut at `time`: its notes after it vanish, the ones sounding end there.
  cut(who, time) {
    this.notes = this.notes.filter((n) => n.who !== who || n.start <= time);
    for (const n of this.notes) if (n.who === who && n.end > time) n.end = time;
  }

  mark(time, label, who) {
    this.marks.push({ time, label, who });
  }

  start() {
    const frame = () => {
      this.draw(this.clock());
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  draw(now) {
    const { g, width: w, height: h } = this;
    const gutter = 34; // pitch names on the left
    const present = w - 28;
    const pps = (present - gutter) / this.seconds; // pixels per second
    const x = (t) => present - (now - t) * pps;
    const oldest = now - this.seconds - 1;
    this.notes = this.notes.filter((n) => n.end >= oldest);
    this.marks = this.marks.filter((m) => m.time >= oldest);

    // The pitch range follows the music in view, smoothly.
    let lo = Infinity;
    let hi = -Infinity;
    for (const n of this.notes) {
      if (n.start > now) continue;
      if (!n.shown) {
        n.shown = true;
        this.counts[n.who] += 1;
      }
      lo = Math.min(lo, n.pitch);
      hi = Math.max(hi, n.pitch);
    }
    if (lo === Infinity) [lo, hi] = [60, 60];
    lo -= PAD;
    hi += PAD;
    if (hi - lo < MIN_SPAN) {
      const mid = (lo + hi) / 2;
      [lo, hi] = [mid - MIN_SPAN / 2, mid + MIN_SPAN / 2];
    }
    this.low += 0.08 * (lo - this.low);
    this.high += 0.08 * (hi - this.high);
    const row = h / (this.high - this.low + 1);
    const y = (pitch) => h - (pitch - this.low + 1) * row;

    g.clearRect(0, 0, w, h);
    // Black-key lanes and the Cs, named.
    g.font = "11px system-ui, sans-serif";
    g.textBaseline = "middle";
    for (let p = Math.floor(this.low); p <= Math.ceil(this.high); p++) {
      const pc = p % 12;
      if ([1, 3, 6, 8, 10].includes(pc)) {
        g.fillStyle = this.colors.black;
        g.fillRect(gutter, y(p), w - gutter, row);
      }
      if (pc === 0) {
        g.fillStyle = this.colors.grid;
        g.fillRect(gutter, y(p) + row - 1, w - gutter, 1);
        g.fillStyle = this.colors.text;
        g.fillText(noteName(p), 4, y(p) + row / 2);
      }
    }
    // Seconds, scrolling by.
    g.fillStyle = this.colors.grid;
    for (let s = Math.ceil(now - this.seconds); s <= now; s++) g.fillRect(x(s), 0, 1, h);

    // Hand-overs and cuts.
    g.save();
    g.setLineDash([4, 4]);
    for (const m of this.marks) {
      if (m.time > now) continue;
      const mx = x(m.time);
      g.strokeStyle = this.colors[m.who] || this.colors.text;
      g.globalAlpha = 0.7;
      g.beginPath();
      g.moveTo(mx + 0.5, 0);
      g.lineTo(mx + 0.5, h);
      g.stroke();
      g.globalAlpha = 1;
      g.fillStyle = this.colors[m.who] || this.colors.text;
      g.fillText(m.label, mx + 5, 10);
    }
    g.restore();

    // The notes, as they sound.
    const height = Math.max(2, row - 1.5);
    for (const n of this.notes) {
      if (n.start > now) continue;
      const x0 = Math.max(gutter, x(n.start));
      const x1 = x(Math.min(n.end, now));
      if (x1 < gutter) continue;
      g.globalAlpha = 0.45 + 0.55 * (n.velocity / 127);
      g.fillStyle = this.colors[n.who];
      roundRect(g, x0, y(n.pitch) + (row - height) / 2, Math.max(3, x1 - x0), height, 3);
      if (n.end > now) {
        // still sounding: a bright head on the present line
        g.globalAlpha = 1;
        g.fillRect(x1 - 2, y(n.pitch) + (row - height) / 2, 2, height);
      }
    }
    g.globalAlpha = 1;
    g.fillStyle = this.colors.now;
    g.fillRect(present, 0, 1.5, h);
  }
}

function roundRect(g, x, y, w, h, r) {
  r = Math.min(r, w / 2, h / 2);
  g.beginPath();
  g.moveTo(x + r, y);
  g.arcTo(x + w, y, x + w, y + h, r);
  g.arcTo(x + w, y + h, x, y + h, r);
  g.arcTo(x, y + h, x, y, r);
  g.arcTo(x, y, x + w, y, r);
  g.closePath();
  g.fill();
}
