"""LSTM kernels: the fused pointwise cell, one cell step, and a whole layer with hand-written BPTT.

The multi-layer, bidirectional sequence driver ``lstm`` that runs these layers is in
``tinygen/kernels/lstm.py``.

Notation (PyTorch's): batch N, input size F, hidden size H, sequence length T. The four
gates sit side by side along dim 1 of ``gates`` in PyTorch's order i, f, g, o, so
``gates`` is ``(N, 4H)`` for an ``nn.LSTM``, or ``(N, 4C, *spatial)`` when a convolution
computes them (PixelRNN's Row LSTM): the pointwise cell only cares about dim 1.

**Forward** (one step; ``s`` = sigmoid)::

    gates = x @ W_ih^T + b_ih + h_prev @ W_hh^T + b_hh            (N, 4H)
    i = s(gates_i)   f = s(gates_f)   g = tanh(gates_g)   o = s(gates_o)
    c = f * c_prev + i * g
    h = o * tanh(c)

**Backward** of the pointwise cell, one pass (``dc_total`` is all the gradient reaching c)::

    dc_total = dc + dh * o * (1 - tanh(c)^2)
    dgates_i = dc_total * g      * i (1 - i)
    dgates_f = dc_total * c_prev * f (1 - f)
    dgates_g = dc_total * i      * (1 - g^2)
    dgates_o = dh * tanh(c)      * o (1 - o)
    dc_prev  = dc_total * f

**Stability**: ``s(z) = tanh(z/2)/2 + 1/2``, so all four activations come from one tanh
over the ``4H`` block, ``tanh(z * scale) * scale + shift`` with ``scale = (1/2, 1/2, 1, 1/2)``
and ``shift = (1/2, 1/2, 0, 1/2)``; tanh never overflows (``exp(-z)`` does for z < -88 in
float32). Backward recomputes no exp or tanh: the slopes ``a (1 - a)`` of the sigmoids and
``1 - g^2`` of g are both ``scale^2 - (a - shift)^2`` of the saved activations ``a``.

**Why**: the pointwise math is a dozen elementwise ops; fused, it is one node instead of a
dozen, and its backward is one pass. Over a sequence, ``layer_forward`` computes
``x @ W_ih^T`` for all T steps in one matrix product, so each step does one small product
``h @ W_hh^T``.

**Projection** (``nn.LSTM(proj_size=P)``): the layer kernels take an optional ``W_hr (P, H)``;
the cell's ``h`` above is then ``r``, and the layer's hidden state is ``h = r @ W_hr^T``
(``(N, P)``); backward feeds ``dr = dh @ W_hr`` to the cell and ``dW_hr = sum_t dh_t^T r_t``.

Derivations, BPTT and the second derivative: ``docs/kernels/lstm.md``.
"""

from tinygen import backend
from tinygen.autograd.function import Function
from tinygen.autograd.tensor import Tensor
from tinygen.errors import DTypeError, ShapeError
from tinygen.ops import elementwise as ew
from tinygen.ops import linalg
from tinygen.ops import shape as sh

# ----------------------------------------------------------------------------- xp version


def _scale_and_shift(xp, dtype, ndim):
    """``scale`` and ``shift`` of the four gates, shaped to broadcast over ``(N, 4, H, *spatial)``."""
    index = (slice(None),) + (None,) * (ndim - 1)
    scale = xp.asarray([0.5, 0.5, 1.0, 0.5], dtype=dtype)[index]
    shift = xp.asarray([0.5, 0.5, 0.0, 0.5], dtype=dtype)[index]
    return scale, shift


def _by_gate(array):
    """``(N, 4H, *spatial)`` viewed as ``(N, 4, H, *spatial)``: ``array[:, k]`` is gate k."""
    return array.reshape(array.shape[0], 4, array.shape[1] // 4, *array.shape[2:])


def cell_update(xp, acts, c_prev, c, tanh_c, h):
    """From the activations ``acts`` ``(N, 4, H, ...)``, write ``c``, ``tanh(c)`` and ``h`` in place."""
    i, f, g, o = acts[:, 0], acts[:, 1], acts[:, 2], acts[:, 3]
    xp.multiply(f, c_prev, out=c)
    xp.multiply(i, g, out=tanh_c)  # tanh_c holds i * g for a moment: no temporary array
    c += tanh_c
    xp.tanh(c, out=tanh_c)
    xp.multiply(o, tanh_c, out=h)


def cell_backward(xp, acts, c_prev, tanh_c, h, grad_h, grad_c, grad_gates, scale_sq, shift, work=None):
    """The fused backward of one step: fills ``grad_gates`` (shaped as ``acts``), returns ``grad_c_prev``.

    ``scale_sq`` and ``shift`` are ``scale**2`` and ``shift`` of :func:`_scale_and_shift` (or
    those broadcast to ``acts``'s shape).
    ``work``, when given, is ``(grad_c_prev, slope)``: arrays shaped like ``c_prev`` and ``acts``
    to write into, so that a loop over time allocates nothing (a fresh array of more than
    128 KiB per step costs page faults: glibc maps and unmaps it every time).
    """
    i, f, g, o = acts[:, 0], acts[:, 1], acts[:, 2], acts[:, 3]
    grad_c_total, slope = work if work is not None else (xp.empty_like(c_prev), xp.empty_like(acts))
    xp.multiply(h, tanh_c, out=grad_c_total)  # dc_total = dc + dh * o (1 - tanh_c^2); o tanh_c^2 = h tanh_c
    xp.subtract(o, grad_c_total, out=grad_c_total)
    grad_c_total *= grad_h
    grad_c_total += grad_c
    xp.multiply(grad_c_total, g, out=grad_gates[:, 0])
    xp.multiply(grad_c_total, c_prev, out=grad_gates[:, 1])
    xp.multiply(grad_c_total, i, out=grad_gates[:, 2])
    xp.multiply(grad_h, tanh_c, out=grad_gates[:, 3])
    # the slopes s (1 - s) of the sigmoids and 1 - g^2 of g are both scale^2 - (a - shift)^2
    xp.subtract(acts, shift, out=slope)
    slope *= slope
    xp.subtract(scale_sq, slope, out=slope)
    grad_gates *= slope
    grad_c_total *= f
    return grad_c_total


def pointwise_forward(xp, gates, c_prev):
    """``(h, c, acts, tanh_c)`` of one cell step; ``acts`` is ``(N, 4, H, ...)``: i, f, g, o."""
    scale, shift = _scale_and_shift(xp, gates.dtype, gates.ndim)
    acts = _by_gate(gates) * scale
    xp.tanh(acts, out=acts)
    acts *= scale
    acts += shift
    c, tanh_c, h = xp.empty_like(c_prev), xp.empty_like(c_prev), xp.empty_like(c_prev)
    cell_update(xp, acts, c_prev, c, tanh_c, h)
    return h, c, acts, tanh_c


def pointwise_backward(xp, acts, c_prev, tanh_c, h, grad_h, grad_c):
    """``(grad_gates, grad_c_prev)`` of one cell step, ``grad_gates`` shaped ``(N, 4H, ...)``."""
    grad_gates = xp.empty_like(acts)
    scale, shift = _scale_and_shift(xp, acts.dtype, acts.ndim - 1)
    grad_c_prev = cell_backward(xp, acts, c_prev, tanh_c, h, grad_h, grad_c, grad_gates, scale * scale, shift)
    return grad_gates.reshape(acts.shape[0], -1, *acts.shape[3:]), grad_c_prev


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
    scale, shift = _scale_and_shift(xp, x.dtype, 2)  # (4, 1)
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
        xp.tanh(step, out=step)
        step *= scale
        step += shift
        cell_update(xp, step, cs[t], cs[t + 1], tanh_cs[t], rs[t])
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
    scale, shift = _scale_and_shift(xp, acts.dtype, 2)
    scale_sq = xp.broadcast_to(
        scale * scale, (batch, 4, hidden)
    ).copy()  # full size: faster than broadcasting
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
            xp, acts[t], cs[t], tanh_cs[t], rs[t], grad_r, grad_c, grad_gates[t], scale_sq, shift, work
        )
        xp.matmul(grad_gates[t].reshape(batch, 4 * hidden), w_hh, out=grad_h)
    flat = grad_gates.reshape(steps * batch, 4 * hidden)
    flat_x = x.reshape(steps * batch, -1)
    grad_w_hr = None
    if w_hr is not None and needs[6]:
        grad_w_hr = grad_hs.reshape(steps * batch, -1).T @ rs.reshape(steps * batch, hidden)
    # dW_ih as (x^T dgates)^T: a product 4H wide, not F = 28 narrow; db as ones @ dgates, a
    # matrix-vector product, where NumPy's sum down the columns adds row after row (hidden
    # 256, 1 thread: 1.72 -> 1.43-1.59 ms and 0.18 -> 0.09 ms)
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


class LSTMCellPointwise(Function):
    """``(h, c)`` from ``(gates, c_prev)``; backward is :class:`LSTMCellPointwiseGrad`, one fused pass."""

    @staticmethod
    def forward(ctx, gates, c_prev):
        xp = backend.get_array_module(gates.data)
        h, c, acts, tanh_c = pointwise_forward(xp, gates.data, c_prev.data)
        ctx.save_for_backward(gates, c_prev, acts, tanh_c, h)
        return h, c

    @staticmethod
    def backward(ctx, grad_h, grad_c):
        gates, c_prev, acts, tanh_c, h = ctx.saved_tensors
        return LSTMCellPointwiseGrad.apply(gates, c_prev, grad_h, grad_c, acts.data, tanh_c.data, h.data)


class LSTMCellPointwiseGrad(Function):
    """``(dgates, dc_prev)`` from ``(gates, c_prev, dh, dc)``: the fused backward as its own node.

    Its own backward (second order) is written with differentiable ops from the inputs, so
    every higher order works too. With upstream gradients ``a_i, a_f, a_g, a_o`` (of
    dgates) and ``a_cp`` (of dc_prev), the VJP is (``di = i (1 - i)`` etc., ``e = dc_total``)::

        e_bar  = a_i g di + a_f c_prev df + a_g i dg + a_cp f      -> grad of dc
        c_bar  = (a_o dh do - 2 e_bar dh o tanh_c) (1 - tanh_c^2)
        dgates_i_bar = (a_i e g (1 - 2i) + a_g e dg + c_bar g) di
        dgates_f_bar = (a_f e c_prev (1 - 2f) + a_cp e + c_bar c_prev) df
        dgates_g_bar = (a_i e di - 2 a_g e i g + c_bar i) dg
        dgates_o_bar = (a_o dh tanh_c (1 - 2o) + e_bar dh (1 - tanh_c^2)) do
        c_prev_bar   = a_f e df + c_bar f
        dh_bar       = a_o tanh_c do + e_bar o (1 - tanh_c^2)
    """

    @staticmethod
    def forward(ctx, gates, c_prev, grad_h, grad_c, acts, tanh_c, h):
        ctx.save_for_backward(gates, c_prev, grad_h, grad_c)
        xp = backend.get_array_module(acts)
        return pointwise_backward(xp, acts, c_prev.data, tanh_c, h, grad_h.data, grad_c.data)

    @staticmethod
    def backward(ctx, up_gates, up_c_prev):
        gates, c_prev, grad_h, grad_c = ctx.saved_tensors
        z_i, z_f, z_g, z_o = sh.split(gates, gates.shape[1] // 4, dim=1)
        i, f, g, o = ew.sigmoid(z_i), ew.sigmoid(z_f), ew.tanh(z_g), ew.sigmoid(z_o)
        tanh_c = ew.tanh(f * c_prev + i * g)
        d_i, d_f, d_g, d_o, d_tc = i * (1 - i), f * (1 - f), 1 - g * g, o * (1 - o), 1 - tanh_c * tanh_c
        e = grad_c + grad_h * o * d_tc
        a_i, a_f, a_g, a_o = sh.split(up_gates, gates.shape[1] // 4, dim=1)
        e_bar = a_i * g * d_i + a_f * c_prev * d_f + a_g * i * d_g + up_c_prev * f
        c_bar = (a_o * grad_h * d_o - 2 * e_bar * grad_h * o * tanh_c) * d_tc
        needs = ctx.needs_input_grad
        grad_gates = grad_c_prev = grad_grad_h = None
        if needs[0]:
            grad_gates = sh.cat(
                [
                    (a_i * e * g * (1 - 2 * i) + a_g * e * d_g + c_bar * g) * d_i,
                    (a_f * e * c_prev * (1 - 2 * f) + up_c_prev * e + c_bar * c_prev) * d_f,
                    (a_i * e * d_i - 2 * a_g * e * i * g + c_bar * i) * d_g,
                    (a_o * grad_h * tanh_c * (1 - 2 * o) + e_bar * grad_h * d_tc) * d_o,
                ],
                dim=1,
            )
        if needs[1]:
            grad_c_prev = a_f * e * d_f + c_bar * f
        if needs[2]:
            grad_grad_h = a_o * tanh_c * d_o + e_bar * o * d_tc
        return grad_gates, grad_c_prev, grad_grad_h, e_bar if needs[3] else None, None, None, None


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


# ----------------------------------------------------------------------------- public functions


def lstm_cell_pointwise(gates, c_prev):
    """The LSTM cell's elementwise part: ``(h, c)`` from gate pre-activations and the old cell state.

    **Shapes**: ``gates`` is ``(N, 4H, *spatial)`` with blocks i, f, g, o along dim 1
    (PyTorch's order); ``c_prev``, ``h`` and ``c`` are ``(N, H, *spatial)``. Works for any
    ``*spatial``, so a convolution can compute ``gates`` (PixelRNN's Row LSTM).

    **Forward**: ``c = s(gates_f) c_prev + s(gates_i) tanh(gates_g)``, ``h = s(gates_o) tanh(c)``.
    **Backward**: one fused pass (module doc), as its own node; differentiable to any order.
    **Why**: one node instead of about twelve. See ``docs/kernels/lstm.md``.
    """
    if gates.ndim < 2 or gates.shape[1] % 4:
        raise ShapeError(f"lstm_cell_pointwise: gates.shape is {gates.shape}, expected (N, 4H, *spatial)")
    expected = (gates.shape[0], gates.shape[1] // 4, *gates.shape[2:])
    if c_prev.shape != expected:
        raise ShapeError(f"lstm_cell_pointwise: c_prev.shape is {c_prev.shape}, expected {expected}")
    return LSTMCellPointwise.apply(gates, c_prev)


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):  # noqa: A002  (PyTorch's names)
    """One LSTM step: ``(h, c)`` from ``input`` and ``hx = (h_prev, c_prev)`` (zeros when None).

    **Shapes**: ``input (N, F)`` or ``(F,)``; ``h_prev, c_prev (N, H)`` or ``(H,)``;
    ``w_ih (4H, F)``, ``w_hh (4H, H)``, ``b_ih, b_hh (4H,)``, gates in order i, f, g, o.

    **Forward**: ``gates = input @ w_ih^T + b_ih + h_prev @ w_hh^T + b_hh``, then
    :func:`lstm_cell_pointwise`. **Backward**: the products' and the fused cell's.
    **Why**: PyTorch's ``LSTMCell``, built from two ``linear`` and one fused node.
    """
    if input.ndim not in (1, 2) or w_ih.ndim != 2 or input.shape[-1] != w_ih.shape[1]:
        raise ShapeError(
            f"lstm_cell: input.shape is {input.shape}, expected (N, F) or (F,) with F = w_ih.shape[1], "
            f"w_ih.shape = {w_ih.shape}"
        )
    _check_weights("lstm_cell", input, w_ih, w_hh, b_ih, b_hh, "w_ih", "w_hh", "b_ih", "b_hh")
    hidden = w_hh.shape[1]
    batched = input.ndim == 2
    if not batched:
        input = sh.unsqueeze(input, 0)  # noqa: A001
    state_shape = (input.shape[0], hidden) if batched else (hidden,)
    h_prev, c_prev = _initial_state("lstm_cell", hx, state_shape, input, ("hx[0]", "hx[1]"))
    if not batched:
        h_prev, c_prev = sh.unsqueeze(h_prev, 0), sh.unsqueeze(c_prev, 0)
    gates = linalg.Linear.apply(input, w_ih, b_ih) + linalg.Linear.apply(h_prev, w_hh, b_hh)
    h, c = LSTMCellPointwise.apply(gates, c_prev)
    return (h, c) if batched else (sh.squeeze(h, 0), sh.squeeze(c, 0))


def _initial_state(op, hx, shape, like, names, cell_shape=None, hints=("", "")):
    """``hx = (h, c)`` checked against ``shape`` (``cell_shape`` for c, if given), or zeros when None.

    ``hints`` are appended to the two shape messages (what each dim of the expected shape is).
    """
    shapes = (shape, shape if cell_shape is None else cell_shape)
    if hx is None:
        xp = backend.get_array_module(like.data)
        zeros = Tensor(xp.zeros(shape, dtype=like.dtype))
        return zeros, zeros if cell_shape is None else Tensor(xp.zeros(cell_shape, dtype=like.dtype))
    if not isinstance(hx, (tuple, list)) or len(hx) != 2:
        raise TypeError(f"{op}: hx must be a tuple (h, c) or None, got {type(hx).__name__}")
    for name, state, expected, hint in zip(names, hx, shapes, hints, strict=True):
        if state.shape != expected:
            raise ShapeError(f"{op}: {name}.shape is {state.shape}, expected {expected}{hint}")
        if state.dtype != like.dtype:
            raise DTypeError(f"{op}: {name}.dtype is {state.dtype}, expected input's {like.dtype}")
    return tuple(hx)


def _check_weights(op, input, w_ih, w_hh, b_ih, b_hh, *names, w_hr=None):  # noqa: A002
    """Shapes and dtypes of one layer's weights against its input, naming the argument at fault.

    With a projection ``w_hr`` ``(P, H)`` (its name is ``names[4]``), ``w_hh`` must be ``(4H, P)``.
    """
    if w_hr is None:
        hidden = w_hh.shape[-1] if w_hh.ndim == 2 else None
        if w_hh.ndim != 2 or w_hh.shape[0] != 4 * hidden:
            raise ShapeError(f"{op}: {names[1]}.shape is {w_hh.shape}, expected (4*hidden_size, hidden_size)")
    else:
        if w_hr.ndim != 2:
            raise ShapeError(f"{op}: {names[4]}.shape is {w_hr.shape}, expected (proj_size, hidden_size)")
        hidden = w_hr.shape[1]
        if w_hh.shape != (4 * hidden, w_hr.shape[0]):
            raise ShapeError(
                f"{op}: {names[1]}.shape is {w_hh.shape}, expected (4*hidden_size, proj_size) = "
                f"{(4 * hidden, w_hr.shape[0])} for {names[4]}.shape = {w_hr.shape} (proj_size, hidden_size)"
            )
    expected = {
        names[0]: (w_ih, (4 * hidden, input.shape[-1])),
        names[2]: (b_ih, (4 * hidden,)),
        names[3]: (b_hh, (4 * hidden,)),
    }
    for name, (tensor, shape) in expected.items():
        if tensor is None:
            continue
        if tensor.shape != shape:
            raise ShapeError(
                f"{op}: {name}.shape is {tensor.shape}, expected {shape} for input {input.shape}"
            )
    tensors = (w_ih, w_hh, b_ih, b_hh) if w_hr is None else (w_ih, w_hh, b_ih, b_hh, w_hr)
    for name, tensor in zip(names, tensors, strict=True):
        if tensor is not None and tensor.dtype != input.dtype:
            raise DTypeError(f"{op}: {name}.dtype is {tensor.dtype}, expected input's dtype {input.dtype}")
