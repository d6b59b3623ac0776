"""Generation: sampling, beam search, controls and priming with a phrase, over a *stepper*
(amadeus.stepper: one model step as fast as the hardware allows).

Sampling and beam search run in numpy with one seeded Generator, so a seed gives the same music.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from amadeus import controls as ctl
from amadeus import midi, render
from amadeus.atomic import writable_folder
from amadeus.codec import EventCodec
from amadeus.dataset import Piece, Settings, data_files, read_data
from amadeus.device import resolve_device
from amadeus.encoding import encode_file
from amadeus.errors import SessionError, UsageError
from amadeus.progress import progress
from amadeus.sampling import DEFAULT_TEMPERATURE, DEFAULT_TOP_P, Sampler, SamplingRules
from amadeus.session import Loaded
from amadeus.stepper import make_stepper

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


# -- inputs from the command line ---------------------------------------------------------------


def parse_control(text: str) -> np.ndarray:
    """'h0,...,h11;d' -> control [24]: density bin d (0-11) one-hot, then the 12 pitch-class
    weights normalised to sum 1; ';d' alone means a uniform histogram."""
    usage = f"-c {text!r}: expected 'h0,...,h11;d' (12 pitch-class weights, density 0-11)"
    histogram, sep, density = text.partition(";")
    if not sep:
        raise UsageError(f"{usage}, or an existing .data file or folder")
    try:
        d = int(density)
        weights = [float(h) for h in histogram.split(",")] if histogram.strip() else [1.0] * 12
    except ValueError:
        raise UsageError(f"{usage}: not numbers") from None
    if not 0 <= d < ctl.DENSITY_DIM:
        raise UsageError(f"{usage}: density {d} is outside 0-{ctl.DENSITY_DIM - 1}")
    if len(weights) != ctl.HISTOGRAM_DIM:
        raise UsageError(f"{usage}: {len(weights)} histogram values, not 12")
    h = np.array(weights)
    if not np.isfinite(h).all() or (h < 0).any():
        raise UsageError(f"{usage}: histogram values must be finite and not negative")
    if h.sum() == 0:
        raise UsageError(f"{usage}: the histogram is all zeros (';{d}' gives a uniform one)")
    return ctl.held(h, d)


def load_controls(text: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """-c: (controls, description). A .data file or a folder of them (one picked with `rng`)
    gives controls that vary over time, [T, 24]; 'h0,...,h11;d' gives one held control, [24]."""
    path = Path(text)
    if path.is_dir():
        files = data_files(path)
        if not files:
            raise UsageError(f"-c {path}: no .data files in this folder")
        path = files[rng.integers(len(files))]
    if path.is_file():
        return ctl.expand(read_data(path).controls), f"controls of {path}"
    control = parse_control(text)
    density = int(control[: ctl.DENSITY_DIM].argmax())
    histogram = np.round(control[ctl.DENSITY_DIM :].astype(np.float64), 3).tolist()
    return control, f"density {density}, histogram {histogram}"


def resolve_length(max_length: int | None, controls: np.ndarray | None) -> int:
    """Events to generate. With a control sequence, -l defaults to (and may not exceed) its
    length, and -l 0 means its length, as in the original; otherwise DEFAULT_LENGTH."""
    sequence = controls is not None and controls.ndim == 2
    if sequence and len(controls) == 0:
        raise UsageError("-c: the control sequence is empty")
    if max_length is None or (max_length == 0 and sequence):
        return len(controls) if sequence else DEFAULT_LENGTH
    if max_length < 1:
        raise UsageError(
            f"-l {max_length}: give a positive number of events (0 means the "
            "length of a control file, and there is none)"
        )
    if sequence and max_length > len(controls):
        raise UsageError(f"-l {max_length}: the control sequence has only {len(controls)} events")
    return max_length


def read_primer(
    path: Path, codec: EventCodec, settings: Settings, seconds: float | None = None
) -> Piece:
    """A phrase to continue, encoded with the settings of the model's training data; with
    `seconds`, only the events of its first `seconds`."""
    piece = encode_file(path, codec, settings)
    if seconds is not None:
        keep = codec.event_times(piece.tokens) < seconds  # a prefix: times never go back
        piece = Piece(piece.tokens[keep], piece.controls[keep], piece.codec, piece.meta)
        if len(codec.decode(piece.tokens)) == 0:
            raise UsageError(f"{path}: no notes start in the first {seconds:g} s")
    return piece


# -- the whole run ------------------------------------------------------------------------------


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


def check_codec(loaded: Loaded, wanted: str | None) -> EventCodec:
    """The session's codec, which must be the one asked for and fit the model's vocabulary."""
    if wanted is not None and wanted != loaded.codec:
        raise UsageError(f"--codec {wanted}: the session was trained with codec {loaded.codec!r}")
    codec = EventCodec(loaded.codec)
    if codec.size != loaded.model.config.event_dim:
        raise SessionError(
            f"{loaded.path}: codec {loaded.codec!r} has {codec.size} tokens, the model "
            f"{loaded.model.config.event_dim}"
        )
    return codec


def sampling_rules(loaded: Loaded, o: GenerateOptions) -> SamplingRules:
    """The options' rules; the note limit defaults to the longest note of the session's training
    data (none for sessions that predate the record)."""
    if o.unconstrained:
        return SamplingRules(o.temperature, o.top_p, o.greedy_ratio, False, None)
    limit = o.max_note_seconds
    if limit is None and loaded.data is not None:
        limit = loaded.data.longest_note
    return SamplingRules(o.temperature, o.top_p, o.greedy_ratio, True, limit)


def encoding_settings(loaded: Loaded) -> Settings:
    """How the model's training data was encoded: the session's record, or (for sessions that
    predate it) preprocess.py's defaults for its codec."""
    return loaded.data.settings if loaded.data else Settings(loaded.codec)


def run(loaded: Loaded, o: GenerateOptions) -> list[Path]:
    """Generates o.batch_size pieces and writes them (and their extras); returns the MIDI paths."""
    device = resolve_device(o.device)
    codec = check_codec(loaded, o.codec)
    model = loaded.model.to(device)
    rng = np.random.default_rng(o.seed)
    controls, steps, primer, fluidsynth = _inputs(codec, encoding_settings(loaded), o, rng)
    stepper = make_stepper(model, device)
    init = initial_noise(o.batch_size, model.config.init_dim, rng, o.init_zero)
    # The primer is fed with its own controls, as in training, when the generation has some.
    primer_tokens = None if primer is None else primer.tokens
    primer_controls = None if primer is None or controls is None else ctl.expand(primer.controls)
    rules = sampling_rules(loaded, o)
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


def _inputs(codec: EventCodec, settings: Settings, o: GenerateOptions, rng: np.random.Generator):
    """(controls [steps, C] or None, steps, primer Piece or None, FluidSynth tools or None):
    every check a user can fail, before the first step."""
    if not 0 <= o.beam_size <= codec.size:
        raise UsageError(f"-B {o.beam_size}: beam size outside 0-{codec.size} (the vocabulary)")
    fluidsynth = render.find_fluidsynth() if o.wav else None
    controls, about = load_controls(o.control, rng) if o.control else (None, "none")
    steps = resolve_length(o.max_length, controls)
    primer = read_primer(o.primer, codec, settings, o.primer_seconds) if o.primer else None
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
