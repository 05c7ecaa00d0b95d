"""2-D convolution (cross-correlation, as in PyTorch) by im2col and one GEMM.

Shapes: input ``x`` (N, C, H, W), weight ``w`` (O, C/g, kH, kW), bias ``b`` (O,), output
``y`` (N, O, out_h, out_w) with ``g`` groups, stride ``s``, padding ``p``, dilation ``d``
(pairs: one value per spatial axis) and

    out_h = (H + 2*p_h - d_h*(kH - 1) - 1) // s_h + 1       (the same for out_w)

Forward, for ``o`` in group ``G`` (the ``C/g`` input channels ``c`` of that group):

    y[n,o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v]*x[n,c, s*i+d*u-p, s*j+d*v-p]     (x is 0 outside)

computed as ``Y = cols @ W`` per group, with ``cols = im2col(x)`` (see ``im2col.py``).

Backward (each a differentiable op, so double backward works, as WGAN-GP needs):

    dx = conv_transpose2d(dy, w)                      the adjoint of x -> conv2d(x, w)
    dw[o,c,u,v] = sum_{n,i,j} dy[n,o,i,j]*x[n,c, s*i+d*u-p, s*j+d*v-p]   (Conv2dGradWeight)
    db[o] = sum_{n,i,j} dy[n,o,i,j]

Why: one GEMM per call keeps NumPy at BLAS speed; loops run only over the kH*kW kernel
offsets in col2im. Derivation: docs/kernels/conv.md.
"""

import operator

import tinygen.kernels.conv_transpose2d as transpose_kernel
from tinygen import backend
from tinygen.autograd.function import Function
from tinygen.errors import DTypeError, ShapeError
from tinygen.kernels.im2col import _pair, channels_last, conv_output_size, copy_into, group_major, im2col

# ----------------------------------------------------------------------------- xp version


def weight_matrix(weight, groups):
    """(O, C/g, kH, kW) -> ``W^T``, (g, O/g, kH*kW*C/g): the weight as the left operand of ``W^T @ cols_t``.

    Its columns are ordered as :func:`im2col`'s rows for C/g channels: ``(u, v, c)`` with
    channels last (a copy of a small array), else ``(c, u, v)`` (a free reshape).
    """
    out_channels, group_in, kh, kw = weight.shape
    w = weight.reshape(groups, out_channels // groups, group_in, kh, kw)
    if channels_last(group_in):
        w = w.transpose(0, 1, 3, 4, 2)
    return w.reshape(groups, out_channels // groups, kh * kw * group_in)


def weight_from_matrix(matrix, shape):
    """The inverse of :func:`weight_matrix`: (g, O/g, kH*kW*C/g) -> ``shape`` (O, C/g, kH, kW)."""
    groups, group_out = matrix.shape[:2]
    _, group_in, kh, kw = shape
    if channels_last(group_in):
        matrix = matrix.reshape(groups, group_out, kh, kw, group_in).transpose(0, 1, 4, 2, 3)
    return matrix.reshape(shape)


def transposed(matrices):
    """``matrices.transpose(0, 2, 1)`` of a (g, rows, columns) array, as a new contiguous array."""
    groups, rows, columns = matrices.shape
    xp = backend.get_array_module(matrices)
    out = xp.empty((groups, columns, rows), dtype=matrices.dtype)
    copy_into(out, matrices.transpose(0, 2, 1), 2)  # eight rows at a time where rows alias in the cache
    return out


def conv2d_forward(x, weight, bias, out_size, stride, padding, dilation, groups):
    """``Y = im2col(x)^T @ W (+ b)`` per group, returned as a contiguous (N, O, out_h, out_w) array.

    The batch is done in chunks (``backend.map_batch``), each im2col'd and multiplied
    while its columns are in cache; each chunk writes its rows of the output. The GEMM
    reads the columns the way they are stored: pixel-major (channels last) as ``cols @ W``,
    one row per pixel; k-major as ``W^T @ cols_t``, one row per output channel (either
    way 6-17% faster than reading them transposed, measured on the DCGAN layers).
    """
    xp = backend.get_array_module(x, weight)
    out_channels, group_in, kh, kw = weight.shape
    n = x.shape[0]
    pixels = out_size[0] * out_size[1]
    w_t = weight_matrix(weight, groups)  # (g, O/g, kH*kW*C/g)
    if channels_last(group_in):
        w = transposed(w_t)  # (g, kH*kW*C/g, O/g)
    out = xp.empty((n, out_channels, *out_size), dtype=x.dtype)

    def forward_rows(rows):
        cols_t = im2col(x[rows], (kh, kw), out_size, stride, padding, dilation, groups)
        if channels_last(group_in):
            y = cols_t.transpose(0, 2, 1) @ w  # (g, n_rows*out_h*out_w, O/g)
            y = y.reshape(groups, -1, pixels, out_channels // groups).transpose(1, 0, 3, 2)
        else:  # the reordering into NCHW below then copies whole (out_h*out_w) rows
            y = w_t @ cols_t  # (g, O/g, n_rows*out_h*out_w)
            y = y.reshape(groups, out_channels // groups, -1, pixels).transpose(2, 0, 1, 3)
        out_rows = out[rows].reshape(y.shape)  # (n_rows, g, O/g, out_h*out_w), a view of out
        if bias is None:
            out_rows[...] = y
        else:  # add the bias while copying into NCHW order
            xp.add(y, bias.reshape(groups, -1, 1), out=out_rows)

    backend.map_batch(forward_rows, n, cols_bytes(out_size, weight.shape, groups, x.itemsize), x)
    return out


def conv2d_grad_weight(x, grad_out, kernel, stride, padding, dilation, groups):
    """``dW^T = dY^T @ im2col(x)^T`` per group, summed over batch chunks: a (O, C/g, kH, kW) array.

    Each chunk's product is a whole ``dW``-sized array. Where that is large next to a
    chunk's columns (``Conv2d(128, 256)``: 2 MiB), chunks on parallel threads would hold
    one each plus the sum, so the chunks run in order instead and each product is split
    over the threads by :func:`backend.matmul` (2 threads, that layer's forward + backward:
    peak RSS growth 15.3 -> 7.3 MB; torch's 8.4).
    """
    xp = backend.get_array_module(x, grad_out)
    out_channels = grad_out.shape[1]
    group_in = x.shape[1] // groups
    out_size = grad_out.shape[2:]
    shape = (out_channels, group_in, *kernel)
    grad_bytes = out_channels * kernel[0] * kernel[1] * group_in * x.itemsize

    def grad_rows(rows):
        cols_t = im2col(x[rows], kernel, out_size, stride, padding, dilation, groups)
        grad_g = group_major(grad_out[rows], groups)
        if groups == 1:  # (1, O, kH*kW*C)
            return backend.matmul(grad_g[0], cols_t[0].T)[None]
        return grad_g @ cols_t.transpose(0, 2, 1)  # (g, O/g, kH*kW*C/g)

    nbytes = cols_bytes(out_size, shape, groups, x.itemsize)
    parallel = 2 * grad_bytes <= backend.CHUNK_BYTES
    total = backend.map_batch(grad_rows, x.shape[0], nbytes, x, fold=operator.iadd, parallel=parallel)
    if total is None:  # an empty batch
        total = xp.zeros((groups, out_channels // groups, kernel[0] * kernel[1] * group_in), dtype=x.dtype)
    return weight_from_matrix(total, shape)


def cols_bytes(out_size, weight_shape, groups, itemsize):
    """Bytes of im2col's columns for one image: out_h*out_w rows of kH*kW*C entries.

    ``weight_shape`` is read as conv2d's, (O, C/g, kH, kW); for conv_transpose2d's weight
    (C_in, C_out/g, kH, kW) and its input size it gives the size of its columns alike.
    """
    _, group_in, kh, kw = weight_shape
    return out_size[0] * out_size[1] * kh * kw * group_in * groups * itemsize


# ----------------------------------------------------------------------------- Functions


class Conv2d(Function):
    """``y = conv2d(x, w) + b``; backward: ``dx`` by ConvTranspose2d, ``dw`` by Conv2dGradWeight."""

    @staticmethod
    def forward(ctx, x, weight, bias, out_size, stride, padding, dilation, groups):
        ctx.geometry = (stride, padding, dilation, groups)
        ctx.in_size, ctx.kernel = x.shape[2:], weight.shape[2:]
        ctx.save_for_backward(
            x if ctx.needs_input_grad[1] else None, weight if ctx.needs_input_grad[0] else None
        )
        return conv2d_forward(
            x.data, weight.data, None if bias is None else bias.data, out_size, *ctx.geometry
        )

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = transpose_kernel.ConvTranspose2d.apply(grad, weight, None, ctx.in_size, *ctx.geometry)
        if ctx.needs_input_grad[1]:
            grad_w = Conv2dGradWeight.apply(x, grad, ctx.kernel, *ctx.geometry)
        if ctx.needs_input_grad[2]:
            grad_b = grad.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None, None, None


class Conv2dGradWeight(Function):
    """``dw = G(x, dy)``, the weight gradient of conv2d: bilinear in ``x`` and ``dy``.

    Backward, for an incoming ``ddw`` (shaped like ``w``), from ``<ddw, G(x, dy)> =
    <dy, conv2d(x, ddw)> = <x, conv_transpose2d(dy, ddw)>``:

        dx  = conv_transpose2d(dy, ddw)
        ddy = conv2d(x, ddw)
    """

    @staticmethod
    def forward(ctx, x, grad_out, kernel, stride, padding, dilation, groups):
        ctx.geometry = (stride, padding, dilation, groups)
        ctx.save_for_backward(x, grad_out)
        return conv2d_grad_weight(x.data, grad_out.data, kernel, *ctx.geometry)

    @staticmethod
    def backward(ctx, grad_grad_w):
        x, grad_out = ctx.saved_tensors
        grad_x = grad_grad_out = None
        if ctx.needs_input_grad[0]:
            grad_x = transpose_kernel.ConvTranspose2d.apply(
                grad_out, grad_grad_w, None, x.shape[2:], *ctx.geometry
            )
        if ctx.needs_input_grad[1]:
            grad_grad_out = Conv2d.apply(x, grad_grad_w, None, grad_out.shape[2:], *ctx.geometry)
        return grad_x, grad_grad_out, None, None, None, None, None


# ----------------------------------------------------------------------------- public function


def check_conv_args(op, input, weight, bias, groups, transposed):  # noqa: A002  (PyTorch's names)
    """The checks conv2d and conv_transpose2d share: ndim, dtypes, groups, channels, bias."""
    if input.ndim != 4:
        raise ShapeError(f"{op}: input must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape {input.shape}")
    if weight.ndim != 4:
        layout = "(C_in, C_out/groups, kH, kW)" if transposed else "(C_out, C_in/groups, kH, kW)"
        raise ShapeError(f"{op}: weight must be 4-D {layout}, got shape {weight.shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:
            raise DTypeError(f"{op}: {name} is {t.dtype}, expected input's dtype {input.dtype}")
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if weight.shape[0] % groups:
        raise ShapeError(f"{op}: weight.shape[0] is {weight.shape[0]}, not divisible by groups = {groups}")
    if transposed:
        expected, formula, out_channels = weight.shape[0], "weight.shape[0]", weight.shape[1] * groups
    else:
        expected, formula, out_channels = weight.shape[1] * groups, "weight.shape[1]*groups", weight.shape[0]
    if input.shape[1] != expected:
        raise ShapeError(f"{op}: input.shape[1] is {input.shape[1]}, expected {formula} = {expected}")
    if bias is not None and bias.shape != (out_channels,):
        raise ShapeError(f"{op}: bias has shape {bias.shape}, expected ({out_channels},)")


def check_geometry(op, stride, padding, dilation):
    """Strides and dilations of at least 1, paddings of at least 0."""
    for name, pair, low in (("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1)):
        if min(pair) < low:
            raise ValueError(f"{op}: {name} must be >= {low}, got {pair}")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """2-D convolution of ``input`` (N, C, H, W) or (C, H, W) with ``weight`` (O, C/groups, kH, kW).

    Shapes: output (N, O, out_h, out_w) with
    ``out_h = (H + 2*padding[0] - dilation[0]*(kH - 1) - 1) // stride[0] + 1`` (out_w alike).

    Forward: ``y[n,o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v]*x[n,c, s*i+d*u-p, s*j+d*v-p]``, the
    sum over the ``C/groups`` channels of ``o``'s group, ``x`` zero outside its borders.

    Backward: ``dx = conv_transpose2d(dy, w)``, ``dw = sum_{n,i,j} dy[n,o,i,j]*x[n,c,...]``,
    ``db = dy`` summed over N, out_h, out_w; all differentiable again.

    Why: im2col + one GEMM (see the module docstring). Derivation: docs/kernels/conv.md.
    """
    if input.ndim == 3:  # unbatched (C, H, W), as PyTorch accepts: a batch of one
        return conv2d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    stride = _pair(stride, "stride", "conv2d")
    padding = _pair(padding, "padding", "conv2d")
    dilation = _pair(dilation, "dilation", "conv2d")
    check_conv_args("conv2d", input, weight, bias, groups, transposed=False)
    check_geometry("conv2d", stride, padding, dilation)
    out_size = conv_output_size(input.shape[2:], weight.shape[2:], stride, padding, dilation)
    if min(out_size) < 1:
        raise ShapeError(
            f"conv2d: output size is {out_size} (less than 1) for input size {input.shape[2:]}, kernel "
            f"{weight.shape[2:]}, stride {stride}, padding {padding}, dilation {dilation}: the dilated "
            "kernel is larger than the padded input"
        )
    return Conv2d.apply(input, weight, bias, out_size, stride, padding, dilation, groups)
