"""``gradcheck`` and ``gradgradcheck``: compare an op's derivatives with central differences.

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
instead (``directions.py``): one per block of elements, each weighted by its elements'
tolerances, and a failing block is bisected down to one element to report.

Order k (``order=k``, as JAX's ``check_grads``) checks the maps built by backward,
``F_1 = f`` and ``F_{m+1}(x, v) = v^T J_{F_m}(x)`` (``grad`` with ``create_graph=True``),
with respect to every input, the incoming gradients ``v`` included.

A float32 input is refused (its round-off would swamp the check) unless ``upcast=True``
asks for float64 copies explicitly. A float32 *output* of float64 inputs (a forward that
computes in float32 inside) gets a step and a round-off floor sized to float32, and the
report says so. See ``docs/gradcheck.md``.
"""

import numpy

from tinygen import backend
from tinygen.autograd.function import grad
from tinygen.autograd.tensor import Tensor, float64
from tinygen.errors import DTypeError
from tinygen.testing.directions import check_directions


class CheckError(RuntimeError):
    """A check of ``tinygen.testing`` failed; the message says where and by how much."""


class GradcheckError(CheckError):
    """The analytic and numerical derivatives disagree (or a gradient has the wrong dtype or device)."""


_ORDER_NAMES = {2: "second order", 3: "third order"}
_INCOMING = {2: "v", 3: "w"}  # the incoming gradients of the order-2 and order-3 maps


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _float_outputs(outputs):
    return [o for o in _as_tuple(outputs) if isinstance(o, Tensor) and o.dtype.kind == "f"]


def _fn_name(fn):
    """``fn``'s name; for ``Fn.apply`` of a Function subclass, the class's (``Softsign``)."""
    owner = getattr(fn, "__self__", None)
    if getattr(fn, "__name__", None) == "apply" and isinstance(owner, type):
        return owner.__name__
    return getattr(fn, "__name__", type(fn).__name__)


def _element(label, index):
    """``inputs[0][2, 1]``; a 0-d input has one element, named by the input itself."""
    if not index:
        return f"{label} (0-d: its only element)"
    return f"{label}[{', '.join(str(int(i)) for i in index)}]"


def worst_mismatch(actual, expected, tolerance):
    """``(count, worst index, |actual - expected|)`` over the elements that differ by more than
    ``tolerance`` (NaN against NaN agrees; NaN against a number is the worst), or None if none does."""
    difference = numpy.abs(actual.astype(float) - expected)
    wrong = ~(difference <= tolerance) & ~(numpy.isnan(actual) & numpy.isnan(expected))
    if not wrong.any():
        return None
    excess = numpy.where(wrong, numpy.nan_to_num(difference - tolerance, nan=numpy.inf), -numpy.inf)
    return int(wrong.sum()), numpy.unravel_index(numpy.argmax(excess), expected.shape), difference


_DEFAULTS = dict(
    eps=None, atol=1e-7, rtol=1e-5, max_elements=2048, directions=None, fast_mode=False, seed=0, upcast=False
)


def gradcheck_options(caller, order, settings):
    """``settings`` (named as gradcheck's keywords) completed with the defaults, and checked."""
    unknown = sorted(set(settings) - set(_DEFAULTS))
    if unknown:
        raise TypeError(f"{caller}: unknown setting {unknown[0]!r}; expected some of {', '.join(_DEFAULTS)}")
    options = {**_DEFAULTS, **settings, "order": order}
    eps, atol, rtol = options["eps"], options["atol"], options["rtol"]
    max_elements, directions = options["max_elements"], options["directions"]
    if eps is not None and not eps > 0:
        raise ValueError(f"{caller}: eps is {eps!r}, expected a positive step (or None for the default)")
    if not (atol >= 0 and rtol >= 0):
        raise ValueError(f"{caller}: atol={atol!r} and rtol={rtol!r}, expected both >= 0")
    if not isinstance(order, int) or order < 1:
        raise ValueError(f"{caller}: order is {order!r}, expected an int >= 1")
    if not isinstance(max_elements, int) or max_elements < 0:
        raise ValueError(f"{caller}: max_elements is {max_elements!r}, expected an int >= 0")
    if directions is not None and (not isinstance(directions, int) or directions < 1):
        raise ValueError(f"{caller}: directions is {directions!r}, expected an int >= 1 (or None)")
    return options


def _float64_copies(inputs, labels, upcast, name, caller):
    """The inputs with float64 copies of those requiring grad; float32 only with ``upcast``."""
    copies = []
    for x, (label, _) in zip(inputs, labels, strict=True):
        if isinstance(x, Tensor) and x.requires_grad:
            if x.dtype != float64 and not upcast:
                raise DTypeError(
                    f"{name}: {label} is {x.dtype}; {caller} needs float64 inputs (float32 "
                    "round-off hides real errors). Pass .double() inputs, or upcast=True to "
                    "check float64 copies."
                )
            x = Tensor(x.data.astype(float64, copy=True), requires_grad=True)
        copies.append(x)
    return copies


class _Checker:
    """Holds the float64 inputs of one map and evaluates it around them.

    ``labels`` holds ``(label, role)`` per input: ``("inputs[0]", "")``, or
    ``("v[0]", "the incoming gradient of output 0")`` for an input of a derivative map.
    """

    def __init__(self, fn, inputs, labels, name, options):
        self.fn, self.inputs, self.labels, self.name = fn, list(inputs), labels, name
        self.atol, self.rtol, self.seed = options["atol"], options["rtol"], options["seed"]
        self.order = options.get("order", 1)
        self.diff = [j for j, x in enumerate(self.inputs) if isinstance(x, Tensor) and x.requires_grad]
        if not self.diff:
            raise ValueError(f"{name}: no input requires grad, so there is nothing to check")
        outputs = _float_outputs(fn(*self.inputs))
        if not outputs:
            raise ValueError(f"{name}: the function returned no floating-point tensor to check")
        self.rng = numpy.random.default_rng(self.seed)
        self.weights = [self.rng.standard_normal(o.shape) for o in outputs]
        self.low_precision = [(i, o.dtype) for i, o in enumerate(outputs) if o.dtype != float64]
        unit = max(numpy.finfo(o.dtype).eps for o in outputs)
        # the best step balances truncation h^2 |f'''| / 6 against round-off unit |f| / h; for
        # float64 1e-6 is near it, for a float32 output it is about unit**(1/3) ~ 5e-3
        self.eps = options["eps"] or (1e-6 if unit <= numpy.finfo(float64).eps else float(numpy.cbrt(unit)))
        # Round-off floor of a central difference of sum_i u_i . y_i: each y_i carries an error
        # of a few ulps of its own dtype, summed with random signs over the outputs (see docs).
        spread = 0.0
        for u, o in zip(self.weights, outputs, strict=True):
            y = backend.to_device(o.data, "cpu").astype(float64)
            spread += (numpy.finfo(o.dtype).eps * numpy.linalg.norm(u * y)) ** 2
        self.noise = 4 * numpy.sqrt(spread) / self.eps
        self.xp = backend.get_array_module(self.inputs[self.diff[0]].data)

    def outputs_now(self):
        """The outputs at the current inputs, as float64 NumPy arrays."""
        return [
            backend.to_device(o.data, "cpu").astype(float64) for o in _float_outputs(self.fn(*self.inputs))
        ]

    def analytic(self):
        """``u^T J_j`` for every differentiable input j, from the backward; dtype and device checked."""
        outputs = _float_outputs(self.fn(*self.inputs))
        pairs = [(o, u) for o, u in zip(outputs, self.weights, strict=True) if o.requires_grad]
        targets = [self.inputs[j] for j in self.diff]
        if not pairs:
            return [numpy.zeros(t.shape) for t in targets]
        grad_outputs = [Tensor(self.xp.asarray(u, dtype=o.dtype)) for o, u in pairs]
        grads = grad([o for o, _ in pairs], targets, grad_outputs, allow_unused=True)
        result = []
        for j, g, t in zip(self.diff, grads, targets, strict=True):
            if g is None:
                result.append(numpy.zeros(t.shape))
                continue
            if g.dtype != t.dtype or g.device != t.device:
                raise GradcheckError(
                    f"gradcheck failed for {self.name!r}: the gradient with respect to {self.labels[j][0]} "
                    f"is {g.dtype} on {g.device}, expected {t.dtype} on {t.device} like the input"
                )
            result.append(backend.to_device(g.data, "cpu").astype(float64))
        return result

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

    def tolerance(self, numeric):
        return self.atol + self.rtol * abs(numeric) + self.noise

    def excess(self, analytic, numeric):
        """How far ``|analytic - numeric|`` is above the tolerance; +inf where either is not finite."""
        excess = numpy.abs(analytic - numeric) - self.tolerance(numeric)
        return numpy.where(numpy.isfinite(analytic) & numpy.isfinite(numeric), excess, numpy.inf)

    def report(self, j, index, analytic, numeric, how, all_zero=False):
        """The failure message: op, order, input, worst element, values, tolerances, seed, hints."""
        label, role = self.labels[j]
        tolerance = self.tolerance(numeric)
        lines = [
            f"gradcheck failed for {self.name!r}: gradient mismatch with respect to {label} "
            f"(shape {tuple(self.inputs[j].shape)}){', ' + role if role else ''}",
            f"  worst element: {_element(label, index)}",
            f"  analytical: {analytic:.10g}   numerical: {numeric:.10g}   |difference|: "
            f"{abs(analytic - numeric):.3g} > atol + rtol*|numerical| + noise = {tolerance:.3g} "
            f"(round-off noise floor {self.noise:.2g})",
        ]
        if all_zero and self.order > 1:
            lines.append(
                f"  hint: the analytical derivative with respect to {label} is exactly 0 everywhere: the "
                f"order-{self.order - 1} backward is probably not differentiable (it computes with raw "
                "arrays, .data or .numpy(), or detaches); write it with tinygen ops"
            )
        elif all_zero:
            lines.append(f"  hint: the backward gave no gradient (None or zeros) for {label}")
        for i, dtype in self.low_precision:
            lines.append(
                f"  note: output {i} is {dtype} although the inputs are float64 (fn computes in {dtype} "
                f"inside): eps and the noise floor are sized to {dtype}, which cannot resolve small errors"
            )
        lines.append(self.settings_line(how))
        return "\n".join(lines)

    def settings_line(self, how):
        return f"  check: {how}; eps={self.eps:g}, atol={self.atol:g}, rtol={self.rtol:g}, seed={self.seed}"


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
    return checker.report(
        j, worst, float(analytic[worst]), float(numeric[worst]), how, all_zero=not analytic.any()
    )


def _check_map(fn, inputs, labels, name, options):
    """gradcheck of one map: every differentiable input, elementwise or along directions."""
    checker = _Checker(fn, inputs, labels, name, options)
    for j, a in zip(checker.diff, checker.analytic(), strict=True):
        if options["fast_mode"]:
            message = check_directions(checker, j, a, options["directions"] or 8, fast=True)
        elif a.size > options["max_elements"]:
            message = check_directions(checker, j, a, options["directions"] or 256, fast=False)
        else:
            message = _check_elementwise(checker, j, a)
        if message:
            raise GradcheckError(message)


def _derivative_map(fn, inputs, labels, level, seed, derivatives_of=None, grad_outputs=None):
    """The order-``level`` map ``(inputs, v) -> v^T J_fn(inputs)``, its inputs, labels and outputs.

    ``fn`` is the order-(level - 1) map; ``v`` (random float64 normals from ``seed + level - 1``
    unless ``grad_outputs`` are given) has one tensor per float output of fn that requires
    grad. ``derivatives_of[i]`` names what output i of fn is the derivative with respect to
    (None for the op itself); the same list for the new map comes back last.
    """
    float_outputs = _float_outputs(fn(*inputs))
    wanted = [i for i, o in enumerate(float_outputs) if o.requires_grad]
    diff = [j for j, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if grad_outputs is None:
        rng = numpy.random.default_rng(seed + level - 1)
        xp = backend.get_array_module(float_outputs[0].data) if float_outputs else numpy
        draws = [rng.standard_normal(float_outputs[i].shape) for i in wanted]
        incoming = [Tensor(xp.asarray(v), requires_grad=True) for v in draws]
    else:
        given = _as_tuple(grad_outputs)
        incoming = [Tensor(g.data.astype(float64, copy=True), requires_grad=True) for g in given]
    letter = _INCOMING.get(level, f"v{level}")
    if derivatives_of is None:
        roles = [f"the incoming gradient of output {i}" for i in wanted]
    else:
        roles = [
            f"the incoming gradient of the {_ORDER_NAMES.get(level - 1, f'order-{level - 1}')} map's "
            f"output {i}, its derivative with respect to {derivatives_of[i]}"
            for i in wanted
        ]
    n = len(inputs)

    def derivative(*args):
        xs, vs = args[:n], args[n:]
        outs = [o for o in _float_outputs(fn(*xs)) if o.requires_grad]
        grads = grad(outs, [xs[j] for j in diff], list(vs), create_graph=True, allow_unused=True)
        return tuple(g if g is not None else Tensor(xs[j].data * 0) for g, j in zip(grads, diff, strict=True))

    new_labels = [(f"{letter}[{i}]", role) for i, role in zip(wanted, roles, strict=True)]
    return derivative, [*inputs, *incoming], [*labels, *new_labels], [labels[j][0] for j in diff]


def _order_name(name, level):
    return name if level == 1 else f"{name} ({_ORDER_NAMES.get(level, f'order {level}')})"


def check_orders(fn, inputs, labels, name, options, levels):
    """Check the maps of the given orders (``levels``, increasing) of ``fn``; raises GradcheckError."""
    inputs = _float64_copies(list(inputs), labels, options["upcast"], name, "gradcheck")
    current, current_inputs, current_labels, derivatives_of = fn, inputs, labels, None
    for level in range(1, max(levels) + 1):
        if level > 1:
            current, current_inputs, current_labels, derivatives_of = _derivative_map(
                current, current_inputs, current_labels, level, options["seed"], derivatives_of
            )
        if level in levels:
            level_options = {**options, "order": level}
            _check_map(current, current_inputs, current_labels, _order_name(name, level), level_options)


def gradcheck(
    fn,
    inputs,
    *,
    eps=None,
    atol=1e-7,
    rtol=1e-5,
    order=1,
    max_elements=2048,
    directions=None,
    fast_mode=False,
    seed=0,
    upcast=False,
    name=None,
    raise_exception=True,
):
    """Check ``fn``'s derivatives of order 1 to ``order`` against central differences.

    ``fn(*inputs)`` returns a Tensor or a tuple of Tensors. Inputs are copied, so the
    caller's tensors are not touched. Returns True; on a mismatch raises
    :class:`GradcheckError` (or returns False when ``raise_exception=False``) with a
    report naming the function, the order, the input, its worst element, analytical and
    numerical values, the tolerances and the seed.

    - ``order=k`` also checks the maps ``F_{m+1}(x, v) = v^T J_{F_m}(x)`` for m < k, with
      respect to x and to the incoming gradients v (order 2 is :func:`gradgradcheck`).
    - An input with more than ``max_elements`` elements is checked along ``directions``
      random directions (default 256), one per block of about ``n / directions`` elements,
      each element weighted by its tolerance: one element wrong by ``r`` times its own
      tolerance ``atol + rtol*|g| + noise`` fails whenever ``r > 2 sqrt(n / directions)``
      (so 0.1% off, r ~ 100, is caught up to 2,500 elements per block). Each direction costs
      two calls of fn.
    - ``fast_mode=True`` checks every input that way, whatever its size, along ``directions``
      (default 8): cheap on large inputs, for errors that are not confined to a few elements.
    - ``eps`` defaults to 1e-6, or about 5e-3 when an output is float32.
    - Every gradient must have its input's dtype and device.
    """
    name = name or _fn_name(fn)
    settings = dict(eps=eps, atol=atol, rtol=rtol, max_elements=max_elements, directions=directions,
                    fast_mode=fast_mode, seed=seed, upcast=upcast)  # fmt: skip
    options = gradcheck_options("gradcheck", order, settings)
    inputs = _as_tuple(inputs)
    labels = [(f"inputs[{j}]", "") for j in range(len(inputs))]
    try:
        check_orders(fn, inputs, labels, name, options, levels=range(1, order + 1))
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def gradgradcheck(
    fn,
    inputs,
    grad_outputs=None,
    *,
    eps=None,
    atol=1e-7,
    rtol=1e-5,
    max_elements=2048,
    directions=None,
    fast_mode=False,
    seed=0,
    upcast=False,
    name=None,
    raise_exception=True,
):
    """Check second derivatives: ``gradcheck`` of the map ``(inputs, v) -> v^T J`` built by backward.

    ``grad_outputs`` (random float64 tensors by default) are the ``v``; they are inputs of
    the checked map too, so both ``d(v^T J)/dx`` and ``d(v^T J)/dv = J`` are tested. A
    report names them ``v[i]``, the incoming gradient of output i.
    """
    name = name or _fn_name(fn)
    settings = dict(eps=eps, atol=atol, rtol=rtol, max_elements=max_elements, directions=directions,
                    fast_mode=fast_mode, seed=seed, upcast=upcast)  # fmt: skip
    options = gradcheck_options("gradgradcheck", 2, settings)
    inputs = _as_tuple(inputs)
    labels = [(f"inputs[{j}]", "") for j in range(len(inputs))]
    try:
        inputs = _float64_copies(list(inputs), labels, upcast, name, "gradgradcheck")
        derivative, map_inputs, map_labels, _ = _derivative_map(
            fn, inputs, labels, 2, seed, grad_outputs=grad_outputs
        )
        _check_map(derivative, map_inputs, map_labels, _order_name(name, 2), options)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True
