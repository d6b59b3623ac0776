"""PerformanceRNN: the original's names and shapes; the whole-window pass against step by step."""

from dataclasses import asdict

import pytest
import torch
import torch.nn.functional as F

from amadeus.model.network import ModelConfig, PerformanceRNN

V, C, INIT = 20, 24, 8  # a small vocabulary keeps the tests fast


def tiny(layers: int = 2, dropout: float = 0.0, hidden: int = 16, seed: int = 0) -> PerformanceRNN:
    torch.manual_seed(seed)
    return PerformanceRNN(
        event_dim=V, control_dim=C, init_dim=INIT, hidden_dim=hidden, gru_layers=layers,
        gru_dropout=dropout,
    ).eval()  # fmt: skip


def inputs(steps: int, batch: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    init = torch.randn(batch, INIT, generator=g)
    events = torch.randint(0, V, (steps, batch), generator=g)
    controls = torch.rand(steps, batch, C, generator=g)
    return init, events, controls


def reference_step(model, event, hidden, control):
    """The original's forward for one step, with the GRU equations written out."""
    batch = event.shape[0]
    if control is None:
        flag, control = torch.ones(batch, 1), torch.zeros(batch, C)
    else:
        flag = torch.zeros(batch, 1)
    concat = torch.cat([model.event_embedding.weight[event], flag, control], -1)
    x = F.leaky_relu(
        F.linear(concat, model.concat_input_fc.weight, model.concat_input_fc.bias), 0.1
    )
    new_hidden = []
    for h, (w_ih, w_hh, b_ih, b_hh) in zip(hidden, model.gru.all_weights, strict=True):
        i_r, i_z, i_n = F.linear(x, w_ih, b_ih).chunk(3, -1)
        h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, -1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        x = (1 - z) * torch.tanh(i_n + r * h_n) + z * h
        new_hidden.append(x)
    hidden = torch.stack(new_hidden)  # [L, B, H]
    states = hidden.permute(1, 0, 2).reshape(batch, -1)  # layer 0 first
    return F.linear(states, model.output_fc.weight, model.output_fc.bias), hidden


def test_default_config_is_the_originals_model_config():
    assert asdict(ModelConfig()) == {
        "init_dim": 32,
        "event_dim": 240,
        "control_dim": 24,
        "hidden_dim": 512,
        "gru_layers": 3,
        "gru_dropout": 0.3,
    }


def test_default_model_has_the_originals_names_shapes_and_size():
    with torch.device("meta"):
        model = PerformanceRNN(**asdict(ModelConfig()))
    shapes = {name: tuple(p.shape) for name, p in model.state_dict().items()}
    gru = {}
    for k in range(3):
        gru |= {f"gru.weight_ih_l{k}": (1536, 512), f"gru.weight_hh_l{k}": (1536, 512)}
        gru |= {f"gru.bias_ih_l{k}": (1536,), f"gru.bias_hh_l{k}": (1536,)}
    assert shapes == {
        "inithid_fc.weight": (1536, 32),
        "inithid_fc.bias": (1536,),
        "event_embedding.weight": (240, 240),
        "concat_input_fc.weight": (512, 265),
        "concat_input_fc.bias": (512,),
        **gru,
        "output_fc.weight": (240, 1536),
        "output_fc.bias": (240,),
    }
    assert sum(p.numel() for p in model.parameters()) == 5_341_168


def test_config_round_trips_through_the_model():
    config = ModelConfig(init_dim=4, event_dim=30, hidden_dim=8, gru_layers=1, gru_dropout=0)
    model = PerformanceRNN.from_config(config)
    assert model.config == config
    assert model.start_token == 29


@pytest.mark.parametrize(
    "changes",
    [
        {"hidden_dim": 0},
        {"hidden_dim": 1.5},
        {"gru_layers": True},
        {"event_dim": "240"},
        {"gru_dropout": 1.0},
        {"gru_dropout": -0.1},
        {"gru_dropout": "0.3"},
    ],
)
def test_config_rejects_bad_values(changes):
    with pytest.raises(ValueError, match=next(iter(changes))):
        ModelConfig.from_dict({**asdict(ModelConfig()), **changes})


def test_config_from_dict_wants_every_key_and_no_other():
    assert ModelConfig.from_dict({**asdict(ModelConfig()), "gru_dropout": 0}).gru_dropout == 0.0
    with pytest.raises(ValueError, match="unknown key.*'hiden_dim'"):
        ModelConfig.from_dict({**asdict(ModelConfig()), "hiden_dim": 3})
    with pytest.raises(ValueError, match="missing key.*init_dim"):
        ModelConfig.from_dict({k: v for k, v in asdict(ModelConfig()).items() if k != "init_dim"})


def test_init_to_hidden_is_the_originals_plain_view():
    model = tiny(layers=2)
    init = inputs(1, 3)[0]
    full = torch.tanh(model.inithid_fc(init))  # [B, L*H]
    hidden = model.init_to_hidden(init)
    assert hidden.shape == (2, 3, 16)
    # Not a transpose: row 0 of the batch fills [0, 0] and [0, 1].
    torch.testing.assert_close(hidden[0, 1], full[0, 16:])
    torch.testing.assert_close(hidden.reshape(-1), full.reshape(-1))


@pytest.mark.parametrize("with_controls", [False, True])
def test_step_is_the_originals_forward(with_controls):
    model = tiny(layers=2)
    init, events, controls = inputs(4, 3)
    hidden = ref_hidden = model.init_to_hidden(init)
    with torch.no_grad():
        for t in range(4):
            control = controls[t] if with_controls else None
            logits, hidden = model.step(events[t], hidden, control)
            ref_logits, ref_hidden = reference_step(model, events[t], ref_hidden, control)
            torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(hidden, ref_hidden, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("layers, hidden", [(1, 16), (3, 32)])
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("with_controls", [False, True])
def test_logits_equal_step_by_step(layers, hidden, batch, with_controls):
    model = tiny(layers=layers, hidden=hidden, dropout=0.3 if layers > 1 else 0.0)
    init, events, controls = inputs(23, batch)
    controls = controls if with_controls else None
    with torch.no_grad():
        fast = model.logits(init, events, controls)
        slow = model.logits_stepwise(init, events, controls)
    assert fast.shape == (23, batch, V)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_logits_step_t_sees_only_earlier_events():
    model = tiny()
    init, events, _ = inputs(10, 2)
    changed = events.clone()
    changed[6] = (changed[6] + 1) % V
    with torch.no_grad():
        a, b = model.logits(init, events), model.logits(init, changed)
    torch.testing.assert_close(a[:7], b[:7])  # step 6 predicts events[6] from events[:6]
    assert not torch.allclose(a[7], b[7])


def test_controls_must_match_events():
    model = tiny()
    init, events, controls = inputs(5, 2)
    with pytest.raises(ValueError, match="controls"):
        model.logits(init, events, controls[:4])


def test_dropout_between_layers_only_in_training():
    init, events, controls = inputs(12, 4)
    model = tiny(layers=3, dropout=0.5)
    evaluated = model.logits(init, events, controls)
    model.train()
    torch.manual_seed(5)
    trained = model.logits(init, events, controls)
    torch.manual_seed(5)
    assert torch.equal(trained, model.logits(init, events, controls))
    assert not torch.allclose(trained, evaluated)
    single = tiny(layers=1)
    evaluated = single.logits(init, events, controls)
    torch.testing.assert_close(single.train().logits(init, events, controls), evaluated)


def test_output_dropout_only_in_training_and_in_both_passes():
    init, events, _ = inputs(10, 3)
    model = tiny(layers=1)  # no dropout between layers: what differs is the output's
    evaluated = model.logits(init, events)
    model.output_dropout = 0.5
    torch.testing.assert_close(model.logits(init, events), evaluated)
    model.train()
    torch.manual_seed(7)
    trained = model.logits(init, events)
    assert not torch.allclose(trained, evaluated)
    hidden = model.init_to_hidden(init)
    torch.manual_seed(7)  # the step's states meet the same mask as the whole window's first step
    stepped, _ = model.step(torch.full((3,), model.start_token), hidden)
    torch.testing.assert_close(stepped, trained[0])


def test_gradients_reach_every_parameter():
    model = tiny(layers=3, dropout=0.3).train()
    init, events, controls = inputs(9, 3)
    logits = model(init, events, controls)  # forward is logits
    F.cross_entropy(logits.reshape(-1, V), events.reshape(-1)).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_stepwise_without_teacher_forcing_feeds_back_argmax():
    model = tiny()
    init, events, controls = inputs(15, 3)
    with torch.no_grad():
        free = model.logits_stepwise(init, events, controls, teacher_forcing_ratio=0.0)
        # The inputs were the start token, then each step's argmax: replay them teacher-forced.
        replayed = model.logits(init, free.argmax(-1), controls)
        forced = model.logits(init, events, controls)
    torch.testing.assert_close(free, replayed, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(free, forced)


def test_stepwise_mixes_per_step_by_the_generator():
    model = tiny()
    init, events, controls = inputs(20, 3)
    with torch.no_grad():
        mixed = model.logits_stepwise(
            init, events, controls, 0.5, generator=torch.Generator().manual_seed(7)
        )
        coins = torch.Generator().manual_seed(7)
        forced = [torch.rand((), generator=coins).item() < 0.5 for _ in range(19)]
        fed = torch.stack([events[t] if forced[t] else mixed[t].argmax(-1) for t in range(19)])
        replayed = model.logits(init, torch.cat([fed, events[-1:]]), controls)
    assert 0 < sum(forced) < 19
    torch.testing.assert_close(mixed, replayed, atol=1e-5, rtol=1e-5)
