"""One GRU layer over a whole window, forward and backward, for training.

Autograd through nn.GRU's CPU recurrence records every step: its backward pass makes a weight
gradient per step ([3H, B] x [B, H], a poor shape) and adds it into a [3H, H] buffer, 600 times a
window for three layers. Here only what truly runs in sequence runs per step (the recurrent
product and the gate arithmetic, forward and back). The input projection, both weight gradients
and the input gradient are each one product over all T*B rows. On the CPU the element-wise work
costs memory traffic more than arithmetic, so each backward step reads only its own slices of what
the forward pass kept and works in small buffers that stay in cache, rather than sweeping
whole-window tensors many times.

Products run in `dtype`: bfloat16, where the CPU multiplies in it, makes a step about 4x faster
than float32 with AMX and 1.84x with AVX512-BF16 (bench/train_speed.py). The gates, the hidden
state, the gradients flowing back through time and every sum over steps stay in float32. In
float32 it equals nn.GRU.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable


def gru_layer(
    x: Tensor, h0: Tensor, weights: list[Tensor], dtype: torch.dtype = torch.float32
) -> Tensor:
    """nn.GRU's layer: x [T, B, I], h0 [B, H], weights (w_ih [3H, I], w_hh [3H, H], b_ih [3H],
    b_hh [3H]) in PyTorch's r, z, n order -> every step's hidden state [T, B, H], float32."""
    return _GRULayer.apply(x, h0, *weights, dtype)


class _GRULayer(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: Tensor,
        h0: Tensor,
        w_ih: Tensor,
        w_hh: Tensor,
        b_ih: Tensor,
        b_hh: Tensor,
        dtype: torch.dtype,
    ) -> Tensor:
        steps, batch, _ = x.shape
        H = w_hh.shape[1]
        # r and z take both biases in the input projection; n's hidden bias stays inside
        # r * (W_hn h + b_hn), added in float32 (a bias in the per-step product costs 25 us).
        bias_x = torch.cat([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :]]).to(dtype)
        x_low = x.reshape(steps * batch, -1).to(dtype)
        gates_x = torch.addmm(bias_x, x_low, w_ih.to(dtype).T).view(steps, batch, 3 * H)
        w_hh_t, b_hn = w_hh.to(dtype).T, b_hh[2 * H :].float()
        states = x.new_empty(steps + 1, batch, H, dtype=torch.float32)  # h_0 ... h_T
        # The states again in `dtype`, for the products (the same tensor in float32).
        states_low = states if dtype == torch.float32 else torch.empty_like(states, dtype=dtype)
        states[0] = h0
        states_low[0] = h0
        gates_h = x.new_empty(batch, 3 * H, dtype=dtype)  # h_{t-1} @ w_hh.T, one step's
        hn = x.new_empty(steps, batch, H, dtype=torch.float32)  # W_hn h_{t-1} + b_hn
        rz = x.new_empty(steps, batch, 2 * H, dtype=torch.float32)
        n = x.new_empty(steps, batch, H, dtype=torch.float32)
        for t in range(steps):
            gh = torch.mm(states_low[t], w_hh_t, out=gates_h)
            torch.add(gates_x[t, :, : 2 * H], gh[:, : 2 * H], out=rz[t]).sigmoid_()
            torch.add(gh[:, 2 * H :], b_hn, out=hn[t])
            torch.addcmul(gates_x[t, :, 2 * H :], rz[t, :, :H], hn[t], out=n[t]).tanh_()
            torch.lerp(n[t], states[t], rz[t, :, H:], out=states[t + 1])  # (1 - z) n + z h
            if states_low is not states:
                states_low[t + 1] = states[t + 1]
        ctx.dtype, ctx.x_dtype = dtype, x.dtype
        ctx.save_for_backward(x_low, w_ih, w_hh, rz, n, hn, states, states_low)
        return states[1:]

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        x_low, w_ih, w_hh, rz, n, hn, states, states_low = ctx.saved_tensors
        dtype = ctx.dtype
        steps, batch, H = n.shape
        w_hh_low = w_hh.to(dtype)
        grad_out = grad_out.float()
        # Per step, the gradients of the pre-activations, in `dtype` for the products:
        # [r | z | n's recurrent product | n's input projection].
        grads = n.new_empty(steps, batch, 4 * H, dtype=dtype)
        # One step's work in float32 buffers used again every step: hot in cache. Step t reads
        # only its own slices of what the forward pass kept.
        wide, scratch = n.new_empty(batch, 4 * H), n.new_empty(3, batch, H)
        grad_r, grad_z, grad_hn, grad_nx = wide.view(batch, 4, H).unbind(1)
        g, g_next, square = scratch.unbind(0)
        g.copy_(grad_out[-1])  # the whole gradient of h_t: its own plus what step t+1 carries
        sums = n.new_zeros(4 * H)  # over steps and rows, for the biases: float32 throughout
        for t in range(steps - 1, -1, -1):
            r, z, n_t = rz[t, :, :H], rz[t, :, H:], n[t]
            torch.addcmul(g, g, z, value=-1, out=grad_nx)  # g (1 - z)
            torch.mul(n_t, n_t, out=square)
            grad_nx.addcmul_(grad_nx, square, value=-1)  # tanh': (1 - n^2)
            torch.mul(grad_nx, r, out=grad_hn)
            torch.mul(grad_hn, hn[t], out=grad_r)
            grad_r.addcmul_(grad_r, r, value=-1)  # sigmoid': r (1 - r)
            torch.sub(states[t], n_t, out=grad_z).mul_(g)  # h' = n + z (h - n)
            torch.addcmul(z, z, z, value=-1, out=square)
            grad_z.mul_(square)
            grads[t] = wide
            sums += wide.sum(0)
            carried = torch.mm(grads[t, :, : 3 * H], w_hh_low)
            torch.addcmul(carried.float(), g, z, out=g_next)  # the gradient of h_{t-1}
            if t:
                g_next += grad_out[t - 1]
            g, g_next = g_next, g
        grad_h0 = g.clone()
        flat = grads.view(-1, 4 * H)
        grad_b_hh, grad_b_ih = sums[: 3 * H], torch.cat([sums[: 2 * H], sums[3 * H :]])
        # The input projection's gradients are [r | z | n input], the recurrent one's [r | z | n].
        of_rz, of_recurrent, of_input_n = flat[:, : 2 * H], flat[:, : 3 * H], flat[:, 3 * H :]
        grad_x = None
        if ctx.needs_input_grad[0]:
            w_ih_low = w_ih.to(dtype)
            grad_x = torch.mm(of_input_n, w_ih_low[2 * H :]).addmm_(of_rz, w_ih_low[: 2 * H])
            grad_x = grad_x.view(steps, batch, -1).to(ctx.x_dtype)
        grad_w_ih = torch.cat([torch.mm(of_rz.T, x_low), torch.mm(of_input_n.T, x_low)]).float()
        grad_w_hh = torch.mm(of_recurrent.T, states_low[:-1].reshape(-1, H)).float()
        return grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh, None


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """F.dropout with p rounded to a multiple of 1/65536, its mask made of 16-bit pieces of 64-bit
    random integers: torch's CPU generator makes them about 4x faster than rand_like's floats."""
    if not training or p == 0:
        return x
    count = x.numel()
    words = x.new_empty((count + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
    pieces = words.view(torch.int16)[:count].view(x.shape)  # uniform in [-32768, 32767]
    dropped = min(round(p * 65536), 65535)
    keep = pieces >= dropped - 32768  # probability (65536 - dropped) / 65536
    return x * keep.to(x.dtype).mul_(65536 / (65536 - dropped))
