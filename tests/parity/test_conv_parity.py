"""conv2d and conv_transpose2d against PyTorch: values, every gradient, and a second-order penalty.

float64 agrees to round-off (rtol 1e-10), float32 within float32 tolerance. Also: the
gradient-check toolkit passes correct conv code on large outputs with its default
tolerances (block mode), so conv tests need no loosened tolerances.
"""

import numpy as np
import pytest

import tinygen
from tinygen.kernels.conv import conv2d, conv_transpose2d
from tinygen.testing import gradcheck

torch = pytest.importorskip("torch")

# (name, transposed, input shape, weight shape, keyword arguments)
# fmt: off
CONFIGS = [
    ("plain_3x3", False, (2, 3, 7, 6), (4, 3, 3, 3), dict(padding=1)),
    ("dcgan_down", False, (3, 4, 8, 8), (6, 4, 4, 4), dict(stride=2, padding=1)),
    ("groups_dilation", False, (2, 6, 9, 8), (4, 3, 3, 2),
     dict(stride=(2, 1), padding=(2, 1), dilation=(2, 3), groups=2)),
    ("depthwise", False, (2, 4, 5, 5), (4, 1, 3, 3), dict(padding=1, groups=4)),
    ("kernel_larger_than_input", False, (1, 2, 2, 3), (3, 2, 4, 5), dict(padding=2)),
    ("stride_not_dividing", False, (2, 2, 10, 9), (3, 2, 3, 2), dict(stride=3, padding=(0, 1))),
    ("dcgan_up", True, (3, 6, 4, 4), (6, 4, 4, 4), dict(stride=2, padding=1)),
    ("output_padding", True, (2, 4, 5, 3), (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ("transposed_groups_dilation", True, (2, 4, 3, 4), (4, 2, 2, 3),
     dict(stride=(1, 2), padding=(0, 1), dilation=(3, 2), groups=2)),
    ("output_padding_below_dilation", True, (1, 2, 3, 3), (2, 2, 2, 2),
     dict(stride=1, dilation=2, output_padding=1)),
]
# fmt: on


def run(lib, transposed, arrays, kwargs, dtype):
    to = tinygen.tensor if lib == "tinygen" else torch.tensor
    if lib == "tinygen":
        fn = conv_transpose2d if transposed else conv2d
    else:
        fn = torch.nn.functional.conv_transpose2d if transposed else torch.nn.functional.conv2d
    tensors = [to(a.astype(dtype), requires_grad=True) for a in arrays]
    out = fn(*tensors, **kwargs)
    weights = np.linspace(-1, 1, out.numel()).reshape(tuple(out.shape)).astype(dtype)
    (out * to(weights)).sum().backward()
    value = out.numpy() if lib == "tinygen" else out.detach().numpy()
    return value, [t.grad.numpy() for t in tensors]


@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
@pytest.mark.parametrize("dtype, rtol, atol", [(np.float64, 1e-10, 1e-12), (np.float32, 1e-4, 1e-4)])
def test_conv_matches_torch(config, dtype, rtol, atol):
    _, transposed, x_shape, w_shape, kwargs = config
    rng = np.random.default_rng(0)
    out_channels = w_shape[1] * kwargs.get("groups", 1) if transposed else w_shape[0]
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(out_channels)]
    ours, our_grads = run("tinygen", transposed, arrays, kwargs, dtype)
    theirs, their_grads = run("torch", transposed, arrays, kwargs, dtype)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)
    for name, g, h in zip(["input", "weight", "bias"], our_grads, their_grads, strict=True):
        np.testing.assert_allclose(g, h, rtol=rtol, atol=atol, err_msg=f"gradient of {name}")


def test_gradient_penalty_through_convolutions_matches_torch():
    """WGAN-GP: the gradient of ``(|d critic / d x| - 1)^2`` with respect to every weight."""
    rng = np.random.default_rng(1)
    x0 = rng.standard_normal((3, 2, 8, 8))
    w0, w1, w2 = (
        rng.standard_normal((4, 2, 4, 4)),
        rng.standard_normal((4, 2, 4, 4)),
        rng.standard_normal((2,)),
    )

    def penalty(lib, x, w_down, w_up, b_up):
        if lib == "tinygen":
            conv, up, tanh, grad = conv2d, conv_transpose2d, tinygen.tanh, tinygen.grad
        else:
            conv, up = torch.nn.functional.conv2d, torch.nn.functional.conv_transpose2d
            tanh, grad = torch.tanh, torch.autograd.grad
        critic = (
            tanh(up(tanh(conv(x, w_down, stride=2, padding=1)), w_up, b_up, stride=2, padding=1)) * x
        ).sum()
        (g,) = grad(critic, x, create_graph=True)
        return ((g * g).sum((1, 2, 3)).sqrt() - 1).pow(2).sum()

    results = []
    for lib, to in (("tinygen", tinygen.tensor), ("torch", torch.tensor)):
        tensors = [to(a, requires_grad=True) for a in (x0, w0, w1, w2)]
        penalty(lib, *tensors).backward()
        results.append([t.grad.numpy() for t in tensors])
    for name, ours, theirs in zip(["x", "w_down", "w_up", "b_up"], *results, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12, err_msg=f"gradient of {name}")


def test_gradcheck_passes_a_large_conv_with_default_tolerances():
    """8192 input and 16384 output elements: block-mode gradcheck, eps/atol/rtol left at defaults."""
    rng = np.random.default_rng(2)
    x = tinygen.tensor(rng.standard_normal((4, 8, 16, 16)), requires_grad=True)
    w = tinygen.tensor(rng.standard_normal((16, 8, 3, 3)), requires_grad=True)
    b = tinygen.tensor(rng.standard_normal(16), requires_grad=True)
    assert gradcheck(lambda x, w, b: conv2d(x, w, b, padding=1), [x, w, b])
    up = tinygen.tensor(rng.standard_normal((8, 4, 4, 4)), requires_grad=True)
    assert gradcheck(lambda x, w: conv_transpose2d(x, w, stride=2, padding=1), [x, up])


@pytest.mark.parametrize("transposed", [False, True])
def test_unbatched_input_matches_torch(transposed):
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((4, 5, 6)), rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(2)
    if not transposed:
        w = rng.standard_normal((2, 4, 3, 3))
    ours_fn, theirs_fn = (
        (conv_transpose2d, torch.nn.functional.conv_transpose2d)
        if transposed
        else (conv2d, torch.nn.functional.conv2d)
    )
    results = []
    for fn, to in ((ours_fn, tinygen.tensor), (theirs_fn, torch.tensor)):
        tx, tw, tb = (to(a, requires_grad=True) for a in (x, w, b))
        out = fn(tx, tw, tb, stride=2, padding=1)
        (out * to(np.linspace(-1, 1, out.numel()).reshape(tuple(out.shape)))).sum().backward()
        results.append([out.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()])
    for ours, theirs in zip(*results, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
