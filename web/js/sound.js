// The page's piano: Web Audio, the Salamander Grand Piano samples when the site has them
// (samples/, one velocity layer every minor third from A0 to C8), else a small synthesized
// piano. Times given to it are on the page's clock (performance.now() seconds); it maps them to
// the AudioContext's own clock.

const NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
const SAMPLE_PITCHES = Array.from({ length: 30 }, (_, i) => 21 + 3 * i); // A0, C1, D#1 ... C8
const MAX_VOICES = 72;
const RELEASE = 0.07; // seconds: the time constant of a released note's fade

export const noteName = (pitch) => NAMES[pitch % 12] + (Math.floor(pitch / 12) - 1);
// Relative to the page: the site may live in a folder of its host (GitHub Pages).
const sampleUrl = (pitch) => `samples/${encodeURIComponent(noteName(pitch))}v10.mp3`;

export class Piano {
  constructor() {
    const Context = window.AudioContext || window.webkitAudioContext;
    this.ctx = Context ? new Context({ latencyHint: "interactive" }) : null;
    this.kind = "synth"; // "samples" once they are loaded
    this.samples = new Map(); // pitch -> AudioBuffer
    this.voices = new Set();
    this.offset = null; // audio clock - page clock, seconds
    if (!this.ctx) return;
    this.out = this.ctx.createGain();
    this.out.gain.value = 0.8;
    const limiter = this.ctx.createDynamicsCompressor();
    limiter.threshold.value = -10;
    limiter.ratio.value = 8;
    this.out.connect(limiter);
    limiter.connect(this.ctx.destination);
    const room = this.ctx.createConvolver(); // a little room, so the piano is not bone dry
    room.buffer = this.roomImpulse(1.6);
    const wet = this.ctx.createGain();
    wet.gain.value = 0.16;
    this.out.connect(room);
    room.connect(wet);
    wet.connect(limiter);
    this.wave = this.pianoWave();
    this.sync();
    setInterval(() => this.sync(), 1000);
  }

  get running() {
    return !!this.ctx && this.ctx.state === "running";
  }

  resume() {
    if (this.ctx && this.ctx.state !== "running") this.ctx.resume().then(() => this.sync());
  }

  // -- the clocks -----------------------------------------------------------------------------

  // The offset between the AudioContext's clock and the page's. getOutputTimestamp() pairs a
  // context time with the performance.now() at which it is heard, so output latency is
  // accounted for; where it gives nothing, currentTime less the stated latencies.
  sync() {
    if (!this.running) return;
    const c = this.ctx;
    const stamp = c.getOutputTimestamp ? c.getOutputTimestamp() : null;
    let measured;
    if (stamp && stamp.performanceTime > 0 && stamp.contextTime > 0) {
      measured = stamp.contextTime - stamp.performanceTime / 1000;
    } else {
      const latency = (c.baseLatency || 0) + (c.outputLatency || 0);
      measured = c.currentTime - latency - performance.now() / 1000;
    }
    // Readings jitter by an audio block: smooth them, but follow a real jump at once.
    if (this.offset === null || Math.abs(measured - this.offset) > 0.05) this.offset = measured;
    else this.offset += 0.2 * (measured - this.offset);
  }

  // The audio clock's time for a page-clock time; a moment already past is "now".
  at(pageSeconds) {
    if (!this.ctx) return 0;
    if (this.offset === null) this.sync();
    const t = pageSeconds + (this.offset ?? 0);
    return Math.max(t, this.ctx.currentTime);
  }

  // -- the samples ----------------------------------------------------------------------------

  // Loads every sample; resolves to the sound in use: "samples" if any loaded, else "synth".
  async loadSamples() {
    if (!this.ctx) return this.kind;
    const load = async (pitch) => {
      const response = await fetch(sampleUrl(pitch));
      if (!response.ok) throw new Error(`${response.status} ${sampleUrl(pitch)}`);
      const buffer = await this.ctx.decodeAudioData(await response.arrayBuffer());
      this.samples.set(pitch, buffer);
    };
    await Promise.allSettled(SAMPLE_PITCHES.map(load));
    if (this.samples.size) this.kind = "samples";
    return this.kind;
  }

  nearestSample(pitch) {
    let best = null;
    for (const p of this.samples.keys()) {
      if (best === null || Math.abs(p - pitch) < Math.abs(best - pitch)) best = p;
    }
    return best;
  }

  // -- notes ----------------------------------------------------------------------------------

  // Starts a note at audio time `when` (default: now); returns its voice, or null when there
  // is no audio.
  play(pitch, velocity, when) {
    if (!this.ctx || !this.running) return null;
    const c = this.ctx;
    const start = Math.max(when ?? c.currentTime, c.currentTime);
    if (this.voices.size >= MAX_VOICES) this.oldest()?.release(start, 0.02);
    const v = velocity / 127;
    const gain = c.createGain();
    const tone = c.createBiquadFilter(); // soft notes are duller
    tone.type = "lowpass";
    tone.frequency.value = 900 + 16000 * v * v;
    tone.connect(gain);
    gain.connect(this.out);
    const sources = this.kind === "samples" ? this.sampled(pitch, tone) : this.synth(pitch, tone);
    const voice = new Voice(this, gain, sources, start);
    const level = 0.05 + 0.95 * Math.pow(v, 1.7);
    if (this.kind === "samples") {
      gain.gain.setValueAtTime(level, start);
    } else {
      const low = Math.pow(2, (60 - pitch) / 24); // low notes ring longer
      gain.gain.setValueAtTime(0, start);
      gain.gain.linearRampToValueAtTime(level * 0.5, start + 0.004);
      gain.gain.setTargetAtTime(level * 0.18, start + 0.004, 0.12); // the quick first drop...
      gain.gain.setTargetAtTime(0, start + 0.25, 1.4 * low); // ...then the long decay
      voice.end = start + 0.25 + 7 * 1.4 * low;
    }
    for (const s of sources) {
      s.start(start);
      if (voice.end) s.stop(voice.end);
    }
    sources[0].onended = () => voice.dispose();
    this.voices.add(voice);
    return voice;
  }

  sampled(pitch, into) {
    const from = this.nearestSample(pitch);
    const source = this.ctx.createBufferSource();
    source.buffer = this.samples.get(from);
    source.playbackRate.value = Math.pow(2, (pitch - from) / 12);
    source.connect(into);
    return [source];
  }

  synth(pitch, into) {
    const f = 440 * Math.pow(2, (pitch - 69) / 12);
    return [-4, 0, 4].map((cents) => {
      const o = this.ctx.createOscillator();
      o.setPeriodicWave(this.wave);
      o.frequency.value = f;
      o.detune.value = cents;
      o.connect(into);
      return o;
    });
  }

  oldest() {
    let first = null;
    for (const v of this.voices) if (!first || v.start < first.start) first = v;
    return first;
  }

  // Ends every voice at once (a short fade).
  silence() {
    for (const v of this.voices) v.release(this.ctx.currentTime, 0.02);
  }

  // A piano-like spectrum: partials falling off, the even ones a little weaker.
  pianoWave() {
    const n = 16;
    const real = new Float32Array(n);
    const imag = new Float32Array(n);
    for (let k = 1; k < n; k++) imag[k] = (k % 2 ? 1 : 0.6) / Math.pow(k, 1.5);
    return this.ctx.createPeriodicWave(real, imag);
  }

  roomImpulse(seconds) {
    const rate = this.ctx.sampleRate;
    const length = Math.floor(rate * seconds);
    const buffer = this.ctx.createBuffer(2, length, rate);
    for (let ch = 0; ch < 2; ch++) {
      const data = buffer.getChannelData(ch);
      for (let i = 0; i < length; i++) {
        data[i] = (Math.random() * 2 - 1) * Math.pow(1 - i / length, 3);
      }
    }
    return buffer;
  }
}

class Voice {
  constructor(piano, gain, sources, start) {
    this.piano = piano;
    this.gain = gain;
    this.sources = sources;
    this.start = start;
    this.end = null; // when its sources stop
    this.released = false;
  }

  // Fades the note out from audio time `when` (not before it started).
  release(when, constant = RELEASE) {
    const c = this.piano.ctx;
    const at = Math.max(when ?? c.currentTime, this.start, c.currentTime);
    const g = this.gain.gain;
    if (g.cancelAndHoldAtTime) g.cancelAndHoldAtTime(at);
    else g.cancelScheduledValues(at);
    g.setTargetAtTime(0, at, constant);
    const end = at + constant * 8;
    if (!this.end || end < this.end) {
      this.end = end;
      for (const s of this.sources) {
        try {
          s.stop(end);
        } catch {
          // already stopped
        }
      }
    }
    this.released = true;
  }

  // A note that must not sound at all (an answer cut before it began).
  cancel() {
    this.gain.disconnect();
    for (const s of this.sources) {
      try {
        s.stop();
      } catch {
        // never started: nothing to stop
      }
    }
    this.dispose();
  }

  dispose() {
    if (!this.piano.voices.delete(this)) return;
    this.gain.disconnect();
  }
}
