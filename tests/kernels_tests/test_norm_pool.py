"""batch_norm, layer_norm, max/avg pooling and embedding: forward against NumPy, first- and
second-order gradcheck, running statistics, evaluation mode, modules and error messages."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygen
from tinygen.errors import DTypeError, IndexOutOfRangeError, ShapeError
from tinygen.kernels.batch_norm import batch_norm
from tinygen.kernels.embedding import embedding
from tinygen.kernels.layer_norm import layer_norm
from tinygen.kernels.pool import avg_pool2d, max_pool2d, pool_output_size
from tinygen.nn.modules.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from tinygen.nn.modules.pooling import AvgPool2d, MaxPool2d
from tinygen.nn.modules.sparse import Embedding
from tinygen.testing import gradcheck, gradgradcheck
from tinygen.testing import strategies as tst


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
    with pytest.raises(NotImplementedError, match="max_norm"):
        embedding(tinygen.tensor([0]), emb.weight, max_norm=1.0)
    with pytest.raises(ShapeError, match="padding_idx is 5"):
        Embedding(5, 3, padding_idx=5)
