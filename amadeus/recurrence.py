"""One GRU layer over a whole window, forward and backward, for training.

Autograd through nn.GRU's CPU recurrence records every step: its backward pass makes a weight
gradient per step ([3H, B] x [B, H], a poor shape) and adds it into a [3H, H] buffer, 600 times a
window for three layers. Here only what truly runs in sequence runs per step (the recurrent
product and the gate arithmetic). The input projection, both weight gradients and the input
gradient are each one product over all T*B rows, and the gate derivatives for all steps are
computed at once from what the forward pass kept.

Products run in `dtype`: bfloat16 runs on AMX where the CPU has it, about 4x float32 here. The
gates, the hidden state, the gradients flowing back through time and every sum over steps stay in
float32. In float32 it equals nn.GRU.
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
        # b_hh goes with the recurrent product: n needs it inside its product with r.
        x_low = x.reshape(steps * batch, -1).to(dtype)
        gates_x = torch.addmm(b_ih.to(dtype), x_low, w_ih.to(dtype).T).view(steps, batch, 3 * H)
        w_hh_t, b_hh_low = w_hh.to(dtype).T, b_hh.to(dtype)
        states = x.new_empty(steps + 1, batch, H, dtype=torch.float32)  # h_0 ... h_T
        # The states again in `dtype`, for the products (the same tensor in float32).
        states_low = states if dtype == torch.float32 else torch.empty_like(states, dtype=dtype)
        states[0] = h0
        states_low[0] = h0
        gates_h = x.new_empty(steps, batch, 3 * H, dtype=dtype)  # h_{t-1} @ w_hh.T + b_hh
        rz = x.new_empty(steps, batch, 2 * H, dtype=torch.float32)
        n = x.new_empty(steps, batch, H, dtype=torch.float32)
        for t in range(steps):
            gh = torch.addmm(b_hh_low, states_low[t], w_hh_t, out=gates_h[t])
            torch.add(gates_x[t, :, : 2 * H], gh[:, : 2 * H], out=rz[t]).sigmoid_()
            torch.addcmul(gates_x[t, :, 2 * H :], rz[t, :, :H], gh[:, 2 * H :], out=n[t]).tanh_()
            torch.lerp(n[t], states[t], rz[t, :, H:], out=states[t + 1])  # (1 - z) n + z h
            if states_low is not states:
                states_low[t + 1] = states[t + 1]
        ctx.dtype, ctx.x_dtype = dtype, x.dtype
        ctx.save_for_backward(x_low, w_ih, w_hh, rz, n, gates_h, states, states_low)
        return states[1:]

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        x_low, w_ih, w_hh, rz, n, gates_h, states, states_low = ctx.saved_tensors
        dtype = ctx.dtype
        steps, batch, H = n.shape
        hn = gates_h[..., 2 * H :].float()
        r, z = rz[..., :H], rz[..., H:]
        # How a unit of gradient on h_t reaches each pre-activation of step t.
        to_n = torch.addcmul(torch.ones_like(n), n, n, value=-1).mul_(1 - z)
        coef = n.new_empty(steps, batch, 3 * H)
        torch.mul(to_n, hn, out=coef[..., :H]).mul_(r).mul_(1 - r)  # r
        torch.sub(states[:-1], n, out=coef[..., H : 2 * H]).mul_(z).mul_(1 - z)  # z
        torch.mul(to_n, r, out=coef[..., 2 * H :])  # the recurrent n-gate product
        w_hh_low = w_hh.to(dtype)
        grad_h = grad_out.float().clone()  # becomes the whole gradient of each h_t
        grad_gh = n.new_empty(steps, batch, 3 * H, dtype=dtype)  # of each recurrent product
        wide = n.new_empty(batch, 3, H)  # one step's, in float32: hot in cache
        for t in range(steps - 1, -1, -1):
            torch.mul(coef[t].view(batch, 3, H), grad_h[t, :, None], out=wide)
            grad_gh[t] = wide.view(batch, 3 * H)
            carried = torch.mm(grad_gh[t], w_hh_low)
            if t:
                grad_h[t - 1].add_(carried).addcmul_(grad_h[t], z[t])
        grad_h0 = torch.addcmul(carried.float(), grad_h[0], z[0])
        grad_n_x = grad_h.mul_(to_n)  # the input projection's n gate; r and z as above
        grad_gx = grad_gh.clone()
        grad_gx[..., 2 * H :] = grad_n_x
        flat_gx = grad_gx.view(-1, 3 * H)
        flat_gh = grad_gh.view(-1, 3 * H)
        grad_b_hh = flat_gh.sum(0, dtype=torch.float32)
        grad_b_ih = torch.cat([grad_b_hh[: 2 * H], grad_n_x.view(-1, H).sum(0)])
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.mm(flat_gx, w_ih.to(dtype)).view(steps, batch, -1).to(ctx.x_dtype)
        grad_w_ih = torch.mm(flat_gx.T, x_low).float()
        grad_w_hh = torch.mm(flat_gh.T, states_low[:-1].reshape(-1, H)).float()
        return grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh, None


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """F.dropout, with its mask drawn by `rand_like` (about 3x faster than bernoulli on CPU)."""
    if not training or p == 0:
        return x
    keep = torch.rand_like(x, dtype=torch.float32) >= p
    return x * keep.to(x.dtype).mul_(1 / (1 - p))
