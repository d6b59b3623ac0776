"""evaluate.py: one report on how good a model is, written as FOLDER/report.md with its figures.

Three questions, each answered on the session's own validation files (the split it records):
how likely the model finds held-out music (and, for an int8 model, how far it is from fp32);
how music sampled with generate.py's defaults compares with the real music, feature by feature;
and how well it follows controls. The headline lines are printed and open the report.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from amadeus.atomic import writable_folder, write_bytes
from amadeus.codec import EventCodec
from amadeus.dataset import DEFAULT_VAL_FRACTION, Piece, load_split
from amadeus.device import resolve_device
from amadeus.errors import DatasetError, UsageError
from amadeus.evaluation import adherence, figures
from amadeus.evaluation import features as ft
from amadeus.evaluation.likelihood import Agreement, Likelihood, piece_likelihood
from amadeus.generation import GenerateOptions, check_codec, initial_noise, sample_from_start
from amadeus.generation import sampling_rules as default_rules
from amadeus.notes import Notes
from amadeus.quant.session import load_any
from amadeus.session import Loaded
from amadeus.stepper import make_stepper

KINDS = ("note_on", "note_off", "velocity", "time_shift")


@dataclass(frozen=True)
class EvaluateOptions:
    session: Path  # .sess or .int8.sess
    dataset: Path | None = None  # None: the one the session records
    int8: Path | None = None  # an .int8.sess of the same model, compared with it
    stats_file: Path | None = None  # or statistics to quantize it on the fly
    samples: int = 16  # pieces generated with generate.py's defaults (0: likelihood only)
    length: int = 1000  # events per generated piece
    output: Path | None = None  # None: output/evaluation/<session name>
    seed: int = 0
    device: str = "auto"
    quiet: bool = False


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


def evaluate(o: EvaluateOptions, command: str, log=print) -> Path:
    """Writes the report and its figures; returns the report's path."""
    began = time.monotonic()
    device = resolve_device(o.device)
    loaded = load_any(o.session)
    codec = check_codec(loaded, None)
    other = _other_model(o, loaded)
    validation, dataset = _validation(o, loaded, codec)
    folder = o.output or Path("output/evaluation") / loaded.path.name.removesuffix(".sess")
    writable_folder(folder)
    model = loaded.model.to(device).eval()
    log(f"{o.session}: step {loaded.step}, {'int8' if loaded.int8 else 'fp32'}, {device}")

    likelihoods = {
        conditioned: piece_likelihood(
            model, validation, codec, conditioned, other and other.to(device), device
        )
        for conditioned in (False, True)
    }
    generated, adhering = None, []
    if o.samples:
        generated = _generated(loaded, model, codec, validation, o, device)
        adhering = _adherence(loaded, model, codec, validation, generated.rows, o, device)
        _figures(generated, codec, validation, folder)
    lines = headline(likelihoods, generated, adhering, len(validation), o)
    for line in lines:
        log(line)
    text = _markdown(
        lines, likelihoods, generated, adhering, loaded, o, dataset, command, began, len(validation)
    )
    write_bytes(folder / "report.md", text.encode())
    log(f"report: {folder / 'report.md'} ({time.monotonic() - began:.0f} s)")
    return folder / "report.md"


def _figures(generated: Generated, codec: EventCodec, validation: list[Piece], folder: Path):
    figures.distributions(
        generated.real,
        generated.generated,
        generated.overlaps,
        generated.histograms,
        folder / "distributions.png",
    )
    real_piece = codec.decode(max(validation, key=lambda p: len(p.tokens)).tokens)
    figures.piano_rolls(real_piece, generated.pieces[0], folder / "piano-roll.png")


def _other_model(o: EvaluateOptions, loaded: Loaded):
    """The int8 model to compare with the session's float one, or None."""
    if o.int8 is not None and o.stats_file is not None:
        raise UsageError("--int8 and -q: give one int8 model to compare, not two")
    if (o.int8 or o.stats_file) and loaded.int8:
        raise UsageError(f"{o.session}: already int8; compare an fp32 .sess with --int8 or -q")
    if o.int8 is not None:
        other = load_any(o.int8)
        if not other.int8:
            raise UsageError(f"--int8 {o.int8}: not an int8 session")
        return other.model
    return load_any(o.session, o.stats_file).model if o.stats_file else None


def _validation(o: EvaluateOptions, loaded: Loaded, codec: EventCodec) -> tuple[list[Piece], Path]:
    """The validation pieces the session records (or of --dataset), and their folder."""
    record = loaded.data
    if o.dataset is None and record is None:
        raise UsageError(
            f"{o.session}: the session does not record its dataset (an older session): "
            "give one with --dataset"
        )
    dataset = o.dataset or Path(record.dataset)
    fraction = record.val_fraction if record else DEFAULT_VAL_FRACTION
    split = load_split(dataset, fraction, codec.name)
    if not split.validation:
        raise DatasetError(f"{dataset}: no validation files (share {fraction:g})")
    return split.validation, dataset


def _sample_rows(loaded, model, codec, o, device, count, length, control=None) -> np.ndarray:
    """[count, length] tokens with generate.py's default rules, seeded; `control` [24] held."""
    rng = np.random.default_rng(o.seed)
    stepper = make_stepper(model, device)
    init = initial_noise(count, model.config.init_dim, rng)
    rules = default_rules(loaded, GenerateOptions())
    controls = None if control is None else np.broadcast_to(control, (length, len(control)))
    return sample_from_start(stepper, codec, rules, init, length, rng, controls, o.quiet)


def _generated(loaded, model, codec, validation, o, device) -> Generated:
    rows = _sample_rows(loaded, model, codec, o, device, o.samples, o.length)
    limit = default_rules(loaded, GenerateOptions()).max_note_seconds  # as generate.py decodes
    pieces = [codec.decode(row, limit) for row in rows]
    real_pieces = [codec.decode(p.tokens) for p in validation]
    real, generated, overlaps = ft.compare(real_pieces, pieces)
    histograms = (ft.pitch_classes_of(real_pieces), ft.pitch_classes_of(pieces))
    longest = loaded.data.longest_note if loaded.data else None
    if longest is None:  # an older session: the validation data's longest note instead
        longest = float(real["note duration"].max())
    return Generated(real, generated, overlaps, histograms, longest, rows, pieces)


def _adherence(loaded, model, codec, validation, unconditioned: np.ndarray, o, device):
    """[(target, adherence, the unconditioned rows' adherence to the same target)]."""
    out = []
    for target in adherence.targets(validation):
        rows = _sample_rows(
            loaded, model, codec, o, device, o.samples, o.length // 2, target.control()
        )
        baseline = adherence.measure(unconditioned, codec, target)
        out.append((target, adherence.measure(rows, codec, target), baseline))
    return out


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


def _markdown(
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
