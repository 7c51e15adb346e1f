"""Native CPU loops compiled for the machine that runs them (``winograd.c``): the Winograd tile transforms of the
3x3 convolutions and of the stride-2 3x3 transposed convolutions, and the 4-tap FIR after the latter, each with the
layer's epilogue (bias, noise, activation, clamp) in its last pass.

The C source ships with the package. On first use it is compiled with the system C compiler (``$CC``, else
``cc``) for this CPU (``-O3 -march=native``, OpenMP when the compiler has it) into ganzoo's cache, keyed by the
source, the compiler and the CPU, and loaded with ctypes; later processes load the cached library. F(6x6), opt-in,
is a second build (``winograd(f6=True)``): its unrolled transforms double the compile time. Nothing here is
needed: without a compiler, when compiling fails, or with ``GANZOO_NATIVE=0``, :func:`winograd` returns None and
the callers keep their PyTorch forms. The GEMMs stay in oneDNN.
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
_STATE: dict[bool, dict[str, object]] = {}  # per build (with F(6x6) or not): "lib" (or None), "why" it is None, "path"


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


def _build(cc: list[str], out: Path, f6: bool) -> str | None:
    """Compile the source to ``out`` (atomically); None, or why it failed (the compiler's last line)."""
    from zoo.fileio import atomic_write

    base = [*(["-DGANZOO_F6"] if f6 else []), "-O3", "-shared", "-fPIC", "-o"]
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


def _library_path(cc: list[str], f6: bool) -> Path:
    from zoo.loading import cache_dir

    key = hashlib.sha256()
    for part in (_SOURCE.read_bytes(), " ".join(cc).encode(), _version(cc).encode(), _cpu_text().encode(),
                 platform.machine().encode(), sys.platform.encode()):
        key.update(part)
        key.update(b"\0")
    return cache_dir() / "native" / f"winograd-{key.hexdigest()[:16]}{'-f6' if f6 else ''}.so"


def _load(f6: bool) -> dict[str, object]:
    if os.environ.get(NATIVE_ENV, "1") == "0":
        return {"lib": None, "why": f"{NATIVE_ENV}=0"}
    if sys.platform == "win32":
        return {"lib": None, "why": "not built on Windows"}
    cc = _compiler()
    if cc is None:
        return {"lib": None, "why": "no C compiler (set CC or install cc)"}
    path = _library_path(cc, f6)
    if not path.is_file():
        why = _build(cc, path, f6)
        if why is not None:
            return {"lib": None, "why": f"compiling {_SOURCE.name} failed: {why}"}
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as exc:
        return {"lib": None, "why": f"loading {path.name} failed: {exc}"}
    ptr, i64, cint, f32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_float
    lib.ganzoo_wino_input.argtypes = [ptr, ptr, ptr, i64, i64, i64, i64, i64, cint, cint]
    lib.ganzoo_wino_output.argtypes = [ptr, i64, ptr, ptr, ptr, i64, f32, f32, ptr, i64, i64, i64, i64, cint, cint]
    lib.ganzoo_upwino_input.argtypes = [ptr, ptr, ptr, i64, i64, i64, i64, i64, cint]
    lib.ganzoo_upwino_output.argtypes = [ptr, i64, ptr, ptr, i64, i64, i64, i64, cint]
    lib.ganzoo_fir4.argtypes = [ptr, i64, i64, i64, i64, ptr, i64, i64, i64, ptr, ptr, ptr, i64, f32, f32, ptr, cint]
    lib.ganzoo_tiles.argtypes = []
    for fn in (lib.ganzoo_wino_input, lib.ganzoo_wino_output, lib.ganzoo_upwino_input, lib.ganzoo_upwino_output,
               lib.ganzoo_fir4, lib.ganzoo_tiles):
        fn.restype = cint
    mask = lib.ganzoo_tiles()
    lib.tiles = frozenset(m for m in (2, 4, 6) if mask >> m & 1)  # what ops checks before asking for a tile
    return {"lib": lib, "why": None, "path": path}


def winograd(f6: bool = False) -> ctypes.CDLL | None:
    """The compiled library (``ganzoo_wino_*`` for 3x3 convolutions, ``ganzoo_upwino_*`` for stride-2 transposed
    ones, ``ganzoo_fir4`` for the FIR after them; its ``tiles``: the Winograd tiles it transforms), or None (see
    :func:`status`). Compiles on the first call of a machine (about 1 s with gcc 12 on an AMD EPYC Zen 4; 2 s for
    the ``f6`` build, which adds F(6x6)), then loads from cache."""
    with _LOCK:
        if f6 not in _STATE:
            _STATE[f6] = _load(f6)
    return _STATE[f6]["lib"]  # type: ignore[return-value]


def status(f6: bool = False) -> str:
    """"on (<library file>)" or "off: <why>" for that build, loading it if it was not asked for yet."""
    lib = winograd(f6)
    state = _STATE[f6]
    return f"on ({Path(str(state['path'])).name})" if lib is not None else f"off: {state['why']}"


def reset() -> None:
    """Forget the loaded state, so the next :func:`winograd` looks again (tests; ``$GANZOO_NATIVE`` changes)."""
    with _LOCK:
        _STATE.clear()
