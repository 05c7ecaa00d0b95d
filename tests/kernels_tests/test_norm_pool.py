"""batch_norm, layer_norm, max/avg pooling and embedding: forward against NumPy, first- and
second-order gradcheck, running statistics, evaluation mode, modules and error messages; the
tuned batch-norm input gradient against the reference beside it."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen
from tinygen import cpu
from tinygen.errors import DTypeError, IndexOutOfRangeError, ShapeError
from tinygen.kernels import batch_norm as batch_norm_kernel
from tinygen.kernels.batch_norm import batch_norm
from tinygen.kernels.embedding import embedding
from tinygen.kernels.layer_norm import layer_norm
from tinygen.kernels.pool import avg_pool2d, max_pool2d, pool_output_size
from tinygen.nn.modules.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from tinygen.nn.modules.pooling import AvgPool2d, MaxPool2d
from tinygen.nn.modules.sparse import Embedding
from tinygen.testing import gradcheck, gradgradcheck
from tinygen.testing import strategies as tst

from .thread_counts import assert_same_at_any_thread_count, needs_openblas


def leaf(array):
    return tinygen.tensor(array, requires_grad=True)


# ----------------------------------------------------------------------------- NumPy references


def np_batch_norm(x, weight, bias, eps=1e-5):
    axes = (0, *range(2, x.ndim))
    kept = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    mean, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight.reshape(kept) + bias.reshape(kept)


def np_layer_norm(x, ndim, weight, bias, eps=1e-5):
    axes = tuple(range(x.ndim - ndim, x.ndim))
    mean, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def np_pool(x, kernel, stride, padding, dilation, ceil_mode, reduce_window):
    """Pixel by pixel (test code only): ``reduce_window(values, n_real, n_padded)`` per window."""
    n, c, height, width = x.shape
    out_h = pool_output_size(height, kernel, stride, padding, dilation, ceil_mode)
    out_w = pool_output_size(width, kernel, stride, padding, dilation, ceil_mode)
    y = np.empty((n, c, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            rows = [i * stride - padding + dilation * u for u in range(kernel)]
            cols = [j * stride - padding + dilation * v for v in range(kernel)]
            in_pad_h = [r for r in rows if r < height + padding]
            in_pad_w = [q for q in cols if q < width + padding]
            real_h = [r for r in rows if 0 <= r < height]
            real_w = [q for q in cols if 0 <= q < width]
            values = x[:, :, real_h][:, :, :, real_w].reshape(n, c, -1)
            y[:, :, i, j] = reduce_window(values, len(real_h) * len(real_w), len(in_pad_h) * len(in_pad_w))
    return y


# ----------------------------------------------------------------------------- strategies


@st.composite
def bn_inputs(draw):
    rank = draw(st.sampled_from([2, 3, 4]))
    n, c = draw(st.integers(2, 3)), draw(st.integers(1, 3))
    shape = (n, c) + tuple(draw(st.integers(1, 3)) for _ in range(rank - 2))
    return draw(tst.arrays(shape)), draw(tst.arrays((c,))), draw(tst.arrays((c,)))


@st.composite
def pool_params(draw, max_pool):
    """(x, kernel, stride, padding, dilation, ceil_mode) that PyTorch accepts."""
    kernel, stride = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.integers(0, kernel // 2))
    dilation = draw(st.integers(1, 2)) if max_pool else 1
    ceil_mode = draw(st.booleans())
    reach = dilation * (kernel - 1) + 1  # at least one window's span, so no window is all padding
    height, width = draw(st.integers(reach, 6)), draw(st.integers(reach, 5))
    x = draw(tst.arrays((2, draw(st.integers(1, 2)), height, width), distinct=max_pool))
    return x, kernel, stride, padding, dilation, ceil_mode


# ----------------------------------------------------------------------------- batch norm


@given(bn_inputs())
def test_batch_norm_training(inputs):
    x, w, b = inputs
    y = batch_norm(leaf(x), None, None, leaf(w), leaf(b), training=True)
    np.testing.assert_allclose(y.numpy(), np_batch_norm(x, w, b), rtol=1e-10, atol=1e-12)

    def fn(x, w, b):
        return batch_norm(x, None, None, w, b, training=True)

    assert gradcheck(fn, [leaf(x), leaf(w), leaf(b)])
    assert gradgradcheck(fn, [leaf(x), leaf(w), leaf(b)])


@given(bn_inputs())
def test_batch_norm_without_affine(inputs):
    x, _, _ = inputs
    assert gradgradcheck(lambda x: batch_norm(x, None, None, training=True), [leaf(x)])


@given(bn_inputs())
def test_batch_norm_eval(inputs):
    x, w, b = inputs
    mean, var = tinygen.tensor(w * 0.5), tinygen.tensor(np.abs(b) + 0.5)
    y = batch_norm(leaf(x), mean, var, leaf(w), leaf(b), training=False)
    kept = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    expected = (x - mean.numpy().reshape(kept)) / np.sqrt(var.numpy().reshape(kept) + 1e-5) * w.reshape(
        kept
    ) + b.reshape(kept)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)

    def fn(x, w, b):
        return batch_norm(x, mean, var, w, b, training=False)

    assert gradgradcheck(fn, [leaf(x), leaf(w), leaf(b)])


def test_batch_norm_third_order():
    """The fused BatchNormGrad is differentiable again: check the second-order map's backward."""
    rng = np.random.default_rng(0)
    x, w = leaf(rng.standard_normal((3, 2, 2))), leaf(rng.standard_normal(2))
    v = tinygen.tensor(rng.standard_normal((3, 2, 2)))

    def first(x, w):
        y = batch_norm(x, None, None, w, None, training=True)
        return tinygen.grad((y * y * y * v).sum(), [x, w], create_graph=True)

    assert gradgradcheck(first, [x, w])


def test_batch_norm_running_stats():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 2, 2))
    mean, var = tinygen.tensor(np.full(3, 0.5)), tinygen.tensor(np.full(3, 2.0))
    batch_norm(tinygen.tensor(x), mean, var, training=True, momentum=0.3)
    np.testing.assert_allclose(mean.numpy(), 0.7 * 0.5 + 0.3 * x.mean((0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(var.numpy(), 0.7 * 2.0 + 0.3 * x.var((0, 2, 3), ddof=1), rtol=1e-12)


def test_batch_norm_keeps_float32():
    x = tinygen.tensor(
        np.random.default_rng(2).standard_normal((4, 3, 2, 2)).astype(np.float32), requires_grad=True
    )
    w = tinygen.tensor(np.ones(3, np.float32), requires_grad=True)
    mean, var = tinygen.zeros(3), tinygen.ones(3)
    y = batch_norm(x, mean, var, w, None, training=True)
    y.sum().backward()
    assert y.dtype == x.grad.dtype == w.grad.dtype == mean.dtype == np.float32
    assert batch_norm(x, mean, var, w, None).dtype == np.float32


def test_batchnorm_module_buffers_and_modes():
    rng = np.random.default_rng(3)
    bn = BatchNorm2d(3, momentum=None)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    batches = [rng.standard_normal((2, 3, 2, 2)).astype(np.float32) for _ in range(3)]
    for batch in batches:
        bn(tinygen.tensor(batch))
    assert bn.num_batches_tracked.item() == 3 and bn.num_batches_tracked.dtype == np.int64
    means = np.mean([b.mean((0, 2, 3)) for b in batches], 0)  # momentum=None: cumulative average
    np.testing.assert_allclose(bn.running_mean.numpy(), means, rtol=1e-5, atol=1e-6)
    bn.eval()
    x = batches[0]
    expected = (x - means.reshape(1, 3, 1, 1)) / np.sqrt(bn.running_var.numpy().reshape(1, 3, 1, 1) + 1e-5)
    np.testing.assert_allclose(bn(tinygen.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-5)
    untracked = BatchNorm1d(3, affine=False, track_running_stats=False).eval()
    assert list(untracked.state_dict()) == []
    x = rng.standard_normal((5, 3))
    np.testing.assert_allclose(
        untracked(tinygen.tensor(x)).numpy(), np_batch_norm(x, np.ones(3), np.zeros(3))
    )


def test_batchnorm_module_checks_rank():
    with pytest.raises(ShapeError, match=r"BatchNorm2d: expected 4D input, got shape \(2, 3\)"):
        BatchNorm2d(3)(tinygen.zeros(2, 3))
    with pytest.raises(ShapeError, match="BatchNorm1d: expected 2D or 3D input"):
        BatchNorm1d(3)(tinygen.zeros(2, 3, 4, 4))


def test_batch_norm_errors_name_arguments():
    x = tinygen.zeros(4, 3, 2)
    with pytest.raises(
        ShapeError, match=r"running_mean.shape is \(4,\), expected \(input.shape\[1\],\) = \(3,\)"
    ):
        batch_norm(x, tinygen.zeros(4), tinygen.ones(3), training=True)
    with pytest.raises(ShapeError, match=r"weight.shape is \(2,\)"):
        batch_norm(x, None, None, tinygen.ones(2), training=True)
    with pytest.raises(TypeError, match="momentum must be a number, got None"):
        batch_norm(x, tinygen.zeros(3), tinygen.ones(3), training=True, momentum=None)
    with pytest.raises(ValueError, match="must be given when training=False"):
        batch_norm(x, None, None)
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*\(1, 3\)"):
        batch_norm(tinygen.zeros(1, 3), None, None, training=True)


# ----------------------------------------------------------------------------- layer norm


@st.composite
def ln_inputs(draw):
    shape = draw(tst.shapes(min_dims=1, max_dims=3, max_side=4))
    ndim = draw(st.integers(1, len(shape)))
    shape = shape if int(np.prod(shape[len(shape) - ndim :])) > 1 else shape[:-1] + (2,)
    normalized = shape[len(shape) - ndim :]
    return draw(tst.arrays(shape)), ndim, draw(tst.arrays(normalized)), draw(tst.arrays(normalized))


@given(ln_inputs())
def test_layer_norm(inputs):
    x, ndim, w, b = inputs
    normalized = x.shape[x.ndim - ndim :]
    y = layer_norm(leaf(x), normalized, leaf(w), leaf(b))
    np.testing.assert_allclose(y.numpy(), np_layer_norm(x, ndim, w, b), rtol=1e-10, atol=1e-12)

    def fn(x, w, b):
        return layer_norm(x, normalized, w, b)

    assert gradcheck(fn, [leaf(x), leaf(w), leaf(b)])
    assert gradgradcheck(fn, [leaf(x), leaf(w), leaf(b)])
    assert gradgradcheck(lambda x: layer_norm(x, normalized), [leaf(x)])


def test_layer_norm_module_and_errors():
    ln = LayerNorm((2, 3))
    assert list(ln.state_dict()) == ["weight", "bias"]
    assert ln(tinygen.randn(4, 2, 3)).shape == (4, 2, 3)
    with pytest.raises(ShapeError, match=r"input.shape is \(4, 3, 2\), expected its last 2 dims.*\(2, 3\)"):
        ln(tinygen.zeros(4, 3, 2))
    with pytest.raises(ShapeError, match=r"weight.shape is \(2,\), expected normalized_shape = \(3,\)"):
        layer_norm(tinygen.zeros(4, 3), 3, tinygen.ones(2))


# ----------------------------------------------------------------------------- pooling


@given(pool_params(max_pool=True))
def test_max_pool(params):
    x, kernel, stride, padding, dilation, ceil_mode = params
    y, indices = max_pool2d(leaf(x), kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    expected = np_pool(x, kernel, stride, padding, dilation, ceil_mode, lambda v, real, padded: v.max(-1))
    np.testing.assert_array_equal(y.numpy(), expected)
    flat = x.reshape(*x.shape[:2], -1)
    picked = np.take_along_axis(flat, indices.numpy().reshape(*x.shape[:2], -1), -1)
    np.testing.assert_array_equal(picked.reshape(y.shape), expected)

    def fn(x):
        return max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)

    assert gradcheck(fn, [leaf(x)])
    assert gradgradcheck(fn, [leaf(x)])


@given(pool_params(max_pool=False), st.booleans(), st.sampled_from([None, 2]))
def test_avg_pool(params, count_include_pad, divisor_override):
    x, kernel, stride, padding, _, ceil_mode = params

    def average(values, real, padded):
        divisor = divisor_override or (padded if count_include_pad else real)
        return values.sum(-1) / divisor

    def fn(x):
        return avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)

    expected = np_pool(x, kernel, stride, padding, 1, ceil_mode, average)
    np.testing.assert_allclose(fn(leaf(x)).numpy(), expected, rtol=1e-12, atol=1e-12)
    assert gradcheck(fn, [leaf(x)])
    assert gradgradcheck(fn, [leaf(x)])


def test_pool_unbatched_dtype_and_modules():
    x = tinygen.randn(3, 6, 6)
    assert max_pool2d(x, 2).shape == (3, 3, 3) and max_pool2d(x, 2).dtype == np.float32
    values, indices = max_pool2d(x, 2, return_indices=True)
    assert values.shape == indices.shape == (3, 3, 3) and indices.dtype == np.int64
    assert avg_pool2d(x, 3, 2, 1).shape == (3, 3, 3) and avg_pool2d(x, 2).dtype == np.float32
    assert repr(MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(AvgPool2d(3, 2, 1)) == "AvgPool2d(kernel_size=3, stride=2, padding=1)"
    assert MaxPool2d(2, return_indices=True)(x)[1].dtype == np.int64


def test_pool_errors_name_arguments():
    x = tinygen.zeros(1, 1, 4, 4)
    with pytest.raises(
        ShapeError, match=r"max_pool2d: padding \(2, 2\) must be at most half of kernel_size \(3, 3\)"
    ):
        max_pool2d(x, 3, padding=2)
    with pytest.raises(ShapeError, match=r"avg_pool2d: input of spatial size \(4, 4\) is too small"):
        avg_pool2d(x, 5)
    with pytest.raises(ShapeError, match=r"input must be \(N, C, H, W\) or \(C, H, W\), got shape \(4, 4\)"):
        max_pool2d(tinygen.zeros(4, 4), 2)
    with pytest.raises(ShapeError, match="kernel_size must be an int or a pair of ints"):
        max_pool2d(x, (1, 2, 3))
    with pytest.raises(ValueError, match="divisor_override must be a non-zero int"):
        avg_pool2d(x, 2, divisor_override=0)


# ----------------------------------------------------------------------------- embedding


@given(st.integers(2, 6), st.integers(1, 3), st.sampled_from([None, 0, -1]), st.integers(0, 2**16))
def test_embedding(num, dim, padding_idx, seed):
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((num, dim))
    index = tinygen.tensor(rng.integers(0, num, (3, 4)))  # with repeats, so rows accumulate
    out = embedding(index, leaf(weight), padding_idx)
    np.testing.assert_array_equal(out.numpy(), weight[index.numpy()])

    def fn(w):
        return embedding(index, w, padding_idx) ** 2

    if padding_idx is None:  # with it, the padding row's gradient is 0 by convention, not by calculus
        assert gradcheck(fn, [leaf(weight)])
    assert gradgradcheck(fn, [leaf(weight)])  # differentiates the backward as it is, convention included
    w = leaf(weight)
    embedding(index, w, padding_idx).sum().backward()
    counts = np.bincount(index.numpy().ravel(), minlength=num).astype(float)
    if padding_idx is not None:
        counts[padding_idx] = 0  # no gradient to the padding row
    np.testing.assert_array_equal(w.grad.numpy(), np.repeat(counts[:, None], dim, 1))


def test_embedding_module_and_errors():
    emb = Embedding(5, 3, padding_idx=-1)
    assert emb.padding_idx == 4 and repr(emb) == "Embedding(5, 3, padding_idx=4)"
    np.testing.assert_array_equal(emb.weight.numpy()[4], 0)
    assert emb(tinygen.tensor([[0, 4]])).shape == (1, 2, 3)
    with pytest.raises(
        IndexOutOfRangeError, match=r"indices in \[0, 5\], expected \[0, num_embeddings\) = \[0, 5\)"
    ):
        emb(tinygen.tensor([0, 5]))
    with pytest.raises(DTypeError, match="integer indices"):
        emb(tinygen.tensor([0.0]))
    with pytest.raises(ShapeError, match="padding_idx is 5"):
        Embedding(5, 3, padding_idx=5)


def np_renorm(weight, index, max_norm, norm_type):
    """PyTorch's embedding_renorm_, one distinct looked-up row at a time."""
    out = weight.copy()
    for row in np.unique(index):
        norm = np.linalg.norm(weight[row], ord=norm_type)
        if norm > max_norm:
            out[row] = weight[row] * (max_norm / (norm + 1e-7))
    return out


def np_scaled_grad(index, grad_out, num, padding_idx):
    """dweight[r] = sum of grad_out[s] / count[r] over s with index[s] = r; 0 for the padding row."""
    flat = index.ravel()
    counts = np.bincount(flat, minlength=num)  # padding positions counted too, as torch
    ref = np.zeros((num, grad_out.shape[-1]))
    np.add.at(ref, flat, grad_out.reshape(len(flat), -1) / counts[flat][:, None])
    if padding_idx is not None:
        ref[padding_idx] = 0
    return ref


@given(st.integers(2, 6), st.integers(1, 3), st.sampled_from([None, 0, -1]), st.integers(0, 2**16))
def test_embedding_scale_grad_by_freq(num, dim, padding_idx, seed):
    rng = np.random.default_rng(seed)
    weight, index = rng.standard_normal((num, dim)), rng.integers(0, num, (3, 4))
    grad_out = rng.standard_normal((3, 4, dim))
    w = leaf(weight)
    out = embedding(tinygen.tensor(index), w, padding_idx, scale_grad_by_freq=True)
    np.testing.assert_array_equal(out.numpy(), weight[index])
    (out * tinygen.tensor(grad_out)).sum().backward()
    pad_row = None if padding_idx is None else padding_idx % num
    np.testing.assert_allclose(w.grad.numpy(), np_scaled_grad(index, grad_out, num, pad_row), rtol=1e-13)

    def linear(w):  # the backward is C^-1 S dy: its adjoint (second order) must be G C^-1
        return embedding(tinygen.tensor(index), w, padding_idx, scale_grad_by_freq=True) * tinygen.tensor(
            grad_out
        )

    assert gradgradcheck(linear, [leaf(weight)])
    # Each index at most once (and padding_idx None): every count is 1 and the scaled gradient
    # is the true one; with repeats it is deliberately not (it divides by the counts).
    unique = tinygen.tensor(rng.permutation(num)[: min(num, 4)])
    assert gradcheck(lambda w: embedding(unique, w, scale_grad_by_freq=True) ** 2, [leaf(weight)])


def test_embedding_scale_grad_by_freq_counts():
    """Row 2 read three times, row 0 once, the padding row 1 twice: 1/3, 1 and 0."""
    w = leaf(np.zeros((4, 2)))
    embedding(tinygen.tensor([[2, 1, 2], [0, 2, 1]]), w, 1, scale_grad_by_freq=True).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [[1, 1], [0, 0], [1, 1], [0, 0]], rtol=1e-15)
    w = leaf(np.array([[1.0], [2.0], [3.0]]))
    (embedding(tinygen.tensor([2, 2, 0, 2]), w, scale_grad_by_freq=True) ** 2).sum().backward()
    g = w.grad.numpy()  # d/dw of 3 w2^2 + w0^2 is (2 w0, 0, 6 w2), scaled by (1, -, 1/3)
    np.testing.assert_allclose(g, [[2.0], [0.0], [6.0]], rtol=1e-15)


@pytest.mark.parametrize("norm_type", [2.0, 1, np.inf, 3, 0.5, -np.inf])  # p = 0: in the parity tests
@pytest.mark.parametrize("padding_idx", [None, 1])
def test_embedding_max_norm(norm_type, padding_idx):
    rng = np.random.default_rng(7)
    directions = rng.standard_normal((6, 4))
    lengths = np.array([2.5, 3.0, 0.5, 4.0, 0.8, 5.0])  # the p-norm each row gets
    weight = directions / np.linalg.norm(directions, ord=norm_type, axis=1, keepdims=True) * lengths[:, None]
    index = np.array([[1, 2, 1], [4, 0, 1]])  # rows 0, 1 (three times, the padding row) 2, 4; not 3, 5
    max_norm = 1.0
    w = leaf(weight.copy())
    out = embedding(tinygen.tensor(index), w, padding_idx, max_norm, norm_type)
    expected = np_renorm(weight, index, max_norm, norm_type)
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(w.numpy()[[2, 3, 4, 5]], weight[[2, 3, 4, 5]])  # short or not looked up
    renormed = [np.linalg.norm(w.numpy()[r], ord=norm_type) for r in (0, 1)]  # the padding row too
    np.testing.assert_allclose(renormed, max_norm, rtol=1e-6)  # once each, though row 1 is read 3 times
    np.testing.assert_array_equal(out.numpy(), w.numpy()[index])
    # In place and outside the graph: the output's node leads straight to the leaf.
    assert w.grad_fn is None and out.grad_fn.name == "EmbeddingBackward"
    assert out.grad_fn.next_functions[0][0] is w
    out.sum().backward()
    counts = np.bincount(index.ravel(), minlength=6).astype(float)
    if padding_idx is not None:
        counts[padding_idx] = 0
    np.testing.assert_array_equal(w.grad.numpy(), np.repeat(counts[:, None], 4, 1))
    again = w.numpy().copy()
    embedding(tinygen.tensor(index), w, padding_idx, max_norm, norm_type)
    np.testing.assert_array_equal(w.numpy(), again)  # renormalised rows are now short enough


def test_embedding_max_norm_float32_and_no_grad():
    weight = np.array([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]], dtype=np.float32)
    w = tinygen.tensor(weight)  # no grad: renormalised all the same
    with tinygen.no_grad():
        out = embedding(tinygen.tensor([0, 0, 1]), w, max_norm=2)
    assert w.dtype == np.float32 and out.dtype == np.float32
    np.testing.assert_allclose(w.numpy(), [[1.2, 1.6], [0.3, 0.4], [6.0, 8.0]], rtol=1e-6)
    assert out.grad_fn is None


def test_embedding_module_options():
    emb = Embedding(5, 2, padding_idx=0, max_norm=1.5, norm_type=1, scale_grad_by_freq=True)
    assert repr(emb) == "Embedding(5, 2, padding_idx=0, max_norm=1.5, norm_type=1, scale_grad_by_freq=True)"
    assert repr(Embedding(5, 2, max_norm=2, norm_type=np.inf)) == "Embedding(5, 2, max_norm=2, norm_type=inf)"
    weight = np.array([[9.0, 9.0], [1.0, 2.0], [0.5, 0.5], [4.0, -4.0], [2.0, 2.0]])
    emb = Embedding(
        5, 2, padding_idx=0, max_norm=1.5, norm_type=1, scale_grad_by_freq=True, _weight=leaf(weight)
    )
    np.testing.assert_array_equal(emb.weight.numpy(), weight)  # _weight is kept as is, padding row included
    index = np.array([0, 1, 2, 1, 3])
    emb(tinygen.tensor(index)).sum().backward()
    np.testing.assert_allclose(emb.weight.numpy(), np_renorm(weight, index, 1.5, 1), rtol=1e-15)
    np.testing.assert_array_equal(emb.weight.grad.numpy(), [[0, 0], [1, 1], [1, 1], [1, 1], [0, 0]])
    frozen = Embedding(3, 2, _weight=tinygen.tensor(np.ones((3, 2))), _freeze=True)
    assert not frozen.weight.requires_grad
    assert Embedding(3, 2, dtype=np.float64).weight.dtype == np.float64


def test_embedding_option_errors():
    index, weight = tinygen.tensor([0, 1]), leaf(np.ones((3, 2)))
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=f"embedding: max_norm must be a positive number, got {bad}"):
            embedding(index, weight, max_norm=bad)
    for bad in ("1", True):
        with pytest.raises(TypeError, match="embedding: max_norm must be None or a positive number"):
            embedding(index, weight, max_norm=bad)
    with pytest.raises(TypeError, match="norm_type .* must be a number, got '2'"):
        embedding(index, weight, max_norm=1.0, norm_type="2")
    with pytest.raises(ValueError, match="norm_type .* must not be nan"):
        embedding(index, weight, max_norm=1.0, norm_type=float("nan"))
    with pytest.raises(TypeError, match="scale_grad_by_freq must be a bool, got 'yes'"):
        embedding(index, weight, scale_grad_by_freq="yes")
    with pytest.raises(
        NotImplementedError, match="embedding: sparse=True .* no sparse tensors; use sparse=False"
    ):
        embedding(index, weight, sparse=True)
    with pytest.raises(NotImplementedError, match="Embedding: sparse=True"):
        Embedding(3, 2, sparse=True)
    with pytest.raises(ValueError, match="Embedding: max_norm must be a positive number, got -2"):
        Embedding(3, 2, max_norm=-2)
    with pytest.raises(ShapeError, match=r"_weight has shape \(2, 2\), expected .* = \(3, 2\)"):
        Embedding(3, 2, _weight=tinygen.ones(2, 2))
    with pytest.raises(ValueError, match="Embedding: num_embeddings must be a non-negative int, got -3"):
        Embedding(-3, 2)
    np.testing.assert_array_equal(weight.numpy(), 1)  # nothing renormalised by a rejected call


@needs_openblas
def test_batch_norm_results_do_not_depend_on_the_thread_count(monkeypatch):
    """Its passes go by batch chunks on every thread; the per-channel sums are added in chunk order."""
    monkeypatch.setattr(cpu, "CHUNK_BYTES", 1)  # one image per chunk: seven chunks to share out
    rng = np.random.default_rng(0)
    x, upstream = rng.standard_normal((7, 3, 5, 4)), rng.standard_normal((7, 3, 5, 4))
    g = rng.standard_normal(3)

    def run():
        xt, gt, bt = (tinygen.tensor(a, requires_grad=True) for a in (x, g, np.zeros(3)))
        y = batch_norm(xt, None, None, gt, bt, training=True)
        y.backward(tinygen.tensor(upstream))
        return [a.numpy() for a in (y, xt.grad, gt.grad, bt.grad)]

    assert_same_at_any_thread_count(run)


@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 6), st.data())
def test_tuned_bn_grad_x_equals_its_reference(batch, channels, length, data):
    rows = [data.draw(tst.arrays((batch, channels * length))) for _ in range(2)]  # dy, centered
    per_channel = [data.draw(tst.arrays((channels,))) for _ in range(3)]  # centered_coef, const_coef, scale
    got = batch_norm_kernel._bn_grad_x(np, *rows, *per_channel, length)
    want = batch_norm_kernel._bn_grad_x_reference(np, *rows, *per_channel, length)
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)
