"""Answers measured as answers (issue 23, sections 3 and 5): phrases of real music played into the
live engine, and each answer compared with what the composer wrote next, feature by feature.

Phrases are cut from the session's validation files (`cuts`).

Each phrase is answered three ways: Amadeus conditioned on the phrase (the live default),
Amadeus unconditioned, and a naive answer (the phrase itself played again). The composer's
continuation is the piece's notes that start within the answer's length after the phrase's end.
An answer's times run from its first possible moment (the hand-over plus the start delay), with
the engine's delays for a busy machine taken out: the model's music, not the machine's speed.

Features: `answer_features` (the naive answer's notes per second: the phrase's notes over its
own length).

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
from amadeus.evaluation.answer_features import FEATURES, Context, features
from amadeus.evaluation.cuts import Cut, cut_phrases

VELOCITIES = (40, 70, 100)  # section 5: every note of the phrase at one of these
ROWS = ("composer", "conditioned", "unconditioned", "naive")
DISTANCE = (
    "overall distance: per phrase, the mean over the features of |x - composer| / the composer's "
    "standard deviation over the phrases; then the mean over phrases (composer: 0)"
)


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
