"""2-D transposed convolution: the adjoint (the input gradient) of conv2d, by one GEMM and col2im.

Shapes: input ``x`` (N, C_in, H, W), weight ``w`` (C_in, C_out/g, kH, kW), bias ``b`` (C_out,),
output ``y`` (N, C_out, out_h, out_w) with ``g`` groups, stride ``s``, padding ``p``, dilation
``d`` and output padding ``op`` (pairs: one value per spatial axis) and

    out_h = (H - 1)*s_h - 2*p_h + d_h*(kH - 1) + op_h + 1       (the same for out_w)

Forward: every input pixel scatters a weighted copy of the kernel into the output,

    y[n,o,a,b] = b[o] + sum over (c,u,v,i,j) with s*i+d*u-p = a, s*j+d*v-p = b of w[c,o,u,v]*x[n,c,i,j]

computed as ``cols = X @ W^T`` per group (one GEMM) and ``y = col2im(cols)``. It is the
transpose of the linear map ``z -> conv2d(z, w)`` from (N, C_out, out_h, out_w) to
(N, C_in, H, W): ``<conv_transpose2d(x, w), z> = <x, conv2d(z, w)>``. ``output_padding``
only picks among the output sizes that conv2d maps to ``(H, W)``; the extra rows get ``b``.

Backward (each a differentiable op, so double backward works):

    dx = conv2d(dy, w)                          the adjoint of the adjoint
    dw = Conv2dGradWeight(dy, x)                conv2d's weight gradient with input dy, output grad x
    db[o] = sum_{n,a,b} dy[n,o,a,b]

Why: the adjoint pair shares its three array routines with conv2d, so each direction is one
GEMM and kH*kW strided additions. Derivation: docs/kernels/conv.md.
"""

import tinygen.kernels.conv2d as conv_kernel
from tinygen import backend
from tinygen.autograd.function import Function
from tinygen.errors import ShapeError
from tinygen.kernels.im2col import _pair, channels_last, col2im, group_major

# ----------------------------------------------------------------------------- xp version


def conv_transpose2d_forward(x, weight, bias, out_size, stride, padding, dilation, groups):
    """``y = col2im(W @ X^T) (+ b)`` per group: a contiguous (N, C_out, out_h, out_w) array.

    ``W^T`` is conv2d's weight matrix of ``weight`` read as a conv2d weight (C_in plays the
    role of conv2d's output channels), so ``W @ X^T`` is the transpose of conv2d's product.
    The batch is done in chunks (``backend.map_batch``), each writing its rows of ``y``.
    """
    xp = backend.get_array_module(x, weight)
    group_out, kh, kw = weight.shape[1:]
    n, _, h, w = x.shape
    w_t = conv_kernel.weight_matrix(weight, groups)  # (g, C_in/g, kH*kW*C_out/g)
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

    backend.map_batch(forward_rows, n, conv_kernel.cols_bytes((h, w), weight.shape, groups, x.itemsize), x)
    return out


# ----------------------------------------------------------------------------- Function


class ConvTranspose2d(Function):
    """``y = conv_transpose2d(x, w) + b`` with the output size given; backward by Conv2d, Conv2dGradWeight."""

    @staticmethod
    def forward(ctx, x, weight, bias, out_size, stride, padding, dilation, groups):
        ctx.geometry = (stride, padding, dilation, groups)
        ctx.in_size, ctx.kernel = x.shape[2:], weight.shape[2:]
        ctx.save_for_backward(
            x if ctx.needs_input_grad[1] else None, weight if ctx.needs_input_grad[0] else None
        )
        return conv_transpose2d_forward(
            x.data, weight.data, None if bias is None else bias.data, out_size, *ctx.geometry
        )

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = conv_kernel.Conv2d.apply(grad, weight, None, ctx.in_size, *ctx.geometry)
        if ctx.needs_input_grad[1]:
            grad_w = conv_kernel.Conv2dGradWeight.apply(grad, x, ctx.kernel, *ctx.geometry)
        if ctx.needs_input_grad[2]:
            grad_b = grad.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None, None, None


# ----------------------------------------------------------------------------- public function


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
    stride = _pair(stride, "stride", "conv_transpose2d")
    padding = _pair(padding, "padding", "conv_transpose2d")
    output_padding = _pair(output_padding, "output_padding", "conv_transpose2d")
    dilation = _pair(dilation, "dilation", "conv_transpose2d")
    conv_kernel.check_conv_args("conv_transpose2d", input, weight, bias, groups, transposed=True)
    conv_kernel.check_geometry("conv_transpose2d", stride, padding, dilation)
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
