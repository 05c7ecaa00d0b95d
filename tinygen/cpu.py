"""The CPU runtime: what makes tinygen's NumPy kernels use the machine well.

:mod:`tinygen.backend` says which array module an array belongs to; this module runs the
NumPy side. Three things, each a response to something measured (``benchmarks/RESULTS.md``):

- **Memory**: at import, one large array is freed, so that glibc keeps freed memory for the
  next training step instead of giving it back and faulting it in again.
- **Threads**: the OpenBLAS that NumPy ships is found through ctypes; tinygen's own kernels
  run their pieces on as many threads as it has (:func:`parallel_map`), with OpenBLAS held
  at one thread meanwhile. :func:`get_num_threads` and :func:`set_num_threads` are
  ``torch``'s.
- **Pieces**: :func:`map_batch` cuts a batch into cache-sized chunks, and :func:`matmul`
  cuts a large product into blocks of rows or columns, for :func:`parallel_map`.

A CuPy array passes through :func:`map_batch` and :func:`matmul` whole: the GPU takes the
whole batch and the whole product at once.
"""

import concurrent.futures
import ctypes
import functools
import glob
import itertools
import os
import threading

import numpy

from tinygen.errors import DeviceError

# ----------------------------------------------------------------------------- memory


def _keep_freed_arrays():
    """Free one array of 32 MiB less 8 KiB, so that glibc keeps freed memory for the next step.

    glibc's malloc maps blocks of at least its mmap threshold from the kernel one by one,
    and gives the top of its heap back to the kernel whenever more than its trim threshold
    is free there; either way, every 4 KiB page that comes back costs a page fault when it
    is first written. Both thresholds start low (128 KiB, 128 KiB) and rise with the largest
    mapped block freed so far (to its size and twice that), up to 32 and 64 MiB. A training
    loop frees and makes the same arrays every step; where its largest array is a few MiB
    and a step's arrays add up to more than twice that, the heap is trimmed and refilled
    every step, and every step pays its page faults again (an LSTM step: ``benchmarks/RESULTS.md``).
    Freeing one mapped block near 32 MiB puts them there at once, as a process that had
    used an array of that size would. A threshold the user chose (``MALLOC_MMAP_THRESHOLD_``,
    ``MALLOC_TRIM_THRESHOLD_``, ``mallopt``) turns the adjustment off, and then this does
    nothing; so it does with other C libraries. The array is never written: no memory used.
    """
    try:
        numpy.empty(2**22 - 1024, dtype=numpy.float64)
    except MemoryError:  # a system that commits memory strictly, and has not 32 MiB to spare
        pass


_keep_freed_arrays()


# ----------------------------------------------------------------------------- threads
#
# On the CPU, tinygen's convolutions (their batch chunks), batch norm (likewise) and large
# matrix products (their row or column blocks) run on the calling thread plus helper
# threads, as many threads in all as BLAS has, while NumPy's OpenBLAS is held at one
# thread. NumPy releases the GIL in its copies, ufuncs and GEMMs, so im2col's copies and
# col2im's additions use every core, not only the GEMMs. Every product tinygen runs holds
# OpenBLAS at one thread, small ones too: OpenBLAS's own threads spin for a while after
# each threaded GEMM, and two of ours then share a core with one of them (the DCGAN step's
# times both ways are in benchmarks/RESULTS.md). The LSTM's many small per-step products are
# the exception: they call NumPy directly, since a hand-off to a helper thread costs more
# than one of them.

CHUNK_BYTES = 2**21  # the scratch one batch chunk may use: about an L2 cache (1-2 MiB here)
PIECE_WORK = 2**24  # multiply-adds per piece of a split product: fewer, larger pieces


class _OpenBLAS:
    """The thread-count calls of the OpenBLAS that NumPy runs, found next to NumPy's package."""

    def __init__(self, get, put):
        self.get, self.put = get, put

    @staticmethod
    @functools.cache
    def find():
        """The :class:`_OpenBLAS` of NumPy's wheel (``scipy_openblas``), or None.

        A NumPy built against another BLAS (MKL, Accelerate), or an OpenBLAS threaded by
        OpenMP, gives None: tinygen then leaves threading to the BLAS and runs serially.
        """
        package = os.path.dirname(numpy.__file__)
        folders = [os.path.join(os.path.dirname(package), "numpy.libs"), os.path.join(package, ".dylibs")]
        for path in (p for folder in folders for p in sorted(glob.glob(os.path.join(folder, "*openblas*")))):
            try:
                lib = ctypes.CDLL(path)  # already loaded by NumPy: this only looks it up
            except OSError:
                continue
            for prefix in ("scipy_", ""):
                for suffix in ("64_", "_64", ""):
                    get, put, layer = (
                        getattr(lib, f"{prefix}openblas_{name}{suffix}", None)
                        for name in ("get_num_threads", "set_num_threads", "get_parallel")
                    )
                    if get and put and layer and layer() == 1:  # 1: OpenBLAS's own pthreads pool
                        return _OpenBLAS(get, put)
        return None


def get_num_threads():
    """How many threads tinygen's CPU kernels use: NumPy's OpenBLAS setting (``torch.get_num_threads``).

    ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``, threadpoolctl and :func:`set_num_threads`
    all change it. Without OpenBLAS (another BLAS, or none found) it is 1.
    """
    blas = _OpenBLAS.find()
    return blas.get() if blas else 1


def set_num_threads(threads):
    """Use ``threads`` threads for tinygen's CPU kernels and NumPy's OpenBLAS (``torch.set_num_threads``)."""
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"set_num_threads: threads must be a positive int, got {threads!r}")
    blas = _OpenBLAS.find()
    if blas is None:
        raise DeviceError("set_num_threads: NumPy's BLAS is not a pthreads OpenBLAS; set its own variables")
    blas.put(threads)


@functools.cache
def _helpers(count, pid):  # one pool per process: a forked child starts its own
    return concurrent.futures.ThreadPoolExecutor(count, thread_name_prefix="tinygen")


def _in_order(fn, items, fold):
    """What :func:`parallel_map` returns, computed on the calling thread, item after item."""
    if fold is None:
        return [fn(item) for item in items]
    total = None
    for i, item in enumerate(items):
        total = fn(item) if i == 0 else fold(total, fn(item))
    return total


def parallel_map(fn, items, fold=None):
    """``[fn(item) for item in items]``, on :func:`get_num_threads` threads, OpenBLAS held at one.

    The calling thread works too: it and ``threads - 1`` helpers each take the next item
    not yet taken until none is left (a slow item does not hold up the rest). The results
    come in the order of ``items`` whatever the thread count. With ``fold`` the call returns
    ``fold(...fold(fold(r0, r1), r2)..., rn)`` of the results ``r`` instead, folded in item
    order as they arrive, so only results that finished ahead of their turn are held (a
    sum of partial weight gradients keeps about one per thread, not one per chunk). Either
    way the order is fixed, so results do not depend on how many threads ran. No items
    with ``fold`` give None.
    """
    blas = _OpenBLAS.find()
    threads = blas.get() if blas else 1
    if threads < 2:
        return _in_order(fn, items, fold)
    waiting, folded = {}, [None, 0]  # results ahead of their turn; (fold so far, how many in it)
    lock = threading.Lock()
    taken = itertools.count()  # next() on it is atomic under the GIL

    def work():
        while (i := next(taken)) < len(items):
            result = fn(items[i])
            if fold is None:
                waiting[i] = result
                continue
            with lock:
                waiting[i] = result
                while folded[1] in waiting:
                    result = waiting.pop(folded[1])
                    folded[0] = result if folded[1] == 0 else fold(folded[0], result)
                    folded[1] += 1

    blas.put(1)
    try:
        if len(items) < 2:
            return _in_order(fn, items, fold)
        pool = _helpers(threads - 1, os.getpid())
        helpers = [pool.submit(work) for _ in range(min(threads, len(items)) - 1)]
        try:
            work()
        finally:
            concurrent.futures.wait(helpers)
        for helper in helpers:
            helper.result()  # raises what fn raised there
    finally:
        blas.put(threads)
    return [waiting[i] for i in range(len(items))] if fold is None else folded[0]


def _pieces(length, count):
    """``count`` slices that cut ``range(length)`` into near-equal consecutive runs."""
    edges = [length * i // count for i in range(count + 1)]
    return [slice(edges[i], edges[i + 1]) for i in range(count)]


def matmul(a, b):
    """``a @ b`` (NumPy's or CuPy's); on the CPU a large 2-D product in pieces for :func:`parallel_map`.

    A product of ``m*k*n`` multiply-adds is cut into ``m*k*n // PIECE_WORK`` (at most 16)
    blocks of rows of the result, or of columns when it has more columns than rows. The
    cut depends on the shapes alone, so the result does too (OpenBLAS may round a block's
    edge differently from the whole product's). Batched products run whole. A product
    over one index (``k = 1``) is an outer product, which NumPy's matmul does far slower
    than a broadcast multiply (DCGAN's last Linear layer's input gradient, 64 x 1 by 1 x
    6272; ``benchmarks/RESULTS.md``), so it is that multiply: the same numbers.
    """
    if not isinstance(a, numpy.ndarray):
        return a @ b
    if a.ndim >= 2 and b.ndim >= 2 and a.shape[-1] == b.shape[-2] == 1:
        return a * b
    count = 0
    if a.ndim == 2 and b.ndim == 2:
        (m, k), n = a.shape, b.shape[1]
        count = min(16, m * k * n // PIECE_WORK, max(m, n))
    if count < 2:
        return parallel_map(lambda _: a @ b, [None])[0]
    out = numpy.empty((m, n), dtype=numpy.result_type(a, b))
    if m >= n:
        parallel_map(lambda rows: numpy.matmul(a[rows], b, out=out[rows]), _pieces(m, count))
    else:
        parallel_map(lambda cols: numpy.matmul(a, b[:, cols], out=out[:, cols]), _pieces(n, count))
    return out


def map_batch(fn, batch, bytes_per_item, array, fold=None, parallel=True):
    """:func:`parallel_map` of ``fn(rows)`` over a batch of ``batch`` items cut into chunks (slices).

    The chunks are an even number of near-equal runs of at most ``CHUNK_BYTES //
    bytes_per_item`` items each (at least one item), so a kernel's scratch (im2col's
    columns) stays in cache between the copy that writes it and the GEMM that reads it,
    its peak memory stays near a chunk's per thread, and two threads share the chunks
    evenly. The cut depends on the sizes alone, not on the thread count. ``fold`` is
    :func:`parallel_map`'s; with ``parallel=False`` the chunks run one after another on
    the calling thread (``fn`` may still split its own products with :func:`matmul`). A
    CuPy ``array`` gives one chunk: the GPU takes the whole batch at once.
    """
    if not isinstance(array, numpy.ndarray):
        return fn(slice(0, batch)) if fold else [fn(slice(0, batch))]
    if batch == 0:
        return None if fold else []
    most = max(1, CHUNK_BYTES // bytes_per_item)
    count = min(batch, 2 * -(-batch // (2 * most)))  # even, unless the batch has fewer items
    chunks = _pieces(batch, count)
    return parallel_map(fn, chunks, fold) if parallel else _in_order(fn, chunks, fold)
