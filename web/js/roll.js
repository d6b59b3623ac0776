// The live piano roll: time scrolls right to left, the present is the line near the right edge,
// pitch goes up. A note is drawn from the moment it sounds (an answer note scheduled ahead stays
// hidden until its time), growing until its note-off. Times are page-clock seconds.
//
// Hand-overs and cuts are dashed lines, each labelled in a band of rows along the top: a label
// sits beside its line in the first row where it covers no pitch name, no overlay (the legend)
// and no other label, and is left out where it fits nowhere. `placed` keeps what the last frame
// drew where (canvas pixels), for the page's tests.

import { noteName } from "./sound.js";

const MIN_SPAN = 30; // semitones always in view
const PAD = 3; // semitones above and below the notes in view
const GUTTER = 34; // pixels on the left for the pitch names
const LABEL_ROWS = 4; // rows of marker labels, from the top
const LABEL_HEIGHT = 15; // pixels: a row
const FRAME_SECONDS = 1 / 20; // the roll moves about 4 pixels a frame

export class Roll {
  // avoid: elements laid over the canvas (the legend...) that labels must not go under
  constructor(canvas, { seconds = 10, clock, avoid = [] }) {
    this.canvas = canvas;
    this.avoid = avoid;
    this.g = canvas.getContext("2d");
    this.seconds = seconds;
    this.clock = clock;
    this.notes = [];
    this.marks = []; // {time, label, who}
    this.counts = { player: 0, amadeus: 0 }; // notes drawn so far
    this.placed = { labels: [], pitches: [], avoided: [] }; // {x, y, w, h} boxes, last frame
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

  // Drawn at most every FRAME_SECONDS: the whole canvas is redrawn each time, and at the
  // display's rate that work took the cores from the model's worker on a busy machine.
  start() {
    let drawn = -Infinity;
    const frame = () => {
      const now = this.clock();
      if (now - drawn >= FRAME_SECONDS) {
        this.draw(now);
        drawn = now;
      }
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  draw(now) {
    const { g, width: w, height: h } = this;
    const gutter = GUTTER;
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
    const pitches = [];
    for (let p = Math.floor(this.low); p <= Math.ceil(this.high); p++) {
      const pc = p % 12;
      if ([1, 3, 6, 8, 10].includes(pc)) {
        g.fillStyle = this.colors.black;
        g.fillRect(gutter, y(p), w - gutter, row);
      }
      if (pc === 0) {
        g.fillStyle = this.colors.grid;
        g.fillRect(gutter, y(p) + row - 1, w - gutter, 1);
        const name = { x: 4, y: y(p) + row / 2 - 7, w: g.measureText(noteName(p)).width, h: 14 };
        if (name.y < 0 || name.y + name.h > h) continue; // half a name at an edge: none
        g.fillStyle = this.colors.text;
        g.fillText(noteName(p), 4, y(p) + row / 2);
        pitches.push(name);
      }
    }
    // Seconds, scrolling by.
    g.fillStyle = this.colors.grid;
    for (let s = Math.ceil(now - this.seconds); s <= now; s++) g.fillRect(x(s), 0, 1, h);

    // Hand-overs and cuts: the lines (not into the pitch names' gutter).
    const marks = this.marks.filter((m) => m.time <= now && x(m.time) >= gutter);
    g.save();
    g.setLineDash([4, 4]);
    g.globalAlpha = 0.7;
    for (const m of marks) {
      const mx = Math.round(x(m.time)) + 0.5;
      g.strokeStyle = this.colors[m.who] || this.colors.text;
      g.beginPath();
      g.moveTo(mx, 0);
      g.lineTo(mx, h);
      g.stroke();
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

    // The marks' labels, over the notes, the newest first: it is the one that matters now.
    const avoided = marks.length ? this.overlays() : [];
    const labels = [];
    for (const m of [...marks].reverse()) {
      const box = this.placeLabel(x(m.time), g.measureText(m.label).width + 8, [
        ...pitches,
        ...avoided,
        ...labels,
      ]);
      if (!box) continue; // no room: better no label than one over another
      labels.push({ ...box, label: m.label });
      g.fillStyle = "rgba(14, 17, 23, 0.8)";
      roundRect(g, box.x, box.y, box.w, box.h, 4);
      g.fillStyle = this.colors[m.who] || this.colors.text;
      g.fillText(m.label, box.x + 4, box.y + box.h / 2 + 0.5);
    }
    this.placed = { labels, pitches, avoided };
  }

  // A label's box beside its line at `mx`: right of it, else left, in the first row with room.
  placeLabel(mx, width, taken) {
    for (let r = 0; r < LABEL_ROWS; r++) {
      const y = 3 + r * (LABEL_HEIGHT + 2);
      for (const x of [mx + 4, mx - 4 - width]) {
        const box = { x, y, w: width, h: LABEL_HEIGHT };
        const inside = x >= GUTTER + 2 && x + width <= this.width - 2 && y + box.h <= this.height;
        if (inside && !taken.some((t) => overlap(box, t))) return box;
      }
    }
    return null;
  }

  // The boxes of the elements laid over the canvas, in its pixels.
  overlays() {
    const c = this.canvas.getBoundingClientRect();
    return this.avoid
      .filter((el) => el.offsetParent !== null && el.textContent.trim())
      .map((el) => {
        const r = el.getBoundingClientRect();
        return { x: r.left - c.left, y: r.top - c.top, w: r.width, h: r.height };
      });
  }
}

const overlap = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

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
