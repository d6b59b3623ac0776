"""`.int8.sess` files: round trip, size, telling int8 from float, and every bad file."""

import re
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from amadeus.errors import SessionError, UsageError
from amadeus.generate.loaded import load
from amadeus.model.network import PerformanceRNN
from amadeus.model.session import Session
from amadeus.quant.models import Int8PerformanceRNN
from amadeus.quant.quantizer import calibrate, quantize
from amadeus.quant.session import SCHEME, save_int8, state_bytes
from amadeus.quant.stats import load_stats, save_stats

FIXTURE = (
    Path(__file__).resolve().parents[1] / "../shared/fixtures/distiller_stats_performance_rnn.yaml"
)
V, C, INIT = 240, 24, 8  # the prnn codec's vocabulary: float sessions must match their codec


def batch(generator, size=4, steps=16):
    events = torch.randint(0, V, (steps, size), generator=generator)
    return torch.randn(size, INIT, generator=generator), events, torch.rand(steps, size, C)


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    model = PerformanceRNN(V, C, INIT, hidden_dim=16, gru_layers=2).eval()
    generator = torch.Generator().manual_seed(0)
    stats = calibrate(model, [batch(generator) for _ in range(3)])
    return model, stats, quantize(model, stats), batch(generator)


@pytest.fixture
def int8_file(models, tmp_path):
    path = tmp_path / "m.int8.sess"
    save_int8(models[2], "prnn", path, step=123)
    return path


def logits(model, inputs):
    with torch.no_grad():
        return model.logits(*inputs)


def test_round_trip(models, int8_file):
    _, _, int8, inputs = models
    loaded = load(int8_file)
    loaded, codec = loaded.model, loaded.codec
    assert isinstance(loaded, Int8PerformanceRNN) and not loaded.training
    assert codec == "prnn" and loaded.config == int8.config
    assert torch.equal(logits(loaded, inputs), logits(int8, inputs))
    raw = torch.load(int8_file, weights_only=True)
    assert raw["quantization"] == {"scheme": SCHEME, "format": 1}
    assert raw["model_config"] == asdict(int8.config) and raw["step"] == 123
    assert "model_state" not in raw  # float readers stop at a missing key
    assert raw["int8_state"]["output_fc.weight"].dtype == torch.int8
    assert not list(int8_file.parent.glob(".*tmp"))  # written through a temporary file


def test_file_is_under_30_percent_of_the_float_weights(tmp_path):
    torch.manual_seed(3)
    model = PerformanceRNN(event_dim=240, control_dim=24, init_dim=32, hidden_dim=512).eval()
    path = tmp_path / "big.int8.sess"
    save_int8(quantize(model, load_stats(FIXTURE)), "prnn", path)
    assert path.stat().st_size <= 0.30 * state_bytes(model.state_dict())


def test_load_tells_float_from_int8(models, int8_file, tmp_path):
    model, stats, int8, inputs = models
    float_file, stats_file = tmp_path / "m.sess", tmp_path / "m.yaml"
    Session(model.config, model.state_dict(), codec="prnn").save(float_file)
    save_stats(stats, stats_file)

    loaded = load(float_file)
    assert type(loaded.model) is PerformanceRNN and not loaded.model.training
    assert (loaded.codec, loaded.int8, loaded.path) == ("prnn", False, float_file)
    assert torch.equal(logits(loaded.model, inputs), logits(model, inputs))

    loaded = load(int8_file)
    assert isinstance(loaded.model, Int8PerformanceRNN) and loaded.int8

    on_the_fly = load(float_file, stats_file).model  # quantized as quantize.py would
    assert isinstance(on_the_fly, Int8PerformanceRNN)
    assert torch.equal(logits(on_the_fly, inputs), logits(int8, inputs))

    with pytest.raises(UsageError, match=re.escape(f"{stats_file}: {int8_file} is already int8")):
        load(int8_file, stats_file)


def _rewrite(path: Path, change) -> Path:
    data = torch.load(path, weights_only=True)
    change(data)
    torch.save(data, path)
    return path


def _set(key, value):
    return lambda data: data.__setitem__(key, value)


def _state(key, value):
    return lambda data: data["int8_state"].__setitem__(key, value)


def _bigger(data):
    data["model_config"]["hidden_dim"] = 32


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_set("quantization", {"scheme": "fake-int4", "format": 1}), "unknown quantization"),
        (_set("quantization", {"scheme": SCHEME, "format": 99}), "newer Amadeus (format 99)"),
        (_set("model_config", {"hidden_dim": 16}), "bad model_config: missing key"),
        (_set("codec", None), "codec is missing, expected str"),
        (_set("int8_state", [1, 2]), "int8_state is list, expected dict"),
        (_bigger, "int8_state does not match model_config: size mismatch for inithid_fc.weight"),
        (_state("output_fc.extra", torch.zeros(1)), "does not match model_config: Unexpected"),
        (_state("output_fc.weight", torch.zeros(V, 32)), "output_fc.weight is torch.float32"),
        (_state("output_fc.bias", [0] * V), "holds something other than tensors"),
    ],
)
def test_bad_int8_files(int8_file, change, reason):
    _rewrite(int8_file, change)
    with pytest.raises(SessionError, match=re.escape(f"{int8_file}: ") + ".*" + re.escape(reason)):
        load(int8_file)


def test_missing_corrupt_and_float_files(models, tmp_path):
    missing, corrupt, float_file = (
        tmp_path / "no.int8.sess",
        tmp_path / "x.sess",
        tmp_path / "f.sess",
    )
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    Session(models[0].config, models[0].state_dict()).save(float_file)
    for path, reason in [(missing, "no such file"), (corrupt, "corrupt or not a torch file")]:
        with pytest.raises(SessionError, match=re.escape(f"{path}: {reason}")):
            load(path)
    assert not load(float_file).int8


def test_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.int8.sess"
    torch.save({"quantization": {"scheme": SCHEME, "format": 1}, "x": Path("/")}, path)
    with pytest.raises(SessionError, match="refused by weights_only"):
        load(path)


def test_training_refuses_an_int8_session_by_name(int8_file):
    with pytest.raises(SessionError, match=r"an int8 session \(generate.py plays it"):
        Session.load(int8_file)
