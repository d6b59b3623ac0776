// The on-screen piano (mouse, touch and pen through pointer events) and the computer keyboard.
// The piano shows as many octaves as fit its width, up to four, around the typing octave: a white
// key stays at least 20 px wide for a mouse, 44 px for a finger (one octave on a phone).
//
// The computer keyboard's mapping, by key position (event.code, so it holds on any layout):
//
//   w e   t y u   o p         black keys  C#  D#    F#  G#  A#    C#  D#
//  a s d f g h j k l ; '      white keys  C  D  E  F  G  A  B  C  D  E  F
//
//   z / x      octave down / up          c / v   softer / louder (velocity of typed notes)
//   space      sustain pedal, while held Enter   hand over (Amadeus answers now)
//
// With the mouse, the lower on a key the louder the note.

const CODES = [
  "KeyA", "KeyW", "KeyS", "KeyE", "KeyD", "KeyF", "KeyT", "KeyG", "KeyY", "KeyH", "KeyU", "KeyJ",
  "KeyK", "KeyO", "KeyL", "KeyP", "Semicolon", "Quote",
]; // semitones 0..17 above the typing octave's C
const LABELS = ["A", "W", "S", "E", "D", "F", "T", "G", "Y", "H", "U", "J", "K", "O", "L", "P", ";", "'"];
const BLACK = new Set([1, 3, 6, 8, 10]);
const MAX_OCTAVES = 4; // shown, and the top C
const WHITE_MIN = { fine: 20, coarse: 44 }; // pixels: the narrowest white key, by pointer
const coarse = window.matchMedia("(pointer: coarse)"); // a finger: bigger keys

export class Keyboard {
  // handlers: noteOn(pitch, velocity, time), noteOff(pitch, time), pedal(value, time),
  // handover(), changed() (octave or velocity, for the page to show)
  constructor(element, handlers, clock) {
    this.el = element;
    this.on = handlers;
    this.clock = clock;
    this.base = 60; // the typing octave's C (C4)
    this.velocity = 80; // of typed notes
    this.typed = new Map(); // event.code -> pitch
    this.pointers = new Map(); // pointerId -> pitch
    this.lit = new Map(); // pitch -> {player: n, amadeus: n}
    this.sustain = false;
    this.octaves = this.fitting();
    this.render();
    this.listen();
    // A new width (a phone turned, a window resized) may fit more or fewer octaves.
    const refit = () => {
      const octaves = this.fitting();
      if (octaves === this.octaves) return;
      this.octaves = octaves;
      this.render();
      this.on.changed?.();
    };
    new ResizeObserver(refit).observe(element);
    coarse.addEventListener("change", refit);
  }

  fitting() {
    const white = WHITE_MIN[coarse.matches ? "coarse" : "fine"];
    const whites = this.el.clientWidth / white - 1; // the top C aside
    return Math.min(MAX_OCTAVES, Math.max(1, Math.floor(whites / 7)));
  }

  // The lowest and highest keys shown: the typing octave in the middle, or at the bottom.
  get low() {
    return this.base - 12 * Math.floor(this.octaves / 2);
  }

  get high() {
    return this.low + 12 * this.octaves;
  }

  // -- drawing --------------------------------------------------------------------------------

  render() {
    this.el.textContent = "";
    const whites = [];
    for (let p = this.low; p <= this.high; p++) if (!BLACK.has(p % 12)) whites.push(p);
    const width = 100 / whites.length;
    this.keys = new Map();
    for (let p = this.low; p <= this.high; p++) {
      const key = document.createElement("div");
      const black = BLACK.has(p % 12);
      key.className = `key ${black ? "black" : "white"}`;
      key.dataset.pitch = p;
      const typed = p - this.base;
      if (typed >= 0 && typed < LABELS.length) {
        const label = document.createElement("span");
        label.className = "typed";
        label.textContent = LABELS[typed];
        key.append(label);
      }
      if (p % 12 === 0) {
        const name = document.createElement("span");
        name.className = "name";
        name.textContent = `C${p / 12 - 1}`;
        key.append(name);
      }
      if (black) {
        const left = whites.indexOf(p + 1) * width; // between its two white neighbours
        key.style.left = `calc(${left}% - ${width * 0.31}%)`;
        key.style.width = `${width * 0.62}%`;
      } else {
        key.style.width = `${width}%`;
      }
      this.keys.set(p, key);
      this.el.append(key);
      this.paint(p);
    }
  }

  // Lights a key while a note of `who` ("player" | "amadeus") sounds on it.
  show(pitch, who, down) {
    const count = this.lit.get(pitch) || { player: 0, amadeus: 0 };
    count[who] = Math.max(0, count[who] + (down ? 1 : -1));
    this.lit.set(pitch, count);
    this.paint(pitch);
  }

  paint(pitch) {
    const key = this.keys.get(pitch);
    const count = this.lit.get(pitch);
    if (!key) return;
    key.classList.toggle("down-player", !!count && count.player > 0);
    key.classList.toggle("down-amadeus", !!count && count.amadeus > 0 && !count.player);
  }

  shift(octaves) {
    const base = Math.min(84, Math.max(36, this.base + 12 * octaves));
    if (base === this.base) return;
    this.base = base;
    this.render();
    this.on.changed?.();
  }

  louder(step) {
    this.velocity = Math.min(127, Math.max(20, this.velocity + step));
    this.on.changed?.();
  }

  // -- playing --------------------------------------------------------------------------------

  listen() {
    const el = this.el;
    el.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      e.preventDefault();
      this.pointerTo(e);
    });
    el.addEventListener("pointermove", (e) => {
      if (this.pointers.has(e.pointerId)) this.pointerTo(e); // a glissando
    });
    const lift = (e) => {
      const pitch = this.pointers.get(e.pointerId);
      if (pitch === undefined) return;
      this.pointers.delete(e.pointerId);
      this.on.noteOff(pitch, this.clock());
    };
    window.addEventListener("pointerup", lift);
    window.addEventListener("pointercancel", lift);
    el.addEventListener("contextmenu", (e) => e.preventDefault());

    window.addEventListener("keydown", (e) => this.key(e, true));
    window.addEventListener("keyup", (e) => this.key(e, false));
    window.addEventListener("blur", () => this.releaseAll());
  }

  // The key under a pressed pointer: pressed, or changed from the one before.
  pointerTo(e) {
    const key = document.elementFromPoint(e.clientX, e.clientY)?.closest(".key");
    const pitch = key && this.el.contains(key) ? Number(key.dataset.pitch) : undefined;
    const before = this.pointers.get(e.pointerId);
    if (pitch === before) return;
    const time = this.clock();
    if (before !== undefined) this.on.noteOff(before, time);
    if (pitch === undefined) {
      this.pointers.delete(e.pointerId);
      return;
    }
    this.pointers.set(e.pointerId, pitch);
    const box = key.getBoundingClientRect();
    const depth = Math.min(1, Math.max(0, (e.clientY - box.top) / box.height));
    this.on.noteOn(pitch, Math.round(30 + 97 * depth), time);
  }

  key(e, down) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    const tag = t?.tagName;
    if (tag === "SELECT" || tag === "TEXTAREA" || (tag === "INPUT" && t.type === "text")) return;
    const activates = ["Space", "Enter", "NumpadEnter"].includes(e.code);
    if (activates && (tag === "BUTTON" || tag === "INPUT")) return; // the control's own use
    const time = e.timeStamp > 0 ? e.timeStamp / 1000 : this.clock();
    const index = CODES.indexOf(e.code);
    if (index >= 0) {
      e.preventDefault();
      if (down && !e.repeat && !this.typed.has(e.code)) {
        const pitch = this.base + index;
        this.typed.set(e.code, pitch);
        this.on.noteOn(pitch, this.velocity, time);
      } else if (!down && this.typed.has(e.code)) {
        this.on.noteOff(this.typed.get(e.code), time);
        this.typed.delete(e.code);
      }
      return;
    }
    if (e.code === "Space") {
      e.preventDefault();
      if (!e.repeat && down !== this.sustain) {
        this.sustain = down;
        this.on.pedal(down ? 127 : 0, time);
      }
      return;
    }
    if (!down || e.repeat) return;
    const action = {
      KeyZ: () => this.shift(-1),
      KeyX: () => this.shift(1),
      KeyC: () => this.louder(-15),
      KeyV: () => this.louder(15),
      Enter: () => this.on.handover(),
      NumpadEnter: () => this.on.handover(),
    }[e.code];
    if (action) {
      e.preventDefault();
      action();
    }
  }

  // Focus lost: every key this keyboard holds goes up, so no note (or pedal) hangs.
  releaseAll() {
    const time = this.clock();
    for (const pitch of this.typed.values()) this.on.noteOff(pitch, time);
    for (const pitch of this.pointers.values()) this.on.noteOff(pitch, time);
    this.typed.clear();
    this.pointers.clear();
    if (this.sustain) {
      this.sustain = false;
      this.on.pedal(0, time);
    }
  }
}
