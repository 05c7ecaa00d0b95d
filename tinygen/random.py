"""One seeded source of random numbers for everything tinygen draws.

``tinygen.manual_seed(s)`` reseeds it; initialisation, dropout, shuffling and
``randn``/``rand`` all draw from it, so a seed fixes a whole run. NumPy arrays
come from a ``numpy.random.Generator`` (PCG64). CuPy arrays come from cuRAND's
counter-based Philox generator, freshly seeded for each draw with a number taken
from that same NumPy stream: so the NumPy stream's state is the whole state, on
every device, and ``get_state``/``set_state`` let a checkpoint restore it exactly
(a CuPy generator's own state lives on the GPU and cannot be saved).
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
        return self

    def rng(self, xp, dev=backend.CPU):
        """What makes arrays for array module ``xp`` on device ``dev``: an object with NumPy
        ``Generator``'s ``standard_normal``, ``random`` and ``integers``."""
        return self._numpy if xp is numpy else _CupyDraws(xp, dev, self._numpy)

    def get_state(self):
        """The NumPy stream's state, a dict of plain ints and strings (checkpointable)."""
        return self._numpy.bit_generator.state

    def set_state(self, state):
        self._numpy.bit_generator.state = state


class _CupyDraws:
    """Draws on GPU ``dev``, each from a new Philox generator seeded from ``seeds``.

    Philox is counter-based, so seeding one costs no set-up kernel (unlike XORWOW, which
    initialises a state per thread); one seed per draw keeps the stream checkpointable.
    """

    def __init__(self, cupy, dev, seeds):
        self.cupy, self.dev, self.seeds = cupy, dev, seeds

    def _draw(self, method, *args, **kwargs):
        seed = int(self.seeds.integers(2**63))
        philox_method = self.cupy.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10
        with backend.on_device(self.dev):
            philox = self.cupy.random.RandomState(seed, method=philox_method)
            return getattr(philox, method)(*args, **kwargs)

    def standard_normal(self, size, dtype=numpy.float64):
        return self._draw("standard_normal", size, dtype=dtype)

    def random(self, size, dtype=numpy.float64):
        return self._draw("random_sample", size, dtype=dtype)

    def integers(self, low, high, size):
        return self._draw("randint", low, high, size, dtype=numpy.int64)


default_generator = Generator(0)


def manual_seed(seed):
    """Reseed the default generator; returns it, as PyTorch does."""
    return default_generator.manual_seed(seed)
