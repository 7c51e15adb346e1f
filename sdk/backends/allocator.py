"""Keep freed CPU memory for reuse while generating, instead of handing it back to the kernel.

PyTorch's CPU tensors come from ``malloc``. glibc serves every block above its mmap threshold (128 KiB to
32 MiB) with a fresh ``mmap`` and unmaps it on free, so each new activation of a generator pays a page fault
per 4 KiB page on first touch: allocating and writing a 32 MiB tensor took 14.5 ms instead of 1.5 ms on an AMD
EPYC, and page faults were a third of an eager StyleGAN2 256 px forward (``benchmarks/bench_generate.py
--allocator``). Turning glibc's mmap path off (``mallopt(M_MMAP_MAX, 0)``) and its heap trimming off
(``M_TRIM_THRESHOLD``) makes freed blocks come back from the heap, already mapped, like the caching
allocators GPU frameworks use. The cost is that the process keeps its peak heap until :func:`release_memory`.

Set once per process by the sampling paths on CPU (:func:`configure_allocator`); ``$GANZOO_ALLOCATOR=system``
leaves ``malloc`` as it is. Only glibc is touched; elsewhere (macOS, Windows, musl) nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from functools import lru_cache

ALLOCATOR_ENV = "GANZOO_ALLOCATOR"
MODES = ("reuse", "system")

# mallopt parameter numbers from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_TRIM_OFF = 2**31 - 1  # the largest int: the heap top is never trimmed

_lock = threading.Lock()
_applied: str | None = None


@lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
    except (OSError, AttributeError):
        return None  # not glibc (musl has no gnu_get_libc_version)
    return libc


def requested_mode() -> str:
    """``$GANZOO_ALLOCATOR`` (``reuse`` or ``system``), ``reuse`` when unset; a bad value is an error."""
    mode = os.environ.get(ALLOCATOR_ENV, "reuse").strip().lower() or "reuse"
    if mode not in MODES:
        from .runners import BackendError

        raise BackendError(f"{ALLOCATOR_ENV}={os.environ[ALLOCATOR_ENV]!r} is not an allocator mode: use "
                         f"{' or '.join(MODES)}")
    return mode


def allocator_mode() -> str:
    """What :func:`configure_allocator` does on this machine: ``reuse`` (glibc, not opted out) or ``system``."""
    return "reuse" if requested_mode() == "reuse" and _glibc() is not None else "system"


def configure_allocator() -> str:
    """Apply :func:`allocator_mode` to this process (once; later calls only report it) and return it."""
    global _applied
    with _lock:
        if _applied is None:
            mode = allocator_mode()
            libc = _glibc()
            if mode == "reuse" and libc is not None:
                if not (libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_OFF)):
                    mode = "system"
            _applied = mode
        return _applied


def release_memory() -> bool:
    """Hand the heap's free pages back to the kernel (``malloc_trim``); True when something was released."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
