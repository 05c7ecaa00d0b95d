"""Chapter 4: convolution as im2col and one matrix product, and its gradients.

    python examples/learn/04_convolution.py

Prints the output-size formula against conv2d's shapes, the 3 x 3 worked example (its
columns and the product that is the convolution), the adjoint identity, col2im's window
counts, the weight gradient as one product, and a gradcheck. The page is
docs/learn/04-convolution.md.
"""

import argparse
from pathlib import Path

import numpy as np

import tinygen
import tinygen.nn.functional as F
from tinygen.kernels import conv, im2col
from tinygen.testing import gradcheck

ONE = (1, 1)  # stride, padding or dilation 1 on both axes, as the im2col helpers take them


def output_size(size, k, s=1, p=0, d=1):
    """``floor((H + 2p - d*(k-1) - 1) / s) + 1``: the formula of the page."""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def worked_example():
    """The 3 x 3 input 1..9, a 2 x 2 kernel: ``(x, w, cols, W, y)`` as arrays."""
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    w = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    cols = im2col.im2col(x, (2, 2), (2, 2), ONE, (0, 0), ONE, 1)[0]  # (kH*kW*C, N*out_h*out_w) = (4, 4)
    weight = conv.weight_matrix(w, 1)[0]  # (O, kH*kW*C) = (1, 4)
    y = (weight @ cols).reshape(1, 1, 2, 2)
    return x, w, cols, weight, y


def window_counts(shape, kernel, stride=ONE, padding=(0, 0)):
    """How many windows read each pixel: col2im of columns that are all ones."""
    size = im2col.conv_output_size(shape[2:], kernel, stride, padding, ONE)
    ones = np.ones((1, kernel[0] * kernel[1] * shape[1], shape[0] * size[0] * size[1]))
    return im2col.col2im(ones, shape, kernel, size, stride, padding, ONE)


def show_sizes():
    print("== output size: floor((H + 2p - d*(k-1) - 1)/s) + 1 ==")
    rng = np.random.default_rng(0)
    cases = [(28, 4, 2, 1, 1), (14, 4, 2, 1, 1), (5, 3, 1, 1, 1), (7, 3, 2, 0, 1), (7, 3, 1, 0, 2)]
    for size, k, s, p, d in cases:
        x = tinygen.tensor(rng.standard_normal((1, 1, size, size)))
        w = tinygen.tensor(rng.standard_normal((1, 1, k, k)))
        got = F.conv2d(x, w, stride=s, padding=p, dilation=d).shape[2]
        expected = output_size(size, k, s, p, d)
        print(f"H={size:2d} k={k} s={s} p={p} d={d}: formula {expected}, conv2d {got}")
        assert got == expected


def show_worked_example():
    print("\n== worked example: 3x3 input 1..9, 2x2 kernel [[1, 2], [3, 4]] ==")
    x, w, cols, weight, y = worked_example()
    print("cols (one column per output pixel, one row per kernel offset):")
    print(cols.astype(int))
    print("W (the kernel as one row):", weight.astype(int))
    print("W @ cols reshaped to 2x2:")
    print(y[0, 0].astype(int))
    y_conv = F.conv2d(tinygen.tensor(x), tinygen.tensor(w)).numpy()
    y_ref = conv.reference_conv2d(x, w, None, 1, 0, 1, 1)
    print("equal to conv2d:", np.array_equal(y, y_conv))
    print("equal to reference_conv2d:", np.array_equal(y, y_ref))
    assert np.array_equal(y, y_conv) and np.array_equal(y, y_ref)


def show_adjoint():
    print("\n== the adjoint: <conv2d(x), z> = <x, conv_transpose2d(z)> ==")
    rng = np.random.default_rng(1)
    x = tinygen.tensor(rng.standard_normal((2, 3, 7, 7)), requires_grad=True)
    w = tinygen.tensor(rng.standard_normal((4, 3, 3, 3)))
    y = F.conv2d(x, w, stride=2, padding=1)
    z = tinygen.tensor(rng.standard_normal(y.shape))
    back = F.conv_transpose2d(z, w, stride=2, padding=1)
    left, right = float((y * z).sum().item()), float((x * back).sum().item())
    print(f"x {x.shape} -> y {y.shape}; z {z.shape} -> conv_transpose2d(z) {back.shape}")
    print(f"<conv2d(x), z>           = {left:.12f}")
    print(f"<x, conv_transpose2d(z)> = {right:.12f}")
    print(f"difference {abs(left - right):.1e}")
    y.backward(z)
    diff = np.abs(x.grad.numpy() - back.numpy()).max()
    print(f"input gradient of conv2d vs conv_transpose2d(dy): max difference {diff:.1e}")
    assert abs(left - right) < 1e-9 and diff < 1e-12


def show_col2im():
    print("\n== col2im: scatter-add, each pixel gets one term per window covering it ==")
    print("3x3 input, 2x2 kernel, stride 1:")
    print(window_counts((1, 1, 3, 3), (2, 2))[0, 0].astype(int))
    print("5x5 input, 3x3 kernel, stride 2, padding 1:")
    print(window_counts((1, 1, 5, 5), (3, 3), (2, 2), (1, 1))[0, 0].astype(int))


def show_weight_gradient():
    print("\n== weight gradient: dw = dy @ cols^T ==")
    x, w, cols, _, _ = worked_example()
    dy = np.array([[1.0, 0.0], [0.0, 2.0]])
    dw = (dy.reshape(1, 4) @ cols.T).reshape(w.shape)
    wt = tinygen.tensor(w, requires_grad=True)
    F.conv2d(tinygen.tensor(x), wt).backward(tinygen.tensor(dy.reshape(1, 1, 2, 2)))
    print("dy =", dy.astype(int).tolist())
    print("dy @ cols^T reshaped:", dw[0, 0].astype(int).tolist())
    print("autograd's w.grad:   ", wt.grad.numpy()[0, 0].astype(int).tolist())
    assert np.array_equal(dw, wt.grad.numpy())


def show_gradcheck():
    print("\n== gradcheck of conv2d (float64, stride 2, padding 1, dilation 1, groups 2) ==")
    rng = np.random.default_rng(2)
    shapes = [(2, 4, 5, 5), (6, 2, 3, 3), (6,)]
    x, w, b = (tinygen.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes)

    def fn(x, w, b):
        return F.conv2d(x, w, b, stride=2, padding=1, groups=2)

    ok = gradcheck(fn, [x, w, b], name="conv2d")
    print("gradcheck passed:", ok)
    assert ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/learn/04"), help="unused: prints only")
    parser.parse_args(argv)
    show_sizes()
    show_worked_example()
    show_adjoint()
    show_col2im()
    show_weight_gradient()
    show_gradcheck()


# ----------------------------------------------------------------------------- figures

COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red"]


def number_grid(ax, values, title, cmap=None, vmax=1, fontsize=13):
    """``values`` as a grid of numbers on ``ax``, shaded by value with ``cmap`` (blank without one)."""
    ax.imshow(values if cmap else np.zeros_like(values), cmap=cmap or "Greys", vmin=0, vmax=vmax)
    for (r, c), value in np.ndenumerate(values):
        ax.text(c, r, f"{value:g}", ha="center", va="center", fontsize=fontsize)
    ax.set_xticks(np.arange(-0.5, values.shape[1], 1), minor=True)
    ax.set_yticks(np.arange(-0.5, values.shape[0], 1), minor=True)
    ax.grid(which="minor", color="0.7")
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_title(title, fontsize=10)


def save(fig, path):
    """Lay out, write at dpi 100 and close ``fig``; returns ``path``."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def draw_figures(out):
    """04-im2col.png (windows of the 3x3 input as columns) and 04-col2im.png (windows summing back)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    out = Path(out)
    x, _, cols, _, _ = worked_example()

    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.6), gridspec_kw={"width_ratios": [3, 4]})
    number_grid(left, x[0, 0], "input x (3x3), the four 2x2 windows")
    for k, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        inset = 0.06 * (k + 1)
        corner, side = (j - 0.5 + inset, i - 0.5 + inset), 2 - 2 * inset
        left.add_patch(Rectangle(corner, side, side, fill=False, lw=2.5, ec=COLOURS[k]))
    number_grid(right, cols, "cols (4x4): column = window (i, j)")
    for k in range(4):
        right.add_patch(Rectangle((k - 0.45, -0.45), 0.9, 3.9, fill=True, alpha=0.25, color=COLOURS[k]))
    right.set_yticks(range(4), ["(u,v)=(0,0)", "(0,1)", "(1,0)", "(1,1)"], fontsize=9)
    right.set_xticks(range(4), ["(0,0)", "(0,1)", "(1,0)", "(1,1)"], fontsize=9)
    right.tick_params(labelbottom=True, labelleft=True)
    im2col_path = save(fig, out / "04-im2col.png")

    fig, axes = plt.subplots(1, 5, figsize=(11, 2.6))
    for k, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        window = np.zeros((3, 3))
        window[i : i + 2, j : j + 2] = 1
        number_grid(axes[k], window, f"window ({i},{j})" + ("  +" if k < 3 else "  ="))
        axes[k].add_patch(Rectangle((j - 0.45, i - 0.45), 1.9, 1.9, alpha=0.3, color=COLOURS[k]))
    counts = window_counts((1, 1, 3, 3), (2, 2))[0, 0]
    number_grid(axes[4], counts, "col2im(ones): counts", cmap="Blues", vmax=8)
    return [im2col_path, save(fig, out / "04-col2im.png")]


if __name__ == "__main__":
    main()
