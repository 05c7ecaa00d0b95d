"""2-D convolution and its adjoint, the transposed convolution: one GEMM each, and their weight gradient.

``conv2d`` (cross-correlation, as in PyTorch) is im2col and one GEMM; ``conv_transpose2d`` is
its adjoint (conv2d's input gradient), one GEMM and col2im. Each one's backward calls the
other and the weight-gradient node ``Conv2dGradWeight``, so the three live in one file, as
in DeZero's ``functions_conv.py``. Pairs: one value per spatial axis; ``g`` groups, stride
``s``, padding ``p``, dilation ``d``.

**conv2d**. Shapes: input ``x`` (N, C, H, W), weight ``w`` (O, C/g, kH, kW), bias ``b`` (O,),
output ``y`` (N, O, out_h, out_w) with

    out_h = (H + 2*p_h - d_h*(kH - 1) - 1) // s_h + 1       (the same for out_w)

Forward, for ``o`` in group ``G`` (the ``C/g`` input channels ``c`` of that group):

    y[n,o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v]*x[n,c, s*i+d*u-p, s*j+d*v-p]     (x is 0 outside)

computed as ``Y = cols @ W`` per group, with ``cols = im2col(x)`` (see ``im2col.py``).

Backward (each a differentiable op, so double backward works, as WGAN-GP needs):

    dx = conv_transpose2d(dy, w)                      the adjoint of x -> conv2d(x, w)
    dw[o,c,u,v] = sum_{n,i,j} dy[n,o,i,j]*x[n,c, s*i+d*u-p, s*j+d*v-p]   (Conv2dGradWeight)
    db[o] = sum_{n,i,j} dy[n,o,i,j]

**conv_transpose2d**. Shapes: input ``x`` (N, C_in, H, W), weight ``w`` (C_in, C_out/g, kH, kW),
bias ``b`` (C_out,), output ``y`` (N, C_out, out_h, out_w) with output padding ``op`` and

    out_h = (H - 1)*s_h - 2*p_h + d_h*(kH - 1) + op_h + 1       (the same for out_w)

Forward: every input pixel scatters a weighted copy of the kernel into the output,

    y[n,o,a,b] = b[o] + sum over (c,u,v,i,j) with s*i+d*u-p = a, s*j+d*v-p = b of w[c,o,u,v]*x[n,c,i,j]

computed as ``cols = X @ W^T`` per group (one GEMM) and ``y = col2im(cols)``. It is the
transpose of the linear map ``z -> conv2d(z, w)`` from (N, C_out, out_h, out_w) to
(N, C_in, H, W): ``<conv_transpose2d(x, w), z> = <x, conv2d(z, w)>``. ``output_padding``
only picks among the output sizes that conv2d maps to ``(H, W)`` (rows that no window of
that conv2d reads, possible only where ``p`` is small, get just ``b``).

Backward (each a differentiable op, so double backward works):

    dx = conv2d(dy, w)                          the adjoint of the adjoint
    dw = Conv2dGradWeight(dy, x)                conv2d's weight gradient with input dy, output grad x
    db[o] = sum_{n,a,b} dy[n,o,a,b]

Why: one GEMM per call keeps NumPy at BLAS speed; loops run only over the kH*kW kernel
offsets in col2im, and the adjoint pair shares its array routines. ``reference_conv2d`` and
``reference_conv_transpose2d`` below are the two formulas written plainly, one einsum per
kernel offset; tests/kernels_tests/test_conv.py checks the tuned code against them.
Derivation: docs/kernels/conv.md.
"""

import operator

from tinygen import backend, cpu
from tinygen.autograd.function import Function
from tinygen.errors import DTypeError, ShapeError
from tinygen.kernels.geometry import pair
from tinygen.kernels.im2col import channels_last, col2im, conv_output_size, copy_into, group_major, im2col

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

    The batch is done in chunks (``cpu.map_batch``), each im2col'd and multiplied
    while its columns are in cache; each chunk writes its rows of the output. The GEMM
    reads the columns the way they are stored: pixel-major (channels last) as ``cols @ W``,
    one row per pixel; k-major as ``W^T @ cols_t``, one row per output channel (either
    way faster than reading them transposed on the DCGAN layers: benchmarks/RESULTS.md).
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

    cpu.map_batch(forward_rows, n, cols_bytes(out_size, weight.shape, groups, x.itemsize), x)
    return out


def conv2d_grad_weight(x, grad_out, kernel, stride, padding, dilation, groups):
    """``dW^T = dY^T @ im2col(x)^T`` per group, summed over batch chunks: a (O, C/g, kH, kW) array.

    Each chunk's product is a whole ``dW``-sized array. Where that is large next to a
    chunk's columns (``Conv2d(128, 256)``: 2 MiB), chunks on parallel threads would hold
    one each plus the sum, so the chunks run in order instead and each product is split
    over the threads by :func:`cpu.matmul`, which halves that layer's peak memory at 2
    threads (benchmarks/RESULTS.md).
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
            return cpu.matmul(grad_g[0], cols_t[0].T)[None]
        return grad_g @ cols_t.transpose(0, 2, 1)  # (g, O/g, kH*kW*C/g)

    nbytes = cols_bytes(out_size, shape, groups, x.itemsize)
    parallel = 2 * grad_bytes <= cpu.CHUNK_BYTES
    total = cpu.map_batch(grad_rows, x.shape[0], nbytes, x, fold=operator.iadd, parallel=parallel)
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


def conv_transpose2d_forward(x, weight, bias, out_size, stride, padding, dilation, groups):
    """``y = col2im(W @ X^T) (+ b)`` per group: a contiguous (N, C_out, out_h, out_w) array.

    ``W^T`` is conv2d's weight matrix of ``weight`` read as a conv2d weight (C_in plays the
    role of conv2d's output channels), so ``W @ X^T`` is the transpose of conv2d's product.
    The batch is done in chunks (``cpu.map_batch``), each writing its rows of ``y``.
    """
    xp = backend.get_array_module(x, weight)
    group_out, kh, kw = weight.shape[1:]
    n, _, h, w = x.shape
    w_t = weight_matrix(weight, groups)  # (g, C_in/g, kH*kW*C_out/g)
    out = xp.empty((n, group_out * groups, *out_size), dtype=x.dtype)

    def forward_rows(rows):
        x_rows = x[rows]
        x_t = group_major(x_rows, groups)  # (g, C_in/g, n_rows*H*W)
        if channels_last(group_out):  # im2col's layout: the transpose contiguous
            cols_t = (x_t.transpose(0, 2, 1) @ w_t).transpose(0, 2, 1)
        else:
            cols_t = w_t.transpose(0, 2, 1) @ x_t
        shape = (x_rows.shape[0], group_out * groups, *out_size)
        col2im(cols_t, shape, (kh, kw), (h, w), stride, padding, dilation, out=out[rows])
        if bias is not None:
            out[rows] += bias.reshape(-1, 1, 1)

    cpu.map_batch(forward_rows, n, cols_bytes((h, w), weight.shape, groups, x.itemsize), x)
    return out


# ----------------------------------------------------------------------------- reference versions


def reference_conv2d(x, w, b, stride, padding, dilation, groups):
    """conv2d as its formula reads: one einsum per kernel offset ``(u, v)``, no im2col.

    Shapes: ``x`` (N, C, H, W), ``w`` (O, C/g, kH, kW), ``b`` (O,) or None; output
    (N, O, out_h, out_w), ``out_h = (H + 2*p - d*(kH - 1) - 1) // s + 1`` (out_w alike).

    Forward: ``y[n,o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v]*x[n,c, s*i+d*u-p, s*j+d*v-p]``,
    ``c`` over the C/g channels of ``o``'s group. For one offset ``(u, v)``, the pixels read
    by every output pixel form the strided slice ``padded[..., d*u::s, d*v::s]`` of the
    zero-padded input, so the sum over ``c`` is one einsum per offset.

    Backward: none (a plain array function); the tuned ``conv2d`` is tested against it.

    Why: the formula to read and test against. Arrays in, arrays out; int or pair arguments.
    """
    xp = backend.get_array_module(x, w)
    sh, sw = pair(stride, "stride", "reference_conv2d")
    ph, pw = pair(padding, "padding", "reference_conv2d")
    dh, dw = pair(dilation, "dilation", "reference_conv2d")
    n, _, h, width = x.shape
    out_c, group_c, kh, kw = w.shape
    out_h, out_w = conv_output_size((h, width), (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    padded = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    w_groups = w.reshape(groups, out_c // groups, group_c, kh, kw)
    y = xp.zeros((n, groups, out_c // groups, out_h, out_w), dtype=xp.result_type(x, w))
    for u in range(kh):
        for v in range(kw):
            rows = slice(u * dh, u * dh + sh * (out_h - 1) + 1, sh)
            columns = slice(v * dw, v * dw + sw * (out_w - 1) + 1, sw)
            patch = padded[:, :, rows, columns].reshape(n, groups, group_c, out_h, out_w)
            y += xp.einsum("ngchw,goc->ngohw", patch, w_groups[..., u, v])
    y = y.reshape(n, out_c, out_h, out_w)
    return y if b is None else y + b[:, None, None]


def reference_conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation):
    """conv_transpose2d as its formula reads: every input pixel stamps a scaled kernel, one offset at a time.

    Shapes: ``x`` (N, C_in, H, W), ``w`` (C_in, C_out/g, kH, kW), ``b`` (C_out,) or None;
    output (N, C_out, out_h, out_w), ``out_h = (H - 1)*s - 2*p + d*(kH - 1) + op + 1``.

    Forward: ``y[n,o,a,b] = b[o] + sum w[c,o,u,v]*x[n,c,i,j]`` over ``(c, u, v, i, j)`` with
    ``s*i+d*u-p = a`` and ``s*j+d*v-p = b``. For one offset ``(u, v)``, input pixel ``(i, j)``
    lands on row ``s*i+d*u`` of an uncropped canvas (``p`` wider on each side), so the
    additions of one offset are one strided slice ``canvas[..., d*u::s, d*v::s] += ...``;
    cropping ``p`` from each side leaves ``y``. This is conv2d's input gradient: the adjoint
    of ``z -> reference_conv2d(z, w)``.

    Backward: none (a plain array function); the tuned ``conv_transpose2d`` is tested against it.

    Why: the scatter view to read and test against. Arrays in, arrays out; int or pair arguments.
    """
    xp = backend.get_array_module(x, w)
    op = "reference_conv_transpose2d"
    sh, sw = pair(stride, "stride", op)
    ph, pw = pair(padding, "padding", op)
    oh, ow = pair(output_padding, "output_padding", op)
    dh, dw = pair(dilation, "dilation", op)
    n, in_c, h, width = x.shape
    _, group_out, kh, kw = w.shape
    out_h = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oh + 1
    out_w = (width - 1) * sw - 2 * pw + dw * (kw - 1) + ow + 1
    canvas = xp.zeros((n, groups, group_out, out_h + 2 * ph, out_w + 2 * pw), dtype=xp.result_type(x, w))
    x_groups = x.reshape(n, groups, in_c // groups, h, width)
    w_groups = w.reshape(groups, in_c // groups, group_out, kh, kw)
    for u in range(kh):
        for v in range(kw):
            rows = slice(u * dh, u * dh + sh * (h - 1) + 1, sh)
            columns = slice(v * dw, v * dw + sw * (width - 1) + 1, sw)
            canvas[:, :, :, rows, columns] += xp.einsum("ngchw,gco->ngohw", x_groups, w_groups[..., u, v])
    y = canvas[..., ph : ph + out_h, pw : pw + out_w].reshape(n, groups * group_out, out_h, out_w)
    return y if b is None else y + b[:, None, None]


# ----------------------------------------------------------------------------- Functions


def _keep_for_backward(ctx, x, weight, stride, padding, dilation, groups):
    """What the backward of :class:`Conv2d` and :class:`ConvTranspose2d` needs: the geometry,
    the sizes, and ``x`` (for ``dw``) and ``w`` (for ``dx``) only where those are asked for."""
    ctx.geometry = (stride, padding, dilation, groups)
    ctx.in_size, ctx.kernel = x.shape[2:], weight.shape[2:]
    ctx.save_for_backward(x if ctx.needs_input_grad[1] else None, weight if ctx.needs_input_grad[0] else None)


def _backward(ctx, grad, adjoint, transposed):
    """``(dx, dw, db)`` of either: ``dx`` by the ``adjoint`` op, ``dw`` by Conv2dGradWeight, ``db`` a sum.

    ``dw`` is conv2d's weight gradient of (conv2d's input, its output gradient): ``(x, dy)``
    for conv2d, ``(dy, x)`` for the transposed convolution (``transposed``).
    """
    x, weight = ctx.saved_tensors
    grad_x = grad_w = grad_b = None
    if ctx.needs_input_grad[0]:
        grad_x = adjoint.apply(grad, weight, None, ctx.in_size, *ctx.geometry)
    if ctx.needs_input_grad[1]:
        image, grad_image = (grad, x) if transposed else (x, grad)
        grad_w = Conv2dGradWeight.apply(image, grad_image, ctx.kernel, *ctx.geometry)
    if ctx.needs_input_grad[2]:
        grad_b = grad.sum((0, 2, 3))
    return grad_x, grad_w, grad_b, None, None, None, None, None


class Conv2d(Function):
    """``y = conv2d(x, w) + b``; backward: ``dx`` by ConvTranspose2d, ``dw`` by Conv2dGradWeight."""

    @staticmethod
    def forward(ctx, x, weight, bias, out_size, stride, padding, dilation, groups):
        _keep_for_backward(ctx, x, weight, stride, padding, dilation, groups)
        return conv2d_forward(
            x.data, weight.data, None if bias is None else bias.data, out_size, *ctx.geometry
        )

    @staticmethod
    def backward(ctx, grad):
        return _backward(ctx, grad, ConvTranspose2d, transposed=False)


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
            grad_x = ConvTranspose2d.apply(grad_out, grad_grad_w, None, x.shape[2:], *ctx.geometry)
        if ctx.needs_input_grad[1]:
            grad_grad_out = Conv2d.apply(x, grad_grad_w, None, grad_out.shape[2:], *ctx.geometry)
        return grad_x, grad_grad_out, None, None, None, None, None


class ConvTranspose2d(Function):
    """``y = conv_transpose2d(x, w) + b`` with the output size given; backward by Conv2d, Conv2dGradWeight."""

    @staticmethod
    def forward(ctx, x, weight, bias, out_size, stride, padding, dilation, groups):
        _keep_for_backward(ctx, x, weight, stride, padding, dilation, groups)
        return conv_transpose2d_forward(
            x.data, weight.data, None if bias is None else bias.data, out_size, *ctx.geometry
        )

    @staticmethod
    def backward(ctx, grad):
        return _backward(ctx, grad, Conv2d, transposed=True)


# ----------------------------------------------------------------------------- public functions


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
    for name, values, low in (("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1)):
        if min(values) < low:
            raise ValueError(f"{op}: {name} must be >= {low}, got {values}")


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
    stride = pair(stride, "stride", "conv2d")
    padding = pair(padding, "padding", "conv2d")
    dilation = pair(dilation, "dilation", "conv2d")
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


def conv_transpose2d(
    input,  # noqa: A002  (PyTorch's names)
    weight,
    bias=None,
    stride=1,
    padding=0,
    output_padding=0,
    groups=1,
    dilation=1,
):
    """Transposed 2-D convolution of ``input`` (N, C_in, H, W) with ``weight`` (C_in, C_out/groups, kH, kW).

    Shapes: output (N, C_out, out_h, out_w) with ``C_out = weight.shape[1]*groups`` and
    ``out_h = (H - 1)*stride[0] - 2*padding[0] + dilation[0]*(kH - 1) + output_padding[0] + 1``.

    Forward: ``y = conv2d``'s input gradient, ``y[n,o,a,b] = b[o] + sum w[c,o,u,v]*x[n,c,i,j]``
    over ``s*i+d*u-p = a``, ``s*j+d*v-p = b``; ``output_padding`` (smaller than stride or
    dilation, as PyTorch requires) adds rows at the bottom and right.

    Backward: ``dx = conv2d(dy, w)``, ``dw`` = conv2d's weight gradient for input ``dy`` and
    output gradient ``x``, ``db = dy`` summed over N, out_h, out_w; all differentiable again.

    Why: GEMM + col2im, no per-pixel loops (see the module docstring). docs/kernels/conv.md.
    """
    if input.ndim == 3:  # unbatched (C, H, W), as PyTorch accepts: a batch of one
        batched = conv_transpose2d(
            input.unsqueeze(0), weight, bias, stride, padding, output_padding, groups, dilation
        )
        return batched.squeeze(0)
    stride = pair(stride, "stride", "conv_transpose2d")
    padding = pair(padding, "padding", "conv_transpose2d")
    output_padding = pair(output_padding, "output_padding", "conv_transpose2d")
    dilation = pair(dilation, "dilation", "conv_transpose2d")
    check_conv_args("conv_transpose2d", input, weight, bias, groups, transposed=True)
    check_geometry("conv_transpose2d", stride, padding, dilation)
    for extra, s, d in zip(output_padding, stride, dilation, strict=True):
        if extra < 0 or (extra >= s and extra >= d):
            raise ValueError(
                f"conv_transpose2d: output_padding is {output_padding}, expected each value >= 0 and "
                f"smaller than either stride {stride} or dilation {dilation}"
            )
    out_size = tuple(
        (n - 1) * s - 2 * p + d * (k - 1) + extra + 1
        for n, k, s, p, d, extra in zip(
            input.shape[2:], weight.shape[2:], stride, padding, dilation, output_padding, strict=True
        )
    )
    if min(out_size) < 1:
        raise ShapeError(
            f"conv_transpose2d: output size is {out_size} (less than 1) for input size {input.shape[2:]}, "
            f"kernel {weight.shape[2:]}, stride {stride}, padding {padding}, dilation {dilation}, "
            f"output_padding {output_padding}: padding crops more than the output has"
        )
    return ConvTranspose2d.apply(input, weight, bias, out_size, stride, padding, dilation, groups)
