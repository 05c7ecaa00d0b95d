"""``compare_devices``: an op on a GPU against the same op (or its xp twin) on the CPU.

Both runs get the same inputs and the same random output weights ``u_i``, and return

    outputs:    y_i
    gradients:  d/dx_j sum_i sum(u_i * y_i)     (one backward call, for every float input)

compared elementwise as ``|a - b| <= atol * max|b| + rtol * |b|``. In float64, CuPy's
results differ from NumPy's only by the order of additions (cuBLAS against OpenBLAS, CUB's
reductions against NumPy's), so the defaults are round-off sized, as in ``tests/test_cuda.py``.
"""

import numpy

from tinygen import backend
from tinygen.autograd.function import grad
from tinygen.autograd.tensor import Tensor
from tinygen.testing.checks import CheckError, _as_tuple, _element, _fn_name, worst_mismatch
from tinygen.testing.op import _as_arguments, _prepare, _rebuild, format_inputs


class DeviceMismatchError(CheckError):
    """An op gives different outputs or gradients on two devices; the message says where."""


def _run(fn, arguments, device, seed):
    """``fn``'s outputs and the gradients of ``sum_i sum(u_i * y_i)``: ``(what, element name, tensor)``."""
    leaves, labels = [], []
    call = _prepare(list(arguments), "inputs", device, leaves, labels)
    outputs = [o for o in _as_tuple(fn(*_rebuild(call, leaves))) if isinstance(o, Tensor)]
    results = [(f"output {i}", f"outputs[{i}]", o) for i, o in enumerate(outputs)]
    differentiable = [o for o in outputs if o.requires_grad]
    if leaves and differentiable:
        rng = numpy.random.default_rng(seed)
        xp = backend.get_array_module(differentiable[0].data)
        weights = [Tensor(xp.asarray(rng.standard_normal(o.shape), dtype=o.dtype)) for o in differentiable]
        grads = grad(differentiable, leaves, weights, allow_unused=True)
        for (label, _), g in zip(labels, grads, strict=True):
            if g is not None:
                results.append((f"the gradient with respect to {label}", label, g))
    return results


def compare_devices(
    fn,
    inputs,
    device="cuda",
    *,
    reference_device="cpu",
    reference_fn=None,
    rtol=1e-9,
    atol=1e-11,
    seed=0,
    name=None,
):
    """Check that ``fn`` on ``device`` matches ``reference_fn`` (default: ``fn``) on ``reference_device``.

    ``inputs`` are the call's arguments, as for :func:`~tinygen.testing.check_op`: NumPy
    float arrays become tensors requiring grad on each device. Outputs and the gradients of
    every float input are compared (same count, shape and dtype, then values within
    ``atol * max|reference| + rtol * |reference|``). ``reference_fn`` serves a CUDA twin
    written as a function of its own: pass the xp version there. Returns True, or raises
    :class:`DeviceMismatchError` naming the op, the output or input, the worst element,
    both values, and the input to paste back.
    """
    name = name or _fn_name(fn)
    device, reference_device = backend.device(device), backend.device(reference_device)
    arguments = _as_arguments(inputs)
    got = _run(fn, arguments, device, seed)
    expected = _run(reference_fn or fn, arguments, reference_device, seed)
    try:
        _compare(name, got, expected, device, reference_device, rtol, atol)
    except DeviceMismatchError as err:
        pasted = format_inputs(arguments)
        message = f"{err}\n  input, to paste back as a regression test:\n    inputs = {pasted}"
        raise DeviceMismatchError(message) from None
    return True


def _compare(name, got, expected, device, reference_device, rtol, atol):
    head = f"compare_devices failed for {name!r}"
    if [what for what, _, _ in got] != [what for what, _, _ in expected]:
        raise DeviceMismatchError(
            f"{head}: on {device} it gives {[what for what, _, _ in got]}, on {reference_device} "
            f"{[what for what, _, _ in expected]}"
        )
    for (label, element, a), (_, _, b) in zip(got, expected, strict=True):
        if a.device != device:
            raise DeviceMismatchError(f"{head}: {label} is on {a.device}, expected {device}")
        if a.shape != b.shape or a.dtype != b.dtype:
            raise DeviceMismatchError(
                f"{head}: {label} is {a.dtype} {a.shape} on {device}, "
                f"{b.dtype} {b.shape} on {reference_device}"
            )
        a, b = a.numpy(), b.numpy()
        if a.dtype.kind != "f":
            tolerance = numpy.zeros(b.shape)  # integers and booleans must agree exactly
        else:
            scale = float(numpy.abs(b).max(initial=0.0)) if numpy.isfinite(b).all() else 1.0
            tolerance = atol * scale + rtol * numpy.abs(b)
        mismatch = worst_mismatch(a, b, tolerance)
        if mismatch is None:
            continue
        count, worst, difference = mismatch
        raise DeviceMismatchError(
            f"{head}: {label} differs between {device} and {reference_device} at {count} "
            f"of {b.size} elements\n"
            f"  worst element: {_element(element, worst)}: {device} gives {a[worst].item()!r}, "
            f"{reference_device} gives {b[worst].item()!r}, "
            f"|difference| {float(difference[worst]):.3g} > atol*max|{reference_device}| + "
            f"rtol*|{reference_device}| = {float(tolerance[worst]):.3g} (atol={atol:g}, rtol={rtol:g})"
        )
