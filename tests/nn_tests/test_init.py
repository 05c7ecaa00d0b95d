"""nn.init: PyTorch's fans, gains, bounds and standard deviations; in-place, seeded fills.

Random fills are checked statistically on large tensors: every sample inside the bound,
and the sample standard deviation within a few standard errors of the formula's.
"""

import math

import numpy as np
import pytest

import tinygen
from tinygen.errors import DTypeError
from tinygen.nn import init
from tinygen.nn.module import Parameter


def weight(*shape, dtype=np.float64):
    return Parameter(np.zeros(shape, dtype=dtype))


def assert_std(t, expected_std, mean=0.0):
    """Sample mean and std agree with the targets within 5 standard errors."""
    values = t.numpy().ravel().astype(np.float64)
    n = values.size
    assert abs(values.mean() - mean) < 5 * expected_std / math.sqrt(n)
    assert abs(values.std() - expected_std) < 5 * expected_std / math.sqrt(2 * n)


def assert_uniform(t, bound):
    """Inside [-bound, bound], reaching close to both ends, with the uniform's std bound/sqrt(3)."""
    values = t.numpy()
    assert values.min() >= -bound and values.max() <= bound
    assert values.min() < -0.99 * bound and values.max() > 0.99 * bound
    assert_std(t, bound / math.sqrt(3))


@pytest.mark.parametrize(
    ("shape", "fans"),
    [((4, 3), (3, 4)), ((64, 3, 4, 4), (48, 1024)), ((8, 2, 5), (10, 40)), ((2, 3, 1, 2, 2), (12, 8))],
)
def test_fans_follow_pytorch(shape, fans):
    assert init._calculate_fan_in_and_fan_out(weight(*shape)) == fans


def test_fans_need_two_dims():
    with pytest.raises(ValueError, match="2 or more dims"):
        init._calculate_fan_in_and_fan_out(weight(5))


@pytest.mark.parametrize(
    ("nonlinearity", "param", "gain"),
    [
        ("linear", None, 1.0),
        ("conv2d", None, 1.0),
        ("conv_transpose2d", None, 1.0),
        ("sigmoid", None, 1.0),
        ("tanh", None, 5 / 3),
        ("relu", None, math.sqrt(2)),
        ("selu", None, 0.75),
        ("leaky_relu", None, math.sqrt(2 / (1 + 0.01**2))),
        ("leaky_relu", 0.2, math.sqrt(2 / 1.04)),
        ("leaky_relu", 0, math.sqrt(2)),
        ("leaky_relu", math.sqrt(5), math.sqrt(1 / 3)),
    ],
)
def test_calculate_gain(nonlinearity, param, gain):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(gain, rel=1e-15)


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", True)


def test_uniform_and_normal():
    assert_std(init.normal_(weight(200, 200), mean=0.5, std=0.02), 0.02, mean=0.5)
    t = init.uniform_(weight(200, 200), -3.0, 1.0)
    assert t.numpy().min() >= -3.0 and t.numpy().max() <= 1.0
    assert_std(t, 4 / math.sqrt(12), mean=-1.0)


@pytest.mark.parametrize("shape", [(300, 200), (64, 32, 4, 4)])
def test_xavier(shape):
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(weight(*shape))
    assert_uniform(init.xavier_uniform_(weight(*shape), gain=2.0), 2.0 * math.sqrt(6 / (fan_in + fan_out)))
    assert_std(init.xavier_normal_(weight(*shape), gain=0.5), 0.5 * math.sqrt(2 / (fan_in + fan_out)))


@pytest.mark.parametrize("shape", [(300, 200), (64, 32, 4, 4)])
def test_kaiming(shape):
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(weight(*shape))
    # PyTorch's defaults: a=0, fan_in, leaky_relu -> gain sqrt(2), bound sqrt(6 / fan_in)
    assert_uniform(init.kaiming_uniform_(weight(*shape)), math.sqrt(6 / fan_in))
    # Linear/Conv2d's a=sqrt(5) -> bound 1/sqrt(fan_in)
    assert_uniform(init.kaiming_uniform_(weight(*shape), a=math.sqrt(5)), 1 / math.sqrt(fan_in))
    assert_uniform(
        init.kaiming_uniform_(weight(*shape), mode="fan_out", nonlinearity="relu"), math.sqrt(6 / fan_out)
    )
    assert_std(init.kaiming_normal_(weight(*shape), nonlinearity="tanh"), (5 / 3) / math.sqrt(fan_in))
    assert_std(init.kaiming_normal_(weight(*shape), a=0.2, mode="fan_out"), math.sqrt(2 / 1.04 / fan_out))


def test_kaiming_mode_error():
    with pytest.raises(ValueError, match="'fan_in' or 'fan_out', got 'fan_avg'"):
        init.kaiming_uniform_(weight(3, 3), mode="fan_avg")


def test_fills_are_in_place_and_keep_dtype():
    w = weight(4, 5, dtype=np.float32)
    array = w.data
    for fill in (init.uniform_, init.normal_, init.xavier_uniform_, init.kaiming_normal_, init.ones_):
        assert fill(w) is w
        assert w.data is array and w.dtype == np.float32 and w.requires_grad
    np.testing.assert_array_equal(init.zeros_(w).numpy(), 0)
    np.testing.assert_array_equal(init.constant_(w, 0.25).numpy(), 0.25)


def test_random_fill_of_an_integer_tensor_is_an_error():
    with pytest.raises(DTypeError, match="floating-point"):
        init.normal_(tinygen.zeros(3, dtype=tinygen.int64))


def test_zero_element_tensor_is_left_alone_with_a_warning():
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_uniform_(weight(0, 3))


def test_seeded_fills_are_reproducible():
    tinygen.manual_seed(123)
    first = init.kaiming_uniform_(weight(5, 4)).numpy().copy()
    tinygen.manual_seed(123)
    second = init.kaiming_uniform_(weight(5, 4)).numpy().copy()
    np.testing.assert_array_equal(first, second)
    g1, g2 = tinygen.Generator(7), tinygen.Generator(7)
    a = init.normal_(weight(5, 4), generator=g1).numpy().copy()
    init.normal_(weight(5, 4))  # draws from the default generator do not disturb g2
    np.testing.assert_array_equal(a, init.normal_(weight(5, 4), generator=g2).numpy())
    # float32 and float64 draws agree up to rounding
    tinygen.manual_seed(1)
    low = init.normal_(weight(5, 4, dtype=np.float32)).numpy()
    tinygen.manual_seed(1)
    np.testing.assert_allclose(low, init.normal_(weight(5, 4)).numpy(), rtol=1e-6)


def test_fans_and_gains_match_torch():
    torch = pytest.importorskip("torch")
    for shape in [(4, 3), (64, 3, 4, 4), (8, 2, 5)]:
        expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(shape))
        assert init._calculate_fan_in_and_fan_out(weight(*shape)) == expected
    for nonlinearity, param in [
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", 0.2),
        ("selu", None),
        ("conv1d", None),
    ]:
        assert init.calculate_gain(nonlinearity, param) == pytest.approx(
            torch.nn.init.calculate_gain(nonlinearity, param)
        )
