// Amadeus's answer, played: its events come ahead of their time (the server's lookahead) and are
// scheduled at once, on the AudioContext's clock through Piano.at(), or, when a MIDI output is
// picked, queued and sent a little ahead with Web MIDI timestamps. "stopped" (barge-in) cancels
// what has not begun and ends what sounds. The roll gets each note too; it draws it only once
// its time comes.
//
// A note-on that reaches the page after its time (the network or the machine held it up) is
// dropped, with its note-off: played late, several would start at once, a burst the answer
// never had. `late()` is told of each.

const MIDI_AHEAD = 0.05; // seconds ahead a MIDI output is sent an event
const LATE = 0.03; // seconds: a note-on later than this is not played

export class AnswerPlayer {
  constructor({ piano, roll, midi, clock, scheduled, late = () => {} }) {
    this.piano = piano;
    this.roll = roll;
    this.midi = midi;
    this.clock = clock;
    this.scheduled = scheduled; // the test hook's list of note-ons scheduled
    this.notes = []; // {pitch, start, end, voice, drawn}
    this.queue = []; // MIDI-out events not yet sent: {time, pitch, velocity}
    this.late = late;
    this.dropped = new Set(); // pitches whose note-on was dropped: their note-off is too
    this.answer = 0;
    setInterval(() => this.pump(), 20);
  }

  events(events) {
    for (const e of events) {
      if (e.velocity > 0) this.noteOn(e.time, e.pitch, e.velocity);
      else this.noteOff(e.time, e.pitch);
    }
  }

  noteOn(time, pitch, velocity) {
    this.noteOff(time, pitch); // a key struck again ends its note
    if (this.clock() - time > LATE) {
      this.dropped.add(pitch);
      this.late();
      return;
    }
    const output = this.midi.output;
    let voice = null;
    if (output) this.queue.push({ time, pitch, velocity, output });
    else voice = this.piano.play(pitch, velocity, this.piano.at(time));
    const drawn = this.roll.noteOn("amadeus", pitch, velocity, time);
    this.notes.push({ pitch, start: time, end: Infinity, voice, drawn, output });
    this.scheduled.push({ pitch, time, scheduledAt: performance.now(), answer: this.answer });
  }

  noteOff(time, pitch) {
    if (this.dropped.delete(pitch)) return; // the end of a note never played
    const note = this.notes.find((n) => n.pitch === pitch && n.end === Infinity);
    if (!note) return;
    note.end = Math.max(time, note.start);
    note.voice?.release(this.piano.at(note.end));
    if (note.output) this.queue.push({ time: note.end, pitch, velocity: 0, output: note.output });
    this.roll.noteOff(note.drawn, note.end);
  }

  // Barge-in: nothing of the answer after `time` sounds.
  stop(time) {
    const at = this.piano.at(time);
    for (const n of this.notes) {
      if (n.start > time) n.voice?.cancel();
      else if (n.end > time) n.voice?.release(at, 0.03);
    }
    const outputs = new Set(this.notes.filter((n) => n.output && n.start <= time && n.end > time));
    this.queue = this.queue.filter((e) => e.time <= time);
    for (const n of outputs) this.queue.push({ time, pitch: n.pitch, velocity: 0, output: n.output });
    this.notes = this.notes.filter((n) => n.start <= time);
    for (const n of this.notes) n.end = Math.min(n.end, time);
    this.roll.cut("amadeus", time);
    this.dropped.clear(); // their note-offs will not come
  }

  // The answer's notes sounding at page time `t` (for the keyboard's lights).
  sounding(t) {
    const old = t - 30;
    this.notes = this.notes.filter((n) => n.end > old);
    return this.notes.filter((n) => n.start <= t && t < n.end).map((n) => n.pitch);
  }

  // Sends MIDI-out events falling due, timestamped on the performance.now() clock.
  pump() {
    if (!this.queue.length) return;
    const due = this.clock() + MIDI_AHEAD;
    const ready = this.queue.filter((e) => e.time <= due).sort((a, b) => a.time - b.time);
    this.queue = this.queue.filter((e) => e.time > due);
    for (const e of ready) {
      const stamp = Math.max(e.time * 1000, performance.now());
      try {
        e.output.send([e.velocity ? 0x90 : 0x80, e.pitch, e.velocity || 64], stamp);
      } catch {
        // the output went away mid-answer
      }
    }
  }
}
