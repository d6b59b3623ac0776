"""generate.py's run: a batch of pieces sampled (or beam-searched) from an opened model, then
decoded and written as numbered MIDI files (and their .wav and .png)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amadeus.atomic import writable_folder
from amadeus.data import controls as ctl
from amadeus.data import midi, render
from amadeus.data.codec import EventCodec
from amadeus.errors import UsageError
from amadeus.generate.inputs import load_controls, read_primer, resolve_length
from amadeus.generate.loaded import Loaded, check_codec
from amadeus.generate.sampling import DEFAULT_TEMPERATURE, DEFAULT_TOP_P
from amadeus.generate.search import beam_search, initial_noise, sample, start
from amadeus.model.device import resolve_device
from amadeus.model.stepper import make_stepper


@dataclass(frozen=True)
class GenerateOptions:
    """generate.py's flags."""

    session: Path | None = None  # .sess or .int8.sess; None: see shipped.for_generation
    stats_file: Path | None = None  # quantize a float session on the fly
    codec: str | None = None  # check that the session uses this layout
    device: str = "auto"
    output_dir: Path = Path("output")
    batch_size: int = 8
    max_length: int | None = None  # events; see resolve_length
    control: str | None = None  # -c: 'h0,...,h11;d', or a .data file or folder
    greedy_ratio: float = 0.0
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P  # nucleus sampling
    max_note_seconds: float | None = None  # None: the longest note of the training data
    unconstrained: bool = False  # sample any event, valid or not, with no limit on notes
    beam_size: int = 0  # 0: sampling
    stochastic_beam_search: bool = False
    init_zero: bool = False
    primer: Path | None = None
    primer_seconds: float | None = None  # continue only the primer's first seconds
    with_primer: bool = False
    seed: int = 0
    overwrite: bool = False  # number outputs from 000 instead of after the existing ones
    wav: bool = False
    png: bool = False
    quiet: bool = False


def run(loaded: Loaded, o: GenerateOptions) -> list[Path]:
    """Generates o.batch_size pieces and writes them (and their extras); returns the MIDI paths."""
    device = resolve_device(o.device)
    codec = check_codec(loaded, o.codec)
    model = loaded.model.to(device)
    rng = np.random.default_rng(o.seed)
    controls, steps, primer, fluidsynth = _inputs(codec, loaded, o, rng)
    stepper = make_stepper(model, device)
    init = initial_noise(o.batch_size, model.config.init_dim, rng, o.init_zero)
    # The primer is fed with its own controls, as in training, when the generation has some.
    primer_tokens = None if primer is None else primer.tokens
    primer_controls = None if primer is None or controls is None else ctl.expand(primer.controls)
    rules = loaded.rules(
        o.temperature, o.top_p, o.greedy_ratio, o.max_note_seconds, o.unconstrained
    )
    hidden, event, sampler = start(stepper, codec, rules, init, primer_tokens, primer_controls)
    if o.beam_size:
        beam_rng = rng if o.stochastic_beam_search else None
        tokens, _ = beam_search(
            stepper, hidden, event, steps, o.beam_size, sampler, controls, beam_rng, o.quiet
        )
    else:
        tokens = sample(stepper, hidden, event, steps, rng, sampler, controls, o.quiet)
    lead = primer.tokens if primer is not None and o.with_primer else np.zeros(0, np.int64)
    stem = loaded.path.name.removesuffix(".sess")
    first = 0 if o.overwrite else next_free_number(o.output_dir, stem)
    paths = [o.output_dir / f"{stem}-{first + i:03d}.mid" for i in range(len(tokens))]
    return [
        _write(codec, np.concatenate([lead, row]), path, o, rules.max_note_seconds, fluidsynth)
        for path, row in zip(paths, tokens)
    ]


def next_free_number(folder: Path, stem: str) -> int:
    """One past the highest NNN of the `stem-NNN.*` files in `folder`: a run never replaces an
    earlier run's pieces (or their .wav and .png)."""
    pattern = re.compile(re.escape(stem) + r"-(\d+)\.[^.]+$")
    numbers = [int(m.group(1)) for p in folder.iterdir() if (m := pattern.match(p.name))]
    return max(numbers, default=-1) + 1


def _inputs(codec: EventCodec, loaded: Loaded, o: GenerateOptions, rng: np.random.Generator):
    """(controls [steps, C] or None, steps, primer Piece or None, FluidSynth tools or None):
    every check a user can fail, before the first step."""
    if not 0 <= o.beam_size <= codec.size:
        raise UsageError(f"-B {o.beam_size}: beam size outside 0-{codec.size} (the vocabulary)")
    fluidsynth = render.find_fluidsynth() if o.wav else None
    controls, about = load_controls(o.control, rng) if o.control else (None, "none")
    steps = resolve_length(o.max_length, controls)
    primer = None
    if o.primer:
        settings, dynamics = loaded.encoding, loaded.dynamics
        primer = read_primer(o.primer, codec, settings, o.primer_seconds, dynamics)
    writable_folder(o.output_dir)
    print(f"controls: {about}")
    if primer is not None:
        print(f"primer: {o.primer}, {len(primer.tokens)} events")
    if controls is not None:
        held = controls.ndim == 1
        controls = np.broadcast_to(controls, (steps, ctl.CONTROL_DIM)) if held else controls[:steps]
    return controls, steps, primer, fluidsynth


def _write(
    codec: EventCodec,
    tokens: np.ndarray,
    path: Path,
    o: GenerateOptions,
    max_note_seconds: float | None,
    fluidsynth: tuple[str, Path] | None,
) -> Path:
    """Decodes one piece (notes end by the sampling's limit) and writes it (and its .wav, .png),
    saying what decoding skipped or cut."""
    notes, skipped = codec.decode_counted(tokens, max_note_seconds)
    midi.write(notes, path)
    print(f"{path}: {len(notes)} notes, {notes.duration:.1f} s")
    if skipped:
        reasons = ", ".join(f"{n} {reason}" for reason, n in skipped.most_common())
        print(f"  decoding: {reasons}")
    if fluidsynth:
        render.to_wav(path, path.with_suffix(".wav"), fluidsynth)
        print(f"{path.with_suffix('.wav')}")
    if o.png:
        render.piano_roll(notes, path.with_suffix(".png"), title=path.name)
        print(f"{path.with_suffix('.png')}")
    return path
