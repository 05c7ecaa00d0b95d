"""One LSTM layer over a sequence: the input product hoisted out of the loop, and hand-written BPTT.

The cell it runs at each step is ``tinygen/kernels/lstm_cell.py``; the public ``lstm``, which
stacks these layers in one or two directions, is ``tinygen/kernels/lstm.py``.

Notation (PyTorch's): batch N, input size F, hidden size H, sequence length T; ``cell`` is
the pointwise cell of ``lstm_cell.py``.

**Forward**, for t = 1 .. T::

    gates_t = x_t @ W_ih^T + b_ih + b_hh + h_{t-1} @ W_hh^T         (N, 4H)
    h_t, c_t = cell(gates_t, c_{t-1})

**Backward** (backpropagation through time), for t = T .. 1, with ``dh_t`` the gradient from
the output at step t plus what step t + 1 sent back::

    dgates_t, dc_{t-1} = cell's backward at step t, from dh_t and dc_t
    dh_{t-1} = dgates_t @ W_hh (+ the output's gradient at t - 1)
    dx_t = dgates_t @ W_ih
    dW_ih = sum_t dgates_t^T x_t     dW_hh = sum_t dgates_t^T h_{t-1}     db = sum_t sum_n dgates_t

**Projection** (``nn.LSTM(proj_size=P)``): the layer kernels take an optional ``W_hr (P, H)``;
the cell's ``h`` above is then ``r``, and the layer's hidden state is ``h = r @ W_hr^T``
(``(N, P)``); backward feeds ``dr = dh @ W_hr`` to the cell and ``dW_hr = sum_t dh_t^T r_t``.

:func:`layer_reference` is these lines as they read, step by step. The tuned
:func:`layer_forward` and :func:`layer_backward` compute the same with the products
stacked, into preallocated buffers, and a test checks them against it.

**Why**: ``x @ W_ih^T`` for all T steps is one matrix product, so each step does one small
product ``h @ W_hh^T``; the weight gradients are one product each over the stacked steps.

Derivations and BPTT: ``docs/kernels/lstm.md``.
"""

from tinygen import backend
from tinygen.autograd.function import Function
from tinygen.autograd.tensor import Tensor
from tinygen.kernels.lstm_cell import (
    LSTMCellPointwise,
    activate_and_update,
    cell_backward,
    cell_backward_reference,
    cell_forward_reference,
    scale_and_shift,
)
from tinygen.ops import linalg
from tinygen.ops import shape as sh

# ----------------------------------------------------------------------------- reference


def layer_reference(xp, x, h0, c0, w_ih, w_hh, bias, w_hr, grad_out, grad_h_n, grad_c_n):
    """:func:`layer_forward` and :func:`layer_backward` together, as the module's formulas read.

    Every product is made step by step and every weight gradient is a running sum. Returns
    ``(output, h_n, c_n)`` and the gradients of ``(x, h0, c0, w_ih, w_hh, bias, w_hr)``, None
    for a ``bias`` or ``w_hr`` that is None.
    """
    h, c, saved, outputs = h0, c0, [], []
    for t in range(x.shape[0]):
        gates = x[t] @ w_ih.T + h @ w_hh.T
        if bias is not None:
            gates = gates + bias
        r, c_next, cell = cell_forward_reference(xp, gates, c)
        saved.append((h, c, r, cell))
        h, c = (r if w_hr is None else r @ w_hr.T), c_next
        outputs.append(h)
    grad_x, grad_w_ih, grad_w_hh = xp.zeros_like(x), xp.zeros_like(w_ih), xp.zeros_like(w_hh)
    grad_bias = None if bias is None else xp.zeros_like(bias)
    grad_w_hr = None if w_hr is None else xp.zeros_like(w_hr)
    grad_h, grad_c = grad_h_n, grad_c_n
    for t in reversed(range(x.shape[0])):
        h_prev, c_prev, r, cell = saved[t]
        grad_h = grad_h + grad_out[t]
        grad_r = grad_h
        if w_hr is not None:
            grad_w_hr += grad_h.T @ r
            grad_r = grad_h @ w_hr
        grad_gates, grad_c = cell_backward_reference(xp, cell, c_prev, grad_r, grad_c)
        grad_x[t] = grad_gates @ w_ih
        grad_w_ih += grad_gates.T @ x[t]
        grad_w_hh += grad_gates.T @ h_prev
        if bias is not None:
            grad_bias += grad_gates.sum(0)
        grad_h = grad_gates @ w_hh
    grads = (grad_x, grad_h, grad_c, grad_w_ih, grad_w_hh, grad_bias, grad_w_hr)
    return (xp.stack(outputs), h, c), grads


# ----------------------------------------------------------------------------- xp version


def layer_forward(xp, x, h0, c0, w_ih, w_hh, bias, w_hr=None):
    """One LSTM layer over a sequence ``x`` ``(T, N, F)``; ``bias`` is ``b_ih + b_hh`` or None.

    Returns ``hs`` (``(T+1, N, R)``, step 0 is the initial state; R = P with a projection
    ``w_hr`` ``(P, H)``, else H), ``cs`` (``(T+1, N, H)``), ``acts`` (``(T, N, 4, H)``),
    ``tanh_cs`` (``(T, N, H)``) and ``rs`` (``(T, N, H)``, the unprojected ``o * tanh(c)``;
    without a projection it is the view ``hs[1:]``). ``x @ W_ih^T + bias`` is one product
    for all steps (the bias as a column of ``W_ih`` against a column of ones in ``x``). The
    sigmoid gates' ``1/2`` of ``s(z) = tanh(z/2)/2 + 1/2`` is folded into the weights, so a
    step is a product, an add, one tanh over ``4H``, the affine ``* scale + shift`` and the
    cell update (plus ``h = r @ W_hr^T`` with a projection), all into preallocated arrays.
    """
    steps, batch, hidden, out_size = x.shape[0], x.shape[1], w_hh.shape[0] // 4, w_hh.shape[1]
    scale, shift = scale_and_shift(xp, x.dtype, 2)  # (4, 1)
    row_scale = xp.repeat(scale[:, 0], hidden)[:, None]  # (4H, 1): scales the rows of W_ih, W_hh
    flat_x = x.reshape(steps * batch, -1)
    if bias is not None:
        flat_x = xp.concatenate([flat_x, xp.ones((steps * batch, 1), dtype=x.dtype)], axis=1)
        w_ih = xp.concatenate([w_ih, bias[:, None]], axis=1)
    acts = (flat_x @ (w_ih * row_scale).T).reshape(steps, batch, 4, hidden)
    scaled_w_hh_t = xp.ascontiguousarray((w_hh * row_scale).T)
    scale = xp.broadcast_to(scale, (batch, 4, hidden)).copy()  # full size: faster than broadcasting
    shift = xp.broadcast_to(shift, (batch, 4, hidden)).copy()
    hs = xp.empty((steps + 1, batch, out_size), dtype=x.dtype)
    cs = xp.empty((steps + 1, batch, hidden), dtype=x.dtype)
    tanh_cs = xp.empty((steps, batch, hidden), dtype=x.dtype)
    # without a projection the cell writes h = r straight into hs; with one, into rs, then h = r W_hr^T
    rs = hs[1:] if w_hr is None else xp.empty_like(tanh_cs)
    w_hr_t = None if w_hr is None else xp.ascontiguousarray(w_hr.T)
    hs[0], cs[0] = h0, c0
    hidden_gates = xp.empty((batch, 4, hidden), dtype=x.dtype)
    for t in range(steps):
        step = acts[t]
        xp.matmul(hs[t], scaled_w_hh_t, out=hidden_gates.reshape(batch, 4 * hidden))
        step += hidden_gates
        activate_and_update(step, scale, shift, cs[t], cs[t + 1], tanh_cs[t], rs[t])
        if w_hr_t is not None:
            xp.matmul(rs[t], w_hr_t, out=hs[t + 1])
    return hs, cs, acts, tanh_cs, rs


def layer_backward(
    xp, needs, grad_out, grad_h_n, grad_c_n, x, hs, cs, acts, tanh_cs, rs, w_ih, w_hh, w_hr=None
):
    """Backpropagation through time for :func:`layer_forward`, one fused cell backward per step.

    The weight gradients need no loop: ``dW_hh = sum_t dgates_t^T h_{t-1}`` is one product
    of the stacked ``dgates`` with the stacked ``h``, and so are ``dW_ih``, ``dx``, ``db`` and,
    with a projection ``h_t = r_t W_hr^T``, ``dW_hr = sum_t dh_t^T r_t``; the cell then takes
    ``dr_t = dh_t W_hr`` in place of ``dh_t``. Returns the gradients of ``(x, h0, c0, w_ih,
    w_hh, bias, w_hr)``, None where ``needs`` is False (or where ``w_hr`` is None).
    """
    steps, batch, _, hidden = acts.shape
    scale, shift = scale_and_shift(xp, acts.dtype, 2)
    scale_sq = xp.broadcast_to(scale * scale, (batch, 4, hidden)).copy()  # full size: faster than a broadcast
    shift = xp.broadcast_to(shift, (batch, 4, hidden)).copy()
    grad_gates = xp.empty_like(acts)
    grad_h = grad_h_n + grad_out[steps - 1]
    grad_c = grad_c_n
    grad_c_buffers = (xp.empty_like(grad_c_n), xp.empty_like(grad_c_n))  # this step's and the last's
    slope = xp.empty((batch, 4, hidden), dtype=acts.dtype)
    grad_r = grad_h  # without a projection, r = h
    if w_hr is not None:
        grad_hs = xp.empty((steps, batch, w_hr.shape[0]), dtype=acts.dtype)  # dh_t, stacked for dW_hr
        grad_r = xp.empty((batch, hidden), dtype=acts.dtype)
    for t in reversed(range(steps)):
        if t < steps - 1:
            grad_h += grad_out[t]
        if w_hr is not None:
            grad_hs[t] = grad_h
            xp.matmul(grad_h, w_hr, out=grad_r)
        work = (grad_c_buffers[t % 2], slope)
        grad_c = cell_backward(
            acts[t], cs[t], tanh_cs[t], rs[t], grad_r, grad_c, grad_gates[t], scale_sq, shift, work
        )
        xp.matmul(grad_gates[t].reshape(batch, 4 * hidden), w_hh, out=grad_h)
    flat = grad_gates.reshape(steps * batch, 4 * hidden)
    flat_x = x.reshape(steps * batch, -1)
    grad_w_hr = None
    if w_hr is not None and needs[6]:
        grad_w_hr = grad_hs.reshape(steps * batch, -1).T @ rs.reshape(steps * batch, hidden)
    # dW_ih as (x^T dgates)^T: a product 4H wide, not F = 28 narrow; db as ones @ dgates, a
    # matrix-vector product, where NumPy's sum down the columns adds row after row (both
    # faster: benchmarks/RESULTS.md)
    return (
        (flat @ w_ih).reshape(x.shape) if needs[0] else None,
        grad_h,
        grad_c,
        xp.ascontiguousarray((flat_x.T @ flat).T) if needs[3] else None,
        flat.T @ hs[:-1].reshape(steps * batch, hs.shape[2]) if needs[4] else None,
        xp.ones(steps * batch, dtype=acts.dtype) @ flat if needs[5] else None,
        grad_w_hr,
    )


# ----------------------------------------------------------------------------- Functions


class LSTMLayer(Function):
    """A layer, ``(x, h0, c0, W_ih, W_hh, b_ih, b_hh[, W_hr]) -> (output, h_n, c_n)``, as one node.

    The input product for all steps and the BPTT loop are written by hand
    (:func:`layer_forward`, :func:`layer_backward`); ``W_hr`` (or None) is the projection
    ``h_t = (o_t * tanh(c_t)) @ W_hr^T`` of ``nn.LSTM(proj_size=P)``. First order only: its
    backward node :class:`LSTMLayerGrad` refuses to be differentiated again.
    """

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr=None):
        xp = backend.get_array_module(x.data)
        bias = None
        for b in (b_ih, b_hh):
            if b is not None:
                bias = b.data if bias is None else bias + b.data
        w_hr_data = None if w_hr is None else w_hr.data
        hs, cs, acts, tanh_cs, rs = layer_forward(
            xp, x.data, h0.data, c0.data, w_ih.data, w_hh.data, bias, w_hr_data
        )
        ctx.save_for_backward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, hs, cs, acts, tanh_cs, rs)
        return hs[1:], hs[-1], cs[-1]

    @staticmethod
    def backward(ctx, grad_out, grad_h_n, grad_c_n):
        inputs, arrays = ctx.saved_tensors[:8], [t.data for t in ctx.saved_tensors[8:]]
        needs = (*ctx.needs_input_grad, False)[:8]  # W_hr may have been left out of apply
        bias_needed = needs[5] or needs[6]
        flags = (*needs[:5], bias_needed, needs[7])
        # the inputs go in as tensors, so that under create_graph=True the gradients stay attached
        # to them and a second derivative reaches LSTMLayerGrad.backward (and fails loudly)
        grads = iter(LSTMLayerGrad.apply(grad_out, grad_h_n, grad_c_n, flags, *inputs, *arrays))
        grad_x, grad_h0, grad_c0, grad_w_ih, grad_w_hh = [next(grads) if need else None for need in needs[:5]]
        grad_bias = next(grads) if bias_needed else None
        grad_w_hr = next(grads) if needs[7] else None
        grad_b_ih = grad_bias if needs[5] else None
        grad_b_hh = (grad_bias if not needs[5] else Tensor(grad_bias.data.copy())) if needs[6] else None
        grads = (grad_x, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh, grad_w_hr)
        return grads[: len(ctx.needs_input_grad)]


class LSTMLayerGrad(Function):
    """The BPTT of :class:`LSTMLayer` as a node, so that differentiating it again fails loudly.

    Returns only the gradients ``needs`` asks for, in the order ``x, h0, c0, w_ih, w_hh, bias, w_hr``.
    """

    @staticmethod
    def forward(ctx, grad_out, grad_h_n, grad_c_n, needs, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, *arrays):
        xp = backend.get_array_module(x.data)
        w_hr_data = None if w_hr is None else w_hr.data
        grads = layer_backward(
            xp, needs, grad_out.data, grad_h_n.data, grad_c_n.data, x.data, *arrays, w_ih.data, w_hh.data,
            w_hr_data,
        )  # fmt: skip
        return tuple(g for g, need in zip(grads, needs, strict=True) if need)

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError(
            "lstm: the fused sequence kernel (fused=True) has no second derivative; call "
            "lstm(..., fused=False) (or set the module's .fused = False), whose per-step graph "
            "can be differentiated to any order"
        )


# ----------------------------------------------------------------------------- the same layer as a graph


def layer_per_step(x, h, c, w_ih, w_hh, b_ih, b_hh, w_hr=None):
    """The same layer as one product and one fused cell per step (differentiable to any order).

    With a projection ``w_hr`` ``(P, H)``, each step's cell output ``r`` becomes ``h = r @ w_hr^T``.
    """
    steps, batch = x.shape[0], x.shape[1]
    bias = b_ih + b_hh if b_ih is not None else None
    flat = sh.reshape(x, steps * batch, x.shape[2])
    input_gates = sh.reshape(linalg.Linear.apply(flat, w_ih, bias), steps, batch, w_hh.shape[0])
    outputs = []
    for t in range(input_gates.shape[0]):
        gates = input_gates[t] + linalg.MatMul.apply(h, w_hh, False, True)
        h, c = LSTMCellPointwise.apply(gates, c)
        if w_hr is not None:
            h = linalg.MatMul.apply(h, w_hr, False, True)
        outputs.append(h)
    return sh.stack(outputs), h, c
