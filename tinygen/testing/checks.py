"""``gradcheck`` and ``gradgradcheck``: compare an op's backward with central differences.

For a function ``f`` with outputs ``y_i`` and inputs ``x_j``, the backward computes
vector-Jacobian products ``u^T J_ij``. The check draws a random weighting ``u_i`` per
output and compares, in float64,

    analytic:  (u^T J_ij)[k]  from one backward call with grad_outputs u
    numeric:   sum_i u_i . (y_i(x_j + eps e_k) - y_i(x_j - eps e_k)) / (2 eps)

for every element ``k`` of every input (elementwise mode). Central differences are
accurate to O(eps^2) plus round-off ~1e-16 |y| / eps, which is why the defaults
(``atol=1e-7, rtol=1e-5``) can be far tighter than PyTorch's (1e-5, 1e-3), which let a
backward wrong by 0.1% pass.

An input with more than ``max_elements`` elements is checked along random directions
``v`` instead (``u^T J v``, two forward calls each), as Chainer's ``check_backward``
and PyTorch's ``fast_mode`` do, but with one direction per block of elements (256
blocks) so that a single wrong element is not lost in the sum. When a block fails,
bisection on it narrows the mismatch down to one element to report.

A float32 input is refused (its round-off would swamp the check) unless ``upcast=True``
asks for float64 copies explicitly.
"""

import numpy

from tinygen import backend
from tinygen.autograd.function import grad
from tinygen.autograd.tensor import Tensor, float64
from tinygen.errors import DTypeError


class GradcheckError(RuntimeError):
    """The analytic and numerical gradients disagree; the message says where and by how much."""


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _float_outputs(outputs):
    return [o for o in _as_tuple(outputs) if isinstance(o, Tensor) and o.dtype.kind == "f"]


def _fn_name(fn):
    return getattr(fn, "__name__", type(fn).__name__)


def _float64_copies(inputs, upcast, name, caller):
    """The inputs with float64 copies of those requiring grad; float32 only with ``upcast``."""
    copies = []
    for j, x in enumerate(_as_tuple(inputs)):
        if isinstance(x, Tensor) and x.requires_grad:
            if x.dtype != float64 and not upcast:
                raise DTypeError(
                    f"{name}: inputs[{j}] is {x.dtype}; {caller} needs float64 inputs "
                    "(float32 round-off hides real errors). Pass .double() inputs, or "
                    "upcast=True to check float64 copies."
                )
            x = Tensor(x.data.astype(float64, copy=True), requires_grad=True)
        copies.append(x)
    return copies


class _Checker:
    """Holds the float64 copies of the inputs and evaluates ``f`` around them."""

    def __init__(self, fn, inputs, eps, atol, rtol, seed, upcast, name):
        self.fn, self.eps, self.atol, self.rtol, self.seed = fn, eps, atol, rtol, seed
        self.name = name or _fn_name(fn)
        self.inputs = _float64_copies(inputs, upcast, self.name, "gradcheck")
        self.diff = [j for j, x in enumerate(self.inputs) if isinstance(x, Tensor) and x.requires_grad]
        if not self.diff:
            raise ValueError(f"{self.name}: no input requires grad, so there is nothing to check")
        outputs = _float_outputs(fn(*self.inputs))
        if not outputs:
            raise ValueError(f"{self.name}: the function returned no floating-point tensor to check")
        rng = numpy.random.default_rng(seed)
        self.rng = rng
        self.weights = [rng.standard_normal(o.shape) for o in outputs]
        # Round-off floor of a central difference of sum_i u_i . y_i: each y_i carries an
        # error of about a few ulps, summed with random signs over the outputs (see docs).
        weighted = [
            u * backend.to_device(o.data, "cpu").astype(float64)
            for u, o in zip(self.weights, outputs, strict=True)
        ]
        spread = numpy.sqrt(sum(float((w * w).sum()) for w in weighted))
        self.noise = 4 * numpy.finfo(float64).eps * spread / eps
        self.xp = backend.get_array_module(self.inputs[self.diff[0]].data)

    def outputs_now(self):
        """The outputs at the current inputs, as float64 NumPy arrays."""
        return [
            backend.to_device(o.data, "cpu").astype(float64) for o in _float_outputs(self.fn(*self.inputs))
        ]

    def analytic(self):
        """``u^T J_j`` for every differentiable input j, from the op's backward."""
        outputs = _float_outputs(self.fn(*self.inputs))
        pairs = [(o, u) for o, u in zip(outputs, self.weights, strict=True) if o.requires_grad]
        targets = [self.inputs[j] for j in self.diff]
        if not pairs:
            return [numpy.zeros(t.shape) for t in targets]
        grad_outputs = [Tensor(self.xp.asarray(u, dtype=o.dtype)) for o, u in pairs]
        grads = grad([o for o, _ in pairs], targets, grad_outputs, allow_unused=True)
        return [
            numpy.zeros(t.shape) if g is None else backend.to_device(g.data, "cpu").astype(float64)
            for g, t in zip(grads, targets, strict=True)
        ]

    def directional(self, j, direction):
        """Central difference of ``sum_i u_i . y_i`` along ``direction`` in input j."""
        x = self.inputs[j]
        original = x.data.copy()
        step = self.xp.asarray(direction * self.eps)
        x.data = self.xp.asarray(original + step)  # asarray: 0-d arithmetic gives NumPy scalars
        plus = self.outputs_now()
        x.data = self.xp.asarray(original - step)
        minus = self.outputs_now()
        x.data = original
        # difference elementwise first: the change is small next to the outputs themselves
        change = sum(float((u * (p - m)).sum()) for u, p, m in zip(self.weights, plus, minus, strict=True))
        return change / (2 * self.eps)

    def excess(self, analytic, numeric):
        """How far ``|analytic - numeric|`` is above the tolerance; +inf where either is not finite."""
        excess = numpy.abs(analytic - numeric) - self.tolerance(numeric)
        return numpy.where(numpy.isfinite(analytic) & numpy.isfinite(numeric), excess, numpy.inf)

    def tolerance(self, numeric):
        return self.atol + self.rtol * abs(numeric) + self.noise

    def report(self, j, index, analytic, numeric, how):
        x = self.inputs[j]
        diff = abs(analytic - numeric)
        return (
            f"gradcheck failed for {self.name!r}: gradient mismatch with respect to input {j} "
            f"(shape {tuple(x.shape)})\n"
            f"  worst element: inputs[{j}][{', '.join(str(int(i)) for i in index)}]\n"
            f"  analytical: {analytic:.10g}   numerical: {numeric:.10g}   "
            f"|difference|: {diff:.3g} > atol + rtol*|numerical| + noise = {self.tolerance(numeric):.3g}"
            f" (round-off noise floor {self.noise:.2g})\n"
            f"  check: {how}; eps={self.eps:g}, atol={self.atol:g}, rtol={self.rtol:g}, seed={self.seed}"
        )


def gradcheck(
    fn,
    inputs,
    *,
    eps=1e-6,
    atol=1e-7,
    rtol=1e-5,
    raise_exception=True,
    max_elements=2048,
    seed=0,
    upcast=False,
    name=None,
):
    """Check ``fn``'s backward against central differences for every input requiring grad.

    ``fn(*inputs)`` returns a Tensor or a tuple of Tensors. Inputs are copied, so the
    caller's tensors are not touched. Returns True; on a mismatch raises
    :class:`GradcheckError` (or returns False when ``raise_exception=False``) with a
    report naming the function, the input, its worst element, analytical and numerical
    values, the tolerances and the seed.
    """
    checker = _Checker(fn, inputs, eps, atol, rtol, seed, upcast, name)
    analytic = checker.analytic()
    for j, a in zip(checker.diff, analytic, strict=True):
        if a.size <= max_elements:
            message = _check_elementwise(checker, j, a)
        else:
            message = _check_blocks(checker, j, a)
        if message:
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True


def _check_elementwise(checker, j, analytic):
    """Every element of input j: one central difference per element."""
    numeric = numpy.empty(analytic.shape)
    for k in range(analytic.size):
        direction = numpy.zeros(analytic.size)
        direction[k] = 1.0
        numeric.flat[k] = checker.directional(j, direction.reshape(analytic.shape))
    excess = checker.excess(analytic, numeric)
    if not (excess > 0).any():
        return None
    worst = numpy.unravel_index(numpy.argmax(excess), analytic.shape)
    how = "vector-Jacobian product with random output weights, every element"
    return checker.report(j, worst, float(analytic[worst]), float(numeric[worst]), how)


def _check_blocks(checker, j, analytic, n_blocks=256):
    """Large input j: one random-sign direction per block of elements; bisect a failing block.

    With ``S`` elements in a block and ``|v_k|`` about ``1/sqrt(S)`` on it, one element wrong by
    ``d`` moves ``u^T J v`` by ``d/sqrt(S)``, while ``|u^T J v|`` stays about one gradient
    element in size: so blocks of a few hundred still catch one wrong element in 65,536.
    """
    order = checker.rng.permutation(analytic.size)
    for block in numpy.array_split(order, min(n_blocks, analytic.size)):
        direction = numpy.zeros(analytic.size)
        # random signs, magnitudes in [1, 2): no element is weighted near 0, and equal errors
        # in two elements cannot cancel exactly
        weights = checker.rng.choice([-1.0, 1.0], block.size) * checker.rng.uniform(1.0, 2.0, block.size)
        direction[block] = weights / numpy.linalg.norm(weights)
        direction = direction.reshape(analytic.shape)
        a, n = float((analytic * direction).sum()), checker.directional(j, direction)
        if checker.excess(a, n) > 0:
            return _bisect(checker, j, analytic, direction, block)
    return None


def _bisect(checker, j, analytic, direction, support):
    """Halve the support of a failing direction, keeping the half that fails worse."""
    while support.size > 1:
        halves = numpy.array_split(support, 2)
        scores = []
        for half in halves:
            d = numpy.zeros(analytic.size)
            d[half] = direction.flat[half]
            d = d.reshape(analytic.shape)
            a, n = float((analytic * d).sum()), checker.directional(j, d)
            scores.append(checker.excess(a, n))
        support = halves[int(numpy.argmax(scores))]
    k = int(support[0])
    unit = numpy.zeros(analytic.size)
    unit[k] = 1.0
    numeric = checker.directional(j, unit.reshape(analytic.shape))
    index = numpy.unravel_index(k, analytic.shape)
    how = "random-sign directions over blocks of elements (input too large for each), bisected to one"
    return checker.report(j, index, float(analytic.flat[k]), numeric, how)


def gradgradcheck(
    fn,
    inputs,
    grad_outputs=None,
    *,
    eps=1e-6,
    atol=1e-7,
    rtol=1e-5,
    raise_exception=True,
    max_elements=2048,
    seed=0,
    upcast=False,
    name=None,
):
    """Check second derivatives: ``gradcheck`` of the map ``(inputs, v) -> v^T J`` built by backward.

    ``grad_outputs`` (random float64 tensors by default) are the ``v``; they are inputs of
    the checked map too, so both ``d(v^T J)/dx`` and ``d(v^T J)/dv = J`` are tested.
    """
    name = name or _fn_name(fn)
    inputs = _float64_copies(inputs, upcast, name, "gradgradcheck")
    outputs = [o for o in _float_outputs(fn(*inputs)) if o.requires_grad]
    if grad_outputs is None:
        rng = numpy.random.default_rng(seed + 1)
        xp = backend.get_array_module(outputs[0].data) if outputs else numpy
        grad_outputs = [Tensor(xp.asarray(rng.standard_normal(o.shape)), requires_grad=True) for o in outputs]
    else:
        grad_outputs = [
            Tensor(g.data.astype(float64, copy=True), requires_grad=True) for g in _as_tuple(grad_outputs)
        ]
    n = len(inputs)
    diff = [j for j, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]

    def first_derivative(*args):
        xs, vs = args[:n], args[n:]
        outs = [o for o in _float_outputs(fn(*xs)) if o.requires_grad]
        grads = grad(outs, [xs[j] for j in diff], list(vs), create_graph=True, allow_unused=True)
        return tuple(g if g is not None else Tensor(xs[j].data * 0) for g, j in zip(grads, diff, strict=True))

    first_derivative.__name__ = f"{name} (second order)"
    return gradcheck(
        first_derivative, (*inputs, *grad_outputs), eps=eps, atol=atol, rtol=rtol,
        raise_exception=raise_exception, max_elements=max_elements, seed=seed,
    )  # fmt: skip
