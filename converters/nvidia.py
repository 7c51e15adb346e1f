"""NVIDIA PyTorch snapshot pickles (stylegan2-ada-pytorch, stylegan3) -> common format.

Format facts (from ``torch_utils/persistence.py`` and ``training/training_loop.py`` upstream): a
snapshot is a pickled dict with ``G``, ``D``, ``G_ema``, ``augment_pipe`` and
``training_set_kwargs``. Each network is pickled as a call to
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` where ``meta`` holds the module
source (``module_src``, never executed here), ``class_name`` and ``state`` (the module ``__dict__``:
``_parameters``, ``_buffers``, ``_modules``, ``_init_kwargs``, ...). We read ``G_ema``'s tree as data.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import torch

from zoo.errors import ConversionError

from .base import Converted, SourceFormat, register_format
from .safe_pickle import NUMPY_GLOBALS, TORCH_TENSOR_GLOBALS, Stub, StubDict, restricted_load


class PersistentRecord:
    """What ``_reconstruct_persistent_obj(meta)`` would have rebuilt, kept as plain data."""

    def __init__(self, meta: Any) -> None:
        if not isinstance(meta, dict) or not isinstance(meta.get("state"), dict):
            raise ConversionError("malformed persistent object in NVIDIA pickle")
        self.class_name: str = str(meta.get("class_name", ""))
        self.module_src: str = str(meta.get("module_src", ""))
        self.state: dict[str, Any] = meta["state"]


NVIDIA_GLOBALS = {
    **TORCH_TENSOR_GLOBALS,
    **NUMPY_GLOBALS,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentRecord,
    ("dnnlib.util", "EasyDict"): StubDict,
}

# Markers of upstream module sources: which codebase wrote the generator.
SG3_MARKER = "class SynthesisInput"
SG2_IN_SG3_MARKER = "fused_modconv_default"


def read_snapshot(path: Path) -> dict[str, Any]:
    """Unpickle an NVIDIA snapshot with the restricted unpickler."""
    data = restricted_load(path, NVIDIA_GLOBALS, source=path.name)
    if not isinstance(data, dict):
        raise ConversionError(f"{path.name}: expected a snapshot dict with G_ema, got {type(data).__name__}")
    return data


def record_name(obj: Any) -> str:
    """``module.Class`` of a pickled module held as data (a persistence record or a stub)."""
    if isinstance(obj, PersistentRecord):
        return obj.class_name
    if isinstance(obj, Stub):
        return f"{obj._module}.{obj._qualname}"
    return type(obj).__name__


def module_state(obj: Any, where: str) -> dict[str, Any]:
    """The pickled ``__dict__`` of a module held as data (persistence record or stub)."""
    state = obj.state if isinstance(obj, (PersistentRecord, Stub)) else None
    if not isinstance(state, dict):
        raise ConversionError(f"{where}: expected a pickled module, got {record_name(obj)}")
    return state


def own_tensors(state: dict[str, Any], prefix: str, where: str) -> dict[str, torch.Tensor]:
    """One module's parameters and persistent buffers (not its children's), keyed as ``state_dict()`` would."""
    out: dict[str, torch.Tensor] = collections.OrderedDict()
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(value, torch.Tensor):
                raise ConversionError(f"{where}: {prefix}{name} is not a tensor in the pickle")
            out[prefix + name] = value
    return out


def flatten_tree(obj: Any, prefix: str = "", where: str = "G_ema") -> dict[str, torch.Tensor]:
    """The ``state_dict()`` of a pickled module tree whose nodes are persistence records or stubs."""
    state = module_state(obj, where)
    out = own_tensors(state, prefix, where)
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            out.update(flatten_tree(child, f"{prefix}{name}.", where))
    return out


def flatten_state(record: PersistentRecord, prefix: str = "") -> dict[str, torch.Tensor]:
    """The ``state_dict()`` the upstream module would return (persistent parameters and buffers)."""
    out = own_tensors(record.state, prefix, "snapshot")
    for name, child in (record.state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PersistentRecord):
            raise ConversionError(f"unexpected sub-module type at {prefix}{name}")
        out.update(flatten_state(child, f"{prefix}{name}."))
    return out


_SG2_MAPPING_KEYS = {"num_layers", "embed_features", "layer_features", "activation", "lr_multiplier", "w_avg_beta"}
_SG2_SYNTHESIS_KEYS = {"channel_base", "channel_max", "num_fp16_res", "conv_clamp", "architecture",
                       "resample_filter", "use_noise", "activation"}
# Arguments that change only speed or memory layout, never outputs.
_SG2_IGNORED_KEYS = {"fused_modconv_default", "fp16_channels_last", "channels_last", "square"}


def _plain(v: Any) -> Any:
    """JSON-able copy of pickled kwargs (numpy scalars -> Python numbers, EasyDict -> dict)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, torch.Tensor):
        return v.item()
    return v


def stylegan2_kwargs(init_kwargs: dict[str, Any], where: str) -> dict[str, Any]:
    """Map NVIDIA ``Generator._init_kwargs`` (either codebase) onto :class:`StyleGAN2Generator` arguments."""
    kw = _plain(dict(init_kwargs))
    synthesis = dict(kw.pop("synthesis_kwargs", {}) or {})  # stylegan2-ada-pytorch nests them
    mapping = dict(kw.pop("mapping_kwargs", {}) or {})
    out: dict[str, Any] = {}
    for key in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"):
        if key not in kw:
            raise ConversionError(f"{where}: G_ema._init_kwargs lacks {key}")
        out[key] = int(kw.pop(key))
    synthesis.update(kw)  # stylegan3 repo passes synthesis kwargs flat
    unknown = set(synthesis) - _SG2_SYNTHESIS_KEYS - _SG2_IGNORED_KEYS
    if unknown:
        raise ConversionError(f"{where}: unsupported StyleGAN2 generator option(s) {sorted(unknown)}")
    bad_mapping = set(mapping) - _SG2_MAPPING_KEYS
    if bad_mapping:
        raise ConversionError(f"{where}: unsupported mapping option(s) {sorted(bad_mapping)}")
    out["mapping_kwargs"] = mapping
    for key in _SG2_SYNTHESIS_KEYS:
        if key in synthesis:
            out[key] = synthesis[key]
    return out


def detect_codebase(record: PersistentRecord) -> str:
    src = record.module_src
    if SG3_MARKER in src:
        return "stylegan3"
    if SG2_IN_SG3_MARKER in src:
        return "stylegan2-sg3repo"
    return "stylegan2-ada"


# Registered by family modules: codebase -> function(init_kwargs, tensors, where) -> Converted.
CODEBASE_CONVERTERS: dict[str, Any] = {}


def _convert_stylegan2(record: PersistentRecord, tensors: dict[str, torch.Tensor], where: str) -> Converted:
    kwargs = stylegan2_kwargs(record.state.get("_init_kwargs") or {}, where)
    return Converted("stylegan2", kwargs, tensors)


CODEBASE_CONVERTERS["stylegan2-ada"] = _convert_stylegan2
CODEBASE_CONVERTERS["stylegan2-sg3repo"] = _convert_stylegan2


def convert_snapshot(snapshot: dict[str, Any], where: str = "snapshot") -> Converted:
    """Pure conversion of an unpickled snapshot dict (takes ``G_ema``)."""
    g = snapshot.get("G_ema")
    if g is None:
        raise ConversionError(f"{where}: no G_ema in the snapshot (keys: {', '.join(map(str, snapshot))})")
    if not isinstance(g, PersistentRecord):
        raise ConversionError(f"{where}: G_ema is not an NVIDIA persistent network")
    if g.class_name != "Generator":
        raise ConversionError(f"{where}: G_ema is a {g.class_name}, expected Generator")
    if g.state.get("_init_args"):
        raise ConversionError(f"{where}: positional constructor arguments are not supported")
    codebase = detect_codebase(g)
    if codebase not in CODEBASE_CONVERTERS:
        raise ConversionError(f"{where}: {codebase} generators are not supported yet")
    converted = CODEBASE_CONVERTERS[codebase](g, flatten_state(g), where)
    converted.extra_config.setdefault("upstream_codebase", codebase)
    return converted


#: Other codebases that also write NVIDIA persistence pickles and have their own format:
#: ``(predicate(head), what it is and which --format reads it)``. Such files are neither claimed nor read here.
FOREIGN_PICKLES: list[tuple[Any, str]] = []


def _foreign(head: bytes) -> str | None:
    return next((what for pred, what in FOREIGN_PICKLES if pred(head)), None)


def _sniff(path: Path, head: bytes) -> bool:
    return (path.is_file() and head[:1] == b"\x80" and b"torch_utils.persistence" in head
            and _foreign(head) is None)


def convert_file(path: Path) -> Converted:
    with open(path, "rb") as f:
        what = _foreign(f.read(65536))
    if what:
        raise ConversionError(f"{path.name} is {what}, not a stylegan2-ada-pytorch / stylegan3 snapshot")
    return convert_snapshot(read_snapshot(path), where=path.name)


register_format(SourceFormat(
    name="nvidia-pickle",
    description="NVIDIA stylegan2-ada-pytorch / stylegan3 snapshot .pkl",
    sniff=_sniff,
    convert=convert_file,
    priority=10,
))
