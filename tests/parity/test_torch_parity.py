"""Parity with PyTorch (optional: skipped without torch): values and gradients.

float64 must agree to round-off; float32 within float32 tolerance. Each case is written
once against a library namespace ``lib`` (``tinygen`` or ``torch``) and its functional ``F``.
"""

import numpy as np
import pytest

import tinygen
import tinygen.nn.functional as tF

torch = pytest.importorskip("torch")
import torch.nn.functional as torchF  # noqa: E402

RNG = np.random.default_rng(0)


def randn(*shape):
    return RNG.standard_normal(shape)


def uniform(low, high, *shape):
    return RNG.uniform(low, high, shape)


def ints(high, *shape):
    return RNG.integers(0, high, shape)


# (name, inputs requiring grad, constant inputs (weights, targets), fn(lib, F, *inputs, *constants))
# fmt: off
CASES = [
    ("matmul_broadcast", [randn(3, 1, 2, 4), randn(5, 4, 3)], [], lambda lib, F, a, b: a @ b),
    ("matmul_vec", [randn(4), randn(2, 4, 3)], [], lambda lib, F, a, b: lib.matmul(a, b)),
    ("linear", [randn(5, 4), randn(3, 4), randn(3)], [], lambda lib, F, x, w, b: F.linear(x, w, b)),
    ("activations", [randn(4, 5) * 3], [], lambda lib, F, x: F.relu(x) + F.leaky_relu(x, 0.2) + F.elu(x, 0.7)
        + F.softplus(x) + F.softplus(x, beta=2.0, threshold=3.0) + lib.sigmoid(x) + lib.tanh(x)),
    ("clamp_boundaries", [np.array([-1.0, -0.5, 0.0, 0.7, 1.0])], [], lambda lib, F, x: lib.clamp(x, -0.5, 0.7) * 3),
    ("maximum_ties", [np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, 3.0])], [], lambda lib, F, a, b: lib.maximum(a, b)),
    ("where", [randn(3, 4), randn(4)], [], lambda lib, F, a, b: lib.where(a > 0, a, b)),
    ("pow_log_sqrt", [uniform(0.5, 2, 3, 4), randn(3, 4)], [], lambda lib, F, a, b: a ** b + a.log() * a.sqrt() + a ** 2.5),
    ("div_broadcast", [randn(3, 4), uniform(0.5, 2, 4)], [], lambda lib, F, a, b: a / b - 1 / b),
    ("reductions", [randn(3, 4, 5)], [], lambda lib, F, x: x.sum(1) + x.mean((0, 2), keepdim=True).sum()
        + x.var(2).sum() + x.std(0, keepdim=True).sum() + x.var(unbiased=False) + lib.logsumexp(x, 1).sum()),
    ("max_min_dim", [randn(4, 6)], [], lambda lib, F, x: x.max(1).values + x.min(0, keepdim=True)[0].sum()),
    ("max_ties_full", [np.array([[1.0, 3.0], [3.0, 0.0]])], [], lambda lib, F, x: x.max() * 2),
    ("softmax", [randn(3, 5)], [], lambda lib, F, x: F.softmax(x, 1) * F.log_softmax(x, 0)),
    ("shape_ops", [randn(2, 3, 4)], [], lambda lib, F, x: lib.cat([x.permute(2, 0, 1).reshape(4, 6),
        x.transpose(0, 2).flatten(1)], 0).unsqueeze(0).expand(2, 8, 6).split([2, 4], 2)[1]),
    ("stack_chunk", [randn(3, 4), randn(3, 4)], [], lambda lib, F, a, b: lib.stack([a, b], 1).chunk(3, 2)[0]),
    ("indexing", [randn(5, 4)], [], lambda lib, F, x: x[1:4, ::2] * x[[0, 0, 3]][:, 1:3].sum() + x[x > 0].sum()),
    ("pad_modes", [randn(2, 3, 4, 5)], [], lambda lib, F, x: F.pad(x, (2, 1, 1, 2), mode="reflect").sum()
        + F.pad(x, (3, 1, 1, 0), mode="replicate").sum() + F.pad(x, (1, 2, 2, 1), mode="circular").sum()
        + F.pad(x, (1, -1, 2, 0), value=0.5)),
    ("mse_loss", [randn(3, 4), randn(3, 4)], [], lambda lib, F, a, b: F.mse_loss(a, b) + F.mse_loss(a, b, reduction="sum")),
    ("bce", [uniform(0.01, 0.99, 3, 4), uniform(0, 1, 3, 4)], [uniform(0.5, 2, 4)],
     lambda lib, F, p, t, w: F.binary_cross_entropy(p, t) + F.binary_cross_entropy(p, t, weight=w, reduction="sum")),
    ("bce_logits", [randn(3, 4) * 5, uniform(0, 1, 3, 4)], [uniform(0.5, 2, 4)],
     lambda lib, F, x, t, pw: F.binary_cross_entropy_with_logits(x, t, pos_weight=pw)
        + F.binary_cross_entropy_with_logits(x, t, weight=pw, reduction="sum")),
    ("cross_entropy", [randn(6, 5)], [uniform(0.5, 2, 5), ints(5, 6)],
     lambda lib, F, x, w, t: F.cross_entropy(x, t) + F.cross_entropy(x, t, weight=w)
        + F.cross_entropy(x, t, label_smoothing=0.1) + F.cross_entropy(x, t, weight=w, label_smoothing=0.3)),
    ("cross_entropy_ignore", [randn(6, 5)], [uniform(0.5, 2, 5), np.array([0, -100, 4, 2, -100, 1])],
     lambda lib, F, x, w, t: F.cross_entropy(x, t, weight=w) + F.cross_entropy(x, t, weight=w, label_smoothing=0.2)
        + F.cross_entropy(x, t, reduction="none").sum()),
    ("cross_entropy_spatial", [randn(2, 4, 3, 3)], [ints(4, 2, 3, 3)], lambda lib, F, x, t: F.cross_entropy(x, t)),
    ("cross_entropy_soft", [randn(4, 3), uniform(0.1, 1, 4, 3)], [],
     lambda lib, F, x, p: F.cross_entropy(x, p / p.sum(1, keepdim=True), label_smoothing=0.1)),
    ("nll_loss", [randn(5, 3)], [ints(3, 5)], lambda lib, F, x, t: F.nll_loss(F.log_softmax(x, 1), t, reduction="sum")),
    ("kl_div", [randn(4, 3), uniform(0.1, 1, 4, 3)], [],
     lambda lib, F, x, t: F.kl_div(F.log_softmax(x, 1), t, reduction="batchmean")
        + F.kl_div(F.log_softmax(x, 1), t.log(), reduction="sum", log_target=True)),
]
# fmt: on


def run(lib, F, case, dtype):
    _, floats, constants, fn = case
    to = tinygen.tensor if lib is tinygen else torch.tensor
    tensors = [to(a.astype(dtype), requires_grad=True) for a in floats]
    fixed = [to(a.astype(dtype) if a.dtype.kind == "f" else a) for a in constants]
    out = fn(lib, F, *tensors, *fixed)
    weights = np.linspace(-1, 1, int(np.prod(out.shape))).reshape(out.shape).astype(dtype)
    (out * to(weights)).sum().backward()
    value = out.detach().numpy() if lib is torch else out.numpy()
    return value, [t.grad.numpy() for t in tensors]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype, rtol, atol", [(np.float64, 1e-10, 1e-12), (np.float32, 2e-5, 2e-5)])
def test_matches_torch(case, dtype, rtol, atol):
    ours, ours_grads = run(tinygen, tF, case, dtype)
    theirs, their_grads = run(torch, torchF, case, dtype)
    assert ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)
    for i, (g, h) in enumerate(zip(ours_grads, their_grads, strict=True)):
        np.testing.assert_allclose(g, h, rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")


def test_gradient_penalty_matches_torch():
    """Second order: the WGAN-GP penalty's gradient with respect to the critic's weights."""
    x0, w0 = randn(4, 3), randn(2, 3)

    def penalty(lib, F, x, w):
        out = lib.tanh(F.linear(x, w)).sum()
        (g,) = (
            lib.autograd.grad(out, x, create_graph=True)
            if lib is torch
            else lib.grad(out, x, create_graph=True)
        )
        return ((g * g).sum(1).sqrt() - 1).pow(2).sum()

    results = []
    for lib, F, to in ((tinygen, tF, tinygen.tensor), (torch, torchF, torch.tensor)):
        x, w = to(x0, requires_grad=True), to(w0, requires_grad=True)
        penalty(lib, F, x, w).backward()
        results.append(w.grad.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-10)


def test_edge_conventions_match_torch():
    """Values and gradients at the edges of pow, clamp with tensor bounds, and max with NaN."""
    cases = [
        (lambda lib, a, b: a**b, [np.array([0.0, 0.0, 2.0, 1.5]), np.array([0.0, 2.0, 0.0, 1.0])]),
        (lambda lib, a, b: a**0 + a**2 + b, [np.array([0.0, 1.0]), np.array([1.0, 1.0])]),
        (
            lambda lib, x, lo: lib.clamp(x, lo, lo + 1),
            [np.array([0.0, 0.5, 1.0, 3.0]), np.array([0.0, 0.0, 0.5, 0.5])],
        ),
        (
            lambda lib, x, lo, hi: lib.clamp(x, lo, hi),  # lo > hi; lo == hi with x outside; inside
            [
                np.array([0.0, 2.0, -1.0, 0.5, 3.0]),
                np.array([1.0, 1.0, 0.0, 0.0, 0.0]),
                np.array([0.5, 1.0, 0.0, 1.0, 1.0]),
            ],
        ),
        (
            lambda lib, x, lo: lib.clamp(x, min=lo) + lib.clamp(x, max=lo),
            [np.array([0.0, 2.0, 1.0]), np.array([1.0, 1.0, 1.0])],
        ),
        (lambda lib, x, y: x.max() + y, [np.array([1.0, np.nan, 3.0]), np.array([1.0])]),
    ]
    for fn, arrays in cases:
        grads = []
        for lib, to in ((tinygen, tinygen.tensor), (torch, torch.tensor)):
            tensors = [to(a, requires_grad=True) for a in arrays]
            out = fn(lib, *tensors)
            (out * to(np.linspace(1, 2, out.numel()).reshape(out.shape))).sum().backward()
            grads.append([out.detach().numpy()] + [t.grad.numpy() for t in tensors])
        for ours, theirs in zip(*grads, strict=True):
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, equal_nan=True)
