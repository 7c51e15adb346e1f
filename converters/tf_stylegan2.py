"""Original TensorFlow StyleGAN2 pickles (NVlabs/stylegan2, NVlabs/stylegan2-ada) -> StyleGAN2 common format.

Format facts (``dnnlib/tflib/network.py`` upstream; layouts as read by ``legacy.py`` of
NVlabs/stylegan2-ada-pytorch): a ``network-*.pkl`` is the tuple ``(G, D, Gs)`` of
``dnnlib.tflib.network.Network`` objects pickled through ``__getstate__``: a dict with ``version``
(>= 4 carries everything needed), ``name``, ``static_kwargs`` (the build function's keyword
arguments), ``components`` (``synthesis`` and ``mapping`` sub-networks), ``build_module_src`` (TF
source, never executed or even read here), ``build_func_name`` and ``variables``, a list of
``(local_name, numpy value)``.

We take ``Gs`` (the moving average of the generator). TF layouts differ from PyTorch: dense weights
are ``[in, out]``, conv kernels ``[kh, kw, in, out]``, style weights ``[w_dim, in]``. The upsampling
convolutions (``Conv0_up``) are transposed convolutions in TF whose kernels the PyTorch code applies
without the flip, so they are flipped spatially here; TF's style bias is initialised at 0 and added
to 1 at run time, PyTorch's at 1. Runtime scaling (equalised learning rate: ``1/sqrt(fan_in)`` and
the mapping ``lrmul``) is the same in both codebases, so stored values carry over unscaled.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from zoo.errors import ConversionError
from zoo.format import build_config, check_tensors, expected_tensors
from zoo.models.ops import make_filter

from .base import Converted, SourceFormat, register_format, strict_map
from .safe_pickle import NUMPY_GLOBALS, restricted_load

TF_NETWORK = ("dnnlib.tflib.network", "Network")


class TFNetworkRecord:
    """Data-only stand-in for ``dnnlib.tflib.network.Network``: keeps the pickled state, runs nothing."""

    #: Filled by ``__setstate__`` (the pickle builds the object with ``__new__`` and then sets its state).
    state: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return self.state

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise ConversionError("malformed TensorFlow network record: state is not a dict")
        self.state = state

    @property
    def name(self) -> str:
        return str(self.state.get("name", "?"))

    @property
    def version(self) -> int:
        return int(self.state.get("version", 0))

    @property
    def static_kwargs(self) -> dict[str, Any]:
        kw = self.state.get("static_kwargs") or {}
        if not isinstance(kw, dict):
            raise ConversionError(f"network {self.name}: static_kwargs is not a dict")
        return kw

    @property
    def components(self) -> dict[str, "TFNetworkRecord"]:
        comps = self.state.get("components") or {}
        if not isinstance(comps, dict) or not all(isinstance(c, TFNetworkRecord) for c in comps.values()):
            raise ConversionError(f"network {self.name}: malformed components")
        return comps

    @property
    def variables(self) -> list[tuple[str, Any]]:
        vs = self.state.get("variables") or []
        if not isinstance(vs, (list, tuple)) or not all(isinstance(v, tuple) and len(v) == 2 for v in vs):
            raise ConversionError(f"network {self.name}: malformed variable list")
        return list(vs)


TF_GLOBALS = {**NUMPY_GLOBALS, TF_NETWORK: TFNetworkRecord}


def read_tf_pickle(path: Path) -> tuple[TFNetworkRecord, TFNetworkRecord, TFNetworkRecord]:
    """Unpickle ``(G, D, Gs)`` with the restricted unpickler (numpy arrays + network records only)."""
    data = restricted_load(path, TF_GLOBALS, source=path.name)
    if not (isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetworkRecord) for n in data)):
        raise ConversionError(f"{path.name}: expected the TensorFlow tuple (G, D, Gs) of networks")
    return data  # type: ignore[return-value]


def collect_variables(net: TFNetworkRecord, prefix: str = "") -> dict[str, torch.Tensor]:
    """All variables of ``net`` and its components as float32 tensors, named ``component/.../local``."""
    out: dict[str, torch.Tensor] = {}
    for name, value in net.variables:
        key = f"{prefix}{name}"
        if isinstance(value, np.generic):
            value = np.asarray(value)
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            raise ConversionError(f"TF variable {key} is not a float array ({type(value).__name__})")
        out[key] = torch.from_numpy(np.array(value, dtype=np.float32))
    for cname, comp in net.components.items():
        out.update(collect_variables(comp, f"{prefix}{cname}/"))
    return out


# --- Keyword arguments -------------------------------------------------------------------------------
# TF static_kwargs of G_main / G_synthesis_stylegan2 / G_mapping -> (StyleGAN2Generator argument, default);
# "mapping." names go to mapping_kwargs. Defaults are the TF build functions' defaults.
_KWARG_TABLE: dict[str, tuple[str, Any]] = {
    "latent_size": ("z_dim", 512),
    "label_size": ("c_dim", 0),
    "dlatent_size": ("w_dim", 512),
    "resolution": ("img_resolution", 1024),
    "num_channels": ("img_channels", 3),
    "mapping_layers": ("mapping.num_layers", 8),
    "label_fmaps": ("mapping.embed_features", None),
    "mapping_fmaps": ("mapping.layer_features", None),
    "mapping_nonlinearity": ("mapping.activation", "lrelu"),
    "mapping_lrmul": ("mapping.lr_multiplier", 0.01),
    "fmap_base": ("channel_base", 16384),  # PyTorch channel_base = 2 * fmap_base
    "fmap_max": ("channel_max", 512),
    "num_fp16_res": ("num_fp16_res", 0),
    "conv_clamp": ("conv_clamp", None),
    "architecture": ("architecture", "skip"),
    "resample_kernel": ("resample_filter", [1, 3, 3, 1]),
    "use_noise": ("use_noise", True),
    "nonlinearity": ("activation", "lrelu"),
}
# The w_avg EMA rate (stylegan2: dlatent_avg_beta, stylegan2-ada: w_avg_beta) only matters in training.
_W_AVG_BETA_KWARGS = ("w_avg_beta", "dlatent_avg_beta")
# Arguments of the TF graph's default call or of training, never of the weights' meaning.
_IGNORED_KWARGS = {"truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val",
                   "style_mixing_prob", "structure", "fused_modconv", "is_template_graph", "randomize_noise",
                   "dlatent_broadcast", "is_training", "is_validation", "return_dlatents"}
# Arguments accepted only at these values (the ones the StyleGAN2 architecture implements).
_FIXED_KWARGS: dict[str, Any] = {"fmap_decay": 1.0, "fmap_min": 1, "normalize_latents": True, "dtype": "float32",
                                 "mapping_func": "G_mapping"}
# Synthesis build functions that are this architecture: NVlabs/stylegan2 names it G_synthesis_stylegan2,
# NVlabs/stylegan2-ada (TF) G_synthesis (same variables; it adds num_fp16_res / conv_clamp).
SYNTHESIS_FUNCS = ("G_synthesis_stylegan2", "G_synthesis")
# Community forks (non-square training) add these; a square network (both equal to resolution) maps onto ours.
_SIZE_KWARGS = ("resolution_w", "resolution_h")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def stylegan2_kwargs(static_kwargs: dict[str, Any], where: str) -> dict[str, Any]:
    """``Gs.static_kwargs`` -> :class:`~zoo.models.stylegan2.StyleGAN2Generator` constructor arguments."""
    known = set(_KWARG_TABLE) | set(_W_AVG_BETA_KWARGS) | _IGNORED_KWARGS | set(_FIXED_KWARGS) | {"synthesis_func"}
    unknown = sorted(set(static_kwargs) - known - set(_SIZE_KWARGS))
    if unknown:
        raise ConversionError(f"{where}: unsupported TensorFlow generator option(s) {unknown}; "
                              "this converter handles StyleGAN2 / StyleGAN2-ADA G_main networks")
    synth = _plain(static_kwargs.get("synthesis_func", SYNTHESIS_FUNCS[0]))
    if synth not in SYNTHESIS_FUNCS:
        raise ConversionError(f"{where}: TensorFlow option synthesis_func={synth!r} is not supported "
                              f"(only {' or '.join(SYNTHESIS_FUNCS)})")
    res = _plain(static_kwargs.get("resolution", _KWARG_TABLE["resolution"][1]))
    for key in _SIZE_KWARGS:
        if key in static_kwargs and _plain(static_kwargs[key]) != res:
            raise ConversionError(f"{where}: TensorFlow option {key}={_plain(static_kwargs[key])!r} makes a "
                                  f"non-square generator (resolution={res}); only square networks are supported")
    for key, required in _FIXED_KWARGS.items():
        if key in static_kwargs and _plain(static_kwargs[key]) != required:
            raise ConversionError(f"{where}: TensorFlow option {key}={static_kwargs[key]!r} is not supported "
                                  f"(only {required!r})")
    out: dict[str, Any] = {}
    mapping: dict[str, Any] = {}
    for tf_name, (name, default) in _KWARG_TABLE.items():
        value = _plain(static_kwargs.get(tf_name, default))
        if name.startswith("mapping."):
            if value is not None:  # None keeps the PyTorch default (w_dim)
                mapping[name[len("mapping."):]] = value
        else:
            out[name] = value
    beta = next((static_kwargs[k] for k in _W_AVG_BETA_KWARGS if k in static_kwargs), 0.995)
    mapping["w_avg_beta"] = 1.0 if beta is None else float(_plain(beta))  # upstream: None means beta 1
    out["mapping_kwargs"] = mapping
    out["channel_base"] = 2 * int(out["channel_base"])
    for key in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "channel_max", "num_fp16_res"):
        out[key] = int(out[key])
    if out["architecture"] not in ("orig", "skip", "resnet"):
        raise ConversionError(f"{where}: unsupported synthesis architecture {out['architecture']!r}")
    return out


# --- Variable mapping table ----------------------------------------------------------------------------

def _dense(v: torch.Tensor) -> torch.Tensor:  # [in, out] -> [out, in]
    return v.t().contiguous()


def _conv(v: torch.Tensor) -> torch.Tensor:  # [kh, kw, in, out] -> [out, in, kh, kw]
    return v.permute(3, 2, 0, 1).contiguous()


def _conv_flipped(v: torch.Tensor) -> torch.Tensor:  # TF transposed-conv kernel -> PyTorch layout, flipped
    return v.flip([0, 1]).permute(3, 2, 0, 1).contiguous()


def _style_bias(v: torch.Tensor) -> torch.Tensor:  # TF adds 1 at run time; PyTorch stores it
    return v + 1


def _const(v: torch.Tensor) -> torch.Tensor:  # [1, C, 4, 4] -> [C, 4, 4]
    return v[0]


def _noise(v: torch.Tensor) -> torch.Tensor:  # [1, 1, r, r] -> [r, r]
    return v[0, 0]


def _scalar(v: torch.Tensor) -> torch.Tensor:
    return v.reshape([])


def _same(v: torch.Tensor) -> torch.Tensor:
    return v


Row = tuple[str, str, Callable[[torch.Tensor], torch.Tensor]]


def _layer_rows(tf_layer: str, pt_layer: str, weight_fn: Callable[[torch.Tensor], torch.Tensor]) -> list[Row]:
    return [
        (rf"synthesis/{tf_layer}/weight", rf"synthesis.{pt_layer}.weight", weight_fn),
        (rf"synthesis/{tf_layer}/mod_weight", rf"synthesis.{pt_layer}.affine.weight", _dense),
        (rf"synthesis/{tf_layer}/mod_bias", rf"synthesis.{pt_layer}.affine.bias", _style_bias),
        (rf"synthesis/{tf_layer}/bias", rf"synthesis.{pt_layer}.bias", _same),
    ]


def variable_table(img_resolution: int) -> list[Row]:
    """(TF variable regex, StyleGAN2 tensor name, layout conversion) rows for ``Gs`` of this resolution."""
    rows: list[Row] = [
        (r"dlatent_avg", "mapping.w_avg", _same),
        (r"mapping/Dense(\d+)/weight", r"mapping.fc\1.weight", _dense),
        (r"mapping/Dense(\d+)/bias", r"mapping.fc\1.bias", _same),
        (r"mapping/LabelEmbed/weight", "mapping.embed.weight", _dense),
        (r"mapping/LabelEmbed/bias", "mapping.embed.bias", _same),
        (r"synthesis/4x4/Const/const", "synthesis.b4.const", _const),
        *_layer_rows("4x4/Conv", "b4.conv1", _conv),
        (r"synthesis/4x4/Conv/noise_strength", "synthesis.b4.conv1.noise_strength", _scalar),
        *_layer_rows(r"(\d+)x\1/Conv0_up", r"b\1.conv0", _conv_flipped),
        (r"synthesis/(\d+)x\1/Conv0_up/noise_strength", r"synthesis.b\1.conv0.noise_strength", _scalar),
        *_layer_rows(r"(\d+)x\1/Conv1", r"b\1.conv1", _conv),
        (r"synthesis/(\d+)x\1/Conv1/noise_strength", r"synthesis.b\1.conv1.noise_strength", _scalar),
        *_layer_rows(r"(\d+)x\1/ToRGB", r"b\1.torgb", _conv),
        (r"synthesis/(\d+)x\1/Skip/weight", r"synthesis.b\1.skip.weight", _conv_flipped),
    ]
    # noise{i}: one per synthesis layer in order (4x4 Conv, then Conv0_up and Conv1 of each later block).
    log2 = int(round(math.log2(img_resolution)))
    targets = ["synthesis.b4.conv1.noise_const"]
    for k in range(3, log2 + 1):
        targets += [f"synthesis.b{2 ** k}.conv0.noise_const", f"synthesis.b{2 ** k}.conv1.noise_const"]
    rows += [(rf"synthesis/noise{i}", t, _noise) for i, t in enumerate(targets)]
    return rows


# Variables that carry no inference state: ``lod`` is the progressive-growing level of detail (always 0
# for StyleGAN2, which does not use it).
IGNORED_VARIABLES = (r"lod",)


def convert_networks(G: TFNetworkRecord, D: TFNetworkRecord, Gs: TFNetworkRecord,
                     where: str = "pickle") -> Converted:
    """Pure conversion of the unpickled ``(G, D, Gs)`` tuple (takes ``Gs``)."""
    main_func = str(Gs.state.get("build_func_name", ""))
    if main_func == "G_style":
        raise ConversionError(f"{where}: Gs is a StyleGAN (v1) G_style network, not StyleGAN2 G_main; "
                              "convert it with --format tf-stylegan1-pickle")
    if Gs.version < 4:
        raise ConversionError(f"{where}: TensorFlow network pickle version {Gs.version} is too old (need >= 4)")
    if set(Gs.components) != {"synthesis", "mapping"}:
        raise ConversionError(f"{where}: Gs has components {sorted(Gs.components)}; expected synthesis and mapping "
                              "(a StyleGAN2 G_main network)")
    synth_func = str(Gs.components["synthesis"].state.get("build_func_name", ""))
    if synth_func and synth_func not in SYNTHESIS_FUNCS:
        raise ConversionError(f"{where}: synthesis network {synth_func!r} is not StyleGAN2 "
                              f"({' or '.join(SYNTHESIS_FUNCS)})")
    kwargs = stylegan2_kwargs(Gs.static_kwargs, where)
    res = kwargs["img_resolution"]
    if res < 4 or 2 ** int(round(math.log2(res))) != res:
        raise ConversionError(f"{where}: resolution {res} is not a power of two >= 4")
    variables = collect_variables(Gs)
    dense0 = variables.get("mapping/Dense0/weight")
    if dense0 is not None and dense0.ndim == 2 and kwargs["mapping_kwargs"].get("num_layers", 8) > 1:
        # TF's mapping_fmaps default (512) is not PyTorch's (w_dim): the stored shape settles it.
        kwargs["mapping_kwargs"]["layer_features"] = int(dense0.shape[1])
    embed = variables.get("mapping/LabelEmbed/weight")
    if embed is not None and embed.ndim == 2:  # [c_dim, embed_features]: the stored shape settles the width
        kwargs["mapping_kwargs"]["embed_features"] = int(embed.shape[1])
    rows = variable_table(res)
    compiled = [(re.compile(f"^{pat}$"), fn) for pat, _, fn in rows]
    converted_values: dict[str, torch.Tensor] = {}
    for name, value in variables.items():
        fns = [fn for rx, fn in compiled if rx.match(name)]
        converted_values[name] = fns[0](value) if len(fns) == 1 else value
    tensors = strict_map(converted_values, [(p, t) for p, t, _ in rows], ignore=IGNORED_VARIABLES,
                         where=f"{where}: Gs variable")
    # Fixed FIR filters are buffers in PyTorch, not variables in TF.
    config = build_config("stylegan2", kwargs)
    filt = make_filter(kwargs["resample_filter"])
    for key in expected_tensors(config):
        if key.endswith("resample_filter"):
            tensors[key] = filt.clone()
    try:
        check_tensors(config, tensors, where=f"{where}: converted Gs")
    except ValueError as e:
        raise ConversionError(str(e)) from None
    codebase = "stylegan2-ada-tf" if synth_func == "G_synthesis" else "stylegan2-tf"
    notes = [f"converted from TensorFlow Gs ({synth_func or 'G_synthesis_stylegan2'}, network state version "
             f"{Gs.version}); Conv0_up kernels flipped, style biases + 1, channel_base = 2 * fmap_base"]
    if kwargs["num_fp16_res"]:
        notes.append(f"num_fp16_res={kwargs['num_fp16_res']} recorded; blocks run in float32 (upstream's "
                     "force_fp32 / num_fp16_res=0 computation)")
    return Converted("stylegan2", kwargs, tensors, extra_config={"upstream_codebase": codebase}, notes=notes)


def convert_file(path: Path) -> Converted:
    G, D, Gs = read_tf_pickle(path)
    return convert_networks(G, D, Gs, where=path.name)


def _sniff(path: Path, head: bytes) -> bool:
    return path.is_file() and head[:1] == b"\x80" and b"dnnlib.tflib.network" in head


register_format(SourceFormat(
    name="tf-stylegan2-pickle",
    description="original TensorFlow StyleGAN2 / StyleGAN2-ADA network .pkl (tuple G, D, Gs of dnnlib.tflib Networks)",
    sniff=_sniff,
    convert=convert_file,
    priority=20,
))
