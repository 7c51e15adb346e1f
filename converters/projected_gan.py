"""Projected GAN snapshot pickles -> common format (architecture ``projected-fastgan``).

Format facts (autonomousvision/projected-gan ``training/training_loop.py``, ``legacy.py``): a snapshot is
``pickle.dump`` of ``{'G', 'D', 'G_ema', 'training_set_kwargs', 'progress'}`` (``best_model.pkl`` is the
same dict written by dill). With ``--cfg fastgan`` / ``fastgan_lite`` the networks are plain
``torch.nn.Module`` objects, *not* NVIDIA persistent classes: no source code and no constructor arguments
are pickled, classes are named by import path (``pg_modules.*``, ``timm.*`` for the discriminator's
feature network, ``torch.nn.*``) and rebuilt as ``cls.__new__`` + a ``__dict__`` state
(``_parameters``, ``_buffers``, ``_modules``, hook dicts). Here every such class becomes a data-only stub
(nothing is imported or run) and tensors come from ``torch.storage._load_from_bytes`` records, read with
``torch.load(weights_only=True)``. ``--cfg stylegan2`` snapshots hold an NVIDIA persistent ``G_ema``;
they are handed to the ``nvidia-pickle`` converter.

Config is read from ``G_ema``'s attributes (``z_dim``, ``c_dim``, ``img_resolution``, ``img_channels``),
the synthesis class (``FastganSynthesis`` / ``FastganSynthesisCond``) and the block type (4-module
``Sequential`` = lite, 9-module = full; ``UpBlockSmallCond`` / ``UpBlockBigCond``); ``ngf`` from
``synthesis.init.init.0.weight_orig`` (``[z_dim, 32 * ngf, 4, 4]``). Spectral-norm layers keep
``weight_orig`` + ``weight_u`` / ``weight_v`` (the ``weight`` attribute in their ``__dict__`` is the value of
the last forward, stale for layers that never ran, and is ignored); the stored weight is the eval-mode
``weight_orig / (u . W v)``, along dim 1 for the transposed convolution as the hook's ``dim`` says.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from zoo.errors import ConversionError

from .base import Converted, SourceFormat, register_format, strict_map
from .fastgan import check_layout, fold_spectral_norm
from .nvidia import NVIDIA_GLOBALS, PersistentRecord, own_tensors
from .nvidia import convert_snapshot as nvidia_convert_snapshot
from .safe_pickle import NUMPY_GLOBALS, TORCH_TENSOR_GLOBALS, RestrictedUnpickler, Stub, StubDict, stub_class

#: Modules whose classes may appear in a snapshot (generator, projected discriminator, timm feature network,
#: torch.nn layers and hooks). Each becomes a data-only stub: nothing from these modules is imported.
STUB_MODULE_PREFIXES = ("pg_modules.", "timm.", "torch.nn.modules.", "torch.nn.utils.spectral_norm",
                        "torch.ao.nn.quantized.", "torch.nn.quantized.", "training.augment")
PG_GLOBALS: dict[tuple[str, str], Callable[..., Any]] = {
    **TORCH_TENSOR_GLOBALS,
    **NUMPY_GLOBALS,
    **NVIDIA_GLOBALS,  # --cfg stylegan2 snapshots: persistent G / G_ema, kept as data
    ("dnnlib.util", "EasyDict"): StubDict,
}
GENERATOR = "pg_modules.networks_fastgan.Generator"
SYNTHESIS = {"pg_modules.networks_fastgan.FastganSynthesis": False,
             "pg_modules.networks_fastgan.FastganSynthesisCond": True}


class _ProjectedUnpickler(RestrictedUnpickler):
    """The allow-list unpickler plus data-only stubs for the module classes a snapshot names."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        if module.startswith(STUB_MODULE_PREFIXES) and name.isidentifier():
            return stub_class(module, name)
        return super().find_class(module, name)


def read_snapshot(path: Path) -> dict[str, Any]:
    """Unpickle a Projected GAN snapshot without importing or running anything from it."""
    try:
        data = _ProjectedUnpickler(io.BytesIO(path.read_bytes()), PG_GLOBALS, source=path.name).load()
    except ConversionError:
        raise
    except Exception as e:  # noqa: BLE001 - junk bytes make the unpickler raise many types
        first = (str(e).splitlines() or [""])[0][:160]
        raise ConversionError(f"{path.name} is corrupt or truncated ({type(e).__name__}: {first}); "
                              "re-download it") from None
    if not isinstance(data, dict):
        raise ConversionError(f"{path.name}: expected a snapshot dict with G_ema, got {type(data).__name__}")
    return data


def qualname(obj: Any) -> str:
    return f"{obj._module}.{obj._qualname}" if isinstance(obj, Stub) else type(obj).__name__


def _state(obj: Any, where: str) -> dict[str, Any]:
    if not isinstance(obj, Stub) or not isinstance(obj.state, dict):
        raise ConversionError(f"{where}: expected a pickled torch module, got {qualname(obj)}")
    return obj.state


def children(obj: Any, where: str) -> dict[str, Any]:
    return {k: v for k, v in (_state(obj, where).get("_modules") or {}).items() if v is not None}


def flatten(obj: Any, prefix: str = "", where: str = "G_ema") -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """``(state_dict, spectral-norm dim per layer)`` of a stubbed module tree."""
    state = _state(obj, where + (f" {prefix.rstrip('.')}" if prefix else ""))
    tensors = own_tensors(state, prefix, where)
    sn_dims: dict[str, int] = {}
    for hook in (state.get("_forward_pre_hooks") or {}).values():
        if isinstance(hook, Stub) and hook._qualname == "SpectralNorm":
            hs = hook.state if isinstance(hook.state, dict) else {}
            if hs.get("name", "weight") != "weight":
                raise ConversionError(f"{where}: spectral norm on {prefix}{hs.get('name')} is not supported")
            sn_dims[prefix.rstrip(".")] = int(hs.get("dim", 0))
    for name, child in children(obj, where).items():
        t, d = flatten(child, f"{prefix}{name}.", where)
        tensors.update(t)
        sn_dims.update(d)
    return tensors, sn_dims


def _attr(state: Mapping[str, Any], key: str, where: str) -> int:
    value = state.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConversionError(f"{where}: G_ema.{key} missing or not an integer ({value!r})")
    return int(value)


def infer_kwargs(g: Stub, tensors: Mapping[str, torch.Tensor], where: str) -> dict[str, Any]:
    state = _state(g, where)
    mods = children(g, where)
    synth = mods.get("synthesis")
    if synth is None or qualname(synth) not in SYNTHESIS:
        raise ConversionError(f"{where}: G_ema.synthesis is {qualname(synth) if synth is not None else 'missing'}; "
                              f"supported: {', '.join(SYNTHESIS)}")
    mapping = mods.get("mapping")
    if mapping is None or qualname(mapping) != "pg_modules.networks_fastgan.DummyMapping":
        raise ConversionError(f"{where}: G_ema.mapping is {qualname(mapping) if mapping is not None else 'missing'}, "
                              "expected DummyMapping")
    cond = SYNTHESIS[qualname(synth)]
    block = children(synth, where).get("feat_8")
    kind = qualname(block) if block is not None else "missing"
    if cond:
        lite = {"pg_modules.blocks.UpBlockSmallCond": True, "pg_modules.blocks.UpBlockBigCond": False}.get(kind)
    elif kind == "torch.nn.modules.container.Sequential":
        lite = {4: True, 9: False}.get(len(children(block, where)))
    else:
        lite = None
    if lite is None:
        raise ConversionError(f"{where}: synthesis.feat_8 is a {kind} block this converter does not know")
    key = "synthesis.init.init.0.weight_orig"
    w = tensors.get(key)
    z_dim = _attr(state, "z_dim", where)
    if w is None or w.ndim != 4 or w.shape[0] != z_dim or w.shape[1] % 32:
        raise ConversionError(f"{where}: {key} is {None if w is None else list(w.shape)}, expected [{z_dim}, 32*ngf, 4, 4]")
    kwargs: dict[str, Any] = dict(z_dim=z_dim, c_dim=_attr(state, "c_dim", where),
                                  img_resolution=_attr(state, "img_resolution", where),
                                  img_channels=_attr(state, "img_channels", where), ngf=int(w.shape[1]) // 32,
                                  lite=lite, cond=cond)
    if cond:
        emb = tensors.get("synthesis.embed.weight")
        if emb is None:
            raise ConversionError(f"{where}: conditional synthesis without synthesis.embed.weight")
        kwargs["num_classes"] = int(emb.shape[0])
        if kwargs["c_dim"] < 1:
            raise ConversionError(f"{where}: conditional synthesis but G_ema.c_dim = {kwargs['c_dim']}")
    elif kwargs["c_dim"]:
        raise ConversionError(f"{where}: G_ema.c_dim = {kwargs['c_dim']} but the synthesis is unconditional")
    from zoo.models.fastgan import ProjectedFastGANGenerator

    if kwargs["img_resolution"] not in ProjectedFastGANGenerator.SIZES:
        raise ConversionError(f"{where}: img_resolution {kwargs['img_resolution']} is not one upstream can run "
                              f"({', '.join(map(str, ProjectedFastGANGenerator.SIZES))})")
    return kwargs


def convert_generator(g: Any, where: str = "G_ema") -> Converted:
    """Pure conversion of an unpickled ``pg_modules.networks_fastgan.Generator`` stub."""
    if qualname(g) != GENERATOR:
        raise ConversionError(f"{where}: G_ema is a {qualname(g)}, expected {GENERATOR}")
    tensors, sn_dims = flatten(g, where=where)
    kwargs = infer_kwargs(g, tensors, where)
    folded = fold_spectral_norm(tensors, where, transposed=tuple(p for p, d in sn_dims.items() if d == 1))
    unhooked = [k[: -len(".weight_orig")] for k in tensors if k.endswith(".weight_orig")
                and k[: -len(".weight_orig")] not in sn_dims]
    if unhooked:
        raise ConversionError(f"{where}: {unhooked[0]} has weight_orig but no SpectralNorm hook")
    from zoo.models.fastgan import ProjectedFastGANGenerator

    with torch.device("meta"):
        ref = ProjectedFastGANGenerator(**kwargs)
    expected = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    variant = f"Projected GAN {'conditional ' if kwargs['cond'] else ''}FastGAN{'-lite' if kwargs['lite'] else ''}"
    check_layout(folded, expected, where, f"{variant} {kwargs['img_resolution']}px generator")
    out = strict_map(folded, [(re.escape(k), k) for k in expected], where=where)
    notes = []
    if not kwargs["lite"]:
        notes.append("this generator injects fresh random noise upstream; noise_mode='none' (the sampling default) "
                     "omits it, noise_mode='random' reproduces upstream's draw after torch.manual_seed")
    card = ("The generator stores no noise" + ("; FastGAN-lite injects none, so every noise_mode gives the same image."
                                              if kwargs["lite"] else
                                              ": upstream draws fresh noise at every call. Sampling defaults to "
                                              "noise_mode='none' (deterministic); noise_mode='random' reproduces "
                                              "upstream's draw after torch.manual_seed.")
            + " truncation_psi is accepted and ignored, as upstream (the generator normalises z).")
    return Converted("projected-fastgan", kwargs, out, notes=notes,
                     extra_config={"upstream_codebase": "projected-gan", "card_notes": card})


def convert_snapshot(snapshot: Mapping[str, Any], where: str = "snapshot") -> Converted:
    g = snapshot.get("G_ema")
    if g is None:
        raise ConversionError(f"{where}: no G_ema in the snapshot (keys: {', '.join(map(str, snapshot))})")
    if isinstance(g, PersistentRecord):  # --cfg stylegan2: an NVIDIA persistent generator
        return nvidia_convert_snapshot(dict(snapshot), where)
    converted = convert_generator(g, where)
    progress = snapshot.get("progress")
    if isinstance(progress, dict) and isinstance(progress.get("cur_nimg"), torch.Tensor):
        converted.extra_config["training_kimg"] = round(float(progress["cur_nimg"].sum()) / 1000, 3)
    return converted


def convert_file(path: Path) -> Converted:
    return convert_snapshot(read_snapshot(path), where=path.name)


def _sniff(path: Path, head: bytes) -> bool:
    # Before nvidia-pickle: a projected-gan snapshot names pg_modules classes; the NVIDIA allow-list has none.
    if not path.is_file() or head[:1] != b"\x80":
        return False
    if b"pg_modules." in head:
        return True
    if b"torch_utils.persistence" in head:
        # --cfg stylegan2: a persistent G comes first, the projected discriminator's classes further on
        import mmap

        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return m.find(b"pg_modules.") >= 0
    return False


register_format(SourceFormat(
    name="projected-gan-pickle",
    description="Projected GAN (autonomousvision/projected-gan) network-snapshot / best_model .pkl",
    sniff=_sniff,
    convert=convert_file,
    priority=5,
))
