"""Answers measured as answers (issue 23, sections 3 and 5): phrases of real music played into the
live engine, and each answer compared with what the composer wrote next, feature by feature.

Phrases are cut at note onsets, not bar lines: the `.data` files keep no tempo or time signature,
so bars cannot be found. A cut point is an onset across which no note sounds (no tie, no held
voice), so a phrase starts and ends between notes; its length, from its first onset to the next
cut point, is drawn from 4-12 s (the nearest cut point to a uniform draw), with music after it
for at least as long. Phrases of one piece do not overlap.

Each phrase is answered three ways: Amadeus conditioned on the phrase (the live default),
Amadeus unconditioned, and a naive answer (the phrase itself played again). The composer's
continuation is the piece's notes that start within the answer's length after the phrase's end.
An answer's times run from its first possible moment (the hand-over plus the start delay), with
the engine's delays for a busy machine taken out: the model's music, not the machine's speed.

Features, each against the phrase: the share of notes in the phrase's key (Krumhansl-Schmuckler:
the duration-weighted pitch-class histogram correlated with the 24 rotated Krumhansl & Kessler
profiles; in the key = in its major scale, or its harmonic minor for a minor key); the pitch-class
histogram's distance to the phrase's (half the L1 distance of the normalised note counts: 0 the
same, 1 disjoint); notes per second (notes over the answer's length; the naive answer's: the
phrase's notes over its own length); the median inter-onset interval of distinct onsets; mean
polyphony (notes sounding, averaged over the time anything sounds); pitch range; and the leap
from the phrase's last note to the answer's first (the highest note sounding at the phrase's last
onset, and the highest of the answer's first onset: the melody, in a chorale). A feature an
answer has no value for (no notes, one onset) is left out.

Overall distance to the composer: per phrase, the mean over the features of |x - composer| /
(the composer's standard deviation of that feature over the phrases), then the mean over phrases.

The evaluation stage never imports live play, so the caller hands in the engines (a function of
conditioning and seed) and the live clock's tick; they are driven only through the engine's calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from amadeus.data.notes import Notes
from amadeus.evaluation.features import pitch_classes

# Krumhansl & Kessler 1982: probe-tone ratings of the 12 pitch classes from the tonic (C first).
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
HARMONIC_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 11)
NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

PHRASE_SECONDS = (4.0, 12.0)
MIN_NOTES = 4  # a phrase has at least this many
VELOCITIES = (40, 70, 100)  # section 5: every note of the phrase at one of these
ROWS = ("composer", "conditioned", "unconditioned", "naive")
EPS = 1e-6  # seconds: a note ending at a cut point does not cross it


@dataclass(frozen=True)
class Feature:
    name: str
    unit: str
    centre: str  # "mean" or "median": what the targets compare (a median for skewed ones)
    digits: int


FEATURES = (
    Feature("in-key share", "%", "mean", 1),
    Feature("histogram distance", "", "mean", 3),
    Feature("notes per second", "/s", "mean", 2),
    Feature("median inter-onset interval", "s", "median", 3),
    Feature("mean polyphony", "notes", "mean", 2),
    Feature("pitch range", "semitones", "mean", 1),
    Feature("first-note leap", "semitones", "median", 1),
)
DISTANCE = (
    "overall distance: per phrase, the mean over the features of |x - composer| / the composer's "
    "standard deviation over the phrases; then the mean over phrases (composer: 0)"
)


# -- the key ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class, C = 0
    minor: bool

    @property
    def name(self) -> str:
        return f"{NAMES[self.tonic]} {'minor' if self.minor else 'major'}"

    @property
    def scale(self) -> np.ndarray:
        """[12] bool: the pitch classes of its major, or harmonic minor, scale."""
        steps = np.array(HARMONIC_MINOR_SCALE if self.minor else MAJOR_SCALE)
        inside = np.zeros(12, bool)
        inside[(steps + self.tonic) % 12] = True
        return inside


def estimate_key(notes: Notes) -> Key:
    """Krumhansl-Schmuckler: the key whose rotated profile best correlates with the notes'
    duration-weighted pitch-class histogram (C major for no notes)."""
    weights = np.maximum(notes.end - notes.start, 1e-3)
    histogram = np.bincount(notes.pitch.astype(np.int64) % 12, weights, minlength=12)
    if np.ptp(histogram) == 0:
        return Key(0, False)
    scores = [
        (np.corrcoef(histogram, np.roll(profile, tonic))[0, 1], tonic, minor)
        for minor, profile in ((False, MAJOR_PROFILE), (True, MINOR_PROFILE))
        for tonic in range(12)
    ]
    _, tonic, minor = max(scores, key=lambda s: s[0])
    return Key(tonic, minor)


# -- the features -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What an answer is measured against: the phrase's key, histogram and last note."""

    key: Key
    histogram: np.ndarray  # [12] normalised note counts
    last_pitch: int  # the highest note sounding at the phrase's last onset: its melody

    @classmethod
    def of(cls, phrase: Notes) -> Context:
        last = phrase.start.max()
        sounding = (phrase.start == last) | ((phrase.start < last) & (phrase.end > last + EPS))
        return cls(
            estimate_key(phrase), pitch_classes(phrase.pitch), int(phrase.pitch[sounding].max())
        )


def in_key_share(notes: Notes, key: Key) -> float:
    """Percent of the notes whose pitch class is in the key's scale."""
    return 100 * float(key.scale[notes.pitch % 12].mean()) if len(notes) else np.nan


def histogram_distance(notes: Notes, histogram: np.ndarray) -> float:
    """Half the L1 distance of the notes' normalised pitch-class histogram from `histogram`."""
    return (
        0.5 * float(np.abs(pitch_classes(notes.pitch) - histogram).sum()) if len(notes) else np.nan
    )


def median_ioi(notes: Notes) -> float:
    """Seconds between distinct onsets, their median (none for fewer than two)."""
    onsets = np.unique(notes.start)
    return float(np.median(np.diff(onsets))) if len(onsets) > 1 else np.nan


def mean_polyphony(notes: Notes) -> float:
    """Notes sounding, averaged over the time anything sounds: their total length over the
    length of their union (a rest is not a texture)."""
    if len(notes) == 0:
        return np.nan
    order = np.argsort(notes.start, kind="stable")
    start, end = notes.start[order], notes.end[order]
    reach = np.maximum.accumulate(end)
    union = reach[-1] - start[0] - np.maximum(start[1:] - reach[:-1], 0).sum()
    return float((end - start).sum() / union) if union > 0 else np.nan


def first_leap(notes: Notes, last_pitch: int) -> float:
    """Semitones from `last_pitch` to the highest note of the first onset."""
    if len(notes) == 0:
        return np.nan
    return float(abs(int(notes.pitch[notes.start == notes.start.min()].max()) - last_pitch))


def features(notes: Notes, seconds: float, context: Context) -> dict[str, float]:
    """Every feature of `notes`, an answer lasting `seconds`, against its phrase."""
    return {
        "in-key share": in_key_share(notes, context.key),
        "histogram distance": histogram_distance(notes, context.histogram),
        "notes per second": len(notes) / seconds,
        "median inter-onset interval": median_ioi(notes),
        "mean polyphony": mean_polyphony(notes),
        "pitch range": float(np.ptp(notes.pitch)) if len(notes) else np.nan,
        "first-note leap": first_leap(notes, context.last_pitch),
    }


# -- the phrases --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cut:
    """A phrase of a piece and the music after it, each from its own time zero."""

    piece: int
    start: float  # seconds into the piece
    seconds: float  # to the cut point that ends it
    phrase: Notes
    after: Notes  # the piece's notes from the phrase's end

    def continuation(self, seconds: float) -> Notes:
        """What the composer wrote next: the notes starting within `seconds` of the end."""
        return self.after.select(self.after.start < seconds - EPS)


def cut_points(notes: Notes) -> np.ndarray:
    """Onsets across which no note sounds."""
    onsets = np.unique(notes.start)
    crossing = (notes.start[None] < onsets[:, None] - EPS) & (
        notes.end[None] > onsets[:, None] + EPS
    )
    return onsets[~crossing.any(axis=1)]


def cut_phrases(pieces: list[Notes], count: int, seed: int) -> list[Cut]:
    """Up to `count` phrases, from cut points drawn at random (seeded), no two overlapping."""
    rng = np.random.default_rng(seed)
    points = [cut_points(n) for n in pieces]
    starts = [(i, t) for i, p in enumerate(points) for t in p]
    cuts: list[Cut] = []
    for k in rng.permutation(len(starts)):
        if len(cuts) == count:
            break
        i, start = starts[k]
        cut = _cut(pieces[i], i, start, start + rng.uniform(*PHRASE_SECONDS), points[i])
        taken = [(c.start, c.start + c.seconds) for c in cuts if c.piece == i]
        if cut and not any(a < cut.start + cut.seconds and cut.start < b for a, b in taken):
            cuts.append(cut)
    return cuts


def _cut(notes: Notes, piece: int, start: float, aim: float, points: np.ndarray) -> Cut | None:
    """The phrase from `start` to the cut point nearest `aim` (4-12 s long), when it has enough
    notes and the piece goes on after it for at least as long; else None."""
    low, high = PHRASE_SECONDS
    ends = points[(points >= start + low - EPS) & (points <= start + high + EPS)]
    if len(ends) == 0:
        return None
    end = float(ends[np.argmin(np.abs(ends - aim))])
    inside = (notes.start >= start - EPS) & (notes.start < end - EPS)
    if inside.sum() < MIN_NOTES or notes.start.max() < 2 * end - start:
        return None
    phrase, after = notes.select(inside), notes.select(notes.start >= end - EPS)
    return Cut(piece, start, end - start, _shifted(phrase, start), _shifted(after, end))


def _shifted(notes: Notes, zero: float) -> Notes:
    return Notes(notes.start - zero, notes.end - zero, notes.pitch, notes.velocity)


# -- the engine ---------------------------------------------------------------------------------

Engines = Callable[[bool, int], Any]  # (conditioning, seed) -> a fresh live engine


@dataclass(frozen=True)
class Answered:
    notes: Notes  # from the answer's first possible moment
    seconds: float  # its length: no note starts after it


def answer(engine: Any, phrase: Notes, tick: float) -> Answered:
    """Plays the phrase into a fresh engine on a simulated clock and lets the answer end."""
    events = sorted(
        [(s, 1, p, v) for s, p, v in zip(phrase.start, phrase.pitch, phrase.velocity)]
        + [(e, 0, p, 0) for e, p in zip(phrase.end, phrase.pitch)]
    )
    for t, on, pitch, velocity in events:
        if on:
            engine.note_on(float(t), int(pitch), int(velocity))
        else:
            engine.note_off(float(t), int(pitch))
    clock, heard = float(phrase.end.max()), []
    live = engine.live
    limit = (live.silence + live.start_delay + live.longest + live.release + 10) / tick
    for _ in range(int(limit)):
        if engine.phrase is None and not engine.answering:
            break
        heard += engine.tick(clock)
        clock += tick
    else:
        raise RuntimeError("the engine's answer did not end")
    last = engine.last
    notes = paired(heard, last.called_at + live.start_delay)
    return Answered(notes.select(notes.start < last.length), float(last.length))


def paired(events: list, zero: float) -> Notes:
    """The engine's note events as notes (a note-on ends at the next event of its pitch), times
    from `zero` with the answer's delays (a busy machine's) taken out."""
    shift, sounding, rows, latest = 0.0, {}, [], zero
    for e in events:
        if hasattr(e, "ms"):  # Delayed: all of the answer's delays so far
            shift = e.ms / 1000
        elif hasattr(e, "pitch") and hasattr(e, "velocity"):
            time = e.time - shift
            latest = max(latest, time)
            if e.pitch in sounding:
                rows.append((*sounding.pop(e.pitch), time, e.pitch))
            if e.velocity > 0:
                sounding[e.pitch] = (time, e.velocity)
    rows += [(*sounding[p], latest, p) for p in sounding]
    start, velocity, end, pitch = np.array(rows, float).reshape(-1, 4).T
    return Notes.build(start - zero, end - zero, pitch, velocity)


# -- the measurement ----------------------------------------------------------------------------


@dataclass
class Answers:
    """Per-phrase values of every feature for each row, and the velocity study."""

    phrases: int
    seconds: float  # of phrases, all together
    values: dict[str, dict[str, list[float]]]  # row -> feature -> one value per phrase
    # (label, phrase velocity, the answers' mean velocity): as written, then each of VELOCITIES
    velocity: list[tuple[str, float, float]] = field(default_factory=list)


def measure(
    pieces: list[Notes],
    engines: Engines,
    tick: float,
    phrases: int = 100,
    seed: int = 0,
    velocities: tuple[int, ...] = VELOCITIES,
) -> Answers:
    """Cuts phrases from the pieces (decoded validation files), has each answered, and measures
    the answers against the composer's continuation and the naive answer."""
    cuts = cut_phrases(pieces, phrases, seed)
    values = {row: {f.name: [] for f in FEATURES} for row in ROWS}
    answer_velocities = []
    for i, cut in enumerate(cuts):
        context = Context.of(cut.phrase)
        conditioned = answer(engines(True, seed + i), cut.phrase, tick)
        unconditioned = answer(engines(False, seed + i), cut.phrase, tick)
        rows = {
            "composer": (cut.continuation(conditioned.seconds), conditioned.seconds),
            "conditioned": (conditioned.notes, conditioned.seconds),
            "unconditioned": (unconditioned.notes, unconditioned.seconds),
            "naive": (cut.phrase, cut.seconds),
        }
        for row, (notes, seconds) in rows.items():
            for name, value in features(notes, seconds, context).items():
                values[row][name].append(value)
        answer_velocities.append(conditioned.notes.velocity)
    written = np.concatenate([c.phrase.velocity for c in cuts] or [np.zeros(0)])
    played = _mean(np.concatenate(answer_velocities or [[]]))
    velocity = [(f"as written ({_mean(written):.0f})", _mean(written), played)]
    velocity += [
        (str(v), float(v), velocity_answer(cuts, engines, tick, v, seed)) for v in velocities
    ]
    return Answers(len(cuts), float(sum(c.seconds for c in cuts)), values, velocity)


def velocity_answer(
    cuts: list[Cut], engines: Engines, tick: float, velocity: int, seed: int
) -> float:
    """The conditioned answers' mean velocity over all their notes, every note of every phrase
    played at `velocity`."""
    heard = []
    for i, cut in enumerate(cuts):
        p = cut.phrase
        phrase = Notes(p.start, p.end, p.pitch, np.full_like(p.velocity, velocity))
        heard.append(answer(engines(True, seed + i), phrase, tick).notes.velocity)
    return _mean(np.concatenate(heard or [[]]))


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else np.nan


# -- the summary --------------------------------------------------------------------------------


def summary(result: Answers, row: str, feature: str, statistic: str) -> float:
    """The mean or median of one row's per-phrase values of a feature (values left out)."""
    x = np.array(result.values[row][feature], float)
    x = x[np.isfinite(x)]
    return float(np.mean(x) if statistic == "mean" else np.median(x)) if len(x) else np.nan


def distances(result: Answers) -> dict[str, float]:
    """Each row's overall distance to the composer (see DISTANCE)."""
    composer = np.array([result.values["composer"][f.name] for f in FEATURES], float)  # [F, P]
    spread = np.nanstd(composer, axis=1, keepdims=True) if composer.size else composer
    spread = np.where(spread > 0, spread, np.nan)
    out = {}
    for row in ROWS:
        x = np.array([result.values[row][f.name] for f in FEATURES], float)
        scaled = np.abs(x - composer) / spread
        per_phrase = [np.mean(s[np.isfinite(s)]) for s in scaled.T if np.isfinite(s).any()]
        out[row] = float(np.mean(per_phrase)) if per_phrase else np.nan
    return out


def targets(result: Answers) -> list[tuple[str, bool]]:
    """Issue 23's targets for the conditioned answers, each with whether it holds: in-key share
    within 5 points of the composer's, notes per second and the inter-onset interval within 25%
    (each on its feature's centre), and a smaller overall distance than unconditioned."""
    centre = {f.name: f.centre for f in FEATURES}
    x, c = (
        {name: summary(result, row, name, centre[name]) for name in centre}
        for row in ("conditioned", "composer")
    )
    key = "in-key share"
    out = [
        (
            f"{key} within 5 points of the composer's: {x[key]:.1f}% vs {c[key]:.1f}%",
            abs(x[key] - c[key]) <= 5,
        )
    ]
    for name in ("notes per second", "median inter-onset interval"):
        ratio = x[name] / c[name] - 1
        out.append(
            (
                f"{name} ({centre[name]}) within 25% of the composer's: {x[name]:.3f} vs "
                f"{c[name]:.3f} ({100 * ratio:+.0f}%)",
                abs(ratio) <= 0.25,
            )
        )
    d = distances(result)
    out.append(
        (
            "conditioned overall distance smaller than unconditioned: "
            f"{d['conditioned']:.3f} vs {d['unconditioned']:.3f}",
            d["conditioned"] < d["unconditioned"],
        )
    )
    return out


def table(result: Answers) -> list[list[str]]:
    """The feature table's rows of cells: feature, then each row's mean (median)."""
    out = [["feature", *ROWS]]
    for f in FEATURES:
        unit = f" ({f.unit})" if f.unit else ""
        cells = []
        for row in ROWS:
            mean, median = (summary(result, row, f.name, s) for s in ("mean", "median"))
            cells.append(f"{mean:.{f.digits}f} ({median:.{f.digits}f})")
        out.append([f.name + unit, *cells])
    out.append(["overall distance", *(f"{d:.3f}" for d in distances(result).values())])
    return out


def lines(result: Answers) -> list[str]:
    """The plain-text report: the table, the distance's definition, targets, velocities."""
    rows = table(result)
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    out += ["cells: mean over phrases (median)", DISTANCE, "targets (conditioned):"]
    out += [f"  {'holds' if ok else 'FAILS'}: {text}" for text, ok in targets(result)]
    out += ["phrase velocity  answer mean velocity"]
    out += [f"{name:>15}  {answer_v:.1f}" for name, _, answer_v in result.velocity]
    return out


def answers_markdown(result: Answers) -> list[str]:
    """The report's section: the table in Markdown, the definitions, targets and velocities."""
    rows = table(result)
    out = [
        "## Answers measured as answers",
        "",
        f"{result.phrases} phrases ({result.seconds:.0f} s) of the validation files, each "
        "answered by the live engine; every answer against what the composer wrote next for as "
        "long. Cells: mean over phrases (median).",
        "",
        "| " + " | ".join(rows[0]) + " |",
        "|---" * len(rows[0]) + "|",
        *("| " + " | ".join(r) + " |" for r in rows[1:]),
        "",
        f"{DISTANCE[0].upper()}{DISTANCE[1:]}.",
        "",
        *(f"- {'holds' if ok else '**fails**'}: {text}" for text, ok in targets(result)),
        "",
        "| phrase velocity | answer mean velocity |",
        "|---|---|",
        *(f"| {name} | {answer_v:.1f} |" for name, _, answer_v in result.velocity),
        "",
    ]
    return out
