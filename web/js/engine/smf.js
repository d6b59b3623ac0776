// A Standard MIDI File, written by hand (it is small): format 1, one track per named list of
// notes, each on its own channel, the tempo and the text markers in the first track, as
// amadeus/data/midi.py's `to_bytes` lays the session out. Times in ticks.

const encoder = new TextEncoder();

// tracks: [{name, notes: [{start, end, pitch, velocity}]}]; markers: [{tick, text}].
export function smf(tracks, markers, { ticksPerQuarter, qpm, program = 0 }) {
  const tempo = Math.round(60e6 / qpm); // microseconds per quarter note
  const chunks = tracks.map((track, i) => {
    const events = [];
    const first = i === 0 ? [meta(0x51, [tempo >> 16, (tempo >> 8) & 255, tempo & 255])] : [];
    for (const bytes of [...first, meta(0x03, encoder.encode(track.name)), [0xc0 | i, program]]) {
      events.push({ tick: 0, order: -1, bytes });
    }
    for (const n of track.notes) {
      // At one tick: notes ending first, then notes starting, then the end of notes of no length.
      events.push({ tick: n.start, order: 1, bytes: [0x90 | i, n.pitch, n.velocity] });
      events.push({ tick: n.end, order: n.end > n.start ? 0 : 2, bytes: [0x80 | i, n.pitch, n.velocity] });
    }
    for (const m of i === 0 ? markers : []) {
      events.push({ tick: m.tick, order: 3, bytes: meta(0x06, encoder.encode(m.text)) });
    }
    events.sort((a, b) => a.tick - b.tick || a.order - b.order);
    return chunk("MTrk", trackBytes(events));
  });
  const header = [0, 1, tracks.length >> 8, tracks.length & 255, ticksPerQuarter >> 8, ticksPerQuarter & 255];
  return concat([chunk("MThd", header), ...chunks]);
}

function trackBytes(events) {
  const out = [];
  let tick = 0;
  for (const e of events) {
    out.push(...varLength(e.tick - tick), ...e.bytes);
    tick = e.tick;
  }
  out.push(0, 0xff, 0x2f, 0); // end of track
  return out;
}

const meta = (kind, data) => [0xff, kind, ...varLength(data.length), ...data];

// A MIDI variable-length quantity: 7 bits a byte, most significant first.
function varLength(value) {
  const bytes = [value & 0x7f];
  for (let v = value >>> 7; v > 0; v >>>= 7) bytes.unshift((v & 0x7f) | 0x80);
  return bytes;
}

function chunk(tag, body) {
  const n = body.length;
  return [...encoder.encode(tag), n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255, ...body];
}

function concat(parts) {
  return Uint8Array.from(parts.flat());
}
