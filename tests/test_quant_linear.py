"""Distiller's range-linear formulas, the int8 Linear and Embedding, and the kernel behind them."""

import copy
import io

import pytest
import torch
from fresh_python import assert_warns_nobody
from torch import nn

from amadeus.quant import kernel
from amadeus.quant.linear import (
    Int8Embedding,
    Int8Linear,
    activation_params,
    dequantize,
    quantize,
    quantize_rows,
    range_params,
)

needs_fbgemm = pytest.mark.skipif(not kernel.FBGEMM, reason="torch without fbgemm")
exact_fbgemm = pytest.mark.skipif(
    not kernel.FBGEMM_EXACT, reason="no AVX512-VNNI: fbgemm saturates, the reference runs"
)


@pytest.mark.parametrize(
    ("lo", "hi", "scale", "zero_point"),
    [
        # inithid_fc's input and output avg ranges in the original's Distiller file
        (-2.0635503113269813, 2.11538649559021, 61.0203, 2),
        (-3.8075507116317757, 2.921099176406862, 37.8976, -16),
    ],
)
def test_distiller_vectors(lo, hi, scale, zero_point):
    got_scale, got_zero_point = activation_params(lo, hi)
    assert round(got_scale, 4) == scale
    assert got_zero_point == zero_point


def test_ranges_always_hold_zero():
    scale, zero_point = activation_params(0.5, 2.0)  # lo' = 0
    assert scale == pytest.approx(255 / 2.0)
    assert zero_point == 128
    assert quantize(torch.tensor(0.0), scale, zero_point).item() == -128
    assert activation_params(-3.0, -1.0) == (85.0, -127)  # hi' = 0: 255/3, round(-255) + 128
    assert activation_params(0.0, 0.0) == (1.0, 128)  # empty range: scale 1


def test_quantize_round_trip():
    scale, zero_point = activation_params(-1.3, 2.9)
    x = torch.linspace(-1.3, 2.9, 1001)
    q = quantize(x, scale, zero_point)
    assert q.min().item() == -128 and q.max().item() == 127
    assert (dequantize(q, scale, zero_point) - x).abs().max() <= 0.5 / scale + 1e-6
    assert dequantize(quantize(torch.zeros(1), scale, zero_point), scale, zero_point).item() == 0
    # outside the range: clamped to its ends
    assert quantize(torch.tensor([-50.0, 50.0]), scale, zero_point).tolist() == [-128, 127]


def test_weights_per_row_without_clipping():
    torch.manual_seed(0)
    weight = torch.randn(6, 40) * torch.tensor([0.01, 0.1, 1, 3, 10, 0.5])[:, None]
    q, scale, zero_point = quantize_rows(weight)
    assert q.dtype == torch.int8 and scale.shape == zero_point.shape == (6,)
    back = dequantize(q.long(), scale[:, None].double(), zero_point[:, None].long())
    assert ((back - weight).abs() <= 0.5 / scale[:, None] + 1e-7).all()
    # each row's whole range is used: its min and max reach the ends of int8
    want_scale, want_zero_point = range_params(weight.amin(1), weight.amax(1))
    torch.testing.assert_close(scale.double(), want_scale)
    assert torch.equal(zero_point.long(), want_zero_point)
    assert (q.long().amin(1) <= -127).all() and (q.long().amax(1) >= 126).all()


def _layer(seed=0, in_features=64, out_features=48):
    torch.manual_seed(seed)
    linear = nn.Linear(in_features, out_features)
    x = torch.randn(10, in_features) * 0.8
    with torch.no_grad():
        y = linear(x)
    in_range, out_range = (x.min().item(), x.max().item()), (y.min().item(), y.max().item())
    int8 = Int8Linear.from_float(linear, in_range, out_range)
    return linear, int8, x, y


def test_int8_linear_is_distillers_arithmetic():
    linear, int8, x, _ = _layer()
    (s_x, zp_x), (s_y, zp_y) = int8.in_params, int8.out_params
    w_scale, w_zp = int8.w_scale.double(), int8.w_zero_point.long()
    assert torch.equal(int8.bias.long(), (linear.bias.double() * s_x * w_scale).round().long())
    # the scheme in integers, by hand
    qx = quantize(x, s_x, zp_x)
    acc = (qx + zp_x) @ (int8.weight.long() + w_zp[:, None]).T + int8.bias.long()  # int64, exact
    qy = quantize(acc.double() * (s_y / (s_x * w_scale)), 1.0, zp_y)
    want = dequantize(qy, s_y, zp_y)
    torch.testing.assert_close(int8.pack(backend="reference")(x), want, atol=1e-6, rtol=0)


@exact_fbgemm
def test_fbgemm_matches_reference():
    _, int8, x, _ = _layer(seed=1, in_features=256, out_features=384)
    fast, slow = int8.pack(backend="fbgemm")(x), int8.pack(backend="reference")(x)
    step = 1 / int8.out_params[0]
    # fbgemm requantizes in float32: a product within ~1e-5 of a rounding tie may land one
    # step away; everything else is identical
    assert (fast - slow).abs().max() <= step * 1.001
    assert ((fast - slow).abs() > 1e-6).float().mean() < 1e-3


def test_close_to_float():
    _, int8, x, y = _layer(seed=2)
    got = int8(x)
    assert got.dtype == torch.float32 and got.shape == y.shape
    # error: the output step plus the input's and weights' rounding through the product
    assert (got - y).abs().max() < 3 / int8.out_params[0]
    assert torch.corrcoef(torch.stack([got.flatten(), y.flatten()]))[0, 1] > 0.999


def test_any_leading_shape():
    _, int8, x, _ = _layer(seed=3)
    got = int8(x.view(2, 5, -1))
    assert got.shape == (2, 5, 48)
    torch.testing.assert_close(got.view(10, -1), int8(x))


def test_the_default_kernel_is_fbgemm_only_where_it_is_exact():
    _, int8, _, _ = _layer(seed=4)
    exact = kernel.FBGEMM and torch.cpu._is_vnni_supported()
    assert isinstance(int8.pack(), kernel.FbgemmGemm if exact else kernel.ReferenceGemm)


def test_without_fbgemm(monkeypatch):
    _, int8, x, _ = _layer(seed=4)
    monkeypatch.setattr(kernel, "FBGEMM", False)
    monkeypatch.setattr(kernel, "FBGEMM_EXACT", False)
    fresh = copy.deepcopy(int8)
    assert isinstance(fresh.pack(), kernel.ReferenceGemm)
    assert (fresh(x) - int8.pack(backend="reference")(x)).abs().max() == 0
    with pytest.raises(ValueError, match="no fbgemm"):
        kernel.prepack(
            int8.weight,
            int8.w_scale,
            int8.w_zero_point,
            int8.bias,
            (1, 0),
            (1, 0),
            backend="fbgemm",
        )


def test_state_dict_round_trip_with_weights_only():
    _, int8, x, _ = _layer(seed=5)
    want = int8(x)
    buffer = io.BytesIO()
    torch.save(int8.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["weight"].dtype == torch.int8 and state["bias"].dtype == torch.int32
    # a layer with other values, packed once, then loaded: the packed form follows the load
    _, other, _, _ = _layer(seed=6)
    other(x)
    other.load_state_dict(state)
    assert torch.equal(other(x), want)
    assert other.in_params == int8.in_params and other.out_params == int8.out_params
    assert torch.equal(copy.deepcopy(int8)(x), want)


def test_int8_is_a_quarter_of_float():
    linear, int8, _, _ = _layer(in_features=512, out_features=1536)
    float_bytes = sum(t.numel() * t.element_size() for t in linear.state_dict().values())
    int8_bytes = sum(t.numel() * t.element_size() for t in int8.state_dict().values())
    assert int8_bytes < 0.26 * float_bytes


def test_leaves_the_quantized_engine_alone():
    engines = torch.backends.quantized.supported_engines
    if not kernel.FBGEMM or "qnnpack" not in engines:
        pytest.skip("needs fbgemm and qnnpack")
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = "qnnpack"
    try:
        _, int8, x, _ = _layer(seed=7)
        assert isinstance(int8.pack(backend="fbgemm"), kernel.FbgemmGemm)
        int8.pack(backend="fbgemm")(x)
        assert torch.backends.quantized.engine == "qnnpack"
    finally:
        torch.backends.quantized.engine = previous


def test_no_warning_reaches_the_user():
    code = (
        "import torch\n"
        "from amadeus.quant.linear import Int8Linear\n"
        "m = Int8Linear.from_float(torch.nn.Linear(8, 4), (-1.0, 1.0), (-1.0, 1.0))\n"
        "m(torch.randn(3, 8)); m(torch.randn(1, 8))\n"
    )
    assert_warns_nobody(code)


def test_int8_embedding():
    torch.manual_seed(8)
    embedding = nn.Embedding(30, 12)
    int8 = Int8Embedding.from_float(embedding)
    tokens = torch.tensor([[0, 29, 5], [5, 5, 17]])
    got = int8(tokens)
    assert got.shape == (2, 3, 12) and got.dtype == torch.float32
    step = 1 / int8.scale[tokens][..., None]  # [2, 3, 1], each row's own step
    assert ((got - embedding(tokens).detach()).abs() <= 0.5 * step + 1e-6).all()
    fresh = Int8Embedding(*quantize_rows(torch.zeros(30, 12)))
    fresh.load_state_dict(int8.state_dict())
    assert torch.equal(fresh(tokens), got)
