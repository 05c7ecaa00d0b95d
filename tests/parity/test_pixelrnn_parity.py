"""PixelRNN parity with PyTorch (optional: skipped without torch).

Each tinygen model in float64 and its twin from ``benchmarks/pixelrnn_twin.py`` (the model the
twin benchmark trains) holding the same weights: the logits, ``-log p(x)`` per image and the
gradient of every parameter agree to float64 round-off, for every architecture and output; so
do a masked convolution and the skew, against torch's own conv2d and a loop.
"""

import numpy as np
import pytest

import tinygen
from tinygen.models import pixelrnn

torch = pytest.importorskip("torch")
from benchmarks import pixelrnn_twin as twin  # noqa: E402  (needs torch)

SHAPE = (1, 6, 7)  # not square: H and W cannot be swapped unnoticed


def twins(arch, output, seed=0):
    tinygen.manual_seed(seed)
    ours = pixelrnn.make_model(arch, SHAPE, layers=2, hidden=3, output=output).double()
    theirs = twin.torch_model(arch, SHAPE, 2, 3, output).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    return ours, theirs


def images(output, n=3, seed=1):
    rng = np.random.default_rng(seed)
    if output == "bernoulli":
        return (rng.random((n, *SHAPE)) < 0.4).astype(np.float64)
    return rng.integers(0, 256, (n, *SHAPE)) / 255


@pytest.mark.parametrize("output", tuple(pixelrnn.OUTPUTS))
@pytest.mark.parametrize("arch", pixelrnn.ARCHITECTURES)
def test_logits_likelihood_and_every_gradient_match_torch(arch, output):
    ours, theirs = twins(arch, output)
    x = images(output)
    logits = ours(tinygen.tensor(x))
    t_logits = theirs(torch.tensor(x))
    np.testing.assert_allclose(logits.numpy(), t_logits.detach().numpy(), rtol=1e-12, atol=1e-12)

    nll = pixelrnn.nll(ours, tinygen.tensor(x))
    t_nll = twin.torch_nll(theirs, torch.tensor(x))
    np.testing.assert_allclose(nll.numpy(), t_nll.detach().numpy(), rtol=1e-12)
    nll.mean().backward()
    t_nll.mean().backward()
    for (name, p), (t_name, t) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        assert name == t_name
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_a_masked_conv_is_torch_conv2d_of_the_masked_weight(mask_type):
    tinygen.manual_seed(0)
    conv = pixelrnn.MaskedConv2d(2, 3, (3, 5), mask_type).double()
    x = np.random.default_rng(0).normal(size=(2, 2, 5, 6))
    weight = torch.tensor(conv.weight.numpy() * pixelrnn.causal_mask((3, 5), mask_type))
    bias = torch.tensor(conv.bias.numpy())
    expected = torch.nn.functional.conv2d(torch.tensor(x), weight, bias, padding=(1, 2))
    np.testing.assert_allclose(conv(tinygen.tensor(x)).numpy(), expected.numpy(), rtol=1e-13, atol=1e-13)


def test_the_skews_agree():
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 6))
    skewed = pixelrnn.skew(tinygen.tensor(x))
    np.testing.assert_array_equal(skewed.numpy(), twin.skew(torch.tensor(x)).numpy())
    unskewed = twin.unskew(torch.tensor(skewed.numpy())).numpy()
    np.testing.assert_array_equal(pixelrnn.unskew(skewed).numpy(), unskewed)
