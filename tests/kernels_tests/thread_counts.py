"""A check shared by the kernels that work in batch chunks on every CPU thread."""

import numpy as np
import pytest

from tinygen import cpu

needs_openblas = pytest.mark.skipif(
    cpu._OpenBLAS.find() is None, reason="NumPy's BLAS is not a pthreads OpenBLAS"
)


def assert_same_at_any_thread_count(run, counts=(1, 2, 3)):
    """``run()`` (a list of arrays) gives the same arrays, to the bit, at each thread count."""
    before = cpu.get_num_threads()
    results = []
    try:
        for threads in counts:
            cpu.set_num_threads(threads)
            results.append(run())
    finally:
        cpu.set_num_threads(before)
    for other in results[1:]:
        for got, want in zip(other, results[0], strict=True):
            np.testing.assert_array_equal(got, want)
