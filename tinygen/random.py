"""One seeded source of random numbers for everything tinygen draws.

``tinygen.manual_seed(s)`` reseeds it; initialisation, dropout, shuffling and
``randn``/``rand`` all draw from it, so a seed fixes a whole run. NumPy arrays
come from a ``numpy.random.Generator`` (PCG64); CuPy arrays from a CuPy generator
per device, seeded from the same seed. ``get_state``/``set_state`` let a
checkpoint restore the exact stream.
"""

import numpy

from tinygen import backend


class Generator:
    """A seeded random stream for each array module (PyTorch's ``torch.Generator``)."""

    def __init__(self, seed=None):
        self.manual_seed(seed)

    def manual_seed(self, seed):
        if seed is not None and (not isinstance(seed, (int, numpy.integer)) or seed < 0):
            raise ValueError(f"manual_seed: seed must be a non-negative int, got {seed!r}")
        self.initial_seed = seed if seed is not None else int(numpy.random.SeedSequence().entropy)
        self._numpy = numpy.random.default_rng(self.initial_seed)
        self._cuda = {}
        return self

    def rng(self, xp, dev=backend.CPU):
        """The generator that makes arrays for array module ``xp`` on device ``dev``."""
        if xp is numpy:
            return self._numpy
        if dev.index not in self._cuda:
            with xp.cuda.Device(dev.index):
                self._cuda[dev.index] = xp.random.default_rng(self.initial_seed + dev.index)
        return self._cuda[dev.index]

    def get_state(self):
        """The NumPy stream's state, a dict of plain ints and strings (checkpointable)."""
        return self._numpy.bit_generator.state

    def set_state(self, state):
        self._numpy.bit_generator.state = state


default_generator = Generator(0)


def manual_seed(seed):
    """Reseed the default generator; returns it, as PyTorch does."""
    return default_generator.manual_seed(seed)
