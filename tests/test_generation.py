"""Generation in process: the numpy stepper against the model, sampling, beam search checked by
brute force, priming, controls, and the picture and audio extras."""

import itertools
import shutil
import wave

import numpy as np
import pytest
import torch

from amadeus.data import controls as ctl
from amadeus.data import render
from amadeus.data.dataset import Piece, Settings, write_data
from amadeus.data.notes import Notes
from amadeus.errors import UsageError
from amadeus.generate import inputs, search
from amadeus.generate.sampling import Sampler, SamplingRules, pick
from amadeus.model import stepper as stepping
from amadeus.model.network import PerformanceRNN


def free(rows: int, **rules) -> Sampler:
    """A sampler with no performance rules: any vocabulary, every token allowed."""
    return Sampler(None, rows, SamplingRules(valid_only=False, **rules))


def tiny(event_dim=240, hidden_dim=24, gru_layers=2, seed=0) -> PerformanceRNN:
    torch.manual_seed(seed)
    model = PerformanceRNN(event_dim, 24, 8, hidden_dim, gru_layers).eval()
    with torch.no_grad():  # non-zero biases everywhere, so each bias path is exercised
        for name, p in model.named_parameters():
            if "bias" in name:
                p.normal_(0, 0.5)
    return model


def as_layers(hidden: np.ndarray, layers: int) -> np.ndarray:
    """NumpyStepper's [B, L*H] -> the model's [L, B, H]."""
    return hidden.reshape(len(hidden), layers, -1).transpose(1, 0, 2)


@torch.no_grad()
def torch_steps(model, init, events, controls=None):
    """Reference: model.step one token at a time -> (logits [T, B, V], hidden [L, B, H])."""
    hidden = model.init_to_hidden(torch.from_numpy(init))
    outputs = []
    for t, event in enumerate(events):
        control = None if controls is None else torch.from_numpy(controls[t])
        logits, hidden = model.step(torch.from_numpy(event), hidden, control)
        outputs.append(logits.numpy())
    return np.stack(outputs), hidden.numpy()


# -- the stepper --------------------------------------------------------------------------------


# Batch sizes on both sides of TORCH_MATMUL_ROWS: numpy's and torch's matrix products.
@pytest.mark.parametrize(
    "layers, with_controls, batch", [(1, False, 1), (3, False, 3), (2, True, 40), (2, True, 1)]
)
def test_numpy_stepper_equals_model_step(layers, with_controls, batch):
    model = tiny(hidden_dim=16, gru_layers=layers)
    rng = np.random.default_rng(1)
    steps = 6
    init = rng.standard_normal((batch, 8), dtype=np.float32)
    events = rng.integers(0, 240, (steps, batch))
    controls = rng.random((steps, batch, 24), dtype=np.float32) if with_controls else None
    want_logits, want_hidden = torch_steps(model, init, events, controls)

    stepper = stepping.NumpyStepper(model)
    hidden = stepper.initial(init)
    np.testing.assert_allclose(
        as_layers(hidden, layers), model.init_to_hidden(torch.from_numpy(init)).detach(), atol=1e-6
    )
    for t in range(steps):
        logits, hidden = stepper.step(events[t], hidden, None if controls is None else controls[t])
        np.testing.assert_allclose(logits, want_logits[t], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(as_layers(hidden, layers), want_hidden, rtol=1e-5, atol=1e-5)


def test_make_stepper_dispatch():
    model = tiny(hidden_dim=16)
    assert isinstance(stepping.make_stepper(model, "cpu"), stepping.NumpyStepper)

    class Int8Like:  # a model that brings its own stepper wins
        def stepper(self, device):
            return ("own", device.type)

    assert stepping.make_stepper(Int8Like(), "cpu") == ("own", "cpu")

    class Renamed(PerformanceRNN):  # a subclass may hold other weights: its own step runs
        pass

    other = Renamed(240, 24, 8, 16, 2)
    assert isinstance(stepping.make_stepper(other, "cpu"), stepping.TorchStepper)


def test_torch_stepper_gives_the_numpy_steppers_music():
    """The CUDA path's code (model.step, hidden [L, B, H], take on dim 1) run on the CPU."""
    model = tiny(hidden_dim=16)
    init = np.random.default_rng(2).standard_normal((2, 8), dtype=np.float32)
    results = []
    for stepper in (
        stepping.NumpyStepper(model),
        stepping.TorchStepper(model, torch.device("cpu")),
    ):
        hidden, event = search.begin(stepper, init)
        results.append(search.beam_search(stepper, hidden, event, 8, 3, free(2)))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-5)


# -- sampling -----------------------------------------------------------------------------------


def generate(model, seed, steps=40, batch=4, **rules):
    rng = np.random.default_rng(seed)
    stepper = stepping.NumpyStepper(model)
    hidden, event = search.begin(stepper, search.initial_noise(batch, 8, rng))
    return search.sample(stepper, hidden, event, steps, rng, free(batch, **rules))


def test_sampling_is_determined_by_the_seed():
    model = tiny()
    first = generate(model, seed=5)
    np.testing.assert_array_equal(first, generate(model, seed=5))
    assert not np.array_equal(first, generate(model, seed=6))
    assert len({tuple(row) for row in first}) == len(first)  # each row its own piece


def test_greedy_ratio_one_is_argmax():
    model = tiny()
    rng = np.random.default_rng(3)
    init = search.initial_noise(2, 8, rng)
    stepper = stepping.NumpyStepper(model)
    hidden, event = search.begin(stepper, init)
    tokens = search.sample(stepper, hidden, event, 30, rng, free(2, greedy=1.0))
    with torch.no_grad():  # the argmax loop, on the model itself
        hidden = model.init_to_hidden(torch.from_numpy(init))
        event = torch.full((2,), model.start_token)
        for t in range(30):
            logits, hidden = model.step(event, hidden)
            event = logits.argmax(-1)
            np.testing.assert_array_equal(tokens[:, t], event.numpy())


def test_very_low_temperature_is_argmax():
    logits = np.random.default_rng(4).normal(size=(500, 240)).astype(np.float32)
    picked = pick(logits, np.random.default_rng(0), SamplingRules(temperature=1e-6))
    np.testing.assert_array_equal(picked, logits.argmax(1))


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_sampling_follows_the_softmax(temperature):
    logits = np.array([2.0, 0.5, -1.0, 1.0, 0.0], dtype=np.float32)
    n = 100_000
    rules = SamplingRules(temperature=temperature)
    picked = pick(np.tile(logits, (n, 1)), np.random.default_rng(7), rules)
    p = np.exp(logits / temperature) / np.exp(logits / temperature).sum()
    freq = np.bincount(picked, minlength=5) / n
    assert np.abs(freq - p).max() < 5 * np.sqrt(p.max() / n)  # 5 standard deviations


def test_greedy_ratio_mixes_per_row():
    logits = np.tile(np.array([0.0, 0.0, 3.0, 0.0], dtype=np.float32), (20_000, 1))
    p_argmax = np.exp(3) / (np.exp(3) + 3)
    picked = pick(logits, np.random.default_rng(8), SamplingRules(greedy=0.5))
    assert (picked == 2).mean() == pytest.approx(0.5 + 0.5 * p_argmax, abs=0.015)


# -- beam search --------------------------------------------------------------------------------


V = 6


@pytest.fixture(scope="module")
def small_vocab():
    """A model over 6 tokens, its zero-init start, and the log-probability of every sequence of
    length 3 computed step by step on the model: {sequence: log-probability}."""
    model = tiny(event_dim=V, hidden_dim=16)
    init = np.zeros((1, 8), dtype=np.float32)
    scores = {}
    for seq in itertools.product(range(V), repeat=3):
        events = np.array([[model.start_token], [seq[0]], [seq[1]]])
        logits, _ = torch_steps(model, init, events)
        logp = torch.log_softmax(torch.from_numpy(logits[:, 0]).double(), -1).numpy()
        scores[seq] = logp[0, seq[0]] + logp[1, seq[1]] + logp[2, seq[2]]
    return model, init, scores


def run_beam(model, init, steps, beam_size, **kwargs):
    stepper = stepping.NumpyStepper(model)
    hidden, event = search.begin(stepper, init)
    sampler = free(len(init))
    tokens, score = search.beam_search(stepper, hidden, event, steps, beam_size, sampler, **kwargs)
    return tuple(tokens[0].tolist()), float(score[0])


def test_exhaustive_beam_finds_the_best_sequence(small_vocab):
    model, init, scores = small_vocab
    pairs = {}  # log-probability of each length-2 sequence: sum out the third token
    for seq, s in scores.items():
        pairs[seq[:2]] = np.logaddexp(pairs.get(seq[:2], -np.inf), s)
    best = max(pairs, key=pairs.get)
    found, score = run_beam(model, init, 2, beam_size=V)  # V beams: nothing is pruned
    assert found == best
    assert score == pytest.approx(pairs[best], abs=1e-5)


def test_beam_keeps_the_best_prefixes(small_vocab):
    """Length 3 with V beams: the best sequence whose 2-prefix is among the V best 2-prefixes."""
    model, init, scores = small_vocab
    pairs = {}
    for seq, s in scores.items():
        pairs[seq[:2]] = np.logaddexp(pairs.get(seq[:2], -np.inf), s)
    kept = set(sorted(pairs, key=pairs.get, reverse=True)[:V])
    best = max((seq for seq in scores if seq[:2] in kept), key=scores.get)
    found, score = run_beam(model, init, 3, beam_size=V)
    assert found == best
    assert score == pytest.approx(scores[best], abs=1e-5)


def test_one_beam_is_greedy(small_vocab):
    model, init, _ = small_vocab
    stepper = stepping.NumpyStepper(model)
    hidden, event = search.begin(stepper, init)
    greedy = search.sample(stepper, hidden, event, 5, np.random.default_rng(0), free(1, greedy=1.0))
    assert run_beam(model, init, 5, beam_size=1)[0] == tuple(greedy[0].tolist())


def test_stochastic_single_beam_samples_the_model(small_vocab):
    """With one beam, Gumbel top-k is ancestral sampling: sequence frequencies match the model."""
    model, _, scores = small_vocab
    n = 20_000
    stepper = stepping.NumpyStepper(model)
    hidden, event = search.begin(stepper, np.zeros((1, 8), dtype=np.float32))
    # n copies of one row (a batch of zero inits would not do: init_to_hidden mixes rows)
    hidden, event = stepper.take(hidden, np.zeros(n, int)), np.repeat(event, n)
    tokens, _ = search.beam_search(
        stepper, hidden, event, 3, 1, free(n), rng=np.random.default_rng(9)
    )
    index = (tokens * V ** np.arange(2, -1, -1)).sum(1)
    freq = np.bincount(index, minlength=V**3) / n
    p = np.exp([scores[seq] for seq in itertools.product(range(V), repeat=3)])
    assert p.sum() == pytest.approx(1.0)
    assert np.abs(freq - p).max() < 5 * np.sqrt(p.max() / n)


def test_gumbel_keys_keep_the_parent_key_as_the_childrens_maximum():
    rng = np.random.default_rng(10)
    extended = np.log(rng.dirichlet(np.ones(V), size=(2, 3))).reshape(2, 3 * V)
    parent_keys = rng.normal(size=(2, 3))
    keys = search._gumbel_keys(extended, parent_keys, np.random.default_rng(11)).reshape(2, 3, V)
    np.testing.assert_allclose(keys.max(axis=2), parent_keys, atol=1e-12)
    assert np.isfinite(keys).all()


def test_stochastic_beam_search_is_seeded(small_vocab):
    model, init, _ = small_vocab
    runs = [run_beam(model, init, 6, 3, rng=np.random.default_rng(s)) for s in (1, 1, 2, 3, 4)]
    assert runs[0] == runs[1]
    assert len({r[0] for r in runs}) > 1


# -- priming ------------------------------------------------------------------------------------


@pytest.mark.parametrize("conditioned", [False, True])
def test_priming_equals_feeding_the_tokens_one_by_one(conditioned):
    model = tiny()
    rng = np.random.default_rng(12)
    batch, primer = 3, rng.integers(0, 239, 9)
    init = rng.standard_normal((batch, 8), dtype=np.float32)
    primer_controls = rng.random((len(primer), 24), dtype=np.float32) if conditioned else None
    hidden, event = search.begin(stepping.NumpyStepper(model), init, primer, primer_controls)
    inputs = np.concatenate([[model.start_token], primer[:-1]])
    per_row = None if primer_controls is None else np.repeat(primer_controls[:, None], batch, 1)
    _, want = torch_steps(model, init, np.repeat(inputs[:, None], batch, 1), per_row)
    np.testing.assert_allclose(as_layers(hidden, 2), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(event, np.full(batch, primer[-1]))


# -- controls -----------------------------------------------------------------------------------


def test_parse_control():
    control = inputs.parse_control("2,0,0,0,1,0,0,1,0,0,0,0;3")
    assert control.dtype == np.float32 and control.shape == (24,)
    np.testing.assert_array_equal(np.nonzero(control[:12])[0], [3])
    np.testing.assert_allclose(control[12:][[0, 4, 7]], [0.5, 0.25, 0.25])
    assert control[12:].sum() == pytest.approx(1.0)
    uniform = inputs.parse_control(";11")
    assert uniform[11] == 1 and np.allclose(uniform[12:], 1 / 12)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("1,1,1;2", "3 histogram values"),
        (",".join(["1"] * 13) + ";2", "13 histogram values"),
        ("1,1,1,1,1,1,1,1,1,1,1,-1;2", "not negative"),
        (";12", "density 12"),
        (";-1", "density -1"),
        ("a,b;2", "not numbers"),
        (";x", "not numbers"),
        ("0,0,0,0,0,0,0,0,0,0,0,0;4", "all zeros"),
        ("no-such-file", "or an existing .data file"),
    ],
)
def test_bad_control(text, reason):
    with pytest.raises(UsageError, match=reason):
        inputs.load_controls(text, np.random.default_rng(0))


def test_control_file_and_folder(tmp_path):
    tokens = np.array([191, 39, 232, 127], dtype=np.uint8)
    compact = ctl.compact(np.array([0, 1, 2, 3]), np.full((4, 12), 1 / 12))
    write_data(tmp_path / "a.data", Piece(tokens, compact, "prnn"))
    controls, about = inputs.load_controls(str(tmp_path / "a.data"), np.random.default_rng(0))
    np.testing.assert_array_equal(controls, ctl.expand(compact))
    from_folder, about = inputs.load_controls(str(tmp_path), np.random.default_rng(0))
    np.testing.assert_array_equal(from_folder, controls)
    assert str(tmp_path / "a.data") in about
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no .data files"):
        inputs.load_controls(str(tmp_path / "empty"), np.random.default_rng(0))


def test_resolve_length():
    sequence, held = np.zeros((50, 24), np.float32), np.zeros(24, np.float32)
    assert inputs.resolve_length(None, None) == inputs.DEFAULT_LENGTH
    assert inputs.resolve_length(None, held) == inputs.DEFAULT_LENGTH
    assert inputs.resolve_length(None, sequence) == 50
    assert inputs.resolve_length(0, sequence) == 50
    assert inputs.resolve_length(20, sequence) == 20
    with pytest.raises(UsageError, match="only 50 events"):
        inputs.resolve_length(51, sequence)
    for bad in (0, -3):
        with pytest.raises(UsageError, match="positive number of events"):
            inputs.resolve_length(bad, None)


def test_conditioned_sampling_uses_each_steps_control():
    model = tiny()
    stepper = stepping.NumpyStepper(model)
    rng = np.random.default_rng(13)
    controls = rng.random((10, 24), dtype=np.float32)
    init = search.initial_noise(2, 8, rng)
    hidden, event = search.begin(stepper, init)
    greedy = free(2, greedy=1.0)
    tokens = search.sample(stepper, hidden, event, 10, np.random.default_rng(0), greedy, controls)
    inputs = np.concatenate([np.full((1, 2), model.start_token), tokens[:, :-1].T])
    logits, _ = torch_steps(model, init, inputs, np.repeat(controls[:, None], 2, 1))
    np.testing.assert_array_equal(tokens.T, logits.argmax(-1))


# -- extras -------------------------------------------------------------------------------------


NOTES = Notes.build([0, 0.5, 1.0], [0.5, 1.0, 2.0], [60, 64, 67], [80, 90, 100])


def test_piano_roll_png(tmp_path):
    path = tmp_path / "roll.png"
    render.piano_roll(NOTES, path, title="test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["roll.png"]  # no temporary file left
    render.piano_roll(Notes.empty(), tmp_path / "empty.png")
    assert (tmp_path / "empty.png").stat().st_size > 0


def test_missing_fluidsynth_names_the_packages(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(UsageError, match="apt-get install fluidsynth fluid-soundfont-gm"):
        render.find_fluidsynth()


def test_wav(tmp_path):
    try:
        tools = render.find_fluidsynth()
    except UsageError:
        pytest.skip("FluidSynth or a General MIDI soundfont is not installed")
    from amadeus.data import midi

    midi.write(NOTES, tmp_path / "a.mid")
    render.to_wav(tmp_path / "a.mid", tmp_path / "a.wav", tools)
    with wave.open(str(tmp_path / "a.wav")) as f:
        assert (f.getframerate(), f.getsampwidth()) == (render.SAMPLE_RATE, 2)
        assert f.getnframes() > 2 * render.SAMPLE_RATE  # the notes last 2 s
        samples = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    assert np.abs(samples).max() > 100  # not silence


def test_primer_seconds_keeps_only_the_start(tmp_path):
    from amadeus.data import midi
    from amadeus.data.codec import EventCodec

    codec = EventCodec("prnn")
    start = np.arange(20) * 0.5  # a note every half second for 10 s
    midi.write(
        Notes.build(start, start + 0.4, 60 + np.arange(20) % 12, [80] * 20), tmp_path / "p.mid"
    )
    whole = inputs.read_primer(tmp_path / "p.mid", codec, Settings())
    first = inputs.read_primer(tmp_path / "p.mid", codec, Settings(), seconds=2.75)
    assert np.array_equal(first.tokens, whole.tokens[: len(first.tokens)])
    decoded = codec.decode(first.tokens)
    assert len(decoded) == 6 and decoded.start.max() < 2.75  # onsets at 0, 0.5, ..., 2.5 s
    late = tmp_path / "late.mid"  # silence is capped at 3 s: the first note starts at 3 s
    midi.write(Notes.build([5.0], [6.0], [60], [80]), late)
    with pytest.raises(UsageError, match="no notes start in the first 1 s"):
        inputs.read_primer(late, codec, Settings(), seconds=1.0)
