"""The model that ships in models/: it loads, scores freshly exported chorales as its record says,
and plays. The validation chorales are exported from the music21 corpus here (as make demo
exports them), encoded with the settings the session records, and scored; the likelihood must
match models/bach.json (written by models/ship.py) within 0.5%: the export, the encoding and the
model are deterministic, and the tolerance covers float summation order across thread counts."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from amadeus.data.codec import EventCodec
from amadeus.data.encoding import encode_file
from amadeus.evaluation.likelihood import piece_likelihood
from amadeus.generate.loaded import load
from amadeus.generate.search import initial_noise, sample_from_start
from amadeus.model.stepper import make_stepper

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
sys.path.insert(0, str(ROOT / "dataset/scripts"))


@pytest.fixture(scope="module")
def shipped():
    return load(MODELS / "bach.sess"), load(MODELS / "bach.int8.sess")


@pytest.fixture(scope="module")
def chorales(tmp_path_factory, shipped):
    """The validation chorales, exported from the corpus and encoded as the session's data."""
    export_music21 = pytest.importorskip("export_music21")  # music21: make test installs it
    record = json.loads((MODELS / "bach.json").read_text())
    names = [name.removesuffix(".data") for name in record["validation_files"]]
    scores = export_music21.corpus_scores("bach")
    folder = tmp_path_factory.mktemp("chorales")
    loaded = shipped[0]
    codec = EventCodec(loaded.codec)
    pieces = []
    for name in names:
        reason = export_music21.export_one(scores[name.removesuffix(".mid")], folder / name)
        assert reason is None, f"{name}: {reason}"
        pieces.append(encode_file(folder / name, codec, loaded.data.settings))
    return record, pieces


def test_the_record_describes_the_shipped_sessions(shipped):
    fp32, int8 = shipped
    assert fp32.data == int8.data and fp32.step == int8.step > 0
    assert (fp32.model.config.gru_layers, fp32.model.config.hidden_dim) == (3, 512)
    assert fp32.data.settings.codec == "prnn" and fp32.data.longest_note > 1
    assert (MODELS / "bach.int8.sess").stat().st_size < 6e6


def test_validation_likelihood_on_fresh_chorales(shipped, chorales):
    record, pieces = chorales
    fp32, int8 = shipped
    first, second, _ = piece_likelihood(fp32.model, pieces, EventCodec("prnn"), False, int8.model)
    assert first.events == record["events"]
    assert first.per_event == pytest.approx(record["fp32"]["nats_per_event"], rel=5e-3)
    assert second.per_event == pytest.approx(record["int8"]["nats_per_event"], rel=5e-3)


def test_the_shipped_model_plays(shipped):
    int8 = shipped[1]
    codec = EventCodec(int8.codec)
    rules = int8.rules()
    rng = np.random.default_rng(0)
    init = initial_noise(2, int8.model.config.init_dim, rng)
    rows = sample_from_start(make_stepper(int8.model), codec, rules, init, 300, rng)
    for row in rows:
        notes = codec.decode(row, rules.max_note_seconds)
        assert len(notes) > 10 and (notes.end - notes.start).max() <= rules.max_note_seconds
