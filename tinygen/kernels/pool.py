"""2-D max and average pooling, looping only over the kernel offsets.

Notation: input ``x`` of shape ``(N, C, H, W)``, a ``kH x kW`` window with stride ``s``,
padding ``p`` and dilation ``d`` (each a pair, one value per spatial axis). Output size

    out_h = (H + 2*p - d*(kH - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
            (minus 1 when ceil_mode and the last window would start in the right
            padding, (out_h - 1)*s >= H + p)

and the same for ``out_w``. For each kernel offset ``(u, v)`` the pixels read are the
strided view ``x_pad[n, c, d*u + s*i, d*v + s*j]`` of the padded input, one array of the
output's shape, so a pool is ``kH * kW`` elementwise steps with no loop over pixels.

Max pool (``x`` padded with -inf):

    y[n,c,i,j] = max_{u,v} x_pad[n, c, s*i + d*u, s*j + d*v]
    dx         = dy sent back to the arg-max of each window (summed where windows overlap)

Ties go to the first offset in row-major order, and a NaN wins, as in PyTorch. Sending
``dy`` back is a scatter; its adjoint is the gather ``out[n,c,i,j] = g[argmax]``, so the two
are written as a pair (like ``GetItem``/``IndexAdd``) and differentiate into each other.

Average pool (``x`` padded with 0):

    y[n,c,i,j] = sum_{u,v} x_pad[n, c, s*i + u, s*j + v] / divisor[i, j]
    dx         = dy / divisor spread back over each window (the adjoint, also linear)

``divisor`` is ``kH*kW`` clipped to the padded input (``count_include_pad=True``), the count
of real pixels in the window (``False``), or ``divisor_override``. See docs/kernels/pool.md.
"""

import collections

from tinygen import backend
from tinygen.autograd.function import Function
from tinygen.errors import ShapeError
from tinygen.kernels.geometry import pair
from tinygen.ops import shape as sh

Geometry = collections.namedtuple("Geometry", ["kernel", "stride", "padding", "dilation", "out", "pad_after"])


def pool_output_size(size, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's ``pooling_output_shape`` for one axis (see the module docstring)."""
    out = (size + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _geometry(op, shape, kernel_size, stride, padding, dilation, ceil_mode):
    """Check the arguments (errors name ``op``) and return the pooling :class:`Geometry`."""
    kernel = pair(kernel_size, "kernel_size", op)
    stride = kernel if stride is None or stride == () else pair(stride, "stride", op)
    padding, dilation = pair(padding, "padding", op), pair(dilation, "dilation", op)
    if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        raise ShapeError(
            f"{op}: kernel_size {kernel}, stride {stride} and dilation {dilation} must be positive "
            f"and padding {padding} non-negative"
        )
    if any(p > k // 2 for p, k in zip(padding, kernel, strict=True)):
        raise ShapeError(f"{op}: padding {padding} must be at most half of kernel_size {kernel}")
    out = tuple(
        pool_output_size(n, k, s, p, d, ceil_mode)
        for n, k, s, p, d in zip(shape[-2:], kernel, stride, padding, dilation, strict=True)
    )
    if min(out) < 1:
        raise ShapeError(
            f"{op}: input of spatial size {shape[-2:]} is too small for kernel_size {kernel}, "
            f"dilation {dilation} and padding {padding} (output size {out})"
        )
    # the padded input must reach the last window, which ceil_mode may push past H + p
    reach = [(o - 1) * s + d * (k - 1) + 1 for o, s, d, k in zip(out, stride, dilation, kernel, strict=True)]
    pad_after = tuple(max(r - n - p, p) for r, n, p in zip(reach, shape[-2:], padding, strict=True))
    return Geometry(kernel, stride, padding, dilation, out, pad_after)


# ----------------------------------------------------------------------------- xp version


def _pad(xp, x, geom, value):
    """``x`` padded with ``value``: ``padding`` before, ``pad_after`` after each spatial axis."""
    (ph, pw), (ah, aw) = geom.padding, geom.pad_after
    if ph == pw == ah == aw == 0:
        return x
    return xp.pad(x, ((0, 0), (0, 0), (ph, ah), (pw, aw)), constant_values=value)


def _crop(padded, geom, height, width):
    """The input's pixels of a padded array (undoes ``_pad``)."""
    (ph, pw) = geom.padding
    return padded[:, :, ph : ph + height, pw : pw + width]


def _padded_zeros(xp, like, geom, height, width):
    """Zeros shaped like the padded input, for scatters; ``like`` gives N, C and the dtype."""
    (ph, pw), (ah, aw) = geom.padding, geom.pad_after
    return xp.zeros((*like.shape[:2], ph + height + ah, pw + width + aw), like.dtype)


def _windows(padded, geom):
    """``(k, view)`` per kernel offset ``k = u*kW + v``: the pixels that offset reads, output-shaped."""
    (kh, kw), (stride_h, stride_w), (dh, dw), (oh, ow) = geom.kernel, geom.stride, geom.dilation, geom.out
    for u in range(kh):
        for v in range(kw):
            rows = slice(dh * u, dh * u + stride_h * (oh - 1) + 1, stride_h)
            cols = slice(dw * v, dw * v + stride_w * (ow - 1) + 1, stride_w)
            yield u * kw + v, padded[:, :, rows, cols]


def _max_pool(xp, x, geom):
    """``(values, argmax)``: the window maxima and the kernel offset each came from."""
    best = None
    for k, window in _windows(_pad(xp, x, geom, -xp.inf), geom):
        if best is None:
            best, argmax = window.copy(), xp.zeros(window.shape, dtype=xp.int32)
            continue
        better = (window > best) | xp.isnan(window)
        xp.copyto(best, window, where=better)
        argmax[better] = k
    return best, argmax


def _scatter_to_windows(xp, grad_out, argmax, geom, height, width):
    """``dx``: each ``grad_out`` value added at the input pixel its window's arg-max came from."""
    padded = _padded_zeros(xp, grad_out, geom, height, width)
    for k, window in _windows(padded, geom):
        window += xp.where(argmax == k, grad_out, 0)
    return _crop(padded, geom, height, width).copy()


def _gather_from_windows(xp, grad_x, argmax, geom):
    """The adjoint of the scatter: ``out[n,c,i,j] = grad_x`` at the arg-max of window (i, j)."""
    out = xp.zeros(argmax.shape, grad_x.dtype)
    for k, window in _windows(_pad(xp, grad_x, geom, 0), geom):
        xp.copyto(out, window, where=argmax == k)
    return out


def _window_sum(xp, x, geom):
    total = None
    for _, window in _windows(_pad(xp, x, geom, 0), geom):
        total = window.copy() if total is None else total + window
    return total


def _spread_to_windows(xp, values, geom, height, width):
    """The adjoint of ``_window_sum``: every value added to each pixel of its window."""
    padded = _padded_zeros(xp, values, geom, height, width)
    for _, window in _windows(padded, geom):
        window += values
    return _crop(padded, geom, height, width).copy()


def _avg_divisor(xp, height, width, geom, count_include_pad, divisor_override, dtype):
    """The ``(out_h, out_w)`` divisors of average pooling, PyTorch's rule (module docstring)."""
    if divisor_override is not None:
        return xp.full(geom.out, divisor_override, dtype=dtype)
    counts = []
    for size, k, s, p, out in zip(
        (height, width), geom.kernel, geom.stride, geom.padding, geom.out, strict=True
    ):
        start = xp.arange(out) * s - p
        end = xp.minimum(start + k, size + p)
        if count_include_pad:
            counts.append(end - start)
        else:
            counts.append(xp.minimum(end, size) - xp.maximum(start, 0))
    return (counts[0][:, None] * counts[1][None, :]).astype(dtype)


# ----------------------------------------------------------------------------- Functions


class MaxPool2d(Function):
    """``y = max over each window``, and PyTorch's flat indices ``h*W + w`` when asked;
    ``dx = MaxPoolScatter(dy)``."""

    @staticmethod
    def forward(ctx, x, geom, return_indices):
        xp = backend.get_array_module(x.data)
        values, argmax = _max_pool(xp, x.data, geom)
        ctx.argmax, ctx.geom, ctx.size = argmax, geom, x.shape[2:]
        if not return_indices:
            return values
        kw, (stride_h, stride_w), (dh, dw), (ph, pw) = (
            geom.kernel[1],
            geom.stride,
            geom.dilation,
            geom.padding,
        )
        rows = xp.arange(geom.out[0])[:, None] * stride_h + dh * (argmax // kw) - ph
        cols = xp.arange(geom.out[1])[None, :] * stride_w + dw * (argmax % kw) - pw
        return values, (rows * x.shape[3] + cols).astype(xp.int64)

    @staticmethod
    def backward(ctx, grad, *grad_indices):
        return MaxPoolScatter.apply(grad, ctx.argmax, ctx.geom, ctx.size), None, None


class MaxPoolScatter(Function):
    """``y`` = zeros of the input's shape with ``x[n,c,i,j]`` added at window (i, j)'s arg-max;
    ``dx = MaxPoolGather(dy)``."""

    @staticmethod
    def forward(ctx, grad_out, argmax, geom, size):
        ctx.argmax, ctx.geom = argmax, geom
        xp = backend.get_array_module(grad_out.data)
        return _scatter_to_windows(xp, grad_out.data, argmax, geom, *size)

    @staticmethod
    def backward(ctx, grad):
        return MaxPoolGather.apply(grad, ctx.argmax, ctx.geom, None), None, None, None


class MaxPoolGather(Function):
    """``y[n,c,i,j] = x`` at window (i, j)'s arg-max;  ``dx = MaxPoolScatter(dy)``."""

    @staticmethod
    def forward(ctx, grad_x, argmax, geom, _):
        ctx.argmax, ctx.geom, ctx.size = argmax, geom, grad_x.shape[2:]
        return _gather_from_windows(backend.get_array_module(grad_x.data), grad_x.data, argmax, geom)

    @staticmethod
    def backward(ctx, grad):
        return MaxPoolScatter.apply(grad, ctx.argmax, ctx.geom, ctx.size), None, None, None


class AvgPool2d(Function):
    """``y = window sum / divisor``;  ``dx = AvgPoolSpread(dy)``."""

    @staticmethod
    def forward(ctx, x, geom, divisor):
        ctx.geom, ctx.divisor, ctx.size = geom, divisor, x.shape[2:]
        total = _window_sum(backend.get_array_module(x.data), x.data, geom)
        total /= divisor
        return total

    @staticmethod
    def backward(ctx, grad):
        return AvgPoolSpread.apply(grad, ctx.geom, ctx.divisor, ctx.size), None, None


class AvgPoolSpread(Function):
    """``y`` = each ``x / divisor`` added over its window (the adjoint of average pooling);
    ``dx = AvgPool2d(dy)``."""

    @staticmethod
    def forward(ctx, grad_out, geom, divisor, size):
        ctx.geom, ctx.divisor = geom, divisor
        xp = backend.get_array_module(grad_out.data)
        return _spread_to_windows(xp, grad_out.data / divisor, geom, *size)

    @staticmethod
    def backward(ctx, grad):
        return AvgPool2d.apply(grad, ctx.geom, ctx.divisor), None, None, None


# ----------------------------------------------------------------------------- public functions


def _batched(op, input):  # noqa: A002
    """``(input as (N, C, H, W), unbatched)``: a ``(C, H, W)`` input gets N = 1, as in PyTorch."""
    if input.ndim not in (3, 4):
        raise ShapeError(f"{op}: input must be (N, C, H, W) or (C, H, W), got shape {input.shape}")
    if input.ndim == 3:
        return sh.reshape(input, (1, *input.shape)), True
    return input, False


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):  # noqa: A002
    """2-D max pooling (PyTorch's ``F.max_pool2d``).

    **Shapes:** input ``(N, C, H, W)`` or ``(C, H, W)``; output ``(N, C, out_h, out_w)`` with
    ``out_h = (H + 2p - d*(kH - 1) - 1) // s + 1`` (rounded up with ``ceil_mode``); ``stride``
    defaults to ``kernel_size``.

    **Forward:** ``y[n,c,i,j] = max_{u,v} x[n, c, s*i + d*u - p, s*j + d*v - p]`` (-inf padding);
    with ``return_indices`` also the flat index ``h*W + w`` of each maximum.

    **Backward:** ``dy`` goes to each window's arg-max (a scatter; its adjoint gather makes the
    second order). **Why:** downsampling that keeps the strongest response. See docs/kernels/pool.md.
    """
    x, unbatched = _batched("max_pool2d", input)
    geom = _geometry("max_pool2d", x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    out = MaxPool2d.apply(x, geom, return_indices)
    if unbatched:
        out = (
            tuple(sh.reshape(o, o.shape[1:]) for o in out)
            if return_indices
            else sh.reshape(out, out.shape[1:])
        )
    return out


def avg_pool2d(
    input,  # noqa: A002
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """2-D average pooling (PyTorch's ``F.avg_pool2d``).

    **Shapes:** as :func:`max_pool2d` with dilation 1.

    **Forward:** ``y[n,c,i,j] = sum_{u,v} x[n, c, s*i + u - p, s*j + v - p] / divisor[i,j]``
    (zero padding); the divisor counts the padding (``count_include_pad``), or only real
    pixels, or is ``divisor_override``.

    **Backward:** ``dx`` = ``dy / divisor`` spread back over each window (linear, so every
    order is exact). **Why:** smooth downsampling. See docs/kernels/pool.md.
    """
    x, unbatched = _batched("avg_pool2d", input)
    if divisor_override is not None and (not isinstance(divisor_override, int) or divisor_override == 0):
        raise ValueError(f"avg_pool2d: divisor_override must be a non-zero int, got {divisor_override!r}")
    geom = _geometry("avg_pool2d", x.shape, kernel_size, stride, padding, 1, ceil_mode)
    xp = backend.get_array_module(x.data)
    divisor = _avg_divisor(xp, *x.shape[2:], geom, count_include_pad, divisor_override, x.dtype)
    out = AvgPool2d.apply(x, geom, divisor)
    return sh.reshape(out, out.shape[1:]) if unbatched else out
