// The control an answer is conditioned on (amadeus/data/controls.py, the live engine's use of
// it): the phrase's note density and pitch-class histogram, held for the whole answer. The
// layout (window, density edges, sizes) comes from the manifest.

import { bisectRight } from "./numeric.js";

// The density bin of a number of note-ons in the window (0 below the first edge).
export const densityBin = (layout, noteOns) => Math.max(bisectRight(layout.density_edges, noteOns) - 1, 0);

// The model input of one control held over time: density one-hot, then the pitch-class weights
// normalised to sum 1, evenShare of them spread evenly over the twelve (in float64, in numpy's
// order of operations, then stored as float32).
export function held(layout, histogram, density, evenShare = 0) {
  const out = new Float32Array(layout.control_dim);
  out[density] = 1;
  const total = histogram.reduce((a, b) => a + b, 0);
  const even = evenShare / layout.histogram_dim;
  histogram.forEach(
    (count, c) => (out[layout.density_dim + c] = (1 - evenShare) * (count / total) + even),
  );
  return out;
}

// The engine's control for a phrase (`Engine._control_of`): its notes up to its newest event,
// their pitch classes (the phraseKeys share of the weights theirs, the rest spread evenly), and
// their number per window over the phrase's length (at least one window).
export function phraseControl(layout, notes, seconds, phraseKeys = 1) {
  const window = layout.window_seconds;
  const perWindow = (notes.length * window) / Math.max(seconds, window);
  const histogram = new Array(layout.histogram_dim).fill(0);
  for (const n of notes) histogram[n.pitch % 12] += 1;
  return held(layout, histogram, densityBin(layout, perWindow), 1 - phraseKeys);
}
