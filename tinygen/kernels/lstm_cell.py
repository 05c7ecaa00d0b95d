"""The LSTM cell: its fused pointwise part, forward and one-pass backward, and a reference beside it.

The layer that runs this cell over a sequence (with hand-written BPTT) is
``tinygen/kernels/lstm_layer.py``; the public ``lstm`` and ``lstm_cell`` are in
``tinygen/kernels/lstm.py``.

Notation (PyTorch's): batch N, hidden size H. The four gates sit side by side along dim 1 of
``gates`` in PyTorch's order i, f, g, o, so ``gates`` is ``(N, 4H)`` for an ``nn.LSTM``, or
``(N, 4C, *spatial)`` when a convolution computes them (PixelRNN's Row LSTM): the pointwise
cell only cares about dim 1.

**Forward** (one step; ``s`` = sigmoid; ``gates = x @ W_ih^T + b_ih + h_prev @ W_hh^T + b_hh``)::

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

:func:`cell_forward_reference` and :func:`cell_backward_reference` are these lines as they
read. The tuned versions below compute the same into preallocated arrays, and a test checks
them against the references. On a GPU, each step's forward and backward is one CUDA kernel
(``activate_and_update``, ``cell_backward``), compared with the xp versions by the gpu tests.

**Stability**: ``s(z) = tanh(z/2)/2 + 1/2``, so all four activations come from one tanh
over the ``4H`` block, ``tanh(z * scale) * scale + shift`` with ``scale = (1/2, 1/2, 1, 1/2)``
and ``shift = (1/2, 1/2, 0, 1/2)``; tanh never overflows (``exp(-z)`` does for z < -88 in
float32). Backward recomputes no exp or tanh: the slopes ``a (1 - a)`` of the sigmoids and
``1 - g^2`` of g are both ``scale^2 - (a - shift)^2`` of the saved activations ``a``.

**Why**: the pointwise math is a dozen elementwise ops; fused, it is one node instead of a
dozen, and its backward is one pass.

Derivations and the second derivative: ``docs/kernels/lstm.md``.
"""

from tinygen import backend
from tinygen.autograd.function import Function
from tinygen.errors import ShapeError
from tinygen.ops import elementwise as ew
from tinygen.ops import shape as sh

# ----------------------------------------------------------------------------- reference


def _sigmoid(xp, z):
    """``s(z) = tanh(z/2)/2 + 1/2``: the logistic sigmoid, without an exp that can overflow."""
    return xp.tanh(z / 2) / 2 + 0.5


def cell_forward_reference(xp, gates, c_prev):
    """``(h, c, (i, f, g, o, tanh_c))`` of one step, the module's Forward as it reads."""
    z_i, z_f, z_g, z_o = xp.split(gates, 4, axis=1)
    i, f, g, o = _sigmoid(xp, z_i), _sigmoid(xp, z_f), xp.tanh(z_g), _sigmoid(xp, z_o)
    c = f * c_prev + i * g
    tanh_c = xp.tanh(c)
    return o * tanh_c, c, (i, f, g, o, tanh_c)


def cell_backward_reference(xp, cell, c_prev, grad_h, grad_c):
    """``(dgates, dc_prev)`` of one step, the module's Backward as it reads (Chainer's NumPy LSTM).

    ``cell`` is what :func:`cell_forward_reference` returned last: ``(i, f, g, o, tanh_c)``.
    """
    i, f, g, o, tanh_c = cell
    grad_c_total = grad_c + grad_h * o * (1 - tanh_c * tanh_c)
    grad_gates = [
        grad_c_total * g * i * (1 - i),
        grad_c_total * c_prev * f * (1 - f),
        grad_c_total * i * (1 - g * g),
        grad_h * tanh_c * o * (1 - o),
    ]
    return xp.concatenate(grad_gates, axis=1), grad_c_total * f


# ----------------------------------------------------------------------------- xp version


def scale_and_shift(xp, dtype, ndim):
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


def _activate_and_update(xp, acts, scale, shift, c_prev, c, tanh_c, h):
    """One cell step's forward in place: ``acts`` ``(N, 4, H, ...)`` holds ``z * scale`` (the gate
    pre-activations times :func:`scale_and_shift`'s ``scale``) and becomes the activations
    ``tanh(z * scale) * scale + shift`` (i, f, g, o); then ``c``, ``tanh(c)`` and ``h``."""
    xp.tanh(acts, out=acts)
    acts *= scale
    acts += shift
    cell_update(xp, acts, c_prev, c, tanh_c, h)


def _cell_backward(xp, acts, c_prev, tanh_c, h, grad_h, grad_c, grad_gates, scale_sq, shift, work=None):
    """The fused backward of one step: fills ``grad_gates`` (shaped as ``acts``), returns ``grad_c_prev``.

    ``scale_sq`` and ``shift`` are ``scale**2`` and ``shift`` of :func:`scale_and_shift` (or
    those broadcast to ``acts``'s shape).
    ``work``, when given, is ``(grad_c_prev, slope)``: arrays shaped like ``c_prev`` and ``acts``
    to write into, so that a loop over time allocates nothing (a fresh array of more than
    128 KiB per step costs page faults: glibc maps and unmaps it every time). The result is
    :func:`cell_backward_reference`'s, with the slopes as ``scale^2 - (a - shift)^2``.
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


# ----------------------------------------------------------------------------- CUDA twins
#
# One kernel per step, where the xp versions launch about eight (forward) and fourteen
# (backward). Thread ``i`` owns element ``i`` of the (N, H, *spatial) state, ``block = H *
# prod(spatial)`` elements per image; gate k of it sits at ``acts[(4n + k) * block + i %
# block]`` of the contiguous (N, 4, H, *spatial) activations, in PyTorch's order i, f, g, o.
# The constants are scale_and_shift's: scale (1/2, 1/2, 1, 1/2), shift (1/2, 1/2, 0, 1/2).
_LSTM_PREAMBLE = """
__device__ long long gate_at(long long i, long long block) {
    return 4 * (i / block) * block + i % block;
}
"""
_LSTM_FORWARD_CUDA = """
    const long long at = gate_at(i, block);
    const T a_i = tanh(acts[at]) * (T)0.5 + (T)0.5;
    const T a_f = tanh(acts[at + block]) * (T)0.5 + (T)0.5;
    const T a_g = tanh(acts[at + 2 * block]);
    const T a_o = tanh(acts[at + 3 * block]) * (T)0.5 + (T)0.5;
    acts[at] = a_i;
    acts[at + block] = a_f;
    acts[at + 2 * block] = a_g;
    acts[at + 3 * block] = a_o;
    c = a_f * c_prev + a_i * a_g;
    tanh_c = tanh(c);
    h = a_o * tanh_c;
"""
# The slopes a (1 - a) of the sigmoids and 1 - g^2 of g as scale^2 - (a - shift)^2, and
# dc_total = dc + dh * (o - h * tanh(c)), since o * tanh(c)^2 = h * tanh(c): as _cell_backward.
_LSTM_BACKWARD_CUDA = """
    const long long at = gate_at(i, block);
    const T a_i = acts[at], a_f = acts[at + block], a_g = acts[at + 2 * block], a_o = acts[at + 3 * block];
    const T e = (a_o - h * tanh_c) * grad_h + grad_c;
    grad_gates[at] = e * a_g * ((T)0.25 - (a_i - (T)0.5) * (a_i - (T)0.5));
    grad_gates[at + block] = e * c_prev * ((T)0.25 - (a_f - (T)0.5) * (a_f - (T)0.5));
    grad_gates[at + 2 * block] = e * a_i * ((T)1 - a_g * a_g);
    grad_gates[at + 3 * block] = grad_h * tanh_c * ((T)0.25 - (a_o - (T)0.5) * (a_o - (T)0.5));
    grad_c_prev = e * a_f;
"""

LSTM_FORWARD_KERNEL = backend.CudaSource(
    "T c_prev, int64 block", "T c, T tanh_c, T h, raw T acts", _LSTM_FORWARD_CUDA, "tinygen_lstm_forward",
    _LSTM_PREAMBLE,
)
LSTM_BACKWARD_KERNEL = backend.CudaSource(
    "raw T acts, T c_prev, T tanh_c, T h, T grad_h, T grad_c, int64 block",
    "T grad_c_prev, raw T grad_gates",
    _LSTM_BACKWARD_CUDA,
    "tinygen_lstm_backward",
    _LSTM_PREAMBLE,
)


def _activate_and_update_cuda(acts, scale, shift, c_prev, c, tanh_c, h):
    """:func:`_activate_and_update` as one kernel (CuPy arrays; ``acts`` contiguous)."""
    backend.elementwise(LSTM_FORWARD_KERNEL)(c_prev, c_prev.size // c_prev.shape[0], c, tanh_c, h, acts)


def _cell_backward_cuda(acts, c_prev, tanh_c, h, grad_h, grad_c, grad_gates, scale_sq, shift, work=None):
    """:func:`_cell_backward` as one kernel (CuPy arrays; ``acts``, ``grad_gates`` contiguous)."""
    grad_c_prev = work[0] if work is not None else backend.get_array_module(c_prev).empty_like(c_prev)
    block = c_prev.size // c_prev.shape[0]
    backend.elementwise(LSTM_BACKWARD_KERNEL)(acts, c_prev, tanh_c, h, grad_h, grad_c, block,
                                              grad_c_prev, grad_gates)
    return grad_c_prev


activate_and_update = backend.twin(_activate_and_update, cuda=_activate_and_update_cuda)
cell_backward = backend.twin(_cell_backward, cuda=_cell_backward_cuda)


def pointwise_forward(xp, gates, c_prev):
    """``(h, c, acts, tanh_c)`` of one cell step; ``acts`` is ``(N, 4, H, ...)``: i, f, g, o."""
    scale, shift = scale_and_shift(xp, gates.dtype, gates.ndim)
    acts = _by_gate(gates) * scale
    c, tanh_c, h = xp.empty_like(c_prev), xp.empty_like(c_prev), xp.empty_like(c_prev)
    activate_and_update(acts, scale, shift, c_prev, c, tanh_c, h)
    return h, c, acts, tanh_c


def pointwise_backward(xp, acts, c_prev, tanh_c, h, grad_h, grad_c):
    """``(grad_gates, grad_c_prev)`` of one cell step, ``grad_gates`` shaped ``(N, 4H, ...)``."""
    grad_gates = xp.empty_like(acts)
    scale, shift = scale_and_shift(xp, acts.dtype, acts.ndim - 1)
    grad_c_prev = cell_backward(acts, c_prev, tanh_c, h, grad_h, grad_c, grad_gates, scale * scale, shift)
    return grad_gates.reshape(acts.shape[0], -1, *acts.shape[3:]), grad_c_prev


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


# ----------------------------------------------------------------------------- public function


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
