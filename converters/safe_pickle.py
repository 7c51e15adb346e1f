"""Reading pickled checkpoints without executing them.

A pickle is a program: every ``GLOBAL``/``STACK_GLOBAL`` opcode names a callable that the unpickler
imports and ``REDUCE`` then calls. :class:`RestrictedUnpickler` resolves names only from an explicit
allow-list of harmless callables (tensor rebuild functions, ``OrderedDict``, numpy array
reconstruction) and of *stubs*: data-only stand-ins for upstream classes (NVIDIA's persistence
reconstructor, ``dnnlib.tflib.network.Network``, ``argparse.Namespace``, ...) that record their
arguments and state instead of running anything. Any other global raises
:class:`~zoo.errors.UnsafePickleError` before it is imported or called.

torch ``.pt``/``.pth``/``.bin`` files (zip or legacy) go through ``torch.load(weights_only=True)``,
with the same stubs registered as safe globals for the duration of the call.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Mapping

import numpy as np
import torch

from zoo.errors import ConversionError, UnsafePickleError

try:  # numpy >= 2
    from numpy._core import multiarray as _np_multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _np_multiarray  # type: ignore[no-redef]


class Stub:
    """Data-only stand-in for an upstream object: remembers call arguments and pickled state."""

    _module = "?"
    _qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<stub {self._module}.{self._qualname}>"


_STUB_CLASSES: dict[tuple[str, str], type] = {}


def stub_class(module: str, name: str) -> type:
    """A (cached) :class:`Stub` subclass standing for ``module.name``."""
    key = (module, name)
    if key not in _STUB_CLASSES:
        _STUB_CLASSES[key] = type(name, (Stub,), {"_module": module, "_qualname": name, "__module__": __name__})
    return _STUB_CLASSES[key]


class StubDict(dict):
    """Stand-in for dict subclasses such as ``dnnlib.util.EasyDict``: a plain dict with attribute access."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _load_storage_from_bytes(b: bytes) -> Any:
    # torch.storage._load_from_bytes would run a full (unsafe) torch.load on the nested bytes.
    if not isinstance(b, (bytes, bytearray)):
        raise UnsafePickleError("malformed storage record in pickle (expected bytes)")
    try:
        return torch.load(io.BytesIO(b), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        raise UnsafePickleError(f"refusing a nested storage record: the weights-only loader rejected it "
                                f"({_weights_only_reason(str(e))}); nothing from the file was executed") from None
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile) as e:
        raise ConversionError(f"corrupt storage record in pickle ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:160] if str(e) else ''})") from None


def _weights_only_reason(msg: str) -> str:
    """The informative clause of torch's multi-paragraph weights-only error (e.g. ``Unsupported global: ...``)."""
    import re

    m = re.search(r"(?:Unsupported (?:global|operand)|Trying to load unsupported|Unsupported class)[^\n]*", msg)
    return (m.group(0) if m else " ".join(msg.split()))[:200].rstrip(". ")


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool, backward_hooks: Any, *rest: Any) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise UnsafePickleError("malformed parameter record in pickle")
    return data


def _rebuild_tensor_v2(storage: Any, offset: int, size: Any, stride: Any, *rest: Any) -> torch.Tensor:
    if not hasattr(storage, "nbytes"):
        raise UnsafePickleError("malformed tensor record in pickle (storage is not a torch storage)")
    return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, collections.OrderedDict())


def _np_scalar(dtype: np.dtype, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafePickleError("numpy object scalars are not allowed in checkpoints")
    return _np_multiarray.scalar(dtype, data)


def _np_reconstruct(cls: Any, shape: Any, dtype: Any) -> Any:
    if cls is not np.ndarray:
        raise UnsafePickleError("numpy reconstruction of a non-ndarray class refused")
    return _np_multiarray._reconstruct(cls, shape, dtype)


def _np_dtype(*args: Any) -> np.dtype:
    dt = np.dtype(*args)
    return dt


NUMPY_GLOBALS: dict[tuple[str, str], Callable[..., Any]] = {}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    NUMPY_GLOBALS[(_mod, "scalar")] = _np_scalar
    NUMPY_GLOBALS[(_mod, "_reconstruct")] = _np_reconstruct
NUMPY_GLOBALS[("numpy", "dtype")] = _np_dtype
NUMPY_GLOBALS[("numpy", "ndarray")] = np.ndarray

TORCH_TENSOR_GLOBALS: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` only returns objects from ``allowed``."""

    def __init__(self, file: BinaryIO, allowed: Mapping[tuple[str, str], Callable[..., Any]],
                 source: str = "checkpoint") -> None:
        super().__init__(file)
        self._allowed = dict(allowed)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load {self._source}: it references {module}.{name}, which is not on the "
                "allow-list of a known checkpoint format (nothing from the file was executed)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"refusing to load {self._source}: unexpected persistent id in a plain pickle")


def restricted_load(data: bytes | BinaryIO | Path, allowed: Mapping[tuple[str, str], Callable[..., Any]],
                    source: str | None = None) -> Any:
    """Unpickle ``data`` resolving globals only from ``allowed``."""
    if isinstance(data, Path):
        source = source or data.name
        data = data.read_bytes()
    f = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    try:
        return RestrictedUnpickler(f, allowed, source or "checkpoint").load()
    except ConversionError:  # includes UnsafePickleError
        raise
    except Exception as e:  # noqa: BLE001 - junk bytes make the unpickler raise many types
        first = (str(e).splitlines() or [""])[0][:160]
        raise ConversionError(f"{source or 'checkpoint'} is corrupt or truncated ({type(e).__name__}: {first}); "
                              "re-download or re-export it") from None


def is_torch_zip(path: Path) -> bool:
    return zipfile.is_zipfile(path)


def torch_safe_load(path: Path, stubs: Iterable[tuple[str, str]] = (), source: str | None = None) -> Any:
    """``torch.load(weights_only=True)`` with extra upstream classes mapped to data-only stubs."""
    source = source or Path(path).name
    entries: list[Any] = []
    for module, name in stubs:
        entries.append((stub_class(module, name), f"{module}.{name}"))
    try:
        with torch.serialization.safe_globals(entries):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        if "Unsupported global" in msg or "GLOBAL" in msg:
            raise UnsafePickleError(
                f"refusing to load {source}: it references a global outside the allow-list "
                f"({_weights_only_reason(msg)}); nothing from the file was executed"
            ) from None
        raise ConversionError(f"{source} is corrupt or not a checkpoint ({_weights_only_reason(msg)})") from None
    except ConversionError:
        raise
    except Exception as e:  # noqa: BLE001 - torch's loader raises many types (KeyError, IndexError...) on junk
        first = (str(e).splitlines() or [""])[0][:160]
        raise ConversionError(f"{source} is corrupt or truncated ({type(e).__name__}: {first}); "
                              "re-download or re-export it") from None


def read_pickle_globals(data: bytes) -> list[tuple[str, str]]:
    """The globals a pickle would import, read from its opcodes without executing anything."""
    import pickletools

    out: list[tuple[str, str]] = []
    strings: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(io.BytesIO(data)):
            if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                strings.append(arg)
            elif op.name == "GLOBAL":
                mod, _, name = str(arg).partition(" ")
                out.append((mod, name))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                out.append((strings[-2], strings[-1]))
    except Exception:  # noqa: BLE001 - a broken stream simply yields what was read so far
        pass
    return out
