// How one event is drawn from the model's next-event distribution, and which events may be
// drawn (amadeus/generate/sampling.py, for the one row the live engine plays): only events valid
// in the performance's state (a NOTE_OFF for a sounding pitch, a NOTE_ON for a silent one), a
// note that has sounded `max_note_seconds` ends there, no new note once the answer is closing;
// then temperature and nucleus (top-p). The rules come from the manifest; the random numbers
// from a seeded generator of our own (the draws need not match numpy's, the distribution does).

// The performance of one row: the onset of each sounding pitch (NaN when silent) and the clock,
// advanced by the tokens fed; `allowed()` is the mask of the events the rules permit next.
export class PerformanceState {
  constructor(codec, rules) {
    this.codec = codec;
    this.rules = rules;
    this.onset = new Float64Array(codec.maxPitch - codec.minPitch + 1).fill(NaN);
    this.now = 0; // seconds
    this.closing = false; // no new notes: the piece ends once its notes have ended
    this.expired = []; // [pitch index, end] of the notes the last feed ended at the limit
  }

  feed(token) {
    const kind = this.codec.tokenKind[token];
    this.now += this.codec.tokenSeconds[token];
    this.expire();
    if (kind === "note_on") this.onset[this.codec.tokenValue[token]] = this.now;
    if (kind === "note_off") this.onset[this.codec.tokenValue[token]] = NaN;
  }

  // Notes that have sounded `max_note_seconds` end at that instant, listed as they end.
  expire() {
    this.expired = [];
    const limit = this.rules.max_note_seconds;
    if (limit == null) return;
    this.onset.forEach((onset, p) => {
      if (this.now - onset > limit) this.expired.push([p, onset + limit]); // (NaN: silent)
    });
    this.expired.sort((a, b) => a[1] - b[1]); // stable: pitch order among equal ends
    for (const [p] of this.expired) this.onset[p] = NaN;
  }

  get sounding() {
    return Array.from(this.onset, (onset) => !Number.isNaN(onset));
  }

  // [V] booleans: the events the rules permit as the next token.
  allowed() {
    const mask = new Array(this.codec.size).fill(true);
    const { note_on: on, note_off: off, velocity } = this.codec.ranges;
    const sounding = this.sounding;
    if (this.rules.valid_only) {
      sounding.forEach((s, p) => {
        mask[off.start + p] = s;
        mask[on.start + p] = !s;
      });
    }
    if (this.closing) {
      for (let t = on.start; t < on.stop; t++) mask[t] = false;
      for (let t = velocity.start; t < velocity.stop; t++) mask[t] = false;
    }
    return mask;
  }

  snapshot() {
    return { onset: this.onset.slice(), now: this.now };
  }

  restore({ onset, now }) {
    this.onset = onset.slice();
    this.now = now;
  }
}

export class Sampler {
  constructor(codec, rules) {
    this.rules = rules;
    this.state = new PerformanceState(codec, rules);
  }

  // The rules drawing and the performance state's note limit both follow.
  use(rules) {
    this.rules = this.state.rules = rules;
  }

  // A token that happened without being drawn here: the player's, a forced note-off.
  feed(token) {
    this.state.feed(token);
  }

  // Logits (any array of V numbers) as float64, with every event the rules forbid at -Infinity.
  masked(logits) {
    let mask = this.state.allowed();
    if (!mask.some(Boolean)) mask = mask.map(() => true); // never a dead end
    return Array.from(logits, (x, i) => (mask[i] ? x : -Infinity));
  }

  // Logits -> the next token, fed to the state.
  draw(logits, random) {
    const token = pick(this.masked(logits), random, this.rules);
    this.feed(token);
    return token;
  }
}

// The probabilities drawn from: softmax(logits / temperature) cut to its nucleus (not
// renormalised: the draw scales by the total), as sampling.pick computes them.
export function distribution(logits, rules) {
  const max = Math.max(...logits);
  const z = logits.map((x) => Math.exp((x - max) / rules.temperature));
  const total = z.reduce((a, b) => a + b, 0);
  const p = z.map((x) => x / total);
  return rules.top_p < 1 ? nucleus(p, rules.top_p) : p;
}

// All but the smallest set of likeliest events holding `topP` of the mass set to 0 (the event
// that crosses topP is kept).
export function nucleus(p, topP) {
  const order = p.map((_, i) => i).sort((a, b) => p[b] - p[a]); // stable, as numpy's
  const keep = new Array(p.length).fill(false);
  let sum = 0;
  for (const i of order) {
    sum += p[i];
    keep[i] = sum - p[i] < topP; // the mass before it, as numpy's cumsum - own gives it
  }
  return p.map((x, i) => (keep[i] ? x : 0));
}

// Logits (-Infinity: forbidden) -> a token: the argmax with probability `rules.greedy`, else a
// draw from the distribution by its cumulative sum, as sampling.pick draws.
export function pick(logits, random, rules) {
  const p = distribution(logits, rules);
  const u = random();
  const greedy = random() < rules.greedy;
  return greedy ? argmax(logits) : drawAt(p, u);
}

// The token at uniform `u` in [0, 1): the count of cumulative sums <= u times the total.
export function drawAt(p, u) {
  const cdf = [];
  p.reduce((sum, x, i) => (cdf[i] = sum + x), 0);
  const target = u * cdf[cdf.length - 1];
  return Math.min(cdf.filter((c) => c <= target).length, p.length - 1);
}

const argmax = (xs) => xs.reduce((best, x, i) => (x > xs[best] ? i : best), 0);

// A seeded generator of uniforms in [0, 1) with 53 random bits (xoshiro128** from splitmix32
// seeding): the same seed, the same answer.
export function seeded(seed) {
  let x = seed >>> 0;
  const split = () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  const s = [split(), split(), split(), split()];
  const next = () => {
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  };
  return () => ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
}

const rotl = (x, k) => (x << k) | (x >>> (32 - k));
