"""Chapter 11: the LSTM cell, then PixelRNN, an image model with an exact likelihood.

    python examples/learn/11_lstm_pixelrnn.py               # a few seconds
    python examples/learn/11_lstm_pixelrnn.py --steps 200   # train longer

Part 1 runs one LSTM cell, with weights set by hand, over a short sequence of "write" and
"erase" pulses, and prints its four gates and its state at every step. It checks that the
gate equations, written out with NumPy, give what ``nn.LSTMCell`` gives, and gradchecks the
cell. Part 2 is PixelRNN: the masks of its causal convolutions, a check that a pixel's logits
never depend on that pixel or later ones, a tiny Row LSTM model trained for a few dozen steps
on binarized Fashion-MNIST with its exact test -log p(x), and two samples drawn pixel by pixel.
The page is docs/learn/11-lstm-pixelrnn.md.
"""

import argparse
import math
from pathlib import Path

import numpy as np

import tinygen
import tinygen.nn.functional as F
from tinygen import nn
from tinygen.data import DataLoader, load_dataset
from tinygen.models import pixelrnn
from tinygen.testing import gradcheck

# ----------------------------------------------------------------------------- part 1: the cell

STEPS = 12
WRITES, ERASES = (1, 5), (9,)


def pulse_sequence():
    """``(T, 1, 2)`` inputs: channel 0 is 1 at the write steps, channel 1 at the erase step."""
    x = np.zeros((STEPS, 1, 2))
    x[list(WRITES), 0, 0] = 1.0
    x[list(ERASES), 0, 1] = 1.0
    return x


def memory_cell():
    """An ``nn.LSTMCell(2, 1)`` with hand-set weights (gate blocks in the order i, f, g, o).

    z_i = 8 write - 4      the input gate opens on a write pulse only
    z_f = 4 - 10 erase     the forget gate keeps c (f = 0.98) except on an erase pulse
    z_g = 2                the candidate is always tanh(2) = 0.96
    z_o = 2                the output gate is always sigmoid(2) = 0.88
    W_hh = 0, so this cell ignores its own h: its memory is c alone.
    """
    cell = nn.LSTMCell(2, 1).to(tinygen.float64)
    cell.weight_ih.data[...] = [[8.0, 0.0], [0.0, -10.0], [0.0, 0.0], [0.0, 0.0]]
    cell.weight_hh.data[...] = 0.0
    cell.bias_ih.data[...] = [-4.0, 4.0, 2.0, 2.0]
    cell.bias_hh.data[...] = 0.0
    return cell


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def run_cell(cell, x):
    """Run ``cell`` over ``x`` ``(T, N, F)``; return the gates and states by the formulas, ``(T, 6, N, H)``,
    and the largest difference between the formulas' h, c and the cell's."""
    w_ih, w_hh = cell.weight_ih.data, cell.weight_hh.data
    bias = cell.bias_ih.data + cell.bias_hh.data
    n, hidden = x.shape[1], w_hh.shape[1]
    h, c = np.zeros((n, hidden)), np.zeros((n, hidden))
    state = None
    rows, gap = [], 0.0
    for x_t in x:
        z_i, z_f, z_g, z_o = np.split(x_t @ w_ih.T + h @ w_hh.T + bias, 4, axis=1)
        i, f, g, o = sigmoid(z_i), sigmoid(z_f), np.tanh(z_g), sigmoid(z_o)
        c = f * c + i * g
        h = o * np.tanh(c)
        rows.append(np.stack([i, f, g, o, c, h]))
        state = cell(tinygen.tensor(x_t), state)  # the library's cell: one fused node
        gap = max(gap, np.abs(state[0].numpy() - h).max(), np.abs(state[1].numpy() - c).max())
    return np.stack(rows), gap


def check_cell_gradient(seed=0):
    """gradcheck of ``F.lstm_cell`` with respect to the input, both states and all four weights."""
    rng = np.random.default_rng(seed)
    n, features, hidden = 3, 2, 4
    shapes = [(n, features), (n, hidden), (n, hidden), (4 * hidden, features), (4 * hidden, hidden),
              (4 * hidden,), (4 * hidden,)]
    inputs = [tinygen.tensor(rng.normal(size=shape), requires_grad=True) for shape in shapes]

    def step(x, h, c, w_ih, w_hh, b_ih, b_hh):
        return F.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)

    return gradcheck(step, inputs), sum(t.numel() for t in inputs)


def part_one():
    print("== 1. one LSTM cell, weights set by hand")
    print(f"inputs: write pulses at steps {WRITES}, an erase pulse at step {ERASES[0]}")
    trace, gap = run_cell(memory_cell(), pulse_sequence())
    print(" t  write erase |    i      f      g      o  |    c      h")
    x = pulse_sequence()
    for t in range(STEPS):
        i, f, g, o, c, h = trace[t, :, 0, 0]
        print(f"{t:2d}  {x[t, 0, 0]:4.0f} {x[t, 0, 1]:5.0f}  | {i:.3f}  {f:.3f}  {g:.3f}  {o:.3f} | "
              f"{c:.3f}  {h:.3f}")
    print(f"the formulas against nn.LSTMCell: largest difference in h, c = {gap:.1e}")
    passed, numbers = check_cell_gradient()
    print(f"gradcheck of F.lstm_cell (float64, {numbers} numbers: x, h, c, W_ih, W_hh, b_ih, b_hh): "
          f"{'passed' if passed else 'FAILED'}")


# ----------------------------------------------------------------------------- part 2: PixelRNN


def show_mask(mask):
    return "\n".join("  " + " ".join("1" if v else "." for v in row) for row in mask)


def print_masks():
    print("\n== 2. PixelRNN: causal masks (1 = tap used; the centre is the pixel being predicted)")
    for size in (3, 5):
        for kind in ("A", "B"):
            print(f"mask {kind}, {size}x{size}:")
            print(show_mask(pixelrnn.causal_mask(size, kind)))


def causality_check(size=8, pixel=(3, 4), seed=0):
    """Change one pixel of a random image; count the pixels before, at and after it whose logits moved."""
    tinygen.manual_seed(seed)
    model = pixelrnn.PixelRNN("row-lstm", layers=1, hidden=4).to(tinygen.float64)
    rng = np.random.default_rng(seed)
    image = (rng.random((1, 1, size, size)) < 0.5).astype(np.float64)
    flipped = image.copy()
    flipped[0, 0, pixel[0], pixel[1]] = 1 - flipped[0, 0, pixel[0], pixel[1]]
    with tinygen.no_grad():
        change = model(tinygen.tensor(flipped)).numpy() - model(tinygen.tensor(image)).numpy()
    moved = np.abs(change[0, 0]) > 0
    order = np.arange(size * size).reshape(size, size)  # raster order
    index = order[pixel]
    before, after = order <= index, order > index
    print(f"\ncausality: flip pixel {pixel} of a random {size}x{size} image, compare the logits")
    print(f"  pixels at or before it whose logits moved: {moved[before].sum()} of {before.sum()}")
    print(f"  pixels after it whose logits moved:        {moved[after].sum()} of {after.sum()}")
    print("  (o = logit moved, . = did not, x = the flipped pixel)")
    for r in range(size):
        print("  " + " ".join("x" if (r, j) == pixel else ("o" if moved[r, j] else ".") for j in range(size)))

    uniform = rng.random((2, size, size))
    cached = pixelrnn.sample(model, uniform)
    naive = pixelrnn.sample(model, uniform, cached=False)
    same = "identical" if np.array_equal(cached, naive) else "DIFFERENT"
    print(f"  cached and naive samplers, same uniforms: {same} {size}x{size} images")
    return moved[before].sum(), moved[after].sum()


def independent_pixels_nll(train_images, test_x):
    """-log p(x) per test image when every pixel is an independent Bernoulli with its training mean."""
    p = np.clip(train_images.mean(0) / 255, 1e-3, 1 - 1e-3)
    log_p = test_x * np.log(p) + (1 - test_x) * np.log(1 - p)
    return -log_p.reshape(len(test_x), -1).sum(1).mean()


def train(args):
    """A tiny Row LSTM PixelRNN, a few dozen Adam steps on a dynamically binarized subset."""
    tinygen.manual_seed(args.seed)
    data = load_dataset("fashion-mnist", "train")[: args.limit]
    test = load_dataset("fashion-mnist", "test")
    test_x = pixelrnn.eval_images(test.images[: args.eval_limit], "bernoulli")
    height, width = data.images.shape[2:]
    pixels = height * width
    model = pixelrnn.make_model("row-lstm", (1, height, width), layers=1, hidden=args.hidden)
    opt = tinygen.optim.Adam(model.parameters(), lr=args.lr)
    loader = DataLoader(data, args.batch_size, shuffle=True, drop_last=True, binarize=True)
    params = sum(p.numel() for p in model.parameters())
    print(f"\ntraining: Row LSTM PixelRNN, 1 layer, hidden {args.hidden} ({params} parameters), "
          f"{len(data)} Fashion-MNIST images of {height}x{width}, dynamically binarized, "
          f"batch {args.batch_size}, {args.steps} steps")
    before = pixelrnn.evaluate(model, test_x)
    print(f"  untrained: test -log p(x) {before['nll']:.1f} nats ({before['bpd']:.3f} bits/dim); "
          f"a fair coin per pixel scores D ln 2 = {pixels * math.log(2):.1f}")
    print(f"  no context: each pixel on its own, p = its mean over the training images: "
          f"{independent_pixels_nll(data.images, test_x):.1f} nats")
    step = 0
    while step < args.steps:
        for x, _ in loader:
            loss = pixelrnn.nll(model, x).mean()  # -sum_i log p(x_i | x_<i), batch mean
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % 10 == 0 or step == args.steps:
                print(f"  step {step:3d}  train -log p(x) {loss.item():6.1f} nats")
            if step == args.steps:
                break
    after = pixelrnn.evaluate(model, test_x)
    print(f"  trained:   test -log p(x) {after['nll']:.1f} nats ({after['bpd']:.3f} bits/dim) "
          f"on {len(test_x)} test images binarized once (seed {pixelrnn.TEST_SEED}); exact, no bound")
    return model, before, after


def print_samples(model, count, seed):
    height, width = 28, 28
    uniform = np.random.default_rng(seed).random((count, height, width))
    samples = pixelrnn.sample(model, uniform)  # cached: each activation computed once
    print(f"\n{count} samples, drawn pixel by pixel ({height * width} steps, cached sampler), # = 1:")
    for r in range(height):
        print("  " + "   ".join("".join("#" if v else "." for v in image[0, r]) for image in samples))
    return samples


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=512, help="training images used")
    parser.add_argument("--eval-limit", type=int, default=100, help="test images scored")
    parser.add_argument("--steps", type=int, default=60, help="Adam steps")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=8, help="LSTM state size")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/learn/11"), help="unused: nothing is written")
    args = parser.parse_args(argv)

    part_one()
    print_masks()
    causality_check()
    model, _, _ = train(args)
    print_samples(model, args.samples, args.seed)


# ----------------------------------------------------------------------------- figures


def draw_figures(out):
    """``11-lstm-cell.png``: the four gates, and c and h, of the hand-set cell over time."""
    import matplotlib.pyplot as plt

    trace, _ = run_cell(memory_cell(), pulse_sequence())
    steps = np.arange(STEPS)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.6, 4.6), sharex=True)
    for k, name in enumerate(("i (input)", "f (forget)", "g (candidate)", "o (output)")):
        top.plot(steps, trace[:, k, 0, 0], marker="o", ms=3, label=name)
    bottom.plot(steps, trace[:, 4, 0, 0], marker="o", ms=3, color="k", label="c (cell state)")
    bottom.plot(steps, trace[:, 5, 0, 0], marker="o", ms=3, color="tab:purple", label="h = o tanh(c)")
    for axis in (top, bottom):
        for t in WRITES:
            axis.axvline(t, color="tab:green", alpha=0.25, lw=6)
        for t in ERASES:
            axis.axvline(t, color="tab:red", alpha=0.25, lw=6)
        axis.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
        axis.grid(alpha=0.3)
    top.set_title("one LSTM cell, hand-set weights: writes (green) at t = 1, 5; erase (red) at t = 9",
                  fontsize=9)
    top.set_ylabel("gate value")
    bottom.set_ylabel("state")
    bottom.set_xlabel("time step t")
    bottom.set_xticks(steps)
    fig.tight_layout()
    out = Path(out)
    path = out / "11-lstm-cell.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


if __name__ == "__main__":
    main()
