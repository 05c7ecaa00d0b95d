"""Tensor creation, dtype rules, conversion and methods."""

import numpy as np
import pytest

import tinygen
from tinygen.errors import IndexOutOfRangeError, ShapeError


def test_dtype_rules_follow_pytorch():
    assert tinygen.tensor(np.zeros(3)).dtype == np.float64  # arrays keep their dtype
    assert tinygen.tensor(np.zeros(3, np.float32)).dtype == np.float32
    assert tinygen.tensor([1.0, 2.0]).dtype == np.float32  # Python floats -> float32
    assert tinygen.tensor(2.5).dtype == np.float32
    assert tinygen.tensor([1, 2]).dtype == np.int64  # Python ints -> int64
    assert tinygen.tensor([True, False]).dtype == np.bool_
    assert tinygen.tensor([1, 2], dtype=tinygen.float64).dtype == np.float64
    assert tinygen.zeros(2, 3).dtype == np.float32 and tinygen.zeros(2, 3).shape == (2, 3)
    assert tinygen.arange(5).dtype == np.int64 and tinygen.arange(0.0, 1.0, 0.25).dtype == np.float32


def test_tensor_copies_its_input_but_from_numpy_shares():
    a = np.ones(3)
    t, shared = tinygen.tensor(a), tinygen.from_numpy(a)
    a[0] = 5
    assert t.numpy()[0] == 1 and shared.numpy()[0] == 5


def test_scalars_keep_the_tensor_dtype():
    x = tinygen.ones(3)
    assert (x * 2.5).dtype == np.float32 and (2.5 - x).dtype == np.float32
    assert (tinygen.ones(3, dtype=tinygen.float64) + 1).dtype == np.float64
    assert (x + tinygen.ones(3, dtype=tinygen.float64)).dtype == np.float64  # promotion, as PyTorch


def test_numpy_array_on_the_left_gives_a_tensor():
    out = np.ones(3) * tinygen.tensor(np.ones(3), requires_grad=True)
    assert isinstance(out, tinygen.Tensor) and out.requires_grad


def test_manual_seed_makes_draws_repeat():
    tinygen.manual_seed(123)
    a = tinygen.randn(4, 5).numpy()
    b = tinygen.rand(3).numpy()
    tinygen.manual_seed(123)
    np.testing.assert_array_equal(a, tinygen.randn(4, 5).numpy())
    np.testing.assert_array_equal(b, tinygen.rand(3).numpy())
    assert a.dtype == np.float32
    r = tinygen.randint(0, 10, (100,))
    assert r.dtype == np.int64 and 0 <= r.numpy().min() and r.numpy().max() < 10


def test_generator_state_round_trips():
    gen = tinygen.Generator(5)
    state = gen.get_state()
    first = tinygen.randn(3, generator=gen).numpy()
    gen.set_state(state)
    np.testing.assert_array_equal(first, tinygen.randn(3, generator=gen).numpy())
    with pytest.raises(ValueError, match="seed"):
        tinygen.manual_seed(-1)


def test_conversions_and_attributes():
    x = tinygen.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert x.shape == (2, 3) and x.ndim == 2 and x.numel() == 6 and len(x) == 2 and x.size(1) == 3
    assert x.device == "cpu" and str(x.device) == "cpu" and x.is_leaf
    assert x[1, 2].item() == 5.0 and x.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert x.float().dtype == np.float32 and x.float().double().dtype == np.float64
    y = x.float()
    y.sum().backward()  # casts are differentiable and the gradient comes back in float64
    assert x.grad.dtype == np.float64
    assert [row.shape for row in x] == [(3,), (3,)]


def test_to_accepts_device_and_dtype():
    x = tinygen.ones(2)
    assert x.to("cpu") is x
    assert x.to(tinygen.float64).dtype == np.float64
    assert x.to("cpu", tinygen.float64).dtype == np.float64
    assert x.cpu() is x


def test_comparisons_are_bool_without_grad():
    x = tinygen.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    mask = x > 1.5
    assert mask.dtype == np.bool_ and not mask.requires_grad
    assert (x == 2.0).tolist() == [False, True, False]
    assert bool((x >= 1).all()) and bool((x < 0).any()) is False


def test_bool_of_many_elements_is_ambiguous():
    with pytest.raises(ValueError, match="ambiguous"):
        bool(tinygen.ones(2))


def test_repr_shows_dtype_and_grad():
    assert repr(tinygen.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert "dtype=float64" in repr(tinygen.tensor(np.ones(2)))
    assert "requires_grad=True" in repr(tinygen.ones(2, requires_grad=True))


def test_max_with_dim_returns_values_and_indices():
    x = tinygen.tensor(np.array([[1.0, 5.0, 5.0], [7.0, 0.0, 2.0]]))
    values, indices = x.max(1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]
    assert x.max(dim=0, keepdim=True).values.shape == (1, 3)
    assert x.argmax(1).tolist() == [1, 0] and x.argmin().item() == 4


def test_max_without_dim_shares_gradient_among_ties():
    x = tinygen.tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    x.max().backward()
    assert x.grad.tolist() == [0.0, 0.5, 0.5]


def test_maximum_splits_ties_in_half():
    a = tinygen.tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = tinygen.tensor(np.array([1.0, 3.0]), requires_grad=True)
    tinygen.maximum(a, b).sum().backward()
    assert a.grad.tolist() == [0.5, 0.0] and b.grad.tolist() == [0.5, 1.0]


def test_var_is_unbiased_by_default_and_correction_works():
    data = np.array([1.0, 2.0, 4.0, 7.0])
    x = tinygen.tensor(data)
    assert np.isclose(x.var().item(), data.var(ddof=1))
    assert np.isclose(x.var(unbiased=False).item(), data.var())
    assert np.isclose(x.var(correction=2).item(), data.var(ddof=2))
    assert np.isclose(x.std().item(), data.std(ddof=1))


# ----------------------------------------------------------------------------- shape errors


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: tinygen.ones(2, 3).reshape(4),
            r"reshape: cannot view shape \(2, 3\) \(6 elements\) as \(4,\)",
        ),
        (lambda: tinygen.ones(2, 3) @ tinygen.ones(2, 3), r"a.shape\[-1\] = 3 must equal b.shape\[-2\] = 2"),
        (lambda: tinygen.ones(2, 3) + tinygen.ones(4), r"add: shapes \(2, 3\) and \(4,\) don.t broadcast"),
        (lambda: tinygen.cat([tinygen.ones(2, 3), tinygen.ones(3, 2)]), r"tensors\[1\] has shape \(3, 2\)"),
        (lambda: tinygen.ones(2, 3).sum(2), r"sum: dim 2 is out of range for a tensor of 2 dimensions"),
        (lambda: tinygen.ones(2, 3).expand(4, 3), r"expand: cannot broadcast shape \(2, 3\) to \(4, 3\)"),
        (
            lambda: tinygen.nn.functional.linear(tinygen.ones(2, 3), tinygen.ones(4, 5)),
            r"input.shape\[-1\] is 3",
        ),
        (lambda: tinygen.ones(2, 3).permute(0, 0), r"permute: dims \(0, 0\)"),
        (lambda: tinygen.ones(5).split([2, 2]), r"sum to 4, expected size 5"),
        (
            lambda: tinygen.nn.functional.pad(tinygen.ones(3), (3, 0), mode="reflect"),
            r"reflect widths \(3, 0\)",
        ),
    ],
)
def test_shape_errors_name_the_shapes(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_index_out_of_range_is_an_index_error_too():
    with pytest.raises(IndexOutOfRangeError, match=r"shape \(3,\)"):
        tinygen.ones(3)[5]
    with pytest.raises(IndexError):
        tinygen.ones(3)[5]
    assert issubclass(IndexOutOfRangeError, ShapeError)


def test_python_scalars_promote_like_pytorch():
    flags, ints = tinygen.tensor([True, False]), tinygen.tensor([1, 2])
    assert (flags + 2).dtype == np.int64 and (flags * True).dtype == np.bool_
    assert (ints * 2.5).dtype == np.float32 and (ints + 1).dtype == np.int64
    assert (tinygen.ones(2) + 1).dtype == np.float32
    assert tinygen.where(ints > 1, -100, ints).tolist() == [1, -100]


def test_to_with_neither_device_nor_dtype_names_the_argument():
    from tinygen.errors import DTypeError

    with pytest.raises(DTypeError, match="5 is neither a device nor a dtype"):
        tinygen.ones(2).to(5)
    with pytest.raises(DTypeError, match="5 is neither a device nor a dtype"):
        tinygen.nn.Linear(2, 2).to(5)
