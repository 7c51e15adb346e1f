"""Native CPU loops compiled for the machine that runs them (``winograd.c``): the Winograd tile transforms of the
3x3 convolutions and of the stride-2 3x3 transposed convolutions, and the 4-tap FIR after the latter, each with the
layer's epilogue (bias, noise, activation, clamp) in its last pass.

The C source ships with the package. On first use it is compiled with the system C compiler (``$CC``, else
``cc``) for this CPU (``-O3 -march=native``, OpenMP when the compiler has it) into ganzoo's cache, keyed by the
source, the compiler and the CPU, and loaded with ctypes; later processes load the cached library. Nothing here
is needed: without a compiler, when compiling fails, or with ``GANZOO_NATIVE=0``, :func:`winograd` returns None
and the callers keep their PyTorch forms. The GEMMs stay in oneDNN.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import threading
from pathlib import Path

NATIVE_ENV = "GANZOO_NATIVE"
_SOURCE = Path(__file__).with_name("winograd.c")
_LOCK = threading.Lock()
_STATE: dict[str, object] = {}  # "lib": the loaded library or None, "why": the reason it is None, "path"


def _compiler() -> list[str] | None:
    cc = os.environ.get("CC") or "cc"
    parts = cc.split()
    return parts if parts and shutil.which(parts[0]) else None


def _cpu_text() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            lines = [ln for ln in fh if ln.startswith(("model name", "flags", "Features"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.processor()


def _version(cc: list[str]) -> str:
    try:
        out = subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout


def _build(cc: list[str], out: Path) -> str | None:
    """Compile the source to ``out`` (atomically); None, or why it failed (the compiler's last line)."""
    from zoo.fileio import atomic_write

    base = ["-O3", "-shared", "-fPIC", "-o"]
    err = "the compiler failed"
    for extra in (["-march=native", "-fopenmp"], ["-fopenmp"], ["-march=native"], []):
        try:
            with atomic_write(out, suffix=".so") as tmp:
                run = subprocess.run([*cc, *extra, *base, str(tmp), str(_SOURCE)], capture_output=True, text=True,
                                     timeout=120)
                if run.returncode != 0:
                    err = (run.stderr.strip().splitlines() or [f"exit {run.returncode}"])[-1]
                    raise RuntimeError(err)
            return None
        except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
            err = str(exc) or err
    return err


def _library_path(cc: list[str]) -> Path:
    from zoo.loading import cache_dir

    key = hashlib.sha256()
    for part in (_SOURCE.read_bytes(), " ".join(cc).encode(), _version(cc).encode(), _cpu_text().encode(),
                 platform.machine().encode(), sys.platform.encode()):
        key.update(part)
        key.update(b"\0")
    return cache_dir() / "native" / f"winograd-{key.hexdigest()[:16]}.so"


def _load() -> None:
    if os.environ.get(NATIVE_ENV, "1") == "0":
        _STATE.update(lib=None, why=f"{NATIVE_ENV}=0")
        return
    if sys.platform == "win32":
        _STATE.update(lib=None, why="not built on Windows")
        return
    cc = _compiler()
    if cc is None:
        _STATE.update(lib=None, why="no C compiler (set CC or install cc)")
        return
    path = _library_path(cc)
    if not path.is_file():
        why = _build(cc, path)
        if why is not None:
            _STATE.update(lib=None, why=f"compiling {_SOURCE.name} failed: {why}")
            return
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as exc:
        _STATE.update(lib=None, why=f"loading {path.name} failed: {exc}")
        return
    ptr, i64, cint, f32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_float
    lib.ganzoo_wino_input.argtypes = [ptr, ptr, ptr, i64, i64, i64, i64, i64, cint, cint]
    lib.ganzoo_wino_output.argtypes = [ptr, i64, ptr, ptr, ptr, i64, f32, f32, ptr, i64, i64, i64, i64, cint, cint]
    lib.ganzoo_upwino_input.argtypes = [ptr, ptr, ptr, i64, i64, i64, i64, i64, cint]
    lib.ganzoo_upwino_output.argtypes = [ptr, i64, ptr, ptr, i64, i64, i64, i64, cint]
    lib.ganzoo_fir4.argtypes = [ptr, i64, i64, i64, i64, ptr, i64, i64, i64, ptr, ptr, ptr, i64, f32, f32, ptr, cint]
    for fn in (lib.ganzoo_wino_input, lib.ganzoo_wino_output, lib.ganzoo_upwino_input, lib.ganzoo_upwino_output,
               lib.ganzoo_fir4):
        fn.restype = cint
    _STATE.update(lib=lib, why=None, path=path)


def winograd() -> ctypes.CDLL | None:
    """The compiled library (``ganzoo_wino_*`` for 3x3 convolutions, ``ganzoo_upwino_*`` for stride-2 transposed
    ones, ``ganzoo_fir4`` for the FIR after them), or None (see :func:`status`). Compiles on the first call of a
    machine (2-3 s with gcc 12 on an AMD EPYC Zen 4), then loads from cache."""
    with _LOCK:
        if "lib" not in _STATE:
            _load()
    return _STATE["lib"]  # type: ignore[return-value]


def status() -> str:
    """"on (<library file>)" or "off: <why>", after :func:`winograd` was asked."""
    lib = winograd()
    return f"on ({Path(str(_STATE['path'])).name})" if lib is not None else f"off: {_STATE['why']}"


def reset() -> None:
    """Forget the loaded state, so the next :func:`winograd` looks again (tests; ``$GANZOO_NATIVE`` changes)."""
    with _LOCK:
        _STATE.clear()
