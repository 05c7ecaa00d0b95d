"""``op_test``: one line makes a hypothesis-driven pytest test of an op out of :func:`check_op`.

    test_softsign = op_test(Softsign.apply, tst.arrays(tst.shapes(), away_from=(0.0,)),
                            reference=lambda x: x / (1 + np.abs(x)), order=2)

Hypothesis draws inputs from the strategy, runs ``check_op`` on each and, on a failure,
shrinks the input to a minimal failing one. Its report is then the one ``check_op`` gives
for that minimal input: op, order, input, worst element, and the input itself, printed to
paste back as a regression test. This is Chainer's ``FunctionTestCase`` (``generate_inputs``,
``forward``, ``forward_expected``) as one call.
"""

try:
    from hypothesis import given, note
except ImportError as err:
    from tinygen.testing import hypothesis_missing

    raise hypothesis_missing("tinygen.testing.op_test") from err

from tinygen.testing.checks import CheckError, _fn_name
from tinygen.testing.op import check_op, format_inputs


def op_test(fn, strategy, *, reference=None, order=2, name=None, settings=None, **check_settings):
    """A pytest test function checking ``fn`` with :func:`check_op` on inputs drawn from ``strategy``.

    ``strategy`` draws the call's arguments: a tuple is the argument list, anything else the
    only argument. ``reference``, ``order`` and ``check_settings`` (``forward_rtol``,
    ``device``, and gradcheck's ``eps``, ``atol``, ``fast_mode``, ...) go to ``check_op``;
    ``settings`` is a ``hypothesis.settings`` for this test (the loaded profile otherwise).
    Assign the result to a module-level name starting with ``test_`` and pytest collects it.
    """
    name = name or _fn_name(fn)

    def test(inputs):
        note(f"{name}: inputs = {format_inputs(inputs)}")  # shown for the final, shrunk input
        try:
            check_op(fn, inputs, reference=reference, order=order, name=name, **check_settings)
        except CheckError as err:
            message = f"{err}\n  (hypothesis shrinks a failing input: this is the smallest it found)"
            raise type(err)(message) from None

    test.__name__ = test.__qualname__ = f"test_{name}"
    test = given(strategy)(test)
    return settings(test) if settings is not None else test
