"""How one event is drawn from the model's next-event distribution, and which events may be drawn.

A Performance RNN's tokens only make music when they form a valid performance: a NOTE_OFF for a
pitch that is not sounding, or a NOTE_ON for one that is, decodes to nothing or cuts a note short.
Sampling from the whole vocabulary draws such tokens from the distribution's tail now and then.
Worse, a model forgets some notes: it strikes a key and never releases it (a model trained 20
minutes on the chorales leaves about 8 of 250 notes a piece without a NOTE_OFF), and that note
drones under the rest of the piece. So every row keeps the state of its performance (which
pitches sound since when, and the clock), and:

- only valid events are drawn (`valid_only`): a NOTE_OFF only for a sounding pitch, a NOTE_ON
  only for a silent one, as in every performance the codec encodes, the rest renormalised
  (note-seq's decoder skips the others; here they are never drawn);
- a note that has sounded `max_note_seconds` (the longest note of the training data, recorded
  in the session) ends there, in this state and in the decoder alike, as note-seq's decoder
  caps notes at a `max_note_duration`: no token is forced on the model, whose forgotten note it
  is, and the key may be struck again.

Forcing the NOTE_OFF token instead, or refusing the TIME_SHIFTs that would carry a note past the
limit, was tried and measured worse (README, "Generation defaults"): the model hears a release
it did not ask for, or cannot move on, and crowds more notes in.

Then temperature, and nucleus (top-p) sampling (Holtzman et al. 2020), which draws from the
smallest set of events holding `top_p` of the probability. Generation, beam search, the live
engine and evaluation all sample through `Sampler`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amadeus.data.codec import EventCodec

ON, OFF, VELOCITY, SHIFT = range(4)
KIND_IDS = {"note_on": ON, "note_off": OFF, "velocity": VELOCITY, "time_shift": SHIFT}


# The defaults generate.py, evaluate.py and the live engine sample with: of the rules measured by
# bench/sampling_rules.py on the shipped model, the one whose pieces come closest to the real
# chorales (mean overlap 0.862 against 0.771 at temperature 1.0 with no nucleus; README,
# "Generation defaults"). SamplingRules itself defaults to the model's own distribution.
DEFAULT_TEMPERATURE = 0.9
DEFAULT_TOP_P = 0.95


@dataclass(frozen=True)
class SamplingRules:
    temperature: float = 1.0  # divides the logits: below 1 safer, above 1 more adventurous
    top_p: float = 1.0  # nucleus: sample from the likeliest events holding this share
    greedy: float = 0.0  # chance, per row and step, of taking the argmax instead
    valid_only: bool = True  # only events valid in the performance's state
    max_note_seconds: float | None = None  # a note sounding this long ends there


class PerformanceState:
    """Per row: the onset of each sounding pitch (NaN when silent) and the clock, advanced by
    the tokens fed; `allowed` is the mask of the events the rules permit next."""

    def __init__(self, codec: EventCodec, rows: int, rules: SamplingRules):
        self.codec, self.rules = codec, rules
        self.kind = np.array([KIND_IDS[k] for k in codec.token_kind], dtype=np.int8)  # [V]
        self.value = codec.token_value  # [V]: pitch index, bin...
        self.seconds = codec.token_seconds  # [V]
        self.on, self.off = codec.ranges["note_on"], codec.ranges["note_off"]
        self.shifts = codec.ranges["time_shift"]
        self.onset = np.full((rows, codec.num_pitches), np.nan)  # [B, P]
        self.now = np.zeros(rows)  # [B] seconds
        self.closing = False  # no new notes: the piece ends once its notes have ended
        self.expired: list[tuple[int, int, float]] = []  # (row, pitch index, end) of the last feed

    def feed(self, tokens: np.ndarray) -> None:
        """Advance every row by its token [B]."""
        tokens = np.asarray(tokens, dtype=np.int64)
        kind, rows = self.kind[tokens], np.arange(len(tokens))
        self.now += self.seconds[tokens]
        self._expire()
        pitched = (kind == ON) | (kind == OFF)
        self.onset[rows[pitched], self.value[tokens[pitched]]] = np.where(
            kind[pitched] == ON, self.now[pitched], np.nan
        )

    def _expire(self) -> None:
        """Notes that have sounded `max_note_seconds` end at that instant."""
        self.expired = []
        limit = self.rules.max_note_seconds
        if limit is None:
            return
        with np.errstate(invalid="ignore"):  # NaN onsets: silent pitches
            over = self.now[:, None] - self.onset > limit
        if over.any():
            rows, pitches = np.nonzero(over)
            ends = self.onset[rows, pitches] + limit
            order = np.argsort(ends, kind="stable")  # in the order they end
            self.expired = list(
                zip(rows[order].tolist(), pitches[order].tolist(), ends[order].tolist())
            )
            self.onset[over] = np.nan

    def take(self, rows: np.ndarray) -> None:
        """Keep (and repeat) the given rows, as beam search reorders its beams."""
        self.onset, self.now = self.onset[rows], self.now[rows]

    def allowed(self) -> np.ndarray:
        """[B, V] bool: the events the rules permit as each row's next token."""
        mask = np.ones((len(self.now), self.codec.size), dtype=bool)
        sounding = ~np.isnan(self.onset)  # [B, P]
        if self.rules.valid_only:
            mask[:, self.off.start : self.off.stop] = sounding
            mask[:, self.on.start : self.on.stop] = ~sounding
        if self.closing:
            mask[:, self.on.start : self.on.stop] = False
            velocity = self.codec.ranges["velocity"]
            mask[:, velocity.start : velocity.stop] = False
        return mask


class Sampler:
    """Draws each row's next event under `rules`, keeping every row's performance state (none
    when the rules constrain nothing; then `codec` may be None, for any vocabulary)."""

    def __init__(self, codec: EventCodec | None, rows: int, rules: SamplingRules):
        self.rules, self.rows = rules, rows
        constrained = rules.valid_only or rules.max_note_seconds is not None
        if constrained and codec is None:
            raise ValueError("valid events and note limits need the codec")
        self.state = PerformanceState(codec, rows, rules) if constrained else None

    def use(self, rules: SamplingRules) -> None:
        """New rules for what follows: the draws and the performance state's note limit both
        follow them; the notes sounding stay."""
        self.rules = rules
        if self.state is not None:
            self.state.rules = rules

    def feed(self, tokens: np.ndarray) -> None:
        """Tokens [B] that happened without being drawn here: a player's notes, a beam's."""
        if self.state is not None:
            self.state.feed(tokens)

    def prime(self, tokens: np.ndarray | None) -> None:
        """Every row has heard the same phrase (tokens [N], or None)."""
        for token in [] if tokens is None else np.asarray(tokens).tolist():
            self.feed(np.full(self.rows, token))

    def take(self, rows: np.ndarray) -> None:
        """Keep (and repeat) the given rows, as beam search reorders its beams."""
        self.rows = len(rows)
        if self.state is not None:
            self.state.take(rows)

    def masked(self, logits: np.ndarray) -> np.ndarray:
        """Logits [B, V] as float64, with every event the rules forbid at -inf."""
        logits = logits.astype(np.float64)
        if self.state is None:
            return logits
        mask = self.state.allowed()
        mask[~mask.any(axis=1)] = True  # never happens under these rules; never a dead end
        return np.where(mask, logits, -np.inf)

    def draw(self, logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Logits [B, V] -> tokens [B], fed to the state."""
        tokens = pick(self.masked(logits), rng, self.rules)
        self.feed(tokens)
        return tokens


def pick(logits: np.ndarray, rng: np.random.Generator, rules: SamplingRules) -> np.ndarray:
    """Logits [B, V] (-inf: forbidden) -> tokens [B]: per row, the argmax with probability
    `rules.greedy`, otherwise a draw from softmax(logits / temperature) cut to its nucleus."""
    z = np.exp((logits - logits.max(axis=1, keepdims=True)) / rules.temperature)
    p = z / z.sum(axis=1, keepdims=True)  # [B, V]
    if rules.top_p < 1.0:
        p = nucleus(p, rules.top_p)
    cdf = np.cumsum(p, axis=1)
    u = rng.random(len(p)) * cdf[:, -1]
    drawn = np.minimum((cdf <= u[:, None]).sum(axis=1), p.shape[1] - 1)
    use_argmax = rng.random(len(p)) < rules.greedy
    return np.where(use_argmax, logits.argmax(axis=1), drawn)


def nucleus(p: np.ndarray, top_p: float) -> np.ndarray:
    """Probabilities [B, V] with all but the smallest set of likeliest events holding `top_p`
    of each row's mass set to 0 (not renormalised: `pick` scales by the row's total)."""
    order = np.argsort(-p, axis=1, kind="stable")
    sorted_p = np.take_along_axis(p, order, axis=1)
    before = np.cumsum(sorted_p, axis=1) - sorted_p  # mass of the likelier events
    keep_sorted = before < top_p  # the event that crosses top_p is kept
    keep = np.empty_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, axis=1)
    return np.where(keep, p, 0.0)
