"""im2col and col2im: convolution as one matrix product (the helpers of the convolutions in conv.py).

Notation (as in ``docs/kernels/conv.md``): input ``x`` of shape ``(N, C, H, W)``, a
``kH x kW`` kernel with stride ``s``, zero padding ``p`` and dilation ``d`` (each a pair,
one value per spatial axis), output size

    out_h = (H + 2*p_h - d_h*(kH - 1) - 1) // s_h + 1       (the same for out_w)

Forward (im2col), for group ``G`` of ``g`` (its ``C/g`` channels ``c``): the columns

    cols_t[G, k, (n,i,j)] = x[n, G*C/g + c, s*i + d*u - p, s*j + d*v - p]     (0 outside x)

with ``k`` the (kernel offset, channel) pair ``(u, v, c)``, so a convolution is the GEMM
``Y^T = W^T @ cols_t`` per group: ``W^T`` is the weight as a (O/g, kH*kW*C/g) matrix
(``conv2d.weight_matrix``) and ``Y^T`` has one row per output channel.

Backward (col2im) is the adjoint: every column value goes back to the pixel it was read
from, and values read from one pixel by several kernel offsets are summed:

    x[n, c, a, b] = sum over (u, v, i, j) with s*i+d*u-p = a, s*j+d*v-p = b of cols_t[., (u,v,c), (n,i,j)]

Two memory layouts of the same matrix, chosen by the channel count (:func:`channels_last`):

- C/g >= 16 (DCGAN's inner layers): ``k`` ordered ``(u, v, c)`` and the array stored as its
  transpose (pixels by k), so every copy in im2col and every addition in col2im moves runs
  of C/g contiguous numbers from a channels-last (N, H, W, C) copy of the input.
- C/g < 16 (the image layers, C = 1 or 3): ``k`` ordered ``(c, u, v)``, stored as is, so
  the copies move runs of out_w pixels instead of runs of 1 to 3 channels.

Batch and pixels are never looped over. See docs/kernels/conv.md.
"""

from tinygen import backend

# C/g from which columns are channels last: k-major was measured faster for 1 and 3 channels,
# channels last for 64 and more; 16 lies between and is not tuned.
CHANNELS_LAST_MIN = 16


def conv_output_size(size, kernel, stride, padding, dilation):
    """``(size + 2*padding - dilation*(kernel - 1) - 1) // stride + 1``, per spatial axis."""
    return tuple(
        (n + 2 * p - d * (k - 1) - 1) // s + 1
        for n, k, s, p, d in zip(size, kernel, stride, padding, dilation, strict=True)
    )


def channels_last(group_channels):
    """Whether columns over ``group_channels`` (C/g) channels order ``k`` as (u, v, c), stored pixel-major."""
    return group_channels >= CHANNELS_LAST_MIN


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


def _copy_into(xp, dst, src, axis):
    """``dst[...] = src``, eight at a time along ``axis`` where ``src`` steps a multiple of 1 KiB along it.

    NumPy walks a copy in the order of ``dst``'s memory, so where ``dst`` is contiguous
    along ``axis`` the innermost loop reads ``src`` along it. Where that step is a multiple
    of 1 KiB (a channel of a 32 x 32 float32 image: 4 KiB; a row of a (128, 1024) weight
    matrix), the cache lines of the walk fall into few sets of the 8-way L1 cache and evict
    each other before their next elements are read: the zero-padded copy of a 64 x 32 x 32
    image was most of its im2col, and the transpose of ``Conv2d(64, 128)``'s weight matrix
    slow too. Eight steps at a time fit the sets, and run much faster (the figures are
    in benchmarks/RESULTS.md). (28 x 28 images step 3136 bytes, which spreads over the sets,
    and are copied in one go.)
    """
    step = abs(src.strides[axis])
    if step == 0 or step % 1024:
        dst[...] = src
        return
    index = [slice(None)] * dst.ndim
    for start in range(0, dst.shape[axis], 8):
        index[axis] = slice(start, start + 8)
        dst[tuple(index)] = src[tuple(index)]


def _copy_into_cuda(dst, src, axis):
    """:func:`_copy_into` on a GPU: one copy kernel, where the blocks would be a launch each."""
    dst[...] = src


copy_into = backend.twin(_copy_into, cuda=_copy_into_cuda)


def _zero_padded(shape, padding, groups, dtype, xp):
    """A zero (N, g, C/g, H + 2*p_h, W + 2*p_w) array: a view of a channels-last or channels-first one.

    The view gives im2col and col2im one indexing for both layouts; NumPy's copies and
    additions walk the memory underneath in its own order.
    """
    n, c, h, w = shape
    padded_size = (h + 2 * padding[0], w + 2 * padding[1])
    if channels_last(c // groups):
        return xp.zeros((n, *padded_size, groups, c // groups), dtype=dtype).transpose(0, 3, 4, 1, 2)
    return xp.zeros((groups, c // groups, n, *padded_size), dtype=dtype).transpose(2, 0, 1, 3, 4)


def _im2col(xp, x, kernel, out_size, stride, padding, dilation, groups):
    """Patches of ``x`` (N, C, H, W) as columns ``cols_t`` of shape (g, kH*kW*C/g, N*out_h*out_w).

    Column ``(n, i, j)`` of group ``G`` holds the patch that output pixel ``(i, j)`` reads:
    ``cols_t[G, k, (n,i,j)] = x[n, G*C/g + c, s*i+d*u-p, s*j+d*v-p]``, ``k`` as
    :func:`channels_last` orders it (channels last: the transpose of a contiguous array).
    ``out_size`` is ``(out_h, out_w)``: :func:`conv_output_size` or less (the adjoint of a
    transposed convolution whose ``output_padding`` left rows unread asks for less).

    The input is copied once into a zero-padded array; a strided view then picks every
    patch without copying, and one copy lays the patches out.
    """
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    out_h, out_w = out_size
    group_c = c // groups
    padded = _zero_padded(x.shape, padding, groups, x.dtype, xp)  # (N, g, C/g, H + 2p, W + 2p)
    copy_into(padded[..., ph : ph + h, pw : pw + w], x.reshape(n, groups, group_c, h, w), 2)
    step_n, step_g, step_c, step_h, step_w = padded.strides
    patches = xp.lib.stride_tricks.as_strided(  # patches[G, c, u, v, n, i, j], no copy
        padded,
        shape=(groups, group_c, kh, kw, n, out_h, out_w),
        strides=(step_g, step_c, dh * step_h, dw * step_w, step_n, sh * step_h, sw * step_w),
    )
    if channels_last(group_c):  # stored as (G, n, i, j, u, v, c)
        cols = xp.ascontiguousarray(patches.transpose(0, 4, 5, 6, 2, 3, 1))
        return cols.reshape(groups, n * out_h * out_w, kh * kw * group_c).transpose(0, 2, 1)
    return xp.ascontiguousarray(patches).reshape(groups, group_c * kh * kw, n * out_h * out_w)


# One CUDA thread per value of the stored columns (``i``, its flat index) reads it from x, or
# writes 0 where the window hangs over the border: no padded copy, one launch where the xp
# version makes three. The stored layouts are _im2col's: (G, n, i, j, u, v, c) channels last,
# (G, c, u, v, n, i, j) otherwise.
_IM2COL_CUDA = """
    long long r = i;
    int n, row, col, u, v, c, g;
    if (last) {
        c = r % gc; r /= gc; v = r % kw; r /= kw; u = r % kh; r /= kh;
        col = r % ow; r /= ow; row = r % oh; r /= oh; n = r % batch; g = r / batch;
    } else {
        col = r % ow; r /= ow; row = r % oh; r /= oh; n = r % batch; r /= batch;
        v = r % kw; r /= kw; u = r % kh; r /= kh; c = r % gc; g = r / gc;
    }
    const int a = row * sh + u * dh - ph, b = col * sw + v * dw - pw;
    cols = (a < 0 || a >= height || b < 0 || b >= width)
        ? (T)0 : x[(((long long)n * chans + g * gc + c) * height + a) * width + b];
"""

IM2COL_KERNEL = backend.CudaSource(
    "raw T x, int32 batch, int32 chans, int32 height, int32 width, int32 gc, "
    "int32 kh, int32 kw, int32 oh, int32 ow, int32 sh, int32 sw, int32 ph, int32 pw, int32 dh, int32 dw, "
    "bool last",
    "T cols",
    _IM2COL_CUDA,
    "tinygen_im2col",
)


def _im2col_cuda(x, kernel, out_size, stride, padding, dilation, groups):
    """:func:`_im2col` as one gather kernel (CuPy arrays), returning the same layout."""
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    (kh, kw), (oh, ow) = kernel, out_size
    group_c = c // groups
    last = channels_last(group_c)
    stored = xp.empty((groups, n * oh * ow, kh * kw * group_c) if last
                      else (groups, group_c * kh * kw, n * oh * ow), dtype=x.dtype)  # fmt: skip
    geometry = (*kernel, *out_size, *stride, *padding, *dilation)
    backend.elementwise(IM2COL_KERNEL)(xp.ascontiguousarray(x), n, c, h, w, group_c, *geometry, last, stored)
    return stored.transpose(0, 2, 1) if last else stored


im2col = backend.twin(_im2col, cuda=_im2col_cuda)


def _col2im(xp, cols_t, shape, kernel, out_size, stride, padding, dilation, out=None):
    """The adjoint of :func:`im2col`: columns (g, kH*kW*C/g, N*out_h*out_w) summed into ``shape`` (N,C,H,W).

    ``cols_t`` is laid out as :func:`im2col` returns it for C/g channels (for channels
    last, ``cols_t.transpose(0, 2, 1)`` is contiguous). The result is written into ``out``
    when given, else into a new array. One strided slice of a zero-padded result is added
    to per kernel offset (kH*kW additions, each of all batches, channels and pixels at
    once); the padding is cropped at the end.
    """
    n, c, h, w = shape
    groups = cols_t.shape[0]
    group_c = c // groups
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    out_h, out_w = out_size
    if channels_last(group_c):  # pieces[u, v, n, G, c, i, j], views of the stored (G, n, i, j, u, v, c)
        cols = cols_t.transpose(0, 2, 1).reshape(groups, n, out_h, out_w, kh, kw, group_c)
        pieces = cols.transpose(4, 5, 1, 0, 6, 2, 3)
    else:  # from the stored (G, c, u, v, n, i, j)
        pieces = cols_t.reshape(groups, group_c, kh, kw, n, out_h, out_w).transpose(2, 3, 4, 0, 1, 5, 6)
    padded = _zero_padded(shape, padding, groups, cols_t.dtype, xp)  # (N, g, C/g, H + 2p, W + 2p)
    for u in range(kh):
        for v in range(kw):
            rows = slice(u * dh, u * dh + sh * (out_h - 1) + 1, sh)
            columns = slice(v * dw, v * dw + sw * (out_w - 1) + 1, sw)
            padded[..., rows, columns] += pieces[u, v]
    cropped = padded[..., ph : ph + h, pw : pw + w].reshape(shape)
    if out is None:
        return xp.ascontiguousarray(cropped)
    out[...] = cropped
    return out


# One CUDA thread per pixel x[n, ch, a, b] (``i``, its flat index) gathers the column values
# read from it, for the kernel offsets (u, v) in the same order as _col2im adds them, so
# the sums are the same to the bit; the kH*kW slice additions would be kH*kW launches.
_COL2IM_CUDA = """
    const int b = i % width, a = i / width % height, ch = i / (width * height) % chans;
    const int n = i / (width * height * chans), g = ch / gc, c = ch % gc;
    T sum = 0;
    for (int u = 0; u < kh; ++u) {
        const int top = a + ph - u * dh;  // = sh * row, for the output row that read (a, b)
        if (top < 0 || top % sh != 0 || top / sh >= oh) continue;
        const long long row = top / sh;
        for (int v = 0; v < kw; ++v) {
            const int left = b + pw - v * dw;
            if (left < 0 || left % sw != 0 || left / sw >= ow) continue;
            const long long col = left / sw;
            const long long k = last
                ? (((((g * (long long)batch + n) * oh + row) * ow + col) * kh + u) * kw + v) * gc + c
                : (((((g * (long long)gc + c) * kh + u) * kw + v) * batch + n) * oh + row) * ow + col;
            sum += cols[k];
        }
    }
    x = sum;
"""

COL2IM_KERNEL = backend.CudaSource(
    "raw T cols, int32 batch, int32 chans, int32 height, int32 width, int32 gc, "
    "int32 kh, int32 kw, int32 oh, int32 ow, int32 sh, int32 sw, int32 ph, int32 pw, int32 dh, int32 dw, "
    "bool last",
    "T x",
    _COL2IM_CUDA,
    "tinygen_col2im",
)


def _col2im_cuda(cols_t, shape, kernel, out_size, stride, padding, dilation, out=None):
    """:func:`_col2im` as one gather kernel (CuPy arrays)."""
    n, c, h, w = shape
    groups = cols_t.shape[0]
    last = channels_last(c // groups)
    xp = backend.get_array_module(cols_t)
    stored = xp.ascontiguousarray(cols_t.transpose(0, 2, 1) if last else cols_t)
    if out is None:
        out = xp.empty(shape, dtype=cols_t.dtype)
    kernel_fn = backend.elementwise(COL2IM_KERNEL)
    geometry = (*kernel, *out_size, *stride, *padding, *dilation)
    kernel_fn(stored.ravel(), n, c, h, w, c // groups, *geometry, last, out)
    return out


col2im = backend.twin(_col2im, cuda=_col2im_cuda)
