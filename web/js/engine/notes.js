// Notes as amadeus/data/notes.py and the file-reading rules of amadeus/data/midi.py keep them:
// an array of {start, end, pitch, velocity} (seconds), sorted by (start, pitch). Array.sort is
// stable, as numpy's lexsort and stable argsort are, so ties fall as they do in Python.

import { bisectRight, byKeys } from "./numeric.js";

const start = (n) => n.start;
const end = (n) => n.end;
const pitch = (n) => n.pitch;

// Notes.build: ends never before starts, sorted by (start, pitch).
export function build(notes) {
  const out = notes.map((n) => ({ ...n, end: Math.max(n.end, n.start) }));
  return out.sort(byKeys(start, pitch));
}

// Notes.without_overlaps: a new onset on a sounding key ends the note (Magenta's rule); the
// order of `notes` is kept.
export function withoutOverlaps(notes) {
  const out = notes.map((n) => ({ ...n }));
  const byPitch = out.slice().sort(byKeys(pitch, start, end)); // of twins, the longer wins
  for (let i = 1; i < byPitch.length; i++) {
    const [earlier, later] = [byPitch[i - 1], byPitch[i]];
    if (earlier.pitch === later.pitch) earlier.end = Math.min(earlier.end, later.start);
  }
  return out;
}

// Notes.playable: what a listener hears, no overlaps and no note of no length.
export const playable = (notes) => withoutOverlaps(notes).filter((n) => n.end > n.start);

// Notes.with_silences_capped: every gap in which nothing sounds (the lead-in too) shortened to
// at most `maxSilence` seconds.
export function withSilencesCapped(notes, maxSilence) {
  let sounding = notes.length ? notes[0].start : 0;
  let cut = 0;
  return notes.map((n, i) => {
    const gap = i === 0 ? n.start : Math.max(n.start - sounding, 0);
    sounding = Math.max(sounding, n.end);
    cut += Math.max(gap - maxSilence, 0);
    return { ...n, start: n.start - cut, end: n.end - cut };
  });
}

// midi.performance: notes from keys [start, release, pitch, velocity] and a time-sorted CC64
// stream [time, value]: the pedal holds released notes (when `sustain`), one note per key and
// onset, same-key overlaps cut. A pedal left down lifts with the last release.
export function performance(keys, pedal, sustain) {
  let ends = keys.map((k) => k[1]);
  if (sustain && keys.length) {
    const [down, up] = pedalIntervals(pedal, Math.max(...ends));
    ends = ends.map((e) => sustained(e, down, up));
  }
  // Ordered by end first, so the longest of notes struck together on one key sorts last.
  const rows = keys.map((k, i) => ({ start: k[0], end: ends[i], pitch: k[2], velocity: k[3] }));
  const notes = build(rows.sort(byKeys(end)));
  const last = notes.filter(
    (n, i) => i === notes.length - 1 || n.start !== notes[i + 1].start || n.pitch !== notes[i + 1].pitch,
  );
  return withoutOverlaps(last);
}

// (down times, up times) of the pedal; one left down lifts at `pieceEnd`.
function pedalIntervals(pedal, pieceEnd) {
  const down = [];
  const up = [];
  let held = false;
  for (const [time, value] of pedal) {
    const now = value >= 64;
    if (now && !held) down.push(time);
    if (!now && held) up.push(time);
    held = now;
  }
  if (up.length < down.length) up.push(Math.max(pieceEnd, down[down.length - 1]));
  return [down, up];
}

// Magenta's rule: a note released while the pedal is down sounds until the pedal lifts.
function sustained(release, down, up) {
  if (!down.length) return release;
  const k = Math.max(bisectRight(down, release) - 1, 0); // the last press at or before it
  return down[k] <= release && release < up[k] ? up[k] : release;
}
