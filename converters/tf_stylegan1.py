"""Original TensorFlow StyleGAN (v1) pickles (NVlabs/stylegan) -> the ``stylegan1`` common format.

Format facts (NVlabs/stylegan ``dnnlib/tflib/network.py`` and ``training/networks_stylegan.py``): a
``network-*.pkl`` / ``karras2019stylegan-*.pkl`` is the tuple ``(G, D, Gs)`` of ``dnnlib.tflib.network.Network``
records, state version 3: ``name``, ``static_kwargs`` (only the options that differ from the build functions'
defaults), ``components`` (``synthesis``, ``mapping``), ``build_module_src`` (never executed or read here),
``build_func_name`` (``G_style`` / ``G_synthesis`` / ``G_mapping``) and ``variables``. Version 3 stores no
input/output shapes, so every dimension comes from the variables: ``z_dim`` from ``G_mapping/Dense0`` (half
its rows when ``LabelConcat`` doubles the input), ``c_dim`` from ``LabelConcat``, ``w_dim`` from
``dlatent_avg``, the resolution from the block names, channels from the kernels.

TF layouts: dense ``[in, out]``, conv ``[kh, kw, in, out]``, ``StyleMod/weight`` ``[w_dim, 2C]``, const
``[1, C, 4, 4]``, noise ``[1, 1, r, r]``. Runtime gains (equalised learning rate, mapping ``lrmul``) are applied
by the architecture exactly as upstream applies them, so values carry over unscaled; the fused transposed-conv
upsampling is computed from the stored 3x3 kernels at run time (``zoo.models.stylegan1``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import torch

from zoo.errors import ConversionError
from zoo.format import build_config, check_tensors, expected_tensors
from zoo.models.ops import make_filter

from .base import Converted, SourceFormat, register_format, strict_map
from .tf_stylegan2 import TFNetworkRecord, collect_variables, read_tf_pickle

# Static kwargs accepted with any value: arguments of the default call or of training only.
_IGNORED_KWARGS = {"truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val",
                   "dlatent_avg_beta", "style_mixing_prob", "is_training", "is_validation", "is_template_graph",
                   "randomize_noise", "force_clean_graph", "components",
                   # shapes and widths: derived from the variables (and checked against them below)
                   "latent_size", "label_size", "dlatent_size", "num_channels", "resolution", "mapping_layers",
                   "mapping_fmaps", "fmap_base", "fmap_decay", "fmap_max", "dlatent_broadcast"}
# Accepted only at these values (the architecture implements no other).
_FIXED_KWARGS: dict[str, Any] = {"use_wscale": True, "use_styles": True, "const_input_layer": True,
                                 "use_pixel_norm": False, "use_instance_norm": True, "dtype": "float32",
                                 "mapping_func": "G_mapping", "synthesis_func": "G_synthesis"}
# Mapped onto StyleGAN1Generator arguments: TF name -> (our name, default of the TF build function).
_MAPPED_KWARGS: dict[str, tuple[str, Any]] = {
    "mapping_lrmul": ("mapping.lr_multiplier", 0.01),
    "mapping_nonlinearity": ("mapping.activation", "lrelu"),
    "normalize_latents": ("mapping.normalize_latents", True),
    "nonlinearity": ("activation", "lrelu"),
    "use_noise": ("use_noise", True),
    "fused_scale": ("fused_scale", "auto"),
    "blur_filter": ("blur_filter", [1, 2, 1]),
    "structure": ("structure", "auto"),
}


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (list, tuple)):
        try:
            return value.item()
        except (ValueError, AttributeError):
            return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def stylegan1_kwargs(static_kwargs: dict[str, Any], where: str) -> dict[str, Any]:
    """The options of ``Gs`` and its components -> constructor arguments (dimensions are added later)."""
    known = _IGNORED_KWARGS | set(_FIXED_KWARGS) | set(_MAPPED_KWARGS)
    unknown = sorted(set(static_kwargs) - known)
    if unknown:
        raise ConversionError(f"{where}: unsupported TensorFlow StyleGAN option(s) {unknown}; this converter "
                              "handles NVlabs/stylegan G_style networks")
    for key, required in _FIXED_KWARGS.items():
        if key in static_kwargs and _plain(static_kwargs[key]) != required:
            raise ConversionError(f"{where}: TensorFlow option {key}={_plain(static_kwargs[key])!r} is not "
                                  f"supported (only {required!r})")
    out: dict[str, Any] = {"mapping_kwargs": {}}
    for tf_name, (name, default) in _MAPPED_KWARGS.items():
        value = _plain(static_kwargs.get(tf_name, default))
        if name.startswith("mapping."):
            out["mapping_kwargs"][name[len("mapping."):]] = value
        else:
            out[name] = value
    for key in ("activation",):
        if out[key] not in ("lrelu", "relu"):
            raise ConversionError(f"{where}: TensorFlow option nonlinearity={out[key]!r} is not supported "
                                  "(lrelu or relu)")
    if out["mapping_kwargs"]["activation"] not in ("lrelu", "relu"):
        raise ConversionError(f"{where}: TensorFlow option mapping_nonlinearity="
                              f"{out['mapping_kwargs']['activation']!r} is not supported (lrelu or relu)")
    if out["fused_scale"] not in ("auto", True, False):
        raise ConversionError(f"{where}: TensorFlow option fused_scale={out['fused_scale']!r} is not supported")
    blur = out["blur_filter"]
    if not (isinstance(blur, list) and blur and all(isinstance(v, (int, float)) for v in blur)):
        raise ConversionError(f"{where}: TensorFlow option blur_filter={blur!r} is not supported (a list of taps)")
    structure = out.pop("structure")
    if structure not in ("auto", "linear", "recursive", "fixed"):
        raise ConversionError(f"{where}: TensorFlow option structure={structure!r} is not supported")
    out["progressive"] = structure != "fixed"
    out["mapping_kwargs"]["lr_multiplier"] = float(out["mapping_kwargs"]["lr_multiplier"])
    return out


# --- Variable mapping table ----------------------------------------------------------------------------

def _dense(v: torch.Tensor) -> torch.Tensor:  # [in, out] -> [out, in]
    return v.t().contiguous()


def _conv(v: torch.Tensor) -> torch.Tensor:  # [kh, kw, in, out] -> [out, in, kh, kw]
    return v.permute(3, 2, 0, 1).contiguous()


def _same(v: torch.Tensor) -> torch.Tensor:
    return v


Row = tuple[str, str, Callable[[torch.Tensor], torch.Tensor]]


def _layer_rows(tf: str, pt: str) -> list[Row]:
    return [
        (rf"synthesis/{tf}/Noise/weight", rf"synthesis.{pt}.noise_weight", _same),
        (rf"synthesis/{tf}/bias", rf"synthesis.{pt}.bias", _same),
        (rf"synthesis/{tf}/StyleMod/weight", rf"synthesis.{pt}.affine.weight", _dense),
        (rf"synthesis/{tf}/StyleMod/bias", rf"synthesis.{pt}.affine.bias", _same),
    ]


def variable_table(img_resolution: int) -> list[Row]:
    """(TF variable regex, stylegan1 tensor name, layout conversion) rows for ``Gs`` of this resolution."""
    log2 = img_resolution.bit_length() - 1
    rows: list[Row] = [
        (r"dlatent_avg", "mapping.w_avg", _same),
        (r"mapping/Dense(\d+)/weight", r"mapping.fc\1.weight", _dense),
        (r"mapping/Dense(\d+)/bias", r"mapping.fc\1.bias", _same),
        (r"mapping/LabelConcat/weight", "mapping.label_concat", _dense),
        (r"synthesis/4x4/Const/const", "synthesis.b4.conv0.const", lambda v: v[0]),
        *_layer_rows("4x4/Const", "b4.conv0"),
        (r"synthesis/4x4/Conv/weight", "synthesis.b4.conv1.weight", _conv),
        *_layer_rows("4x4/Conv", "b4.conv1"),
        (r"synthesis/(\d+)x\1/Conv0_up/weight", r"synthesis.b\1.conv0.weight", _conv),
        *_layer_rows(r"(\d+)x\1/Conv0_up", r"b\1.conv0"),
        (r"synthesis/(\d+)x\1/Conv1/weight", r"synthesis.b\1.conv1.weight", _conv),
        *_layer_rows(r"(\d+)x\1/Conv1", r"b\1.conv1"),
    ]
    for k in range(log2 - 1):  # ToRGB_lod{k} is the head of the 2**(log2 - k) px block
        rows += [(rf"synthesis/ToRGB_lod{k}/weight", rf"synthesis.b{2 ** (log2 - k)}.torgb.weight", _conv),
                 (rf"synthesis/ToRGB_lod{k}/bias", rf"synthesis.b{2 ** (log2 - k)}.torgb.bias", _same)]
    for i in range(2 * (log2 - 1)):  # noise{i} belongs to layer i: Const, Conv, then Conv0_up / Conv1 per block
        rows.append((rf"synthesis/noise{i}", f"synthesis.b{2 ** (i // 2 + 2)}.conv{i % 2}.noise_const",
                     lambda v: v[0, 0]))
    return rows


# ``lod`` (Gs and G_synthesis) becomes the ``lod`` argument, not a tensor.
IGNORED_VARIABLES = (r"lod", r"synthesis/lod")


def _dimensions(v: dict[str, torch.Tensor], where: str) -> dict[str, Any]:
    """Every shape the architecture needs, read off the variables (state version 3 stores none)."""
    def need(key: str) -> torch.Tensor:
        if key not in v:
            raise ConversionError(f"{where}: Gs variable {key} is missing (not a StyleGAN G_style network?)")
        return v[key]

    res = [int(m.group(1)) for k in v if (m := re.match(r"synthesis/(\d+)x\1/", k))]
    img_resolution = max(res, default=0)
    if img_resolution < 4 or img_resolution & (img_resolution - 1):
        raise ConversionError(f"{where}: cannot find the synthesis blocks (largest block {img_resolution})")
    w_dim = int(need("dlatent_avg").shape[0])
    dense = sorted(int(m.group(1)) for k in v if (m := re.fullmatch(r"mapping/Dense(\d+)/weight", k)))
    if dense != list(range(len(dense))) or not dense:
        raise ConversionError(f"{where}: mapping dense layers {dense} are not Dense0..DenseN")
    d0 = need("mapping/Dense0/weight")
    label = v.get("mapping/LabelConcat/weight")
    c_dim = int(label.shape[0]) if label is not None else 0
    z_dim = int(label.shape[1]) if label is not None else int(d0.shape[0])
    if label is not None and d0.shape[0] != 2 * z_dim:
        raise ConversionError(f"{where}: Dense0 has {d0.shape[0]} inputs; LabelConcat implies {2 * z_dim}")
    mapping = {"num_layers": len(dense)}
    if len(dense) > 1:
        mapping["layer_features"] = int(d0.shape[1])
    channels = {4: int(need("synthesis/4x4/Const/const").shape[1])}
    r = 8
    while r <= img_resolution:
        channels[r] = int(need(f"synthesis/{r}x{r}/Conv1/weight").shape[3])
        r *= 2
    img_channels = int(need("synthesis/ToRGB_lod0/weight").shape[3])
    return dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                channels=channels, mapping=mapping)


def _check_static_dims(kw: dict[str, Any], dims: dict[str, Any], num_ws: int, where: str) -> None:
    """Static kwargs that state a dimension must agree with the variables."""
    pairs = {"latent_size": dims["z_dim"], "label_size": dims["c_dim"], "dlatent_size": dims["w_dim"],
             "num_channels": dims["img_channels"], "resolution": dims["img_resolution"],
             "mapping_layers": dims["mapping"]["num_layers"], "dlatent_broadcast": num_ws}
    for key, value in pairs.items():
        if key in kw and kw[key] is not None and _plain(kw[key]) != value:
            raise ConversionError(f"{where}: TensorFlow option {key}={_plain(kw[key])!r} disagrees with the stored "
                                  f"variables ({value})")


def convert_networks(G: TFNetworkRecord, D: TFNetworkRecord, Gs: TFNetworkRecord,
                     where: str = "pickle") -> Converted:
    """Pure conversion of the unpickled ``(G, D, Gs)`` tuple (takes ``Gs``, the moving average)."""
    func = str(Gs.state.get("build_func_name", ""))
    if func != "G_style":
        raise ConversionError(f"{where}: Gs is built by {func!r}, not StyleGAN's G_style"
                              + ("; use --format tf-stylegan2-pickle" if func == "G_main" else ""))
    if set(Gs.components) != {"synthesis", "mapping"}:
        raise ConversionError(f"{where}: Gs has components {sorted(Gs.components)}; expected synthesis and mapping")
    for cname, want in (("synthesis", "G_synthesis"), ("mapping", "G_mapping")):
        got = str(Gs.components[cname].state.get("build_func_name", want))
        if got != want:
            raise ConversionError(f"{where}: {cname} network is built by {got!r}, not {want}")
    nets = {"Gs": Gs, "Gs mapping": Gs.components["mapping"], "Gs synthesis": Gs.components["synthesis"]}
    variables = collect_variables(Gs)
    dims = _dimensions(variables, where)
    num_ws = 2 * (dims["img_resolution"].bit_length() - 2)
    static: dict[str, Any] = {}
    for label, net in nets.items():  # every network's options are checked (G_style passes them all down)
        stylegan1_kwargs(net.static_kwargs, f"{where} ({label})")
        _check_static_dims(net.static_kwargs, dims, num_ws, f"{where} ({label})")
        static.update(net.static_kwargs)
    kwargs = stylegan1_kwargs(static, where)
    lod = float(variables["lod"]) if "lod" in variables else 0.0
    kwargs["mapping_kwargs"].update(dims.pop("mapping"))
    kwargs = {**dims, **kwargs, "lod": lod}
    rows = variable_table(dims["img_resolution"])
    compiled = [(re.compile(f"^{pat}$"), fn) for pat, _, fn in rows]
    converted: dict[str, torch.Tensor] = {}
    for name, value in variables.items():
        fns = [fn for rx, fn in compiled if rx.match(name)]
        converted[name] = fns[0](value) if len(fns) == 1 else value
    tensors = strict_map(converted, [(p, t) for p, t, _ in rows], ignore=IGNORED_VARIABLES,
                         where=f"{where}: Gs variable")
    config = build_config("stylegan1", kwargs)
    for key, shape in expected_tensors(config).items():  # the fixed blur filters are buffers, not TF variables
        if key.endswith("blur_filter"):
            tensors[key] = _blur(kwargs["blur_filter"], shape[0])
    try:
        check_tensors(config, tensors, where=f"{where}: converted Gs")
    except ValueError as e:
        raise ConversionError(str(e)) from None
    notes = [f"converted from TensorFlow Gs (G_style, network state version {Gs.version}); lod {lod:g}; "
             f"dimensions read from the variables"]
    synth_lod = variables.get("synthesis/lod")
    if synth_lod is not None and float(synth_lod) != lod:
        notes.append(f"G_synthesis/lod {float(synth_lod):g} differs from Gs/lod {lod:g}; Gs/lod is used (G_style "
                     "assigns it before every call)")
    return Converted("stylegan1", kwargs, tensors, extra_config={"upstream_codebase": "stylegan-tf"}, notes=notes)


def _blur(taps: list[float], channels: int) -> torch.Tensor:
    return make_filter(taps)[None, None].repeat(channels, 1, 1, 1)


def convert_file(path: Path) -> Converted:
    G, D, Gs = read_tf_pickle(path)
    return convert_networks(G, D, Gs, where=path.name)


def _sniff(path: Path, head: bytes) -> bool:
    # The first component pickled is G's synthesis network, whose build_module_src (networks_stylegan.py)
    # defines G_style; StyleGAN2 / StyleGAN2-ADA modules define G_main instead.
    return path.is_file() and head[:1] == b"\x80" and b"dnnlib.tflib.network" in head and b"def G_style(" in head


register_format(SourceFormat(
    name="tf-stylegan1-pickle",
    description="original TensorFlow StyleGAN (v1) network .pkl (tuple G, D, Gs; G_style)",
    sniff=_sniff,
    convert=convert_file,
    priority=19,
))
