"""Keep freed memory in the process: glibc ``malloc`` settings for CPU training.

On Linux, glibc's ``malloc`` serves every block larger than its *mmap
threshold* (128 KiB at start, at most 32 MiB as it adapts) with a fresh
``mmap`` and returns it to the system on ``free``. A network's activations are
such blocks: a 64-channel feature map of 16 images of 128 x 128 pixels is
67 MB. So on the CPU every layer's output is new memory, and the kernel
zero-fills each of its pages when the layer first writes it. Measured on this
project's 2-core machine, a ReLU or a per-channel multiply-add over such a
tensor took 28-39 ms with the default settings and 7-8 ms with memory kept in
the process (about 4 times faster); the paper-width U-Net trained 8 % faster
and inferred 19 % faster, the 16-filter U-Net 6 % faster in both
(``benchmarks/README.md``, "Memory allocator"). PyTorch's guides give the
same advice in the form of another allocator (jemalloc or tcmalloc, preloaded).

:func:`keep_freed_memory` changes three glibc settings with ``mallopt`` for the
rest of the process: blocks of any size come from the heap, freed memory stays
there for the next allocation instead of going back to the system, and the heap
grows in large steps. The price: the process keeps its peak memory resident
until it exits. The ``umodels`` command calls it (``UNIVERSAL_MODELS_KEEP_MEMORY=0``
switches that off); library users call it themselves if they want it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_LARGEST = 2**31 - 1  # mallopt takes an int


def keep_freed_memory(heap_step_mib: int = 256) -> bool:
    """Make glibc keep freed memory for reuse instead of returning it to the system.

    Sets, with ``mallopt``: no ``mmap`` for large blocks (the threshold at its
    largest, 2 GiB), no trimming of the heap on ``free``, and a heap that grows
    by ``heap_step_mib`` MiB at a time. Affects allocations made afterwards, by
    every library in the process (NumPy and the backends included). Does
    nothing where the C library is not glibc (macOS, Windows, musl).

    Args:
        heap_step_mib: extra memory requested from the system each time the
            heap grows (glibc's ``M_TOP_PAD``).

    Returns:
        True if the settings were applied, False if this is not glibc or the
        environment variable ``UNIVERSAL_MODELS_KEEP_MEMORY`` is ``0``.

    Example:
        >>> import universal_models as um
        >>> um.keep_freed_memory()   # once, before training
        True
    """
    if os.environ.get("UNIVERSAL_MODELS_KEEP_MEMORY", "1").strip().lower() in ("0", "false", "no"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        if not hasattr(libc, "gnu_get_libc_version"):
            return False  # musl and others: their mallopt ignores these settings
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    applied = [
        mallopt(_M_MMAP_THRESHOLD, _LARGEST),
        mallopt(_M_TRIM_THRESHOLD, _LARGEST),
        mallopt(_M_TOP_PAD, int(heap_step_mib) * 2**20),
    ]
    return all(result == 1 for result in applied)
