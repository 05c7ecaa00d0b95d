"""``python -m tinygen ...`` is the ``tinygen`` command."""

from tinygen.cli import entry_point

entry_point()
