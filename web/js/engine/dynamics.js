// The player's loudness and the model's (amadeus/data/dynamics.py): played velocities are mapped
// into the range the training data used before the model hears them, and the answer's back,
// through the inverse map, or, where the model knows one loudness only, to the loudness the
// phrase was played at. The range and its constants come from the manifest.

import { clamp, roundHalfEven } from "./numeric.js";

export class Dynamics {
  constructor({ low, high, flat_below, loudest }) {
    this.low = low;
    this.high = high;
    this.loudest = loudest;
    this.flat = high - low < flat_below; // one loudness: no accents to keep
  }

  // A played velocity (1-127) as the model knows loudness.
  toModel(velocity) {
    const share = (clamp(velocity, 1, this.loudest) - 1) / (this.loudest - 1);
    return roundHalfEven(this.low + share * (this.high - this.low));
  }

  // A velocity the model chose, on the player's scale; `played`: the phrase's mean velocity.
  toPlayer(velocity, played) {
    if (this.flat) return roundHalfEven(clamp(played, 1, this.loudest));
    const share = (velocity - this.low) / (this.high - this.low);
    return roundHalfEven(clamp(1 + share * (this.loudest - 1), 1, this.loudest));
  }
}
