"""Hypothesis profiles for gradient-check suites: one derandomized for CI, one larger for local runs.

A ``conftest.py`` needs one line::

    pytest_plugins = ["tinygen.testing.profiles"]

and pytest then loads ``tinygen-ci`` when the ``CI`` environment variable is set, else
``tinygen-dev``; ``HYPOTHESIS_PROFILE=name`` or hypothesis's own ``--hypothesis-profile=name``
picks another. Outside pytest, call ``load_profile()`` (or ``load_profile("tinygen-ci")``).

- ``tinygen-ci``: 15 examples, derandomized (the same examples on every run, so a red CI
  is reproducible), no example database, no deadline, ``print_blob`` to reproduce a failure.
- ``tinygen-dev``: 40 random examples, the example database on (a failure found once is
  tried first next time), no deadline. ``HYPOTHESIS_PROFILE=default`` gives hypothesis's 100.

No deadline, and ``too_slow`` suppressed: a gradient check makes two forward calls per
input element, and its time says nothing about the op being checked.
"""

import os

try:
    from hypothesis import HealthCheck, settings
except ImportError as err:
    from tinygen.testing import hypothesis_missing

    raise hypothesis_missing("tinygen.testing.profiles") from err

CI = "tinygen-ci"
DEV = "tinygen-dev"

settings.register_profile(
    CI, max_examples=15, derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
settings.register_profile(DEV, max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load_profile(name=None):
    """Load profile ``name`` and return it: by default ``$HYPOTHESIS_PROFILE``, else CI or DEV by ``$CI``."""
    if name is None:
        name = os.environ.get("HYPOTHESIS_PROFILE") or (CI if os.environ.get("CI") else DEV)
    settings.load_profile(name)
    return name


def pytest_configure(config):
    """As a pytest plugin: load the default profile unless ``--hypothesis-profile`` chose one."""
    if not config.getoption("hypothesis_profile", default=None):
        load_profile()
