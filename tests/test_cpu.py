"""The CPU runtime: batch chunks, the thread pool and OpenBLAS's thread count, split products, malloc."""

import operator
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from tinygen import cpu

# ----------------------------------------------------------------------------- batch chunks


def test_map_batch_covers_the_batch_in_order_in_an_even_number_of_bounded_chunks(monkeypatch):
    monkeypatch.setattr(cpu, "CHUNK_BYTES", 1000)
    chunks = cpu.map_batch(lambda rows: rows, 23, 300, np.zeros(1))  # 3 items fit in 1000 bytes
    assert [c.start for c in chunks] == [0, 2, 5, 8, 11, 14, 17, 20]  # 8 chunks: an even count
    assert [c.stop for c in chunks] == [2, 5, 8, 11, 14, 17, 20, 23]
    assert cpu.map_batch(lambda rows: rows, 5, 1, np.zeros(1)) == [slice(0, 2), slice(2, 5)]
    assert cpu.map_batch(lambda rows: rows, 1, 1, np.zeros(1)) == [slice(0, 1)]
    assert cpu.map_batch(lambda rows: rows, 2, 5000, np.zeros(1)) == [slice(0, 1), slice(1, 2)]
    assert cpu.map_batch(pytest.fail, 0, 1, np.zeros(1)) == []
    # any other array (CuPy's on a GPU) is one chunk, whatever its size
    assert cpu.map_batch(lambda rows: rows, 23, 300, object()) == [slice(0, 23)]


@pytest.fixture(params=[1, 2, 3])
def threads(request):
    """NumPy's OpenBLAS, and so tinygen's CPU kernels, set to 1, 2 and 3 threads; put back after."""
    if cpu._OpenBLAS.find() is None:
        pytest.skip("NumPy's BLAS is not a pthreads OpenBLAS")
    before = cpu.get_num_threads()
    cpu.set_num_threads(request.param)
    yield request.param
    cpu.set_num_threads(before)


def test_parallel_map_keeps_the_order_and_holds_openblas_at_one_thread(threads):
    seen = cpu.parallel_map(lambda i: (i, cpu.get_num_threads()), list(range(7)))
    assert seen == [(i, 1) for i in range(7)]
    assert cpu.get_num_threads() == threads  # given back afterwards


def test_parallel_map_folds_in_item_order_however_the_items_finish(threads):
    def slow_early(i):  # the first items finish last
        time.sleep(0.002 * (8 - i))
        return [i]

    assert cpu.parallel_map(slow_early, list(range(8)), fold=operator.add) == list(range(8))
    assert cpu.parallel_map(slow_early, [], fold=operator.add) is None
    assert cpu.map_batch(lambda rows: [rows.start], 0, 1, np.zeros(1), fold=operator.add) is None


def test_parallel_map_passes_an_error_on_and_restores_the_thread_count():
    before = cpu.get_num_threads()

    def fail(i):
        raise KeyError(i)

    with pytest.raises(KeyError):
        cpu.parallel_map(fail, [1, 2, 3])
    assert cpu.get_num_threads() == before


SHAPES = [(3, 4, 5), (700, 300, 90), (90, 300, 700), (1, 4000, 3000), (3000, 4000, 1)]


@pytest.mark.parametrize("shape", SHAPES)
def test_matmul_in_pieces_equals_numpy_and_does_not_depend_on_the_thread_count(shape, monkeypatch):
    m, k, n = shape
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    monkeypatch.setattr(cpu, "PIECE_WORK", 2**14)  # cut even these small products
    results = []
    for threads in (1, 2):
        if cpu._OpenBLAS.find() is not None:
            monkeypatch.setattr(cpu._OpenBLAS.find(), "get", lambda threads=threads: threads)
            monkeypatch.setattr(cpu._OpenBLAS.find(), "put", lambda _: None)
        results.append(cpu.matmul(a, b))
    np.testing.assert_allclose(results[0], a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(cpu.matmul(a[None], b), a[None] @ b)  # batched: whole


FAULTS_OF_A_LOOP = """
import resource, sys
import numpy as np
if sys.argv[1] == "tinygen":
    import tinygen
a = np.empty(2**19)  # a 4 MiB array, mapped and freed: glibc's thresholds become 4 and 8 MiB
a.fill(1.0)
del a
for step in range(3):  # a loop making and freeing 12 MiB of arrays each step
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    arrays = [np.empty(3 * 2**17) for _ in range(4)]
    for x in arrays:
        x.fill(1.0)
    del arrays, x
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc on Linux")
def test_importing_tinygen_lets_glibc_keep_freed_arrays_for_the_next_step():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}  # glibc's defaults

    def faults_a_step(who):
        run = [sys.executable, "-c", FAULTS_OF_A_LOOP, who]
        return int(subprocess.run(run, capture_output=True, text=True, check=True, env=env).stdout)

    faults = {who: faults_a_step(who) for who in ("numpy", "tinygen")}
    if faults["numpy"] < 1536:
        pytest.skip(f"this C library keeps the arrays without tinygen ({faults['numpy']} page faults a step)")
    assert faults["tinygen"] < 256, faults  # 3072 pages a step, each faulted in again without tinygen


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_over_one_index_is_numpys_outer_product(dtype):
    rng = np.random.default_rng(0)
    for a_shape, b_shape in [((64, 1), (1, 6272)), ((3, 5, 1), (3, 1, 4)), ((5, 1), (2, 1, 4))]:
        a, b = rng.standard_normal(a_shape).astype(dtype), rng.standard_normal(b_shape).astype(dtype)
        got = cpu.matmul(a, b)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, a @ b)


def test_set_num_threads_rejects_what_is_not_a_positive_int():
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="positive int"):
            cpu.set_num_threads(bad)
