"""Sessions: our round trip, files of the original project, and every way a file can be wrong."""

import os
import re
from dataclasses import asdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from amadeus.data.dataset import DataRecord, Settings
from amadeus.errors import SessionError
from amadeus.model.network import ModelConfig, PerformanceRNN
from amadeus.model.session import Session, build_model, capture_rng, restore_rng

CONFIG = ModelConfig(init_dim=8, event_dim=240, control_dim=24, hidden_dim=16, gru_layers=2)
RECORD = DataRecord("dataset/processed/x", 64, 4, 0.2, settings=Settings("magenta", False, 2.0))


class Stranger:
    """A class weights_only must refuse to rebuild."""


def trained(config: ModelConfig = CONFIG, seed: int = 0):
    """A model and its Adam after one real step, as the original's training left them."""
    torch.manual_seed(seed)
    model = PerformanceRNN(**asdict(config))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    adam_step(model, optimizer)
    return model, optimizer


def adam_step(model, optimizer, seed: int = 1):
    torch.manual_seed(seed)  # the same dropout masks
    g = torch.Generator().manual_seed(seed)
    init = torch.randn(2, model.config.init_dim, generator=g)
    events = torch.randint(0, model.config.event_dim, (6, 2), generator=g)
    loss = F.cross_entropy(model.logits(init, events).flatten(0, 1), events.flatten())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def eval_logits(model):
    g = torch.Generator().manual_seed(2)
    init = torch.randn(3, model.config.init_dim, generator=g)
    events = torch.randint(0, model.config.event_dim, (7, 3), generator=g)
    with torch.no_grad():
        return model.eval().logits(init, events, torch.rand(7, 3, 24, generator=g))


def original_file(path, model, optimizer, **save_kwargs):
    """What Performance-RNN-PyTorch's train.py wrote: three keys, nothing else."""
    torch.save(
        {
            "model_config": asdict(model.config),
            "model_state": model.state_dict(),
            "model_optimizer_state": optimizer.state_dict(),
        },
        path,
        **save_kwargs,
    )


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_original_session_loads_with_the_same_logits_and_optimizer(tmp_path, zip_format):
    model, optimizer = trained()
    path = tmp_path / "original.sess"
    original_file(path, model, optimizer, _use_new_zipfile_serialization=zip_format)
    session = Session.load(path)
    assert (session.config, session.codec, session.step) == (CONFIG, "prnn", 0)
    assert (session.best_val_loss, session.rng, session.extra) == (None, None, {})
    loaded = build_model(session)
    torch.testing.assert_close(eval_logits(loaded), eval_logits(model), rtol=0, atol=0)
    # The optimizer resumes: one more step on each gives the same weights.
    resumed = torch.optim.Adam(loaded.train().parameters(), lr=1e-3)
    resumed.load_state_dict(session.optimizer_state)
    adam_step(model.train(), optimizer, seed=3)
    adam_step(loaded, resumed, seed=3)
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_original_session_without_codec_must_have_240_events(tmp_path):
    model, optimizer = trained(ModelConfig(init_dim=4, event_dim=50, hidden_dim=8, gru_layers=2))
    original_file(tmp_path / "x.sess", model, optimizer)
    with pytest.raises(SessionError, match="x.sess: no codec recorded and event_dim 50"):
        Session.load(tmp_path / "x.sess")


def test_round_trip_keeps_every_field_and_the_original_keys(tmp_path):
    model, optimizer = trained()
    session = Session(
        config=CONFIG,
        model_state=model.state_dict(),
        optimizer_state=optimizer.state_dict(),
        codec="magenta",
        step=1234,
        best_val_loss=2.5,
        rng=capture_rng(np.random.default_rng(3)),
        data=RECORD,
        extra={"note": "kept"},
    )
    path = tmp_path / "ours.sess"
    session.save(path)
    loaded = Session.load(path)
    assert (loaded.config, loaded.codec, loaded.step) == (CONFIG, "magenta", 1234)
    assert loaded.data == RECORD
    assert (loaded.best_val_loss, loaded.extra) == (2.5, {"note": "kept"})
    assert loaded.optimizer_state["param_groups"] == session.optimizer_state["param_groups"]
    torch.testing.assert_close(loaded.rng["torch"], session.rng["torch"], rtol=0, atol=0)
    assert loaded.rng["numpy"] == session.rng["numpy"]
    torch.testing.assert_close(eval_logits(build_model(loaded)), eval_logits(model))
    # The original project reads the same file its own way.
    raw = torch.load(path, weights_only=True)
    original = PerformanceRNN(**raw["model_config"])
    original.load_state_dict(raw["model_state"])
    torch.optim.Adam(original.parameters()).load_state_dict(raw["model_optimizer_state"])


def test_rng_state_restores_the_same_draws(tmp_path):
    generator = np.random.default_rng(11)
    torch.manual_seed(11)
    model, _ = trained()
    Session(CONFIG, model.state_dict(), rng=capture_rng(generator)).save(tmp_path / "r.sess")
    expected = (torch.rand(5), generator.random(5))
    restore_rng(Session.load(tmp_path / "r.sess").rng, generator)
    torch.testing.assert_close(torch.rand(5), expected[0], rtol=0, atol=0)
    np.testing.assert_array_equal(generator.random(5), expected[1])


def test_save_replaces_atomically_and_a_failed_save_keeps_the_old_file(tmp_path):
    model, _ = trained()
    path = tmp_path / "s.sess"
    Session(CONFIG, model.state_dict(), step=1).save(path)
    Session(CONFIG, model.state_dict(), step=2).save(path)
    assert Session.load(path).step == 2
    with pytest.raises(Exception):  # noqa: B017 - whatever torch.save raises on a lambda
        Session(CONFIG, model.state_dict(), step=3, extra={"bad": lambda: 0}).save(path)
    assert Session.load(path).step == 2
    assert os.listdir(tmp_path) == ["s.sess"]


def test_save_into_a_missing_folder_names_the_file(tmp_path):
    model, _ = trained()
    with pytest.raises(SessionError, match="nowhere/s.sess: cannot write"):
        Session(CONFIG, model.state_dict()).save(tmp_path / "nowhere" / "s.sess")


def good_dict():
    model, optimizer = trained()
    return {
        "model_config": asdict(CONFIG),
        "model_state": model.state_dict(),
        "model_optimizer_state": optimizer.state_dict(),
    }


def changed(**changes):
    """A writer of an otherwise good file; a value of None removes the key."""

    def write(path):
        data = {**good_dict(), **changes}
        torch.save({k: v for k, v in data.items() if v is not None}, path)

    return write


def changed_state(edit):
    def write(path):
        data = good_dict()
        edit(data["model_state"])
        torch.save(data, path)

    return write


def truncated(path):
    changed()(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


BAD_FILES = {
    "missing": (lambda path: None, "no such file"),
    "directory": (lambda path: path.mkdir(), "is a directory"),
    "empty": (lambda path: path.write_bytes(b""), "empty file"),
    "truncated": (truncated, "corrupt or not a torch file"),
    "random bytes": (
        lambda path: path.write_bytes(np.random.default_rng(0).bytes(4096)),
        "refused by weights_only",
    ),
    "text": (lambda path: path.write_text("model_state = 1\n"), "refused by weights_only"),
    "custom class": (changed(extra=Stranger()), "refused by weights_only.*Stranger"),
    "numpy array": (changed(extra=np.zeros(3)), "refused by weights_only"),
    "a list": (lambda path: torch.save([torch.zeros(3)], path), "holds a list"),
    "no model_state": (changed(model_state=None), "not a session \\(no model_state\\)"),
    "no model_config": (changed(model_config=None), "not a session \\(no model_config\\)"),
    "config unknown key": (
        changed(model_config={**asdict(CONFIG), "layers": 2}),
        "bad model_config: unknown key",
    ),
    "config missing key": (
        changed(model_config={k: v for k, v in asdict(CONFIG).items() if k != "gru_layers"}),
        "bad model_config: missing key",
    ),
    "config wrong type": (
        changed(model_config={**asdict(CONFIG), "hidden_dim": "16"}),
        "bad model_config: hidden_dim must be a positive integer",
    ),
    "config not a dict": (changed(model_config=[1, 2]), "model_config is list, expected dict"),
    "state shape": (
        changed(model_config={**asdict(CONFIG), "hidden_dim": 32}),
        "inithid_fc.weight has shape \\(32, 8\\), expected \\(64, 8\\)",
    ),
    "state missing key": (
        changed_state(lambda state: state.pop("output_fc.bias")),
        "does not match model_config: missing output_fc.bias",
    ),
    "state extra key": (
        changed_state(lambda state: state.update(extra=torch.zeros(1))),
        "does not match model_config: unexpected extra",
    ),
    "state not tensor": (
        changed_state(lambda state: state.update({"output_fc.bias": [0.0] * 240})),
        "output_fc.bias is not a float tensor",
    ),
    "step wrong type": (changed(step="12"), "step is str, expected int"),
    "codec wrong type": (changed(codec=3), "codec is int, expected str"),
    "codec unknown": (changed(codec="remi"), "unknown codec 'remi' \\(this Amadeus knows prnn"),
    "data record not a dict": (changed(data=[1]), "data record is not a dict"),
    "data record unknown key": (
        changed(data={**RECORD.to_dict(), "tempo": 1}),
        "data record has unknown key\\(s\\) tempo",
    ),
    "newer format": (changed(amadeus_format=99), "newer Amadeus \\(format 99\\)"),
}


@pytest.mark.parametrize("write, reason", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_files_raise_session_error_naming_the_file(tmp_path, write, reason):
    path = tmp_path / "bad.sess"
    write(path)
    with pytest.raises(SessionError, match=f"^{re.escape(str(path))}: .*{reason}") as error:
        Session.load(path)
    assert "\n" not in str(error.value)
