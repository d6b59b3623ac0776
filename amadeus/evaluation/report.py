"""evaluate.py's report: its headline lines, and the Markdown of report.md with a section per
question (likelihood, generated against real, control adherence) and how it was made."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass

import numpy as np
import torch

from amadeus.data.notes import Notes
from amadeus.evaluation import features as ft
from amadeus.evaluation.likelihood import Agreement, Likelihood

KINDS = ("note_on", "note_off", "velocity", "time_shift")


@dataclass
class Generated:
    """The sampled pieces against the real ones."""

    real: dict[str, np.ndarray]  # feature -> values
    generated: dict[str, np.ndarray]
    overlaps: dict[str, float]
    histograms: tuple[np.ndarray, np.ndarray]  # pitch classes, real and generated
    longest_real: float  # seconds: the training data's longest note
    rows: np.ndarray  # [samples, length] the generated tokens
    pieces: list[Notes]  # decoded


def headline(likelihoods, generated: Generated, adhering, files: int, o) -> list[str]:
    plain, conditioned = likelihoods[False][0], likelihoods[True][0]
    lines = [
        f"likelihood on {files} validation files, unconditioned: {plain.per_event:.4f} "
        f"nats/event, {plain.per_note:.3f} nats/note, {plain.per_second:.3f} nats/s "
        f"(with controls: {conditioned.per_event:.4f}, {conditioned.per_note:.3f}, "
        f"{conditioned.per_second:.3f})"
    ]
    second, agreement = likelihoods[False][1], likelihoods[False][2]
    if second is not None:
        lines.append(
            f"int8: {second.per_event:.4f} nats/event ({_relative(second, plain)}), "
            f"mean KL {agreement.kl:.4f} nats, top-1 agreement {100 * agreement.top1:.2f}%"
        )
    return lines if generated is None else lines + _music_headline(generated, adhering, o)


def _music_headline(generated: Generated, adhering, o) -> list[str]:
    lines = []
    durations, poly = generated.generated["note duration"], generated.generated["polyphony"]
    worst = min(generated.overlaps, key=generated.overlaps.get)
    lines.append(
        f"generated vs real ({o.samples} x {o.length} events): mean overlap "
        f"{np.mean(list(generated.overlaps.values())):.2f}, lowest {worst} "
        f"{generated.overlaps[worst]:.2f}; duration {generated.overlaps['note duration']:.2f}, "
        f"polyphony {generated.overlaps['polyphony']:.2f}"
    )
    long_share = float((durations > generated.longest_real + 1e-6).mean()) if len(durations) else 0
    lines.append(
        f"notes longer than the data's longest ({generated.longest_real:.2f} s): "
        f"{100 * long_share:.2f}%, longest {durations.max(initial=0):.2f} s; mean polyphony "
        f"{poly.mean() if len(poly) else 0:.2f} vs real {generated.real['polyphony'].mean():.2f}"
    )
    parts = [
        f"{t.name} {_adherence_figure(t, a)} (unconditioned {_adherence_figure(t, b)})"
        for t, a, b in adhering
    ]
    lines.append("control adherence: " + "; ".join(parts))
    return lines


def _adherence_figure(target, a) -> str:
    if target.name == "C major":
        return f"histogram error {a.histogram_error:.2f}"
    return f"density bin {a.realized_density:.1f} for {target.density}"


def _relative(second: Likelihood, first: Likelihood) -> str:
    return f"{100 * (second.per_event / first.per_event - 1):+.2f}%"


def markdown(
    lines, likelihoods, generated, adhering, loaded, o, dataset, command, began, files
) -> str:
    out = [f"# Evaluation of {loaded.path}", "", *[f"- {line}" for line in lines], ""]
    out += _likelihood_section(likelihoods, files)
    if generated is not None:
        out += _generated_section(generated, o)
        out += _adherence_section(adhering, o)
    out += [
        "## How this report was made",
        "",
        f"- command: `{command}`",
        f"- model: {loaded.path}, {'int8' if loaded.int8 else 'fp32'}, training step "
        f"{loaded.step}, {loaded.model.config.gru_layers} x {loaded.model.config.hidden_dim} GRU,"
        f" codec {loaded.codec}",
        f"- data: validation files of {dataset}",
        f"- seed {o.seed}; sampling with generate.py's defaults",
        f"- {time.monotonic() - began:.0f} s on {platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "",
    ]
    return "\n".join(out)


def _likelihood_section(likelihoods, files: int) -> list[str]:
    out = [
        "## Likelihood",
        "",
        f"Whole validation pieces ({files} files), teacher-forced from zero init noise. "
        "Per second of music is comparable across codecs.",
        "",
        "| model | controls | nats/event | nats/note | nats/s | "
        + " | ".join(f"{k} share" for k in KINDS)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(KINDS),
    ]
    for conditioned, (first, second, _) in likelihoods.items():
        for name, value in (("fp32", first), ("int8", second)):
            if value is not None:
                shares = " | ".join(f"{100 * value.share(k):.1f}%" for k in KINDS)
                out.append(
                    f"| {name} | {'yes' if conditioned else 'no'} | {value.per_event:.4f} | "
                    f"{value.per_note:.3f} | {value.per_second:.3f} | {shares} |"
                )
    agreement: Agreement | None = likelihoods[False][2]
    if agreement is not None:
        out += [
            "",
            f"int8 against fp32, unconditioned: mean KL divergence {agreement.kl:.5f} nats per "
            f"event, top-1 agreement {100 * agreement.top1:.2f}%.",
        ]
    return [*out, ""]


def _generated_section(generated: Generated, o) -> list[str]:
    out = [
        "## Generated against real",
        "",
        f"{o.samples} pieces of {o.length} events sampled with generate.py's defaults (seed "
        f"{o.seed}) against the validation pieces. Overlap: the overlapping area of the two "
        "distributions (1 = indistinguishable, 0 = disjoint).",
        "",
        "| feature | per | real mean | generated mean | real p99 | generated p99 | overlap |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in ft.FEATURES:
        real, gen = generated.real[f.name], generated.generated[f.name]
        out.append(
            f"| {f.name} ({f.unit}) | {f.per} | {_stat(real, np.mean)} | {_stat(gen, np.mean)} "
            f"| {_stat(real, _p99)} | {_stat(gen, _p99)} | {generated.overlaps[f.name]:.3f} |"
        )
    out += [
        "",
        f"Pitch-class histogram overlap: {ft.histogram_overlap(*generated.histograms):.3f}.",
        "",
        "![distributions](distributions.png)",
        "",
        "![a real and a generated piece](piano-roll.png)",
        "",
    ]
    return out


def _p99(x: np.ndarray) -> float:
    return float(np.percentile(x, 99))


def _stat(x: np.ndarray, fn) -> str:
    return f"{fn(x):.3f}" if len(x) else "-"


def _adherence_section(adhering, o) -> list[str]:
    out = [
        "## Control adherence",
        "",
        f"{o.samples} pieces of {o.length // 2} events under each held control, against the "
        "unconditioned pieces above measured the same way. Histogram error: half the L1 distance "
        "of the realized pitch-class histogram from the requested one (0 exact, 1 disjoint). "
        "Density: each event's note-ons in the next two seconds, as a density bin.",
        "",
        "| control | histogram error | unconditioned | requested bin | realized bin | "
        "bin error | unconditioned bin error |",
        "|---|---|---|---|---|---|---|",
    ]
    for t, a, b in adhering:
        out.append(
            f"| {t.name} | {a.histogram_error:.3f} | {b.histogram_error:.3f} | {t.density} | "
            f"{a.realized_density:.2f} | {a.density_error:.2f} | {b.density_error:.2f} |"
        )
    return [*out, ""]
