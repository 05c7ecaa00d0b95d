"""Gradient-check toolkit, usable on your own ops: ``gradcheck``, ``gradgradcheck``.

``tinygen.testing.strategies`` (needs hypothesis) draws shapes, broadcastable shape pairs
and arrays that keep away from kinks and domain edges.
"""

from tinygen.testing.checks import GradcheckError, gradcheck, gradgradcheck  # noqa: F401
