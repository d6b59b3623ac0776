// Everything played in a session, as it sounded (amadeus/live/record.py): the player's notes and
// every take of every answer, kept or not, as one MIDI file. Tracks (their names from the
// manifest): the player, the takes that stand, the takes replaced by `again` or dropped by
// `undo`; a marker at the start of each take ("answer 2, take 3"). Times from the first event.

import { build } from "./notes.js";
import { clamp, roundHalfEven } from "./numeric.js";
import { smf } from "./smf.js";

export class Record {
  constructor() {
    this.player = []; // [start, end, pitch, velocity]
    this.down = new Map(); // pitch -> index in player
    this.takes = []; // {answer, take, notes, sounding, kept}
    this.answers = 0;
    this.latest = 0; // the newest time seen
    this.origin = null; // the session's first event
  }

  playerOn(time, pitch, velocity) {
    close(this.player, this.down, pitch, time);
    this.down.set(pitch, this.player.length);
    this.player.push([this.seen(time), Infinity, pitch, velocity]);
  }

  playerOff(time, pitch) {
    close(this.player, this.down, pitch, this.seen(time));
  }

  // Starts recording a take: of a new answer, or again of the last one; its number.
  newTake(again) {
    let number = 1;
    const last = this.takes[this.takes.length - 1];
    if (again && last) {
      last.kept = false;
      number = last.take + 1;
    } else this.answers += 1;
    this.takes.push({ answer: this.answers, take: number, notes: [], sounding: new Map(), kept: true });
    return number;
  }

  answerNote(time, pitch, velocity) {
    const take = this.takes[this.takes.length - 1];
    close(take.notes, take.sounding, pitch, this.seen(time));
    if (velocity) {
      take.sounding.set(pitch, take.notes.length);
      take.notes.push([time, Infinity, pitch, velocity]);
    }
  }

  // The last take stops at `time`: later notes void, sounding ones end there.
  cut(time) {
    const take = this.takes[this.takes.length - 1];
    take.notes = take.notes.filter((n) => n[0] <= time);
    for (const note of take.notes) note[1] = Math.min(note[1], time);
    take.sounding.clear();
    this.seen(time);
  }

  // `undo`: the last take does not stand.
  drop() {
    if (this.takes.length) this.takes[this.takes.length - 1].kept = false;
  }

  seen(time) {
    if (this.origin === null) this.origin = time;
    this.latest = Math.max(this.latest, time);
    return time;
  }

  // [[name, notes]] per track, times from the first event; notes still sounding end at the
  // newest time seen.
  tracks(names) {
    const of = (kept) => this.takes.filter((t) => t.kept === kept).flatMap((t) => t.notes);
    return [this.player, of(true), of(false)].map((rows, i) => [names[i], this.notes(rows)]);
  }

  markers() {
    const origin = this.origin ?? 0;
    return this.takes
      .filter((t) => t.notes.length)
      .map((t) => [t.notes[0][0] - origin, `answer ${t.answer}, take ${t.take}`]);
  }

  notes(rows) {
    const origin = this.origin ?? 0;
    return build(
      rows.map(([start, end, pitch, velocity]) => ({
        start: start - origin,
        end: Math.min(end, this.latest) - origin,
        pitch,
        velocity,
      })),
    );
  }

  // The session as a MIDI file's bytes; `midi`: the manifest's {ticks_per_quarter, qpm, tracks}.
  midiBytes(midi) {
    const perSecond = (midi.ticks_per_quarter * midi.qpm) / 60;
    const tick = (seconds) => roundHalfEven(seconds * perSecond);
    const tracks = this.tracks(midi.tracks).map(([name, notes]) => ({
      name,
      notes: notes.map((n) => ({
        start: tick(n.start),
        end: tick(n.end),
        pitch: n.pitch,
        velocity: clamp(n.velocity, 1, 127),
      })),
    }));
    const markers = this.markers().map(([seconds, text]) => ({ tick: tick(seconds), text }));
    return smf(tracks, markers, { ticksPerQuarter: midi.ticks_per_quarter, qpm: midi.qpm });
  }
}

function close(notes, sounding, pitch, time) {
  if (sounding.has(pitch)) {
    notes[sounding.get(pitch)][1] = time;
    sounding.delete(pitch);
  }
}
