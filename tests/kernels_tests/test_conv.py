"""conv2d and conv_transpose2d: forward against plain references, gradcheck, gradgradcheck, errors, modules.

The references are the library's ``reference_conv2d`` and ``reference_conv_transpose2d``
(``tinygen/kernels/conv.py``: one einsum per kernel offset, no im2col). The transposed
convolution, tuned and reference, is also checked against the transpose of the reference
conv2d's matrix, built by applying it to every unit input: the definition of the adjoint.
Every test runs twice: with channels-last columns (from 1 channel on) done one image at a
time, and with channels-first columns over the whole batch, since the drawn configurations
have fewer channels and fewer bytes than the real thresholds.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygen
from tinygen import cpu
from tinygen.errors import DTypeError, ShapeError
from tinygen.kernels import conv as conv_kernel
from tinygen.kernels import im2col
from tinygen.kernels.conv import conv2d, conv_transpose2d, reference_conv2d, reference_conv_transpose2d
from tinygen.nn.modules.conv import Conv2d, ConvTranspose2d
from tinygen.testing import gradcheck, gradgradcheck
from tinygen.testing import strategies as tst

from .thread_counts import assert_same_at_any_thread_count, needs_openblas


@pytest.fixture(
    autouse=True,
    scope="module",
    params=[(1, 1), (10**9, cpu.CHUNK_BYTES)],
    ids=["channels-last, one image per chunk", "channels-first, whole batch"],
)
def layout(request):
    channels_last_min, chunk_bytes = request.param
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(im2col, "CHANNELS_LAST_MIN", channels_last_min)
        patch.setattr(cpu, "CHUNK_BYTES", chunk_bytes)
        yield request.param


def adjoint_by_unit_inputs(x, w, b, stride, padding, output_padding, groups, dilation):
    """``x @ A^T``, with A the matrix of ``z -> reference_conv2d(z, w)`` built column by column.

    The definition of the adjoint, independent of the scatter in ``reference_conv_transpose2d``.
    """
    n, in_c, h, width = x.shape
    out_c = w.shape[1] * groups
    out_h, out_w = (
        (size - 1) * s - 2 * p + d * (k - 1) + extra + 1
        for size, k, s, p, d, extra in zip(
            (h, width), w.shape[2:], stride, padding, dilation, output_padding, strict=True
        )
    )
    units = np.eye(out_c * out_h * out_w).reshape(-1, out_c, out_h, out_w)
    columns = reference_conv2d(units, w, None, stride, padding, dilation, groups)[:, :, :h, :width]
    y = (x.reshape(n, -1) @ columns.reshape(len(units), -1).T).reshape(n, out_c, out_h, out_w)
    return y if b is None else y + b[:, None, None]


def draw_inputs(data, cfg, with_bias):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    x = rng.standard_normal(cfg.input_shape)
    w = rng.standard_normal(cfg.weight_shape)
    b = rng.standard_normal(cfg.out_channels) if with_bias else None
    return x, w, b


def tensors(*arrays):
    return [tinygen.tensor(a, requires_grad=True) for a in arrays if a is not None]


# ----------------------------------------------------------------------------- forward


@given(cfg=tst.conv_configs(), with_bias=st.booleans(), data=st.data())
def test_conv2d_matches_reference(cfg, with_bias, data):
    x, w, b = draw_inputs(data, cfg, with_bias)
    out = conv2d(*tensors(x, w), None if b is None else tinygen.tensor(b), **cfg.kwargs)
    np.testing.assert_allclose(out.numpy(), reference_conv2d(x, w, b, **cfg.kwargs), rtol=1e-12, atol=1e-12)


@given(cfg=tst.conv_transpose_configs(), with_bias=st.booleans(), data=st.data())
def test_conv_transpose2d_is_the_adjoint_of_conv2d(cfg, with_bias, data):
    x, w, b = draw_inputs(data, cfg, with_bias)
    out = conv_transpose2d(*tensors(x, w), None if b is None else tinygen.tensor(b), **cfg.kwargs)
    expected = adjoint_by_unit_inputs(x, w, b, **cfg.kwargs)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    reference = reference_conv_transpose2d(x, w, b, **cfg.kwargs)
    np.testing.assert_allclose(reference, expected, rtol=1e-12, atol=1e-12)


def test_int_arguments_mean_pairs_and_float32_stays_float32():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, 3, 3))
    ints = conv2d(tinygen.tensor(x), tinygen.tensor(w), stride=2, padding=1, dilation=2)
    pairs = conv2d(tinygen.tensor(x), tinygen.tensor(w), stride=(2, 2), padding=(1, 1), dilation=(2, 2))
    np.testing.assert_array_equal(ints.numpy(), pairs.numpy())
    single = conv2d(tinygen.tensor(x.astype(np.float32)), tinygen.tensor(w.astype(np.float32)), padding=1)
    assert single.dtype == np.float32 and single.numpy().flags.c_contiguous
    up = conv_transpose2d(single, tinygen.tensor(w.astype(np.float32)), stride=2)
    assert up.dtype == np.float32 and up.shape == (2, 3, 15, 15)


# ----------------------------------------------------------------------------- gradients


@settings(max_examples=30)
@given(cfg=tst.conv_configs(max_size=5), with_bias=st.booleans(), data=st.data())
def test_conv2d_gradcheck(cfg, with_bias, data):
    x, w, b = draw_inputs(data, cfg, with_bias)

    def fn(*args):
        return conv2d(*args, **cfg.kwargs)

    assert gradcheck(fn, tensors(x, w, b), name=f"conv2d {cfg}")


@settings(max_examples=30)
@given(cfg=tst.conv_transpose_configs(max_size=3), with_bias=st.booleans(), data=st.data())
def test_conv_transpose2d_gradcheck(cfg, with_bias, data):
    x, w, b = draw_inputs(data, cfg, with_bias)

    def fn(*args):
        return conv_transpose2d(*args, **cfg.kwargs)

    assert gradcheck(fn, tensors(x, w, b), name=f"conv_transpose2d {cfg}")


@settings(max_examples=20)
@given(cfg=tst.conv_configs(max_size=5), data=st.data())
def test_conv2d_gradgradcheck(cfg, data):
    x, w, b = draw_inputs(data, cfg, with_bias=True)

    def fn(*args):
        return conv2d(*args, **cfg.kwargs)

    assert gradgradcheck(fn, tensors(x, w, b), name=f"conv2d {cfg}")


@settings(max_examples=20)
@given(cfg=tst.conv_transpose_configs(max_size=3), data=st.data())
def test_conv_transpose2d_gradgradcheck(cfg, data):
    x, w, b = draw_inputs(data, cfg, with_bias=True)

    def fn(*args):
        return conv_transpose2d(*args, **cfg.kwargs)

    assert gradgradcheck(fn, tensors(x, w, b), name=f"conv_transpose2d {cfg}")


@needs_openblas
@pytest.mark.parametrize("fn", [conv2d, conv_transpose2d])
def test_results_do_not_depend_on_the_thread_count(fn):
    """The batch chunks run on as many threads as BLAS has; their sums are taken in chunk order."""
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((7, 4, 9, 9)), rng.standard_normal((4, 4, 3, 3)), rng.standard_normal(4)

    def run():
        xt, wt, bt = (tinygen.tensor(a, requires_grad=True) for a in (x, w, b))
        y = fn(xt, wt, bt, stride=2, padding=1)
        y.backward(tinygen.tensor(np.cos(np.arange(y.numel())).reshape(y.shape)))
        return [a.numpy() for a in (y, xt.grad, wt.grad, bt.grad)]

    assert_same_at_any_thread_count(run)


@pytest.mark.parametrize("shape", [(1, 13, 1024), (2, 20, 600), (3, 5, 2048)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_transpose_is_a_plain_transpose(shape, dtype):
    """Rows of a multiple of 1 KiB are copied eight at a time (13 or 20 rows leave a remainder)."""
    matrices = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    out = conv_kernel.transposed(matrices)
    assert out.flags.c_contiguous and out.dtype == dtype
    np.testing.assert_array_equal(out, matrices.transpose(0, 2, 1))


@pytest.mark.parametrize("side", [14, 16, 32])  # channels 3136, 1024 and 4096 bytes apart
def test_im2col_of_channels_that_alias_in_the_cache(side):
    """The padded copy goes eight channels at a time where channels are a multiple of 1 KiB apart."""
    x = np.random.default_rng(0).standard_normal((2, 20, side, side)).astype(np.float32)
    cols_t = im2col.im2col(x, (3, 3), (side, side), (1, 1), (1, 1), (1, 1), 1)  # (1, 9*20, 2*side*side)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for u, v in [(0, 0), (1, 2), (2, 1)]:
        expected = padded[:, :, u : u + side, v : v + side].transpose(1, 0, 2, 3).reshape(20, -1)
        rows = [(3 * u + v) * 20 + c if im2col.channels_last(20) else c * 9 + 3 * u + v for c in range(20)]
        np.testing.assert_array_equal(cols_t[0, rows], expected)


def test_gradient_penalty_through_two_convolutions():
    """WGAN-GP's shape of computation: the gradient of an input-gradient norm, to second order."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 1, 6, 6))
    w1, w2 = rng.standard_normal((3, 1, 3, 3)), rng.standard_normal((2, 3, 4, 4))

    def penalty(x, w1, w2):
        out = conv2d(tinygen.tanh(conv2d(x, w1, stride=1, padding=1)), w2, stride=2, padding=1).sum()
        (g,) = tinygen.grad(out, x, create_graph=True)
        return ((g * g).sum() - 1) ** 2

    assert gradcheck(penalty, tensors(x, w1, w2))


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("wanted", [(True, False, False), (False, True, False), (False, False, True)])
def test_each_gradient_alone_matches_all_together(transposed, wanted):
    """Backward skips what is not needed (and shares im2col only when both products run)."""
    rng = np.random.default_rng(2)
    fn = conv_transpose2d if transposed else conv2d
    x, w, b = rng.standard_normal((2, 4, 5, 5)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(3)
    if not transposed:
        x = x[:, :3].transpose(0, 1, 3, 2)  # non-contiguous input, 3 channels
        b = rng.standard_normal(4)
    everything = tensors(x, w, b)
    fn(*everything, stride=2, padding=1).sum().backward()
    some = [tinygen.tensor(a, requires_grad=need) for a, need in zip((x, w, b), wanted, strict=True)]
    fn(*some, stride=2, padding=1).sum().backward()
    for full, part, need in zip(everything, some, wanted, strict=True):
        if need:
            np.testing.assert_allclose(part.grad.numpy(), full.grad.numpy(), rtol=1e-12, atol=1e-12)
        else:
            assert part.grad is None


# ----------------------------------------------------------------------------- errors


def _t(*shape, dtype=np.float64):
    return tinygen.tensor(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), groups=2), ShapeError,
         r"weight.shape\[0\] is 4|input.shape\[1\] is 3, expected weight.shape\[1\]\*groups = 6"),
        (lambda: conv2d(_t(1, 3, 5, 5), _t(4, 6, 3, 3)), ShapeError,
         r"conv2d: input.shape\[1\] is 3, expected weight.shape\[1\]\*groups = 6"),
        (lambda: conv2d(_t(1, 4, 5, 5), _t(3, 2, 3, 3), groups=2), ShapeError,
         r"weight.shape\[0\] is 3, not divisible by groups = 2"),
        (lambda: conv2d(_t(5, 5), _t(4, 3, 3, 3)), ShapeError, r"input must be 4-D .* \(5, 5\)"),
        (lambda: conv2d(_t(1, 3, 5, 5), _t(4, 3, 3)), ShapeError, r"weight must be 4-D"),
        (lambda: conv2d(_t(1, 3, 2, 5), _t(4, 3, 3, 3)), ShapeError, r"output size is \(0, 3\)"),
        (lambda: conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), _t(3)), ShapeError,
         r"bias has shape \(3,\), expected \(4,\)"),
        (lambda: conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3, dtype=np.float32)), DTypeError, r"weight is float32"),
        (lambda: conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), stride=0), ValueError, r"stride must be >= 1"),
        (lambda: conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), padding=(1, 2, 3)), ShapeError, r"padding must be"),
        (lambda: conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), groups=0), ValueError, r"groups must be a positive"),
        (lambda: conv_transpose2d(_t(1, 3, 5, 5), _t(4, 2, 3, 3)), ShapeError,
         r"conv_transpose2d: input.shape\[1\] is 3, expected weight.shape\[0\] = 4"),
        (lambda: conv_transpose2d(_t(1, 3, 5, 5), _t(3, 2, 3, 3), groups=2), ShapeError,
         r"weight.shape\[0\] is 3, not divisible by groups = 2"),
        (lambda: conv_transpose2d(_t(1, 3, 5, 5), _t(3, 2, 3, 3), stride=2, output_padding=2), ValueError,
         r"output_padding is \(2, 2\), expected .* smaller than either stride \(2, 2\) or dilation \(1, 1\)"),
        (lambda: conv_transpose2d(_t(1, 3, 1, 1), _t(3, 2, 1, 1), padding=1), ShapeError,
         r"output size is \(-1, -1\)"),
    ],
)  # fmt: skip
def test_errors_name_the_argument_and_shapes(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_output_padding_below_dilation_is_allowed():
    """PyTorch's rule: output_padding must be smaller than stride *or* dilation."""
    y = conv_transpose2d(_t(1, 2, 3, 3), _t(2, 1, 2, 2), stride=1, dilation=2, output_padding=1)
    assert y.shape == (1, 1, 6, 6)


# ----------------------------------------------------------------------------- modules


def test_conv2d_module_parameters_repr_and_init():
    tinygen.manual_seed(0)
    layer = Conv2d(4, 8, 3, padding=1, groups=2)
    assert list(layer.state_dict()) == ["weight", "bias"]
    assert layer.weight.shape == (8, 2, 3, 3) and layer.bias.shape == (8,)
    assert layer.weight.dtype == np.float32
    bound = 1 / math.sqrt(2 * 3 * 3)  # kaiming_uniform_(a=sqrt(5)) gives U(+-1/sqrt(fan_in)) too
    assert np.abs(layer.weight.numpy()).max() <= bound and np.abs(layer.bias.numpy()).max() <= bound
    assert np.abs(layer.weight.numpy()).max() > 0.8 * bound
    assert repr(layer) == "Conv2d(4, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), groups=2)"
    assert layer(tinygen.randn(2, 4, 5, 5)).shape == (2, 8, 5, 5)
    plain = Conv2d(1, 2, (2, 3), stride=2, dilation=(1, 2), bias=False)
    assert repr(plain) == "Conv2d(1, 2, kernel_size=(2, 3), stride=(2, 2), dilation=(1, 2), bias=False)"
    assert list(plain.state_dict()) == ["weight"]


def test_conv_transpose2d_module_parameters_repr_and_init():
    layer = ConvTranspose2d(6, 4, 4, stride=2, padding=1, output_padding=1, groups=2)
    assert layer.weight.shape == (6, 2, 4, 4) and layer.bias.shape == (4,)
    bound = 1 / math.sqrt(2 * 4 * 4)  # PyTorch's fan_in of a transposed weight: weight.shape[1] * kH * kW
    assert np.abs(layer.weight.numpy()).max() <= bound and np.abs(layer.bias.numpy()).max() <= bound
    assert repr(layer) == (
        "ConvTranspose2d(6, 4, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), "
        "output_padding=(1, 1), groups=2)"
    )
    assert layer(tinygen.randn(1, 6, 7, 7)).shape == (1, 4, 15, 15)
    with pytest.raises(ValueError, match="out_channels is 5, not divisible by groups = 2"):
        ConvTranspose2d(6, 5, 3, groups=2)
