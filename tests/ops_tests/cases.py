"""The op table: one ``OpCase`` per op, in the style of Chainer's ``FunctionTestCase``.

Each case says how to draw inputs (``generate_inputs``), how tinygen computes the op
(``forward``) and how plain NumPy does (``forward_expected``). ``test_op_gradients.py``
runs every case through the same checks: forward against NumPy, ``gradcheck``, and
``gradgradcheck`` where the op supports second order.
"""

import dataclasses
from collections.abc import Callable

import numpy as np
from hypothesis import strategies as st

import tinygen
import tinygen.nn.functional as F
from tinygen.ops.linalg import MatMul
from tinygen.testing import strategies as tst


@dataclasses.dataclass
class OpCase:
    name: str
    generate_inputs: Callable  # hypothesis strategy of a tuple of float64 arrays
    forward: Callable  # tinygen: tensors -> tensor(s)
    forward_expected: Callable | None  # numpy: arrays -> array(s); None: checked elsewhere
    second_order: bool = True


def _arrays(*shapes, **kwargs):
    return st.tuples(*[tst.arrays(s, **kwargs) for s in shapes])


def unary(**kwargs):
    return _arrays(tst.shapes(max_dims=3, max_side=4), **kwargs)


@st.composite
def broadcast_pair(draw, b_kwargs=None, **kwargs):
    shape_a, shape_b = draw(tst.broadcastable_shapes(max_dims=3))
    return draw(tst.arrays(shape_a, **kwargs)), draw(tst.arrays(shape_b, **(b_kwargs or kwargs)))


@st.composite
def with_dim(draw, min_dims=1, **kwargs):
    """(array, dim, keepdim) for reductions along one axis."""
    shape = draw(tst.shapes(min_dims=min_dims, max_dims=3, max_side=4))
    x = draw(tst.arrays(shape, **kwargs))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    return x, dim, draw(st.booleans())


@st.composite
def per_channel(draw):
    """(array, keepdim) of 3 or 4 dims, to sum over all axes but 1 (a convolution's bias gradient)."""
    shape = draw(tst.shapes(min_dims=3, max_dims=4, max_side=4))
    return draw(tst.arrays(shape)), draw(st.booleans())


@st.composite
def matmul_pair(draw):
    n, k, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["2d", "batched", "broadcast", "vec_mat", "mat_vec", "vec_vec"]))
    shapes = {
        "2d": ((n, k), (k, m)),
        "batched": ((2, n, k), (2, k, m)),
        "broadcast": ((3, 1, n, k), (2, k, m)),
        "vec_mat": ((k,), (2, k, m)),
        "mat_vec": ((2, n, k), (k,)),
        "vec_vec": ((k,), (k,)),
    }[kind]
    return tuple(draw(tst.arrays(s)) for s in shapes)


@st.composite
def linear_inputs(draw):
    lead = draw(st.sampled_from([(), (3,), (2, 3)]))
    n_in, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return draw(tst.arrays((*lead, n_in))), draw(tst.arrays((n_out, n_in))), draw(tst.arrays((n_out,)))


@st.composite
def cat_inputs(draw):
    shape = list(draw(tst.shapes(min_dims=1, max_dims=3, max_side=3)))
    dim = draw(st.integers(0, len(shape) - 1))
    arrays = []
    for _ in range(draw(st.integers(1, 3))):
        shape[dim] = draw(st.integers(1, 3))
        arrays.append(draw(tst.arrays(tuple(shape))))
    return dim, arrays


@st.composite
def class_scores(draw, soft=False):
    """(scores (N, C[, d]), targets) with targets class indices or probabilities."""
    n, c = draw(st.integers(1, 4)), draw(st.integers(2, 4))
    extra = draw(st.sampled_from([(), (3,)]))
    scores = draw(tst.arrays((n, c, *extra), min_value=-3, max_value=3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if soft:
        target = rng.random((n, c, *extra))
        return scores, target / target.sum(1, keepdims=True)
    return scores, rng.integers(0, c, (n, *extra))


def _np_softmax(x, axis):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def _np_log_softmax(x, axis):
    shifted = x - x.max(axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis, keepdims=True))


def _np_gather(logp, target):
    return np.take_along_axis(logp, target[:, None, ...], axis=1)[:, 0]


def _np_pad(mode):
    return {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]


SHIFTED = dict(min_value=-1.9, max_value=2.1)

# fmt: off
CASES = [
    # ---------------------------------------------------------------- arithmetic (broadcasting)
    OpCase("add", broadcast_pair(), lambda a, b: a + b, np.add),
    OpCase("sub", broadcast_pair(), lambda a, b: a - b, np.subtract),
    OpCase("mul", broadcast_pair(), lambda a, b: a * b, np.multiply),
    OpCase("div", broadcast_pair(b_kwargs=dict(min_value=0.5, max_value=2.0)), lambda a, b: a / b, np.divide),
    OpCase("pow", broadcast_pair(min_value=0.2, max_value=2.0), lambda a, b: a ** b, np.power),
    OpCase("rsub_scalar", unary(), lambda x: 2.5 - x, lambda x: 2.5 - x),
    OpCase("rdiv_scalar", unary(min_value=0.3), lambda x: 1.5 / x, lambda x: 1.5 / x),
    OpCase("neg", unary(), lambda x: -x, np.negative),
    OpCase("pow_scalar_3", unary(), lambda x: x ** 3, lambda x: x ** 3),
    OpCase("pow_scalar_half", unary(min_value=0.2), lambda x: x ** 0.5, np.sqrt),
    OpCase("pow_scalar_neg", unary(min_value=0.2), lambda x: x ** -1.5, lambda x: x ** -1.5),
    OpCase("rpow", unary(), lambda x: 2.0 ** x, lambda x: 2.0 ** x),
    # ---------------------------------------------------------------- unary math
    OpCase("exp", unary(), tinygen.exp, np.exp),
    OpCase("log", unary(min_value=0.2, max_value=3.0), tinygen.log, np.log),
    OpCase("sqrt", unary(min_value=0.2, max_value=3.0), tinygen.sqrt, np.sqrt),
    OpCase("abs", unary(away_from=(0.0,)), tinygen.abs, np.abs),
    OpCase("tanh", unary(), tinygen.tanh, np.tanh),
    OpCase("sigmoid", unary(min_value=-6, max_value=6), tinygen.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    # ---------------------------------------------------------------- activations
    OpCase("relu", unary(away_from=(0.0,)), F.relu, lambda x: np.maximum(x, 0)),
    OpCase("leaky_relu", unary(away_from=(0.0,)), lambda x: F.leaky_relu(x, 0.2),
           lambda x: np.where(x > 0, x, 0.2 * x)),
    OpCase("elu", unary(away_from=(0.0,)), lambda x: F.elu(x, 1.3),
           lambda x: np.where(x > 0, x, 1.3 * (np.exp(x) - 1))),
    OpCase("softplus", unary(min_value=-5, max_value=5), F.softplus, lambda x: np.log1p(np.exp(x))),
    OpCase("softplus_threshold", unary(away_from=(0.5,)), lambda x: F.softplus(x, beta=2.0, threshold=1.0),
           lambda x: np.where(2 * x > 1, x, np.log1p(np.exp(2 * x)) / 2)),
    OpCase("clamp", unary(away_from=(-0.5, 0.7)), lambda x: tinygen.clamp(x, -0.5, 0.7),
           lambda x: np.clip(x, -0.5, 0.7)),
    OpCase("clamp_min", unary(away_from=(0.1,)), lambda x: x.clamp(min=0.1), lambda x: np.maximum(x, 0.1)),
    # b's range is shifted so that hypothesis's repeated draws never make exact ties (kinks)
    OpCase("maximum", broadcast_pair(b_kwargs=SHIFTED), tinygen.maximum, np.maximum),
    OpCase("minimum", broadcast_pair(b_kwargs=SHIFTED), tinygen.minimum, np.minimum),
    OpCase("where", broadcast_pair(), lambda a, b: tinygen.where(a > 0.3, a, b),
           lambda a, b: np.where(a > 0.3, a, b)),
    OpCase("dropout", unary(), lambda x: F.dropout(x, 0.3, generator=tinygen.Generator(7)), None),
    # ---------------------------------------------------------------- linear algebra
    OpCase("matmul", matmul_pair(), tinygen.matmul, np.matmul),
    *[OpCase(f"matmul_flags_{ta:d}{tb:d}", _arrays((2, 3, 4) if ta else (2, 4, 3), (5, 3) if tb else (3, 5)),
             lambda a, b, ta=ta, tb=tb: MatMul.apply(a, b, ta, tb),
             lambda a, b, ta=ta, tb=tb: (a.swapaxes(-1, -2) if ta else a) @ (b.T if tb else b))
      for ta in (False, True) for tb in (False, True)],
    OpCase("linear", linear_inputs(), F.linear, lambda x, w, b: x @ w.T + b),
    OpCase("linear_no_bias", linear_inputs(), lambda x, w, b: F.linear(x, w), lambda x, w, b: x @ w.T),
    # ---------------------------------------------------------------- reductions
    OpCase("sum_all", unary(), lambda x: x.sum(), np.sum),
    OpCase("sum_dim", with_dim(), lambda x, d, k: x.sum(d, keepdim=k), lambda x, d, k: x.sum(d, keepdims=k)),
    OpCase("sum_dims", unary().filter(lambda a: a[0].ndim >= 2), lambda x: x.sum((0, -1)),
           lambda x: x.sum((0, x.ndim - 1))),
    OpCase("sum_per_channel", per_channel(), lambda x, k: x.sum((0, *range(2, x.ndim)), keepdim=k),
           lambda x, k: x.sum((0, *range(2, x.ndim)), keepdims=k)),
    OpCase("mean_dim", with_dim(), lambda x, d, k: x.mean(d, keepdim=k), lambda x, d, k: x.mean(d, keepdims=k)),
    OpCase("max_all", unary(distinct=True), lambda x: x.max(), np.max),
    OpCase("max_dim", with_dim(distinct=True), lambda x, d, k: x.max(d, keepdim=k).values,
           lambda x, d, k: x.max(d, keepdims=k)),
    OpCase("min_dim", with_dim(distinct=True), lambda x, d, k: x.min(d, keepdim=k)[0],
           lambda x, d, k: x.min(d, keepdims=k)),
    OpCase("var_dim", with_dim().filter(lambda a: a[0].shape[a[1]] > 1),
           lambda x, d, k: x.var(d, keepdim=k), lambda x, d, k: x.var(d, ddof=1, keepdims=k)),
    OpCase("var_biased", unary().filter(lambda a: a[0].size > 1), lambda x: x.var(unbiased=False), np.var),
    OpCase("std_dim", with_dim().filter(lambda a: a[0].shape[a[1]] > 1),
           lambda x, d, k: x.std(d, keepdim=k), lambda x, d, k: x.std(d, ddof=1, keepdims=k)),
    OpCase("logsumexp", with_dim(), lambda x, d, k: x.logsumexp(d, keepdim=k),
           lambda x, d, k: np.log(np.exp(x).sum(d, keepdims=k))),
    OpCase("softmax", with_dim(), lambda x, d, k: F.softmax(x, d), lambda x, d, k: _np_softmax(x, d)),
    OpCase("log_softmax", with_dim(), lambda x, d, k: F.log_softmax(x, d), lambda x, d, k: _np_log_softmax(x, d)),
    # ---------------------------------------------------------------- shape
    OpCase("reshape", unary(), lambda x: x.reshape(-1), lambda x: x.reshape(-1)),
    OpCase("transpose", unary().filter(lambda a: a[0].ndim >= 2), lambda x: x.transpose(0, -1),
           lambda x: np.swapaxes(x, 0, -1)),
    OpCase("permute", unary().filter(lambda a: a[0].ndim == 3), lambda x: x.permute(2, 0, 1),
           lambda x: x.transpose(2, 0, 1)),
    OpCase("flatten", unary().filter(lambda a: a[0].ndim >= 2), lambda x: x.flatten(1),
           lambda x: x.reshape(x.shape[0], -1)),
    OpCase("unsqueeze_squeeze", unary(), lambda x: x.unsqueeze(0).unsqueeze(-1).squeeze(0), lambda x: x[..., None]),
    OpCase("expand", unary().filter(lambda a: a[0].ndim >= 1),
           lambda x: x[..., :1].expand(2, *x.shape[:-1], 3), lambda x: np.broadcast_to(x[..., :1], (2, *x.shape[:-1], 3))),
    OpCase("cat", cat_inputs(), lambda d, xs: tinygen.cat(xs, d), lambda d, xs: np.concatenate(xs, d)),
    OpCase("stack", _arrays((2, 3), (2, 3), (2, 3)), lambda *xs: tinygen.stack(xs, 1), lambda *xs: np.stack(xs, 1)),
    OpCase("split", _arrays((5, 3)), lambda x: x.split([2, 3])[1] * x.split(2)[2].sum(),
           lambda x: x[2:] * x[4:].sum()),
    OpCase("chunk", _arrays((2, 7)), lambda x: tinygen.cat(x.chunk(3, 1)[::-1], 1),
           lambda x: np.concatenate([x[:, 6:], x[:, 3:6], x[:, :3]], 1)),
    OpCase("getitem_basic", _arrays((4, 5, 3)), lambda x: x[1:, ::2, -1], lambda x: x[1:, ::2, -1]),
    OpCase("getitem_none_ellipsis", _arrays((4, 5)), lambda x: x[None, ..., 2], lambda x: x[None, ..., 2]),
    OpCase("getitem_repeated_indices", _arrays((4, 3)), lambda x: x[[0, 2, 0, 3]] * x[:, [1, 1]].sum(),
           lambda x: x[[0, 2, 0, 3]] * x[:, [1, 1]].sum()),
    OpCase("getitem_mask", _arrays((4, 3)), lambda x: x[x > 0.0] ** 2, lambda x: x[x > 0.0] ** 2),
    *[OpCase(f"pad_{mode}", _arrays((2, 3, 4)), lambda x, m=mode: F.pad(x, (2, 1, 1, 2), mode=m),
             lambda x, m=mode: np.pad(x, ((0, 0), (1, 2), (2, 1)), mode=_np_pad(m)))
      for mode in ("constant", "reflect", "replicate", "circular")],
    OpCase("pad_negative", _arrays((3, 5)), lambda x: F.pad(x, (-1, 2), value=1.5),
           lambda x: np.pad(x[:, 1:], ((0, 0), (0, 2)), constant_values=1.5)),
    # ---------------------------------------------------------------- losses
    OpCase("mse_loss", _arrays((3, 4), (3, 4)), F.mse_loss, lambda a, b: ((a - b) ** 2).mean()),
    OpCase("binary_cross_entropy", _arrays((3, 4), (3, 4), min_value=0.05, max_value=0.95),
           F.binary_cross_entropy, lambda p, t: -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean()),
    OpCase("bce_with_logits", _arrays((3, 4), (3, 4), min_value=-3, max_value=3),
           lambda x, t: F.binary_cross_entropy_with_logits(x, t.sigmoid()),
           lambda x, t: np.mean(np.log1p(np.exp(x)) - x / (1 + np.exp(-t)))),
    OpCase("bce_with_logits_pos_weight", _arrays((3, 4), (3, 4), (4,), min_value=0.1, max_value=3),
           lambda x, t, w: F.binary_cross_entropy_with_logits(x, t / 3, reduction="sum", pos_weight=w), None),
    OpCase("cross_entropy", class_scores(), lambda x, t: F.cross_entropy(x, t),
           lambda x, t: -_np_gather(_np_log_softmax(x, 1), t).mean(), second_order=True),
    OpCase("cross_entropy_weight_ignore_smooth", class_scores(),
           lambda x, t: F.cross_entropy(x, tinygen.where(t == 0, -100, t),
                                        weight=tinygen.tensor(np.linspace(0.5, 1.5, x.shape[1])),
                                        label_smoothing=0.2, reduction="sum"), None),
    OpCase("cross_entropy_soft", class_scores(soft=True), lambda x, t: F.cross_entropy(x, t),
           lambda x, t: -(_np_log_softmax(x, 1) * t).sum(1).mean()),
    OpCase("nll_loss", class_scores(), lambda x, t: F.nll_loss(x, t, reduction="none"),
           lambda x, t: -_np_gather(x, t)),
    OpCase("kl_div", _arrays((3, 4), (3, 4), min_value=0.1, max_value=1.0),
           lambda x, t: F.kl_div(x.log(), t, reduction="batchmean"),
           lambda x, t: (t * (np.log(t) - np.log(x))).sum() / 3),
    OpCase("gaussian_kl", _arrays((3, 4), (3, 4)), F.gaussian_kl,
           lambda m, lv: -0.5 * (1 + lv - m ** 2 - np.exp(lv)).sum()),
]
# fmt: on
