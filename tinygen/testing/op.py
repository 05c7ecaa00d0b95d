"""``check_op``: one call checks an op's forward against a reference and its derivatives to any order.

    check_op(Softsign.apply, (x,), reference=lambda x: x / (1 + np.abs(x)), order=2)

runs, on the same inputs: the forward against ``reference`` (NumPy, or any callable on
arrays), then :func:`~tinygen.testing.gradcheck` of orders 1 to ``order``. A failure
raises a :class:`~tinygen.testing.checks.CheckError` whose message ends with the input,
printed so that it pastes back bit-exactly as a regression test (:func:`format_inputs`).
For a hypothesis strategy of inputs, :func:`tinygen.testing.op_test` makes it a test.
"""

import sys

import numpy

from tinygen import backend
from tinygen.autograd.tensor import Tensor, tensor
from tinygen.testing.checks import (
    CheckError,
    _as_tuple,
    _element,
    _fn_name,
    check_orders,
    gradcheck_options,
    worst_mismatch,
)


class ForwardMismatchError(CheckError):
    """The op's forward and the reference function disagree; the message says where."""


class _Leaf:
    """Where a differentiable tensor sits in the call's arguments (a placeholder while rebuilding)."""

    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index


def _as_arguments(inputs):
    """The call's arguments: a tuple or list is the argument list, anything else the only argument."""
    return tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)


def _prepare(value, path, device, leaves, labels):
    """``value`` for the call: float arrays become tensors requiring grad (recorded as leaves)."""
    if isinstance(value, numpy.ndarray):
        value = tensor(value, device=device, requires_grad=value.dtype.kind == "f")
    elif isinstance(value, Tensor) and device is not None and value.device != backend.device(device):
        value = tensor(value.numpy(), device=device, requires_grad=value.requires_grad)
    if isinstance(value, Tensor):
        if not value.requires_grad:
            return value
        leaves.append(value)
        labels.append((path, ""))
        return _Leaf(len(leaves) - 1)
    if isinstance(value, (list, tuple)):
        items = [_prepare(v, f"{path}[{i}]", device, leaves, labels) for i, v in enumerate(value)]
        return type(value)(items)
    return value


def _rebuild(value, leaves):
    if isinstance(value, _Leaf):
        return leaves[value.index]
    if isinstance(value, (list, tuple)):
        return type(value)(_rebuild(v, leaves) for v in value)
    return value


def _to_numpy(value):
    if isinstance(value, Tensor):
        return value.numpy()
    if isinstance(value, (list, tuple)):
        return type(value)(_to_numpy(v) for v in value)
    return value


def check_op(
    fn,
    inputs,
    *,
    reference=None,
    order=2,
    name=None,
    device=None,
    forward_rtol=1e-10,
    forward_atol=1e-12,
    **settings,
):
    """Check ``fn`` on ``inputs``: forward against ``reference``, then gradients of order 1 to ``order``.

    ``inputs`` is the tuple of arguments (anything else is the only argument). NumPy float
    arrays in it, also inside lists (``cat``'s), become tensors that require grad, on
    ``device`` (CPU by default; ``"cuda"`` for CuPy); integer arrays become constant tensors;
    other values are passed as they are. ``reference`` gets the same arguments as NumPy
    arrays and returns an array (or a tuple, one per output): every output must have its
    shape and dtype and lie within ``forward_atol + forward_rtol*|reference|``. ``order=0``
    checks the forward only. ``settings`` go to :func:`~tinygen.testing.gradcheck` (``eps``,
    ``atol``, ``rtol``, ``max_elements``, ``directions``, ``fast_mode``, ``seed``, ``upcast``).

    Returns True, or raises :class:`ForwardMismatchError` or
    :class:`~tinygen.testing.GradcheckError`; the report names the op, the order, the
    input (``inputs[1][0]`` for the first array in a list argument), the worst element and
    ends with the input itself, to paste back as a regression test.
    """
    name = name or _fn_name(fn)
    if not isinstance(order, int) or order < 0:
        raise ValueError(f"check_op: order is {order!r}, expected an int >= 0 (0: the forward only)")
    options = gradcheck_options("check_op", max(order, 1), settings)
    arguments = _as_arguments(inputs)
    leaves, labels = [], []
    call = _prepare(list(arguments), "inputs", device, leaves, labels)
    try:
        if reference is not None:
            outputs = fn(*_rebuild(call, leaves))
            expected = reference(*_to_numpy(list(arguments)))
            _compare_forward(name, outputs, expected, forward_rtol, forward_atol)
        if order >= 1 and leaves:

            def op(*tensors):
                return fn(*_rebuild(call, list(tensors)))

            check_orders(op, leaves, labels, name, options, levels=range(1, order + 1))
    except CheckError as err:
        pasted = format_inputs(arguments)
        message = f"{err}\n  input, to paste back as a regression test:\n    inputs = {pasted}"
        raise type(err)(message) from None
    return True


def _compare_forward(name, outputs, expected, rtol, atol):
    """Each output against the reference's: same count, shape and dtype, values within tolerance."""
    outputs, expected = _as_tuple(outputs), _as_tuple(expected)
    if len(outputs) != len(expected):
        raise ForwardMismatchError(
            f"forward check failed for {name!r}: fn returned {len(outputs)} outputs, "
            f"the reference {len(expected)}"
        )
    for i, (out, ref) in enumerate(zip(outputs, expected, strict=True)):
        got = out.numpy() if isinstance(out, Tensor) else numpy.asarray(out)
        ref = numpy.asarray(ref)
        where = f"forward check failed for {name!r}: output {i}"
        if got.shape != ref.shape:
            raise ForwardMismatchError(f"{where} has shape {got.shape}, the reference's is {ref.shape}")
        if got.dtype.kind == "f" and ref.dtype.kind == "f" and got.dtype != ref.dtype:
            raise ForwardMismatchError(f"{where} is {got.dtype}, the reference's is {ref.dtype}")
        if got.dtype.kind != "f" or ref.dtype.kind != "f":
            wrong = got != ref
            if wrong.any():
                worst = tuple(int(k) for k in numpy.argwhere(wrong)[0])
                raise ForwardMismatchError(
                    f"{where} differs from the reference at {int(wrong.sum())} of {ref.size} elements\n"
                    f"  first: {_element(f'outputs[{i}]', worst)}: got {got[worst].item()!r}, "
                    f"reference {ref[worst].item()!r}"
                )
            continue
        tolerance = atol + rtol * numpy.abs(ref)
        mismatch = worst_mismatch(got, ref, tolerance)
        if mismatch is None:
            continue
        count, worst, difference = mismatch
        raise ForwardMismatchError(
            f"{where} differs from the reference at {count} of {ref.size} elements\n"
            f"  worst element: {_element(f'outputs[{i}]', worst)}: got {float(got[worst])!r}, reference "
            f"{float(ref[worst])!r}, |difference| {float(difference[worst]):.3g} > forward_atol + "
            f"forward_rtol*|reference| = {float(tolerance[worst]):.3g} "
            f"(forward_atol={atol:g}, forward_rtol={rtol:g})"
        )


def _float_repr(value):
    value = float(value)
    if numpy.isfinite(value):
        return repr(value)
    return "numpy.nan" if numpy.isnan(value) else ("numpy.inf" if value > 0 else "-numpy.inf")


def _format_array(array, max_size):
    dtype = "" if array.dtype == numpy.float64 else f", dtype=numpy.{array.dtype}"
    if array.size == 0 or array.size > max_size:
        return f"numpy.zeros({array.shape}{dtype})"
    body = numpy.array2string(
        array, separator=", ", threshold=sys.maxsize, max_line_width=sys.maxsize,
        formatter={"float_kind": _float_repr},
    )  # fmt: skip
    return f"numpy.array({body.replace(chr(10), '')}{dtype})"  # one line: numpy breaks between rows


def _largest(value):
    if isinstance(value, Tensor):
        return value.data.size
    if isinstance(value, numpy.ndarray):
        return value.size
    if isinstance(value, (list, tuple)):
        return max((_largest(v) for v in value), default=0)
    return 0


def format_inputs(inputs, max_size=1000):
    """``inputs`` as Python source that rebuilds them bit-exactly (every float as its shortest repr).

    Tensors print as their arrays (``tinygen.tensor(...)`` when float and not requiring grad),
    so the text pastes back into ``check_op(fn, inputs)``; arrays of more than ``max_size``
    values print as zeros of their shape, followed by a comment line saying so.
    """

    def text(value):
        if isinstance(value, Tensor):
            array = _format_array(value.numpy(), max_size)
            return array if value.requires_grad or value.dtype.kind != "f" else f"tinygen.tensor({array})"
        if isinstance(value, numpy.ndarray):
            return _format_array(value, max_size)
        if isinstance(value, (list, tuple)):
            items = ", ".join(text(v) for v in value)
            if isinstance(value, list):
                return f"[{items}]"
            return f"({items},)" if len(value) == 1 else f"({items})"
        if isinstance(value, (float, numpy.floating)):
            return _float_repr(value)
        return repr(value)

    arguments = _as_arguments(inputs)
    source = text(arguments)
    if _largest(arguments) > max_size:
        source += f"\n    # arrays of over max_size={max_size} values are printed as zeros of their shape"
    return source
