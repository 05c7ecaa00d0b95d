"""im2col and col2im: convolution as one matrix product (the helpers of conv2d and conv_transpose2d).

Notation (as in ``docs/kernels/conv.md``): input ``x`` of shape ``(N, C, H, W)``, a
``kH x kW`` kernel with stride ``s``, zero padding ``p`` and dilation ``d`` (each a pair,
one value per spatial axis), output size

    out_h = (H + 2*p_h - d_h*(kH - 1) - 1) // s_h + 1       (the same for out_w)

Forward (im2col), for group ``G`` of ``g`` (its ``C/g`` channels ``c``):

    cols[G, (n,i,j), (u,v,c)] = x[n, G*C/g + c, s*i + d*u - p, s*j + d*v - p]     (0 outside x)

so a convolution is ``Y = cols @ W`` per group, with ``W`` the weight laid out as
``(kH*kW*C/g, O/g)`` (``conv2d.weight_matrix``) and ``Y`` one row per output pixel.

Backward (col2im) is the adjoint: every column value goes back to the pixel it was read
from, and values read from one pixel by several kernel offsets are summed:

    x[n, c, a, b] = sum over (u, v, i, j) with s*i+d*u-p = a, s*j+d*v-p = b of cols[., (n,i,j), (u,v,c)]

Why this layout: pixels as rows and (kernel offset, channel) as columns make each group
one GEMM over all N*out_h*out_w pixels, and with channels last every copy in im2col and
every addition in col2im moves runs of C/g contiguous numbers. Batch and pixels are
never looped over. See docs/kernels/conv.md.
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


def group_major(a, groups):
    """(N, C, h, w) -> (g, C/g, N*h*w): one matrix per group, a row per channel.

    Read transposed (a free view), it is the (g, N*h*w, C/g) pixels-by-channels operand of
    the GEMMs; the copy moves whole (h*w) rows, which is cheap, where a channels-last copy
    would transpose every image.
    """
    xp = backend.get_array_module(a)
    n, c, h, w = a.shape
    a = a.reshape(n, groups, c // groups, h * w).transpose(1, 2, 0, 3)
    return xp.ascontiguousarray(a).reshape(groups, c // groups, n * h * w)


def im2col(x, kernel, out_size, stride, padding, dilation, groups):
    """Patches of ``x`` (N, C, H, W) as an array ``cols`` of shape (g, N*out_h*out_w, kH*kW*C/g).

    Row ``(n, i, j)`` of group ``G`` holds the patch that output pixel ``(i, j)`` reads,
    ordered ``(u, v, c)``: ``cols[G, (n,i,j), (u,v,c)] = x[n, G*C/g + c, s*i+d*u-p, s*j+d*v-p]``.
    ``out_size`` is ``(out_h, out_w)``: :func:`conv_output_size` or less (the adjoint of a
    transposed convolution whose ``output_padding`` left rows unread asks for less).

    The input is copied once into a zero-padded channels-last (N, H, W, C) array; a
    strided view then picks every patch without copying, and one copy lays the patches
    out for the GEMM. Channels last makes that copy move runs of C/g contiguous numbers
    (64 or more in DCGAN's inner layers), not runs of out_w strided ones.
    """
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    out_h, out_w = out_size
    group_c = c // groups
    padded = xp.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=x.dtype)
    padded[:, ph : ph + h, pw : pw + w, :] = x.transpose(0, 2, 3, 1)
    step_n, step_h, step_w, step_c = padded.strides
    patches = xp.lib.stride_tricks.as_strided(
        padded,
        shape=(groups, n, out_h, out_w, kh, kw, group_c),
        strides=(group_c * step_c, step_n, sh * step_h, sw * step_w, dh * step_h, dw * step_w, step_c),
    )
    return xp.ascontiguousarray(patches).reshape(groups, n * out_h * out_w, kh * kw * group_c)


def col2im(cols, size, stride, padding, dilation):
    """The adjoint of :func:`im2col`: ``cols`` (g, N, out_h, out_w, kH, kW, C/g) summed into (N, C, H, W).

    ``size`` is ``(H, W)``. One strided slice of a padded channels-last result is added to
    per kernel offset (kH*kW additions, each of all batches, pixels and channels at once,
    in runs of C/g contiguous numbers); the padding is cropped at the end.
    """
    xp = backend.get_array_module(cols)
    groups, n, out_h, out_w, kh, kw, group_c = cols.shape
    h, w = size
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    padded = xp.zeros((n, h + 2 * ph, w + 2 * pw, groups, group_c), dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            top, left = u * dh, v * dw
            rows = slice(top, top + sh * (out_h - 1) + 1, sh)
            columns = slice(left, left + sw * (out_w - 1) + 1, sw)
            padded[:, rows, columns] += cols[:, :, :, :, u, v].transpose(1, 2, 3, 0, 4)
    cropped = padded[:, ph : ph + h, pw : pw + w].reshape(n, h, w, groups * group_c)
    return xp.ascontiguousarray(cropped.transpose(0, 3, 1, 2))
