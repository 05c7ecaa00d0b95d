"""Graph properties of the autograd engine: accumulation, retain_graph, no_grad, grad(), order 2."""

import gc
import weakref

import numpy as np
import pytest

import tinygen
from tinygen.autograd import Function
from tinygen.errors import DTypeError, GraphError
from tinygen.testing import gradcheck, gradgradcheck


def leaf(values):
    return tinygen.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


def test_diamond_sums_both_paths():
    x = leaf([1.0, 2.0])
    y = x * 2  # y feeds two branches that meet again
    z = (y * y + y * 3).sum()
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (2 * y.numpy() + 3))


def test_same_tensor_twice_in_one_op():
    x = leaf([3.0])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0])


def test_backward_accumulates_into_grad():
    x = leaf([1.0, -1.0])
    for _ in range(3):
        (x * 5).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [15.0, 15.0])


def test_second_backward_without_retain_graph_names_the_fix():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(GraphError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)


def test_no_grad_records_nothing_and_restores_mode():
    x = leaf([1.0])
    with tinygen.no_grad():
        y = x * 2
        assert not tinygen.is_grad_enabled()
        with tinygen.enable_grad():
            z = x * 2
    assert tinygen.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None


def test_no_grad_as_decorator_and_set_grad_enabled():
    @tinygen.no_grad()
    def double(t):
        return t * 2

    assert not double(leaf([1.0])).requires_grad
    with tinygen.set_grad_enabled(False):
        assert not (leaf([1.0]) * 2).requires_grad
    assert tinygen.is_grad_enabled()


def test_no_grad_restores_mode_after_an_exception():
    with pytest.raises(RuntimeError), tinygen.no_grad():
        raise RuntimeError("inside no_grad")
    assert tinygen.is_grad_enabled()


def test_detach_cuts_the_graph_and_shares_data():
    x = leaf([1.0, 2.0])
    d = (x * 3).detach()
    assert not d.requires_grad and d.grad_fn is None
    (x * d).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 6.0])


def test_grad_returns_without_touching_dot_grad():
    x = leaf([1.0, 2.0])
    (g,) = tinygen.grad((x**3).sum(), x)
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2)
    assert x.grad is None


def test_grad_of_non_leaf_input():
    x = leaf([1.0, 2.0])
    h = x * 2
    y = (h * h).sum()
    (g,) = tinygen.grad(y, h)
    np.testing.assert_allclose(g.numpy(), 2 * h.numpy())


def test_grad_allow_unused():
    x, unused = leaf([1.0]), leaf([2.0])
    with pytest.raises(GraphError, match="inputs\\[1\\].*allow_unused=True"):
        tinygen.grad((x * 2).sum(), [x, unused])
    gx, gu = tinygen.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert gu is None and gx.item() == 2.0


def test_grad_with_grad_outputs_is_a_vector_jacobian_product():
    x = leaf([1.0, 2.0, 3.0])
    v = tinygen.tensor(np.array([1.0, 0.5, -1.0]))
    (g,) = tinygen.grad(x * x, x, grad_outputs=v)
    np.testing.assert_allclose(g.numpy(), 2 * x.numpy() * v.numpy())


def test_second_and_third_order_gradients():
    x = leaf([0.5, 1.5])
    y = (x * x.exp()).sum()  # y' = (1 + x) e^x, y'' = (2 + x) e^x, y''' = (3 + x) e^x
    (g1,) = tinygen.grad(y, x, create_graph=True)
    (g2,) = tinygen.grad(g1.sum(), x, create_graph=True)
    (g3,) = tinygen.grad(g2.sum(), x)
    e = np.exp(x.numpy())
    np.testing.assert_allclose(g1.numpy(), (1 + x.numpy()) * e)
    np.testing.assert_allclose(g2.numpy(), (2 + x.numpy()) * e)
    np.testing.assert_allclose(g3.numpy(), (3 + x.numpy()) * e)


def _penalty(x, w):
    """The WGAN-GP penalty ``(|d critic / d x| - 1)**2`` for a tiny critic ``tanh(x w^T)``."""
    x = x.detach().requires_grad_()
    critic = tinygen.nn.functional.linear(x, w).tanh().sum()
    (g,) = tinygen.grad(critic, x, create_graph=True)
    return (((g * g).sum(1).sqrt() - 1) ** 2).sum()


def test_gradient_penalty_backward_through_a_gradient():
    """The WGAN-GP pattern: penalise the norm of d(critic)/d(input), update the weights."""
    rng = np.random.default_rng(0)
    w = leaf(rng.standard_normal((1, 3)))
    x = tinygen.tensor(rng.standard_normal((4, 3)))
    _penalty(x, w).backward()
    assert w.grad is not None and np.isfinite(w.grad.numpy()).all()
    assert gradcheck(lambda w_: _penalty(x, w_), [w])


def test_long_chain_has_no_recursion_limit():
    x = leaf([1.0])
    y = x
    for _ in range(20000):
        y = y * 1.0
    y.sum().backward()
    assert x.grad.item() == 1.0


def test_saved_outputs_make_no_reference_cycle():
    """Activations are freed by reference counting as soon as the graph is dropped."""
    x = leaf(np.ones(10))
    gc.disable()
    try:
        y = x.exp().tanh().sigmoid()
        loss = y.sum()
        probe = weakref.ref(y)
        loss.backward()
        del y, loss
        assert probe() is None
    finally:
        gc.enable()


def test_backward_on_non_scalar_needs_a_gradient():
    x = leaf([1.0, 2.0])
    with pytest.raises(GraphError, match="shape \\(2,\\).*single-element"):
        (x * 2).backward()
    (x * 2).backward(tinygen.tensor(np.array([1.0, 1.0])))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_backward_on_tensor_without_grad_explains():
    with pytest.raises(GraphError, match="does not require grad"):
        tinygen.tensor([1.0, 2.0]).sum().backward()


def test_gradient_shape_must_match_output():
    x = leaf([1.0, 2.0])
    with pytest.raises(ValueError, match="grad_outputs\\[0\\] has shape \\(3,\\)"):
        (x * 2).backward(tinygen.tensor(np.ones(3)))


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(DTypeError, match="floating-point"):
        tinygen.tensor([1, 2], requires_grad=True)


def test_grad_fn_names_and_next_functions():
    x = leaf([1.0])
    y = x.exp() * x
    assert y.grad_fn.name == "MulBackward"
    (exp_node, _), (leaf_node, _) = y.grad_fn.next_functions
    assert exp_node.name == "ExpBackward" and leaf_node is x
    assert "grad_fn=<MulBackward>" in repr(y)
    z = x.exp() * 2  # a Python number has its own op, and no edge
    assert z.grad_fn.name == "MulNumberBackward"
    assert z.grad_fn.next_functions[1] is None


# ----------------------------------------------------------------------------- custom Functions


class ScaledSplit(Function):
    """Two outputs and a non-tensor argument: y1 = s * x, y2 = x**2."""

    @staticmethod
    def forward(ctx, x, s):
        ctx.save_for_backward(x)
        ctx.s = s
        return x.data * s, x.data**2

    @staticmethod
    def backward(ctx, grad1, grad2):
        (x,) = ctx.saved_tensors
        return grad1 * ctx.s + grad2 * 2 * x, None


def test_multi_output_function_and_unused_output_gets_zero_gradient():
    x = leaf([1.0, 2.0])
    y1, y2 = ScaledSplit.apply(x, 3.0)
    assert y1.output_nr == 0 and y2.output_nr == 1
    y1.sum().backward()  # y2 receives no gradient: the engine passes zeros for it
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])
    assert gradcheck(lambda t: ScaledSplit.apply(t, 3.0), [x])
    assert gradgradcheck(lambda t: ScaledSplit.apply(t, 3.0), [x])


def test_needs_input_grad_reflects_inputs():
    seen = {}

    class Probe(Function):
        @staticmethod
        def forward(ctx, a, b):
            seen["needs"] = ctx.needs_input_grad
            return a.data + b.data

        @staticmethod
        def backward(ctx, grad):
            return grad, grad

    Probe.apply(leaf([1.0]), tinygen.tensor([1.0]))
    assert seen["needs"] == (True, False)


def test_backward_returning_wrong_count_or_shape_is_reported():
    class TooFew(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a.data * b.data

        @staticmethod
        def backward(ctx, grad):
            return grad

    class WrongShape(Function):
        @staticmethod
        def forward(ctx, a):
            return a.data.sum()

        @staticmethod
        def backward(ctx, grad):
            return grad

    with pytest.raises(GraphError, match="TooFewBackward: backward returned 1 gradients, expected 2"):
        TooFew.apply(leaf([1.0]), leaf([2.0])).sum().backward()
    with pytest.raises(GraphError, match="WrongShapeBackward.*shape \\(\\) for an input of shape \\(3,\\)"):
        WrongShape.apply(leaf([1.0, 2.0, 3.0])).backward()


def test_grad_of_non_leaf_leaves_its_producer_untouched():
    """The node that made a requested tensor is not run (nor freed), as in PyTorch."""
    x = leaf([1.0, 2.0])
    h = x.exp()
    (g,) = tinygen.grad((h * h).sum(), h)
    np.testing.assert_allclose(g.numpy(), 2 * h.numpy())
    (h * 3).sum().backward()  # h's ExpBackward still has its saved output
    np.testing.assert_allclose(x.grad.numpy(), 3 * h.numpy())
