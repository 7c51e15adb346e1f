"""autonomousvision/stylegan-xl snapshot pickles -> common format (architecture ``stylegan_xl``).

Format facts (``training/training_loop.py``, ``torch_utils/persistence.py``, ``legacy.py`` upstream): a
``dill`` pickle of ``dict(G, D, G_ema, augment_pipe, training_set_kwargs[, progress])``. ``G``/``G_ema`` are
NVIDIA persistence records (``_reconstruct_persistent_obj(meta)``, module source embedded, never executed here)
of ``training.networks_stylegan3_resetting.Generator`` (16 px stems) or ``SuperresGenerator`` (superresolution
chains whose mapping/synthesis were unpickled from the previous stage and re-pickled). ``mapping.embed`` is a
plain ``torch.nn.Embedding``. ``D`` (``pg_modules.discriminator.ProjectedDiscriminator``) references timm
classes and dill-pickled closures/bound methods; it is read as inert stand-ins (:class:`Inert`) that record
their arguments and never run, and then dropped.

The layer geometry (sizes, sampling rates, cutoffs, padding, filter taps) is read per layer from the pickled
layer state, because superresolution heads are not derivable from one config; the designed filters are buffers.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.errors import ConversionError, UnsafePickleError
from zoo.imagenet import imagenet_class_names
from zoo.models.stylegan_xl import LAYER_FIELDS

from .base import Converted, SourceFormat, register_format, strict_map
from .nvidia import FOREIGN_PICKLES, PersistentRecord, flatten_tree, module_state
from .safe_pickle import NUMPY_GLOBALS, TORCH_TENSOR_GLOBALS, RestrictedUnpickler, Stub, StubDict, stub_class


class Inert(Stub):
    """A stand-in for discriminator-side objects (timm modules, dill-made functions, bound methods, module
    dicts): calling it returns another stand-in recording the arguments; nothing is imported or executed."""

    def __call__(self, *args: Any, **kwargs: Any) -> "Inert":
        return Inert(*args, **kwargs)


_INERT_CLASSES: dict[tuple[str, str], type] = {}


def _inert_class(module: str, name: str) -> type:
    key = (module, name)
    if key not in _INERT_CLASSES:
        _INERT_CLASSES[key] = type(name, (Inert,), {"_module": module, "_qualname": name, "__module__": __name__})
    return _INERT_CLASSES[key]


def _inert_getattr(obj: Any, name: str, *default: Any) -> Any:
    if not isinstance(obj, Stub):
        raise UnsafePickleError(f"refusing a pickled getattr on {type(obj).__name__} (only stand-ins allowed)")
    return Inert(obj, name)


def _inert_setattr(obj: Any, name: str, value: Any) -> None:
    if not isinstance(obj, Stub):
        raise UnsafePickleError(f"refusing a pickled setattr on {type(obj).__name__} (only stand-ins allowed)")


#: Modules whose classes appear only under D (read as inert stand-ins). torchvision transforms and
#: functools.partial are not in the test snapshot but can be held by the feature networks of other versions.
_INERT_PREFIXES = ("timm.", "pg_modules.", "feature_networks.", "dill._dill", "torch.nn.utils.spectral_norm",
                   "torch.ao.nn.", "torchvision.transforms.")
_INERT_NAMES = {("functools", "partial")}


def _rule(module: str, name: str) -> Any:
    """Globals outside the fixed allow-list: torch.nn modules as data stubs, D's world as inert stand-ins."""
    if module.startswith("torch.nn.modules."):
        return stub_class(module, name)
    if (module, name) == ("dill", "_dill") or (name == "__dict__" and module.startswith(_INERT_PREFIXES)):
        return Inert(module, name)
    if module.startswith(_INERT_PREFIXES) or (module, name) in _INERT_NAMES:
        return _inert_class(module, name)
    return None


class _Unpickler(RestrictedUnpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = _rule(module, name)
        return found if found is not None else super().find_class(module, name)


ALLOWED: dict[tuple[str, str], Any] = {
    **TORCH_TENSOR_GLOBALS, **NUMPY_GLOBALS,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentRecord,
    ("dnnlib.util", "EasyDict"): StubDict,
    ("torch", "Size"): torch.Size,
    ("builtins", "getattr"): _inert_getattr,
    ("builtins", "setattr"): _inert_setattr,
}


def read_snapshot(path: Path) -> dict[str, Any]:
    source = path.name
    try:
        data = _Unpickler(io.BytesIO(path.read_bytes()), ALLOWED, source).load()
    except ConversionError:
        raise
    except Exception as e:  # noqa: BLE001 - junk bytes make the unpickler raise many types
        first = (str(e).splitlines() or [""])[0][:160]
        raise ConversionError(f"{source} is corrupt or truncated ({type(e).__name__}: {first}); "
                              "re-download it") from None
    if not isinstance(data, dict):
        raise ConversionError(f"{source}: expected a StyleGAN-XL snapshot dict, got {type(data).__name__}")
    return data


# --- the module tree as data -------------------------------------------------------------------------------

def _child(obj: Any, name: str, where: str) -> Any:
    child = (module_state(obj, where).get("_modules") or {}).get(name)
    if child is None:
        raise ConversionError(f"{where}: missing sub-module {name}")
    return child


def _py(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_py(x) for x in v]
    return v


def _size(state: dict[str, Any], key: str, where: str) -> int:
    """A square spatial size: from the constructor kwargs (the attribute is a dill-pickled numpy view)."""
    v = _py((state.get("_init_kwargs") or {}).get(key))
    if isinstance(v, list):
        if len(set(v)) != 1:
            raise ConversionError(f"{where}: non-square {key} {v} is not supported")
        v = v[0]
    if not isinstance(v, (int, float)):
        raise ConversionError(f"{where}: cannot read {key}")
    return int(v)


def _layer_entry(name: str, layer: Any, where: str) -> dict[str, Any]:
    st = module_state(layer, where)
    entry: dict[str, Any] = {"name": name}
    for f in LAYER_FIELDS:
        if f == "name":
            continue
        if f in ("in_size", "out_size"):
            entry[f] = _size(st, f, f"{where}:{name}")
            continue
        if f not in st:
            raise ConversionError(f"{where}: layer {name} lacks {f}")
        entry[f] = _py(st[f])
    for f in ("is_torgb", "is_critically_sampled", "use_fp16", "down_radial"):
        entry[f] = bool(entry[f])
    for f in ("in_channels", "out_channels", "in_sampling_rate", "out_sampling_rate", "tmp_sampling_rate",
              "conv_kernel", "up_factor", "down_factor", "up_taps", "down_taps"):
        entry[f] = int(entry[f])
    for f in ("in_cutoff", "out_cutoff", "in_half_width", "out_half_width"):
        entry[f] = float(entry[f])
    entry["padding"] = [int(p) for p in entry["padding"]]
    clamp = _py(st.get("conv_clamp", 256))
    entry["conv_clamp"] = None if clamp is None else float(clamp)
    entry["magnitude_ema_beta"] = float(_py(st.get("magnitude_ema_beta", 0.999)))
    return entry


_LAYER = r"L\d+_\d+_\d+"
SGXL_TABLE: list[tuple[str, str]] = [
    (r"mapping\.(fc\d+|embed_proj)\.(weight|bias)", r"mapping.\1.\2"),
    (r"mapping\.embed\.weight", r"mapping.embed.weight"),
    (r"mapping\.w_avg", r"mapping.w_avg"),
    (r"synthesis\.input\.(weight|transform|freqs|phases)", r"synthesis.input.\1"),
    (r"synthesis\.input\.affine\.(weight|bias)", r"synthesis.input.affine.\1"),
    (rf"synthesis\.({_LAYER})\.(weight|bias|magnitude_ema|up_filter|down_filter)", r"synthesis.\1.\2"),
    (rf"synthesis\.({_LAYER})\.affine\.(weight|bias)", r"synthesis.\1.affine.\2"),
]


def convert_generator(g: Any, where: str) -> Converted:
    if not isinstance(g, PersistentRecord) or g.class_name not in ("Generator", "SuperresGenerator"):
        got = g.class_name if isinstance(g, PersistentRecord) else type(g).__name__
        raise ConversionError(f"{where}: G_ema is a {got}, expected a StyleGAN-XL Generator or SuperresGenerator")
    gst = g.state
    mapping, synthesis = _child(g, "mapping", where), _child(g, "synthesis", where)
    mst, sst = module_state(mapping, where), module_state(synthesis, where)
    z_dim, c_dim, w_dim = (int(_py(mst[k])) for k in ("z_dim", "c_dim", "w_dim"))
    names = list(_py(sst.get("layer_names") or []))
    if not names:
        raise ConversionError(f"{where}: synthesis.layer_names is missing")
    layers = [_layer_entry(n, _child(synthesis, n, where), where) for n in names]
    inp = module_state(_child(synthesis, "input", where), where)
    input_spec = {"channels": int(_py(inp["channels"])), "size": _size(inp, "size", f"{where}:input"),
                  "sampling_rate": float(_py(inp["sampling_rate"])), "bandwidth": float(_py(inp["bandwidth"]))}
    embed = _child(mapping, "embed", where)
    est = module_state(embed, where)
    if getattr(embed, "_qualname", "") != "Embedding" or est.get("max_norm") is not None:
        raise ConversionError(f"{where}: mapping.embed is not a plain torch.nn.Embedding")
    mkw = {"num_layers": int(_py(mst["num_layers"])),
           "embed_num": int(_py(est["num_embeddings"])), "embed_dim": int(_py(est["embedding_dim"]))}
    fc0 = module_state(_child(mapping, "fc0", where), where)
    mkw["lr_multiplier"] = float(_py(fc0.get("bias_gain", 0.01)))
    if (c_dim > 0) != ("embed_proj" in (mst.get("_modules") or {}) and mst["_modules"]["embed_proj"] is not None):
        raise ConversionError(f"{where}: c_dim={c_dim} but embed_proj is {'missing' if c_dim else 'present'}")
    res = int(_py(gst.get("img_resolution", sst.get("img_resolution"))))
    img_channels = int(_py(gst.get("img_channels", sst.get("img_channels", 3))))
    num_ws = int(_py(mst.get("num_ws", len(names) + 1)))
    if num_ws != len(names) + 1:
        raise ConversionError(f"{where}: mapping.num_ws {num_ws} != {len(names)} layers + 1")
    kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=res, img_channels=img_channels,
                  input=input_spec, layers=layers, mapping_kwargs=mkw,
                  output_scale=float(_py(sst.get("output_scale", 0.25))))
    tensors = strict_map(flatten_tree(g, where=where), SGXL_TABLE, where=where)
    extra = {"upstream_class": g.class_name,
             "superres_head_layers": list(_py(gst.get("head_layer_names") or []))}
    names = imagenet_class_names() if c_dim == 1000 else None
    return Converted("stylegan_xl", kwargs, {k: v.to(torch.float32) for k, v in tensors.items()},
                     class_names=names, extra_config=extra)


def convert_snapshot(snapshot: dict[str, Any], where: str = "snapshot") -> Converted:
    if "G_ema" not in snapshot:
        raise ConversionError(f"{where}: no G_ema in the snapshot (keys: {', '.join(map(str, snapshot))})")
    return convert_generator(snapshot["G_ema"], where)


def convert_file(path: Path) -> Converted:
    with open(path, "rb") as f:
        head = f.read(65536)
    if not looks_like_sgxl(head):
        what = ("an NVIDIA stylegan2/stylegan3 snapshot (no StyleGAN-XL class embedding in its generator source)"
                if b"torch_utils.persistence" in head else "not an NVIDIA persistence pickle")
        raise ConversionError(f"{path.name} is {what}, not a StyleGAN-XL snapshot; drop --format to auto-detect it")
    return convert_snapshot(read_snapshot(path), where=path.name)


#: The embedded module source of networks_stylegan3_resetting.py (its class-embedding file path), or the
#: SuperresGenerator class name; both fall within the first 64 KiB (the source precedes the class name).
_MARKERS = re.compile(rb"in_embeddings/tf_efficientnet_lite0\.pkl|networks_stylegan3_resetting|SuperresGenerator")


def looks_like_sgxl(head: bytes) -> bool:
    return head[:1] == b"\x80" and b"torch_utils.persistence" in head and bool(_MARKERS.search(head))


def _sniff(path: Path, head: bytes) -> bool:
    return path.is_file() and looks_like_sgxl(head)


FOREIGN_PICKLES.append((looks_like_sgxl, "a StyleGAN-XL snapshot (autonomousvision/stylegan-xl): "
                                         "use --format stylegan-xl-pickle"))

register_format(SourceFormat(
    name="stylegan-xl-pickle",
    description="autonomousvision/stylegan-xl snapshot .pkl (dill; Generator / SuperresGenerator)",
    sniff=_sniff,
    convert=convert_file,
    priority=4,  # before projected-gan-pickle: its discriminator also names pg_modules classes
))
