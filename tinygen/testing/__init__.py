"""Gradient-check toolkit, usable on your own ops: ``gradcheck``, ``gradgradcheck``.

``tinygen.testing.strategies`` (needs hypothesis) draws shapes, broadcastable shape pairs,
arrays that keep away from kinks and domain edges, and valid convolution configurations
(``conv_configs``, ``conv_transpose_configs``).
"""

from tinygen.testing.checks import GradcheckError, gradcheck, gradgradcheck  # noqa: F401
