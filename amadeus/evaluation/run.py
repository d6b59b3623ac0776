"""evaluate.py's run: one evaluation of how good a model is, written by `report` as
FOLDER/report.md with its figures.

Three questions, each answered on the session's own validation files (the split it records):
how likely the model finds held-out music (and, for an int8 model, how far it is from fp32);
how music sampled with generate.py's defaults compares with the real music, feature by feature;
and how well it follows controls. The headline lines are printed and open the report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amadeus.atomic import writable_folder, write_bytes
from amadeus.data.codec import EventCodec
from amadeus.data.dataset import DEFAULT_VAL_FRACTION, Piece, load_split
from amadeus.errors import DatasetError, UsageError
from amadeus.evaluation import adherence, answers, figures
from amadeus.evaluation import features as ft
from amadeus.evaluation.likelihood import piece_likelihood
from amadeus.evaluation.report import Generated, headline, markdown
from amadeus.generate.loaded import Loaded, load
from amadeus.generate.search import initial_noise, sample_from_start
from amadeus.model.device import resolve_device
from amadeus.model.stepper import make_stepper

KINDS = ("note_on", "note_off", "velocity", "time_shift")


@dataclass(frozen=True)
class EvaluateOptions:
    session: Path  # .sess or .int8.sess
    dataset: Path | None = None  # None: the one the session records
    int8: Path | None = None  # an .int8.sess of the same model, compared with it
    stats_file: Path | None = None  # or statistics to quantize it on the fly
    samples: int = 16  # pieces generated with generate.py's defaults (0: likelihood only)
    answers: int = 0  # phrases answered by the live engine (0: none; needs `Answering`)
    length: int = 1000  # events per generated piece
    output: Path | None = None  # None: output/evaluation/<session name>
    seed: int = 0
    device: str = "auto"
    quiet: bool = False


@dataclass(frozen=True)
class Answering:
    """How to have phrases answered as play.py answers them: the live engine comes from the
    live stage, above this one, so the caller hands it in."""

    engines: answers.Engines  # (conditioning, seed) -> a fresh engine for the opened model
    tick: float  # seconds between the server's ticks


def evaluate(
    o: EvaluateOptions, command: str, log=print, answering: Answering | None = None
) -> Path:
    """Writes the report and its figures; returns the report's path. With `answering` and
    o.answers, the report also measures answers against the composer's continuation."""
    began = time.monotonic()
    device = resolve_device(o.device)
    loaded = load(o.session)
    codec = loaded.events
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
    answered = _answered(o, validation, codec, answering)
    for line in lines + (answers.lines(answered) if answered else []):
        log(line)
    text = markdown(
        lines, likelihoods, generated, adhering, loaded, o, dataset, command, began, len(validation)
    )
    if answered is not None:
        text += "\n".join(answers.answers_markdown(answered)) + "\n"
    write_bytes(folder / "report.md", text.encode())
    log(f"report: {folder / 'report.md'} ({time.monotonic() - began:.0f} s)")
    return folder / "report.md"


def _answered(
    o: EvaluateOptions, validation: list[Piece], codec: EventCodec, answering: Answering | None
) -> answers.Answers | None:
    if not o.answers:
        return None
    if answering is None:
        raise UsageError("--answers needs the live engine: run evaluate.py")
    pieces = [codec.decode(piece.tokens) for piece in validation]
    return answers.measure(pieces, answering.engines, answering.tick, o.answers, o.seed)


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
        other = load(o.int8)
        if not other.int8:
            raise UsageError(f"--int8 {o.int8}: not an int8 session")
        return other.model
    return load(o.session, o.stats_file).model if o.stats_file else None


def _validation(o: EvaluateOptions, loaded: Loaded, codec: EventCodec) -> tuple[list[Piece], Path]:
    """The validation pieces the session records (or of --dataset), and their folder."""
    record = loaded.data
    if o.dataset is None and record is None:
        raise UsageError(
            f"{o.session}: the session does not record its dataset (an older session): "
            "give one with --dataset"
        )
    dataset = o.dataset or record.folder()
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
    rules = loaded.rules()
    controls = None if control is None else np.broadcast_to(control, (length, len(control)))
    return sample_from_start(stepper, codec, rules, init, length, rng, controls, o.quiet)


def _generated(loaded, model, codec, validation, o, device) -> Generated:
    rows = _sample_rows(loaded, model, codec, o, device, o.samples, o.length)
    limit = loaded.rules().max_note_seconds  # as generate.py decodes
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
