"""Generation: sampling, beam search, controls and priming with a phrase, over a *stepper*
(amadeus.model.stepper: one model step as fast as the hardware allows).

Sampling and beam search run in numpy with one seeded Generator, so a seed gives the same music.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from amadeus.data.codec import EventCodec
from amadeus.generate.sampling import Sampler, SamplingRules
from amadeus.progress import progress

DEFAULT_LENGTH = 1000  # events, when neither -l nor a control sequence says otherwise


def initial_noise(batch: int, init_dim: int, rng: np.random.Generator, zero: bool = False):
    """[B, init_dim] float32: standard normal noise, as the original drew it, or zeros."""
    if zero:
        return np.zeros((batch, init_dim), dtype=np.float32)
    return rng.standard_normal((batch, init_dim), dtype=np.float32)


def _rows(controls: np.ndarray | None, t: int, rows: int) -> np.ndarray | None:
    """Step t's control for every row: [rows, C] (a plain writable array, which any library
    takes without a copy or a warning), or None without conditioning."""
    if controls is None:
        return None
    return np.repeat(controls[t][None].astype(np.float32), rows, axis=0)


def begin(
    stepper: Any,
    init: np.ndarray,
    primer: np.ndarray | None = None,
    primer_controls: np.ndarray | None = None,
) -> tuple[Any, np.ndarray]:
    """(hidden, next input [B]) where generation starts: after the start token, and after the
    primer's tokens when given, each fed one step at a time with its own control [N, C] (when the
    generation is conditioned). Every row then samples its own continuation."""
    batch = len(init)
    hidden = stepper.initial(init)
    inputs = [stepper.start_token] + ([] if primer is None else [int(t) for t in primer])
    for t, token in enumerate(inputs[:-1]):
        events = np.full(batch, token, dtype=np.int64)
        _, hidden = stepper.step(events, hidden, _rows(primer_controls, t, batch))
    return hidden, np.full(batch, inputs[-1], dtype=np.int64)


def start(
    stepper: Any,
    codec: EventCodec,
    rules: SamplingRules,
    init: np.ndarray,
    primer: np.ndarray | None = None,
    primer_controls: np.ndarray | None = None,
) -> tuple[Any, np.ndarray, Sampler]:
    """`begin`, and a sampler for its rows that has heard the primer: (hidden, next input
    [B], sampler), ready for `sample` or `beam_search`."""
    hidden, event = begin(stepper, init, primer, primer_controls)
    sampler = Sampler(codec, len(init), rules)
    sampler.prime(primer)
    return hidden, event, sampler


def sample(
    stepper: Any,
    hidden: Any,
    event: np.ndarray,
    steps: int,
    rng: np.random.Generator,
    sampler: Sampler,
    controls: np.ndarray | None = None,
    quiet: bool = True,
) -> np.ndarray:
    """Tokens [B, steps] following input `event` [B], drawn by `sampler` (which must have seen
    the primer); controls [steps, C] or None."""
    out = np.empty((len(event), steps), dtype=np.int64)
    for t in progress(range(steps), desc="generating", quiet=quiet):
        logits, hidden = stepper.step(event, hidden, _rows(controls, t, len(event)))
        event = out[:, t] = sampler.draw(logits, rng)
    return out


def sample_from_start(
    stepper: Any,
    codec: EventCodec,
    rules: SamplingRules,
    init: np.ndarray,
    steps: int,
    rng: np.random.Generator,
    controls: np.ndarray | None = None,
    quiet: bool = True,
) -> np.ndarray:
    """Tokens [B, steps] sampled from the start token for each row of init noise [B, init_dim]."""
    hidden, event, sampler = start(stepper, codec, rules, init)
    return sample(stepper, hidden, event, steps, rng, sampler, controls, quiet)


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def beam_search(
    stepper: Any,
    hidden: Any,
    event: np.ndarray,
    steps: int,
    beam_size: int,
    sampler: Sampler,
    controls: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    quiet: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of `event` [B], a beam search over log softmax(logits / temperature), summed,
    among the events `sampler`'s rules allow (its state follows the beams).

    Each step keeps the beam_size best of all extensions of the beams (the first step extends
    one beam). With `rng`, the beams are drawn instead (stochastic beam search: Gumbel top-k
    without replacement, Kool et al. 2019). Returns the likeliest final beam per row: tokens
    [B, steps] and their total log-probabilities [B].
    """
    batch, V = len(event), stepper.event_dim
    scores = np.zeros((batch, 1))  # [B, k] log-probability of each beam
    keys = np.zeros((batch, 1))  # [B, k] the ranking: scores, or their Gumbel perturbation
    parents, tokens = [], []
    for t in progress(range(steps), desc="beam search", quiet=quiet):
        k = scores.shape[1]
        logits, hidden = stepper.step(event, hidden, _rows(controls, t, batch * k))
        masked = sampler.masked(logits) / sampler.rules.temperature
        logp = log_softmax(masked).reshape(batch, k, V)
        extended = (scores[:, :, None] + logp).reshape(batch, k * V)
        ranking = extended if rng is None else _gumbel_keys(extended, keys, rng)
        best = np.argsort(-ranking, axis=1, kind="stable")[:, :beam_size]  # [B, K]
        scores = np.take_along_axis(extended, best, axis=1)
        keys = np.take_along_axis(ranking, best, axis=1)
        parent, token = np.divmod(best, V)
        rows = (np.arange(batch)[:, None] * k + parent).reshape(-1)
        hidden = stepper.take(hidden, rows)
        event = token.reshape(-1)
        sampler.take(rows)
        sampler.feed(event)
        parents.append(parent)
        tokens.append(token)
    beam = scores.argmax(axis=1)
    return _backtrack(parents, tokens, beam), scores[np.arange(batch), beam]


def _gumbel_keys(extended: np.ndarray, parent_keys: np.ndarray, rng: np.random.Generator):
    """Each extension's Gumbel-perturbed log-probability [B, k*V], conditioned on its parent's
    key being the maximum among its children (the truncated Gumbel of Kool et al. 2019)."""
    batch, k = parent_keys.shape
    g = (extended + rng.gumbel(size=extended.shape)).reshape(batch, k, -1)
    top = g.max(axis=2, keepdims=True)
    parent = parent_keys[:, :, None]
    with np.errstate(divide="ignore"):  # the maximum itself gives log(0) = -inf, on purpose
        a = g - top  # <= 0; log(1 - exp(a)) computed stably on either side of -log 2
        log1mexp = np.where(a > -0.6931, np.log(-np.expm1(a)), np.log1p(-np.exp(a)))
    v = parent - g + log1mexp
    keys = parent - np.maximum(v, 0) - np.log1p(np.exp(-np.abs(v)))
    return keys.reshape(batch, -1)


def _backtrack(parents: list, tokens: list, beam: np.ndarray) -> np.ndarray:
    """Follows each row's chosen beam back through the per-step (parent, token) arrays."""
    batch = len(beam)
    rows = np.arange(batch)
    out = np.empty((batch, len(tokens)), dtype=np.int64)
    for t in reversed(range(len(tokens))):
        out[:, t] = tokens[t][rows, beam]
        beam = parents[t][rows, beam]
    return out
