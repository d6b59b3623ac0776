// The few numeric rules of numpy and Python that the engine's tokens depend on, so that JS
// numbers (float64, as numpy's) give the same bins and the same times.

// np.round / Python's round(): halves go to the even neighbour (Math.round sends them up).
export function roundHalfEven(x) {
  const floor = Math.floor(x);
  const rest = x - floor; // exact for the magnitudes the engine meets
  if (rest > 0.5) return floor + 1;
  if (rest < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

// bisect.bisect_right / np.searchsorted(side="right"): how many of `sorted` are <= x.
export function bisectRight(sorted, x) {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export const clamp = (x, low, high) => Math.min(Math.max(x, low), high);

// Compares rows key by key: a stable Array.sort with it is np.lexsort with the keys reversed.
export const byKeys = (...keys) => (a, b) => {
  for (const key of keys) {
    const d = key(a) - key(b);
    if (d < 0 || d > 0) return d; // (Infinity - Infinity is NaN: a tie)
  }
  return 0;
};
