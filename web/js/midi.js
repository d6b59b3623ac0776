// Web MIDI: any keyboard plugged in plays (note-on, note-off, sustain CC64 and soft pedal CC67,
// on any channel), from the input picked or all of them; an output may be picked to play
// Amadeus's answers on an instrument instead of the page's piano.

const ALL = "*";

export class Midi {
  // handlers: noteOn(pitch, velocity, time), noteOff(pitch, time), pedal(controller, value, time)
  constructor({ inputSelect, outputSelect, status, handlers, clock }) {
    this.inputSelect = inputSelect;
    this.outputSelect = outputSelect;
    this.status = status;
    this.on = handlers;
    this.clock = clock;
    this.access = null;
  }

  async start() {
    if (!navigator.requestMIDIAccess) {
      this.say("Web MIDI is not available in this browser: play the keyboard below instead.");
      this.inputSelect.disabled = this.outputSelect.disabled = true;
      return;
    }
    try {
      this.access = await navigator.requestMIDIAccess({ sysex: false });
    } catch (e) {
      const why = String(e.message || e.name).replace(/\.$/, "");
      this.say(`No MIDI access (${why}). The keyboard below still plays.`);
      this.inputSelect.disabled = this.outputSelect.disabled = true;
      return;
    }
    this.access.addEventListener("statechange", () => this.refresh());
    this.refresh();
  }

  refresh() {
    const inputs = [...this.access.inputs.values()].filter((p) => p.state !== "disconnected");
    const outputs = [...this.access.outputs.values()].filter((p) => p.state !== "disconnected");
    fill(this.inputSelect, [[ALL, "All MIDI inputs"], ...inputs.map((p) => [p.id, p.name])]);
    fill(this.outputSelect, [["", "This page's piano"], ...outputs.map((p) => [p.id, p.name])]);
    for (const input of inputs) input.onmidimessage = (e) => this.message(input, e);
    const names = inputs.map((p) => p.name).join(", ");
    this.say(inputs.length ? `MIDI in: ${names}` : "No MIDI keyboard connected (plug one in).");
  }

  say(text) {
    this.status.textContent = text;
  }

  // The output picked for the answers, or null: the page's own piano.
  get output() {
    const id = this.outputSelect.value;
    return (id && this.access?.outputs.get(id)) || null;
  }

  message(input, e) {
    const picked = this.inputSelect.value;
    if (picked !== ALL && picked !== input.id) return;
    const [status, a, b] = e.data;
    const kind = status & 0xf0;
    // The event's timeStamp is on the performance.now() clock, in ms.
    const now = this.clock();
    const stamp = e.timeStamp > 0 ? e.timeStamp / 1000 : now;
    const time = Math.min(stamp, now);
    if (kind === 0x90 && b > 0) this.on.noteOn(a, b, time);
    else if (kind === 0x80 || kind === 0x90) this.on.noteOff(a, time);
    else if (kind === 0xb0 && (a === 64 || a === 67)) this.on.pedal(a, b, time);
  }
}

function fill(select, options) {
  const before = select.value;
  select.textContent = "";
  for (const [value, label] of options) select.append(new Option(label, value));
  if (options.some(([value]) => value === before)) select.value = before;
}
