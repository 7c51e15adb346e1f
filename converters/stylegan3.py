"""NVIDIA stylegan3 ``training.networks_stylegan3.Generator`` snapshots -> ``stylegan3`` architecture.

Registered as the ``stylegan3`` codebase handler of the NVIDIA pickle format (``converters.nvidia``
detects it from the embedded module source). The configuration comes from ``G_ema._init_kwargs``;
tensors keep their upstream names. The pickle also holds non-tensor layer state (numpy sizes,
sampling rates, cutoffs, padding, ``layer_names``): none of it is needed, since the architecture
derives all of it from the config, but it is cross-checked so an unsupported upstream variant fails
loudly instead of producing wrong images. The designed FIR filters are buffers, copied like weights.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from zoo.errors import ConversionError
from zoo.models.stylegan3 import MAPPING_DEFAULTS, SYNTHESIS_DEFAULTS, synthesis_geometry

from .base import Converted, strict_map
from .nvidia import CODEBASE_CONVERTERS, PersistentRecord, _plain


def _py(v: Any) -> Any:
    """Pickled numpy arrays/scalars -> Python lists/numbers (``_plain`` handles only scalars)."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    return _plain(v)

_LAYER = r"L\d+_\d+_\d+"
SG3_TABLE: list[tuple[str, str]] = [
    (r"mapping\.(fc\d+|embed)\.(weight|bias)", r"mapping.\1.\2"),
    (r"mapping\.w_avg", r"mapping.w_avg"),
    (r"synthesis\.input\.(weight|transform|freqs|phases)", r"synthesis.input.\1"),
    (r"synthesis\.input\.affine\.(weight|bias)", r"synthesis.input.affine.\1"),
    (rf"synthesis\.({_LAYER})\.(weight|bias|magnitude_ema|up_filter|down_filter)", r"synthesis.\1.\2"),
    (rf"synthesis\.({_LAYER})\.affine\.(weight|bias)", r"synthesis.\1.affine.\2"),
]

def stylegan3_kwargs(init_kwargs: dict[str, Any], where: str) -> dict[str, Any]:
    """Map ``Generator._init_kwargs`` (flat synthesis kwargs + ``mapping_kwargs``) onto our constructor."""
    kw = _plain(dict(init_kwargs))
    out: dict[str, Any] = {}
    for key in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"):
        if key not in kw:
            raise ConversionError(f"{where}: G_ema._init_kwargs lacks {key}")
        out[key] = int(kw.pop(key))
    mapping = dict(kw.pop("mapping_kwargs", {}) or {})
    bad = set(mapping) - set(MAPPING_DEFAULTS)
    if bad:
        raise ConversionError(f"{where}: unsupported StyleGAN3 mapping option(s) {sorted(bad)}")
    unknown = set(kw) - set(SYNTHESIS_DEFAULTS)
    if unknown:
        raise ConversionError(f"{where}: unsupported StyleGAN3 generator option(s) {sorted(unknown)}")
    out["mapping_kwargs"] = mapping
    for key in SYNTHESIS_DEFAULTS:
        if key in kw:
            out[key] = kw[key]
    return out


def _child(record: PersistentRecord, name: str, where: str) -> PersistentRecord:
    child = (record.state.get("_modules") or {}).get(name)
    if not isinstance(child, PersistentRecord):
        raise ConversionError(f"{where}: G_ema has no {name} sub-network")
    return child


def check_geometry(g: PersistentRecord, kwargs: dict[str, Any], where: str) -> None:
    """Compare the pickle's stored per-layer attributes with what our architecture derives."""
    synth_kw = {k: kwargs[k] for k in SYNTHESIS_DEFAULTS if k in kwargs and k not in
                ("output_scale", "conv_clamp", "magnitude_ema_beta")}
    inp, specs = synthesis_geometry(kwargs["img_resolution"], kwargs["img_channels"], **synth_kw)
    synthesis = _child(g, "synthesis", where)
    names = _py(synthesis.state.get("layer_names"))
    if names is not None and list(names) != [s.name for s in specs]:
        raise ConversionError(f"{where}: layer layout {names} differs from the one derived from the config "
                              f"({[s.name for s in specs]}); unsupported StyleGAN3 variant")
    mismatches = []

    def cmp(what: str, stored: Any, ours: Any) -> None:
        stored = _py(stored)
        if stored is None:
            return
        if isinstance(stored, list) and not isinstance(ours, (list, tuple)):
            stored = stored[0] if len(set(stored)) == 1 else stored
        if isinstance(ours, tuple):
            ours = list(ours)
        same = (math.isclose(float(stored), float(ours), rel_tol=1e-9, abs_tol=1e-9)
                if isinstance(ours, (int, float)) and isinstance(stored, (int, float)) else stored == ours)
        if not same:
            mismatches.append(f"{what}: stored {stored}, derived {ours}")

    inp_state = _child(synthesis, "input", where).state
    for attr in ("channels", "size", "sampling_rate", "bandwidth"):
        cmp(f"input.{attr}", inp_state.get(attr), getattr(inp, attr))
    for spec in specs:
        state = _child(synthesis, spec.name, where).state
        for attr in ("is_torgb", "in_channels", "out_channels", "in_size", "out_size", "in_sampling_rate",
                     "out_sampling_rate", "tmp_sampling_rate", "in_cutoff", "out_cutoff", "in_half_width",
                     "out_half_width", "conv_kernel", "up_factor", "down_factor", "up_taps", "down_taps",
                     "down_radial", "padding"):
            cmp(f"{spec.name}.{attr}", state.get(attr), getattr(spec, attr))
    if mismatches:
        raise ConversionError(f"{where}: stored layer geometry disagrees with the config "
                              f"({'; '.join(mismatches[:4])}); unsupported StyleGAN3 variant")


def convert_stylegan3(record: PersistentRecord, tensors: dict[str, torch.Tensor], where: str) -> Converted:
    """Pure conversion of a stylegan3 ``G_ema`` record and its flattened state dict."""
    kwargs = stylegan3_kwargs(record.state.get("_init_kwargs") or {}, where)
    check_geometry(record, kwargs, where)
    mapped = strict_map(tensors, SG3_TABLE, where=where)
    return Converted("stylegan3", kwargs, mapped)


CODEBASE_CONVERTERS["stylegan3"] = convert_stylegan3
