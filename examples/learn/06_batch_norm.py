"""Chapter 6: batch normalisation, its running statistics and its closed-form input gradient.

    python examples/learn/06_batch_norm.py

A batch of (8, 3, 4, 4) images whose three channels have their own mean and spread is
normalised per channel over (N, H, W), by hand and by ``tinygen.nn.functional.batch_norm``.
A ``BatchNorm2d`` is trained on fresh batches to show the running statistics (PyTorch's
momentum, the unbiased variance) and what evaluation mode changes. The input gradient in
closed form is compared with autograd through the composed formula (mean, var, divide) and
with tinygen's fused kernel; its two constraints are printed; gradcheck has the last word.
The page is docs/learn/06-batch-norm.md.
"""

import argparse

import numpy as np

import tinygen
from tinygen import nn
from tinygen.nn import functional as F
from tinygen.testing import gradcheck

CHANNEL_MEANS = np.array([3.0, -1.0, 0.5])  # the data's mean and spread, per channel
CHANNEL_STDS = np.array([2.0, 0.5, 1.0])
AXES = (0, 2, 3)  # a channel's statistics run over N, H and W
EPS = 1e-5


def make_batch(rng, n=8, side=4):
    """(n, 3, side, side) float64 images; channel c is drawn from N(CHANNEL_MEANS[c], CHANNEL_STDS[c]**2)."""
    x = rng.standard_normal((n, 3, side, side))
    return x * CHANNEL_STDS.reshape(1, 3, 1, 1) + CHANNEL_MEANS.reshape(1, 3, 1, 1)


def per_channel(values):
    """A (C,) array as (1, C, 1, 1), to broadcast against (N, C, H, W)."""
    return values.reshape(1, -1, 1, 1)


def batch_stats(x):
    """Per-channel mean and biased variance over (N, H, W), and m, the count they average."""
    m = x.size // x.shape[1]
    mean = x.sum(AXES) / m
    var = ((x - per_channel(mean)) ** 2).sum(AXES) / m
    return mean, var, m


def normalize(x, gamma, beta, eps=EPS):
    """``(y, x_hat, inv_std)``: y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel."""
    mean, var, _ = batch_stats(x)
    inv_std = 1 / np.sqrt(var + eps)
    x_hat = (x - per_channel(mean)) * per_channel(inv_std)
    return per_channel(gamma) * x_hat + per_channel(beta), x_hat, inv_std


def closed_form_dx(dy, x_hat, gamma, inv_std):
    """dx = (gamma*inv_std/m) * (m*dy - sum(dy) - x_hat*sum(dy*x_hat)), sums per channel."""
    m = dy.size // dy.shape[1]
    sum_dy, sum_dy_xhat = per_channel(dy.sum(AXES)), per_channel((dy * x_hat).sum(AXES))
    return per_channel(gamma * inv_std / m) * (m * dy - sum_dy - x_hat * sum_dy_xhat)


def composed_batch_norm(x, gamma, beta, eps=EPS):
    """Batch norm written with tinygen ops (mean, sub, pow, add, sqrt, div, mul), one graph node each."""
    mean = x.mean(AXES, keepdim=True)
    var = ((x - mean) ** 2).mean(AXES, keepdim=True)
    x_hat = (x - mean) / (var + eps).sqrt()
    return gamma.reshape(1, -1, 1, 1) * x_hat + beta.reshape(1, -1, 1, 1)


def graph_ops(t):
    """Names of the nodes of the graph that made ``t`` (each node once)."""
    seen, stack, names = set(), [t.grad_fn], []
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen or isinstance(node, tinygen.Tensor):
            continue
        seen.add(id(node))
        names.append(node.name)
        stack.extend(edge[0] for edge in node.next_functions if edge is not None)
    return names


def input_gradients(x, dy, gamma, beta, eps=EPS):
    """dx four ways: closed form (NumPy), autograd of the composed formula, F.batch_norm, BatchNorm2d."""
    _, x_hat, inv_std = normalize(x, gamma, beta, eps)
    results = {"closed form": closed_form_dx(dy, x_hat, gamma, inv_std)}
    ops = {}
    for name in ("composed ops", "F.batch_norm"):
        xt, gt, bt = (tinygen.tensor(a, requires_grad=True) for a in (x, gamma, beta))
        if name == "composed ops":
            y = composed_batch_norm(xt, gt, bt, eps)
        else:
            y = F.batch_norm(xt, None, None, gt, bt, training=True, eps=eps)
        ops[name] = graph_ops(y)
        y.backward(tinygen.tensor(dy))
        results[name] = xt.grad.numpy()
    bn = nn.BatchNorm2d(3, eps=eps).double()
    bn.weight.data[...], bn.bias.data[...] = gamma, beta
    xt = tinygen.tensor(x, requires_grad=True)
    bn(xt).backward(tinygen.tensor(dy))
    results["nn.BatchNorm2d"] = xt.grad.numpy()
    return results, ops, x_hat, inv_std


def running_history(steps, momentum=0.1, seed=1, n=8):
    """Train-mode BatchNorm2d calls on fresh batches: (running_mean, running_var) after each step."""
    rng = np.random.default_rng(seed)
    bn = nn.BatchNorm2d(3, momentum=momentum).double()
    means, variances = [], []
    for _ in range(steps):
        bn(tinygen.tensor(make_batch(rng, n)))
        means.append(bn.running_mean.numpy().copy())
        variances.append(bn.running_var.numpy().copy())
    return np.array(means), np.array(variances)


def fmt(values, spec="+.4f"):
    return "[" + ", ".join(f"{v:{spec}}" for v in values) + "]"


def sci(values):
    return fmt(values, "+.2e")


def show_statistics(x, gamma, beta):
    mean, var, m = batch_stats(x)
    print(f"batch {x.shape}: per channel, m = N*H*W = {m} values")
    print(f"  mean            {fmt(mean)}   (data: {fmt(CHANNEL_MEANS)})")
    print(f"  var (biased)    {fmt(var)}   (data: {fmt(CHANNEL_STDS**2)})")
    y, x_hat, _ = normalize(x, gamma, beta)
    hat_mean, hat_var, _ = batch_stats(x_hat)
    print(f"  x_hat mean      {sci(hat_mean)}")
    print(f"  1 - x_hat var   {sci(1 - hat_var)}   (x_hat var = var / (var + eps), just under 1)")
    print(f"  eps / (var+eps) {sci(EPS / (var + EPS))}")
    ours = F.batch_norm(tinygen.tensor(x), None, None, tinygen.tensor(gamma), tinygen.tensor(beta),
                        training=True)
    print(f"  y by hand against F.batch_norm: max |difference| = {np.abs(ours.numpy() - y).max():.1e}")


def show_running_statistics(x):
    mean, var, m = batch_stats(x)
    bn = nn.BatchNorm2d(3, momentum=0.1).double()
    bn(tinygen.tensor(x))
    print("\nrunning statistics after one training step (momentum 0.1, from mean 0 and var 1):")
    print(f"  running_mean    {fmt(bn.running_mean.numpy())}   0.9*0 + 0.1*mean = {fmt(0.1 * mean)}")
    print(f"  running_var     {fmt(bn.running_var.numpy())}   0.9*1 + 0.1*var*m/(m-1) = "
          f"{fmt(0.9 + 0.1 * var * m / (m - 1))}")
    means, variances = running_history(steps=60)
    print("  then 60 training steps of a fresh BatchNorm2d, each on a fresh batch of 8:")
    for step in (1, 10, 30, 60):
        mean_k, var_k = fmt(means[step - 1]), fmt(variances[step - 1])
        print(f"    after {step:2d} steps: running_mean {mean_k}  running_var {var_k}")
    print(f"    expected running_mean after k steps ~ (1 - 0.9**k) * data mean; 0.9**60 = {0.9**60:.4f}")

    sample = tinygen.tensor(x[:1])
    alone = F.batch_norm(sample, None, None, training=True).numpy()
    in_batch = F.batch_norm(tinygen.tensor(x), None, None, training=True).numpy()[:1]
    print("\ntrain mode uses the batch's statistics: image 0 normalised alone vs inside its batch, "
          f"max |difference| = {np.abs(alone - in_batch).max():.3f}")
    bn.eval()
    before = bn.running_mean.numpy().copy()
    alone, in_batch = bn(sample).numpy(), bn(tinygen.tensor(x)).numpy()[:1]
    unchanged = np.array_equal(before, bn.running_mean.numpy())
    print("eval mode uses the running ones: the same comparison gives "
          f"{np.abs(alone - in_batch).max():.1e}; running_mean unchanged: {unchanged}")


def show_gradients(x, gamma, beta, rng):
    dy = rng.standard_normal(x.shape)
    results, ops, x_hat, inv_std = input_gradients(x, dy, gamma, beta)
    print(f"\ninput gradient, closed form against the others (float64, eps = {EPS}):")
    print(f"  composed ops: {len(ops['composed ops'])} graph nodes; F.batch_norm: {ops['F.batch_norm']}")
    reference = results["closed form"]
    for name in ("composed ops", "F.batch_norm", "nn.BatchNorm2d"):
        print(f"  closed form vs {name:15s} max |difference| = {np.abs(results[name] - reference).max():.1e}")

    _, var, _ = batch_stats(x)
    predicted = gamma * (dy * x_hat).sum(AXES) * EPS * inv_std**3
    _, x_hat0, inv_std0 = normalize(x, gamma, beta, eps=0.0)
    dx0 = closed_form_dx(dy, x_hat0, gamma, inv_std0)
    print("\nconstraints, per channel:")
    print(f"  sum(dx)                              {sci(reference.sum(AXES))}")
    print(f"  sum(dx*x_hat), eps = 1e-5            {sci((reference * x_hat).sum(AXES))}")
    print(f"  gamma*sum(dy*x_hat)*eps*inv_std**3   {sci(predicted)}")
    print(f"  its relative size, eps/(var + eps)   {sci(EPS / (var + EPS))}")
    print(f"  sum(dx*x_hat), eps = 0               {sci((dx0 * x_hat0).sum(AXES))}")
    return results, predicted, dx0, x_hat0


def show_gradcheck(rng):
    small = [tinygen.tensor(a, requires_grad=True) for a in (rng.standard_normal((2, 3, 2, 2)),
                                                          rng.standard_normal(3), rng.standard_normal(3))]
    ok = gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), small)
    print(f"\ngradcheck of F.batch_norm (training) on (2, 3, 2, 2), x, gamma and beta: {ok}")
    return ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/learn/06", help="output folder (this chapter writes no files)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    x = make_batch(rng)
    gamma, beta = np.array([1.5, -0.7, 2.0]), np.array([0.1, 0.0, -0.3])
    show_statistics(x, gamma, beta)
    show_running_statistics(x)
    results, predicted, dx0, x_hat0 = show_gradients(x, gamma, beta, rng)
    ok = show_gradcheck(rng)
    reference = results["closed form"]
    assert all(np.abs(r - reference).max() < 1e-12 for r in results.values())
    assert np.abs(reference.sum(AXES)).max() < 1e-12
    assert np.allclose((reference * normalize(x, gamma, beta)[1]).sum(AXES), predicted, rtol=1e-6, atol=0)
    assert np.abs((dx0 * x_hat0).sum(AXES)).max() < 1e-12 and ok


def draw_figures(out):
    """06-batch-norm.png: per-channel histograms before and after normalising, and the running mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = make_batch(np.random.default_rng(0), n=64)
    _, x_hat, _ = normalize(x, np.ones(3), np.zeros(3))
    means, _ = running_history(steps=60)
    colors = ["tab:blue", "tab:orange", "tab:green"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for c in range(3):
        label = f"channel {c}: N({CHANNEL_MEANS[c]:g}, {CHANNEL_STDS[c]:g}^2)"
        axes[0].hist(x[:, c].ravel(), bins=40, alpha=0.55, color=colors[c], label=label)
        axes[1].hist(x_hat[:, c].ravel(), bins=40, histtype="step", linewidth=1.5, color=colors[c],
                     label=f"channel {c}")
        axes[2].plot(np.arange(1, 61), means[:, c], color=colors[c], label=f"channel {c}")
        axes[2].axhline(CHANNEL_MEANS[c], color=colors[c], linestyle="--", linewidth=1)
    axes[0].set_title("x, per channel (64 x 4 x 4 values each)")
    axes[1].set_title("x_hat = (x - mean) / sqrt(var + eps)")
    axes[2].set_title("running_mean, momentum 0.1 (dashed: data)")
    axes[2].set_xlabel("training step (a fresh batch of 8 each)")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "06-batch-norm.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


if __name__ == "__main__":
    main()
