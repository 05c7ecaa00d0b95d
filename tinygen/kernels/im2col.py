"""im2col and col2im: convolution as one matrix product (the helpers of conv2d and conv_transpose2d).

Notation (as in ``docs/kernels/conv.md``): input ``x`` of shape ``(N, C, H, W)``, a
``kH x kW`` kernel with stride ``s``, zero padding ``p`` and dilation ``d`` (each a pair,
one value per spatial axis), output size

    out_h = (H + 2*p_h - d_h*(kH - 1) - 1) // s_h + 1       (the same for out_w)

Forward (im2col):

    cols[c, u, v, n, i, j] = x[n, c, s*i + d*u - p, s*j + d*v - p]     (0 outside x)

so a convolution is ``y = W @ cols`` with ``W`` reshaped to ``(C_out, C*kH*kW)`` and
``cols`` to ``(C*kH*kW, N*out_h*out_w)``.

Backward (col2im) is the adjoint: every column value goes back to the pixel it was read
from, and values read from one pixel by several kernel offsets are summed:

    x[n, c, a, b] = sum over (u, v, i, j) with s*i + d*u - p = a, s*j + d*v - p = b of cols[c, u, v, n, i, j]

Why this layout: channels and kernel offsets first make ``cols`` the right-hand operand
of one GEMM with the output's ``(N, out_h, out_w)`` contiguous in each row; batch and
pixels are never looped over. See docs/kernels/conv.md.
"""

import numbers

from tinygen import backend
from tinygen.errors import ShapeError


def _pair(value, name, op):
    """``value`` as a pair of ints: ``2 -> (2, 2)``, ``(2, 3) -> (2, 3)`` (PyTorch's ``_pair``)."""
    pair = (value, value) if isinstance(value, numbers.Integral) else value
    is_pair = isinstance(pair, (tuple, list)) and len(pair) == 2
    if not is_pair or not all(isinstance(v, numbers.Integral) for v in pair):
        raise ShapeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return (int(pair[0]), int(pair[1]))


def conv_output_size(size, kernel, stride, padding, dilation):
    """``(size + 2*padding - dilation*(kernel - 1) - 1) // stride + 1``, per spatial axis."""
    return tuple(
        (n + 2 * p - d * (k - 1) - 1) // s + 1
        for n, k, s, p, d in zip(size, kernel, stride, padding, dilation, strict=True)
    )


def im2col(x, kernel, out_size, stride, padding, dilation):
    """Patches of ``x`` (N, C, H, W) as an array ``cols`` of shape (C, kH, kW, N, out_h, out_w).

    ``out_size`` is ``(out_h, out_w)``: :func:`conv_output_size` or less (the adjoint of a
    transposed convolution whose ``output_padding`` left rows unread asks for less). The
    input is zero-padded once; a strided view then picks every patch without copying, and
    one copy lays the patches out contiguously for the GEMM.
    """
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    out_h, out_w = out_size
    if ph or pw:
        padded = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
        padded[:, :, ph : ph + h, pw : pw + w] = x
    else:
        padded = xp.ascontiguousarray(x)
    step_n, step_c, step_h, step_w = padded.strides
    patches = xp.lib.stride_tricks.as_strided(
        padded,
        shape=(c, kh, kw, n, out_h, out_w),
        strides=(step_c, dh * step_h, dw * step_w, step_n, sh * step_h, sw * step_w),
    )
    return xp.ascontiguousarray(patches)


def col2im(cols, size, stride, padding, dilation):
    """The adjoint of :func:`im2col`: ``cols`` (C, kH, kW, N, out_h, out_w) summed back into (N, C, H, W).

    ``size`` is ``(H, W)``. One strided slice of the padded result is added to per kernel
    offset (kH*kW additions, each of all batches, channels and pixels at once); the padding
    is cropped at the end.
    """
    xp = backend.get_array_module(cols)
    c, kh, kw, n, out_h, out_w = cols.shape
    h, w = size
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    # channels first, like cols, so each addition walks both operands in the same order
    padded = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            top, left = u * dh, v * dw
            rows = slice(top, top + sh * (out_h - 1) + 1, sh)
            columns = slice(left, left + sw * (out_w - 1) + 1, sw)
            padded[:, :, rows, columns] += cols[:, u, v]
    cropped = padded[:, :, ph : ph + h, pw : pw + w]
    return xp.ascontiguousarray(cropped.transpose(1, 0, 2, 3))
