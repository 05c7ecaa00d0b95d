"""Write a custom op, check it in one call, and watch the checker catch planted bugs.

This is the tutorial of docs/gradcheck.md, section 7, as a script (the test suite runs it):

    python examples/check_custom_op.py

Softsign is ``y = x / (1 + |x|)``, with ``dy/dx = 1 / (1 + |x|)**2``.
"""

import numpy as np
from hypothesis import settings

import tinygen
from tinygen.autograd import Function
from tinygen.testing import CheckError, check_op, op_test
from tinygen.testing import strategies as tst


class Softsign(Function):
    """y = x / (1 + |x|);  dx = dy / (1 + |x|)**2."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.data / (1 + np.abs(x.data))  # raw arrays in forward

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        d = 1 + x.abs()  # tinygen ops in backward: differentiable again
        return grad / (d * d)


def softsign_numpy(x):
    return x / (1 + np.abs(x))


# One call: the forward against NumPy, then first and second derivatives (order=2).
x = np.array([[0.5, -1.0, 2.0], [0.3, -0.2, 1.5]])
check_op(Softsign.apply, x, reference=softsign_numpy, order=2, name="softsign")
print("softsign passes: forward, first and second order")


# --------------------------------------------------------------------- three planted bugs
class OffByOneThousandth(Softsign):
    """The backward is 0.1% too large, as a variance divided by n - 1 instead of n would be."""

    @staticmethod
    def backward(ctx, grad):
        return Softsign.backward(ctx, grad) * 1.001


class OneWrongElement(Softsign):
    """Element [150, 7] of the gradient is wrong by 0.1%: one element among 40,000."""

    @staticmethod
    def backward(ctx, grad):
        good = Softsign.backward(ctx, grad).data.copy()
        good[150, 7] *= 1.001
        return tinygen.Tensor(good)


class DetachedBackward(Softsign):
    """Right first derivative, computed from raw arrays: its own derivative is lost."""

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * tinygen.Tensor(1 / (1 + np.abs(x.data)) ** 2)


large = np.random.default_rng(0).uniform(-2, 2, (200, 200))  # above max_elements: checked in blocks
for op, inputs in ((OffByOneThousandth, x), (OneWrongElement, large), (DetachedBackward, x)):
    try:
        check_op(op.apply, inputs, reference=softsign_numpy, order=2, name=op.__name__)
    except CheckError as report:
        print(f"\n{op.__name__} is caught:\n{report}")


# --------------------------------------------------------------------- hypothesis shrinks it
class ForgetsTheAbs(Softsign):
    """Uses 1 + x where it needs 1 + |x|: right for x > 0, wrong for every x < 0."""

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / ((1 + x) * (1 + x))


test_forgets_the_abs = op_test(
    ForgetsTheAbs.apply,
    tst.arrays(tst.shapes(max_dims=2), min_value=-0.9, max_value=2.0),
    reference=softsign_numpy,
    order=1,
    settings=settings(derandomize=True, database=None, max_examples=50),
)
try:
    test_forgets_the_abs()
except CheckError as report:
    print(f"\nForgetsTheAbs is caught, on the smallest input hypothesis found:\n{report}")
