"""Gradient-check toolkit, usable on your own ops (see ``docs/gradcheck.md``).

- ``check_op(fn, inputs, reference=..., order=2)``: forward against a reference, then
  derivatives of every order up to ``order``, in one call; ``op_test(fn, strategy, ...)``
  makes that a hypothesis-driven pytest test whose report shows the shrunk input.
- ``gradcheck(fn, inputs, order=1, fast_mode=False, ...)`` and ``gradgradcheck``: central
  differences in float64, elementwise or along tolerance-weighted random directions.
- ``compare_devices(fn, inputs, "cuda")``: the same op on a GPU and on the CPU, values and
  gradients.
- ``strategies`` (shapes, arrays that shrink, tensors drawn together, conv, masked-conv,
  LSTM and batch-norm configurations) and ``profiles`` (hypothesis profiles for CI and
  local runs) need hypothesis: ``pip install 'tinygen[testing]'``. They, and ``op_test``,
  are imported on first use, so ``import tinygen.testing`` does not import hypothesis.
"""

import importlib

from tinygen.testing.checks import CheckError, GradcheckError, gradcheck, gradgradcheck
from tinygen.testing.devices import DeviceMismatchError, compare_devices
from tinygen.testing.op import ForwardMismatchError, check_op, format_inputs

_NEED_HYPOTHESIS = {
    "strategies": ("tinygen.testing.strategies", None),
    "profiles": ("tinygen.testing.profiles", None),
    "op_test": ("tinygen.testing.harness", "op_test"),
}


def __getattr__(name):
    """Load ``strategies``, ``profiles`` and ``op_test`` (the parts that need hypothesis) on first use."""
    if name not in _NEED_HYPOTHESIS:
        raise AttributeError(f"module 'tinygen.testing' has no attribute {name!r}")
    module_name, attribute = _NEED_HYPOTHESIS[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)


def hypothesis_missing(what):
    """The ImportError for ``what`` when hypothesis is not installed: it names the extra to install."""
    return ImportError(
        f"{what} needs hypothesis, which is not installed; install it with pip install 'tinygen[testing]'"
    )
