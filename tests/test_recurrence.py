"""The training recurrence (`amadeus.model.recurrence`): nn.GRU's values and gradients in
float32, close to them with bf16 products, and its dropout."""

import pytest
import torch

from amadeus.errors import UsageError
from amadeus.model.device import autocast_dtype
from amadeus.model.recurrence import dropout, gru_layer


def _grads(output, inputs, weight):
    return torch.autograd.grad((output * weight).sum(), inputs)


@pytest.mark.parametrize("steps,batch,inputs,hidden", [(1, 1, 3, 2), (9, 4, 6, 5), (30, 2, 8, 16)])
def test_float32_equals_nn_gru_values_and_gradients(steps, batch, inputs, hidden):
    torch.manual_seed(steps)
    gru = torch.nn.GRU(inputs, hidden)
    x = torch.randn(steps, batch, inputs, requires_grad=True)
    h0 = torch.randn(batch, hidden, requires_grad=True)
    params = [x, h0, *gru.all_weights[0]]
    weight = torch.randn(steps, batch, hidden)
    expected, _ = gru(x, h0[None])
    ours = gru_layer(x, h0, gru.all_weights[0])
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-5)
    for mine, theirs in zip(_grads(ours, params, weight), _grads(expected, params, weight)):
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-4)


def test_bf16_products_stay_close_to_float32():
    torch.manual_seed(0)
    gru = torch.nn.GRU(32, 32)
    x = torch.randn(50, 8, 32, requires_grad=True)
    h0 = torch.zeros(8, 32, requires_grad=True)
    params = [x, h0, *gru.all_weights[0]]
    weight = torch.randn(50, 8, 32)
    exact = gru_layer(x, h0, gru.all_weights[0])
    low = gru_layer(x, h0, gru.all_weights[0], torch.bfloat16)
    assert low.dtype == torch.float32
    assert (low - exact).abs().max() < 0.05  # bf16 keeps 8 bits: about 0.4% a product
    for mine, exact_grad in zip(_grads(low, params, weight), _grads(exact, params, weight)):
        scale = exact_grad.abs().max()
        assert (mine - exact_grad).abs().max() < 0.05 * scale


def test_dropout_keeps_each_value_or_zeroes_it_and_rescales():
    torch.manual_seed(0)
    x = torch.full((400, 50), 2.0)
    y = dropout(x, 0.3, training=True)
    kept = y != 0
    keep = 1 - round(0.3 * 65536) / 65536  # p in steps of 1/65536
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 2.0 / keep))
    assert abs(kept.float().mean().item() - 0.7) < 0.01
    assert dropout(x, 0.9999999, training=True).count_nonzero() < 10
    assert dropout(x, 0.3, training=False) is x
    assert dropout(x, 0.0, training=True) is x


def test_precision_flag():
    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, "fp32") is None
    assert autocast_dtype(cpu, "bf16") is torch.bfloat16
    with pytest.raises(UsageError, match="--precision fp8"):
        autocast_dtype(cpu, "fp8")


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "chosen"),
    [(False, False, None), (True, False, torch.bfloat16), (False, True, torch.bfloat16)],
)
def test_auto_precision_takes_bf16_where_the_cpu_multiplies_in_it(
    monkeypatch, avx512_bf16, amx, chosen
):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_init_amx", lambda: amx)
    assert autocast_dtype(torch.device("cpu"), "auto") is chosen
    assert autocast_dtype(torch.device("cpu"), "fp32") is None
