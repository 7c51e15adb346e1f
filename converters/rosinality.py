"""rosinality/stylegan2-pytorch ``.pt`` checkpoints -> StyleGAN2 common format.

Format facts (``train.py`` / ``convert_weight.py`` / ``model.py`` upstream): ``torch.save`` of a dict
``{'g', 'd', 'g_ema', 'g_optim', 'd_optim', 'args' (argparse.Namespace), 'ada_aug_p'}`` from training,
or ``{'g_ema', 'latent_avg', ...}`` from the TF weight converter. We take ``g_ema``.

The generator graph is numerically the NVIDIA StyleGAN2 "skip" generator, so it maps onto
:class:`~zoo.models.stylegan2.StyleGAN2Generator`:

* mapping: ``PixelNorm`` then ``style.1..n`` equalised-lr dense layers (``lr_mul`` 0.01, bias scaled
  by ``lr_mul``, leaky ReLU 0.2 times sqrt 2) = ``normalize_2nd_moment`` + ``fc0..`` with lrelu;
* ``ModulatedConv2d`` stores ``[1, out, in, k, k]`` and scales by ``1/sqrt(in*k*k)`` before modulation
  and demodulation; we store the scaled kernel, which makes the demodulated result identical
  (including the 1e-8 epsilon). Upsampling convs are a stride-2 transposed conv (kernel not flipped)
  followed by the [1,3,3,1] blur with padding (1, 1), exactly NVIDIA's ``conv2d_resample(up=2,
  flip_weight=False)``;
* ``NoiseInjection.weight`` [1] = ``noise_strength``; ``noises.noise_i`` [1,1,r,r] = ``noise_const``,
  one per layer in order; ``FusedLeakyReLU.bias`` = layer bias;
* ``ToRGB``: 1x1 modulated conv without demodulation, scaled by ``1/sqrt(in)`` (NVIDIA's
  ``weight_gain``), bias ``[1,3,1,1]``, skip upsampled with the [1,3,3,1] filter;
* ``latent_avg`` (stored by ``convert_weight.py``) is the truncation centre = ``w_avg``; both codebases
  truncate as ``avg + psi * (w - avg)``.

Channel widths are read off the tensors (forks change upstream's hard-coded table).
"""

from __future__ import annotations

import math
import re
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch

from zoo.errors import ConversionError
from zoo.format import build_config, check_tensors, expected_tensors
from zoo.models.ops import make_filter, normalize_2nd_moment

from .base import Converted, SourceFormat, register_format, strict_map
from .safe_pickle import is_torch_zip, torch_safe_load

NAMESPACE = ("argparse", "Namespace")
#: rosinality's ``Generator`` default ``lr_mlp`` (train.py never changes it).
LR_MLP = 0.01
#: Samples for ``w_avg`` when a checkpoint has no ``latent_avg`` (generate.py's ``truncation_mean``).
MEAN_LATENT_SAMPLES = 4096


def read_checkpoint(path: Path) -> dict[str, Any]:
    ckpt = torch_safe_load(path, stubs=[NAMESPACE], source=path.name)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("g_ema"), dict):
        keys = ", ".join(map(str, ckpt)) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ConversionError(f"{path.name}: expected a rosinality checkpoint dict with 'g_ema' (found: {keys})")
    return ckpt


def infer_config(sd: dict[str, torch.Tensor], where: str) -> dict[str, Any]:
    """Size, style_dim, n_mlp and per-resolution channel widths from tensor shapes."""
    def need(key: str) -> torch.Tensor:
        if key not in sd:
            raise ConversionError(f"{where}: g_ema has no {key}; not a rosinality StyleGAN2 generator")
        return sd[key]

    n_mlp = len([k for k in sd if re.fullmatch(r"style\.\d+\.weight", k)])
    if n_mlp == 0:
        raise ConversionError(f"{where}: g_ema has no style.N.weight mapping layers")
    style_dim = int(need("style.1.weight").shape[1])
    n_rgb = len([k for k in sd if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k)])
    size = 2 ** (n_rgb + 2)
    channels = {4: int(need("input.input").shape[1])}
    for k in range(n_rgb):
        channels[2 ** (k + 3)] = int(need(f"to_rgbs.{k}.conv.weight").shape[2])
    return dict(size=size, style_dim=style_dim, n_mlp=n_mlp, channels=channels)


def blur_taps(kernel: torch.Tensor, where: str) -> list[float]:
    """The 1-D taps of a stored (separable, gain-scaled) blur kernel; [1, 3, 3, 1] when it is that one."""
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.sum() <= 0:
        raise ConversionError(f"{where}: unexpected blur kernel of shape {list(kernel.shape)}")
    norm = kernel / kernel.sum()
    for taps in ([1, 3, 3, 1], [1, 2, 1], [1, 1]):
        f = make_filter(taps)
        if f.shape == norm.shape and torch.allclose(f, norm, atol=1e-7):
            return [float(t) for t in taps]
    taps_t = norm.sum(dim=0)
    if not torch.allclose(torch.outer(taps_t, taps_t), norm, atol=1e-7):
        raise ConversionError(f"{where}: blur kernel is not separable")
    return [float(t) for t in taps_t]


def _channels_rule(channels: dict[int, int]) -> tuple[int, int] | None:
    """``(channel_base, channel_max)`` reproducing ``channels`` with NVIDIA's min(base // res, max), if any."""
    top = max(channels)
    cmax = max(channels.values())
    base = channels[top] * top
    if all(min(base // r, cmax) == c for r, c in channels.items()):
        return base, cmax
    return None


Row = tuple[str, str, Callable[[torch.Tensor], torch.Tensor]]


def _same(v: torch.Tensor) -> torch.Tensor:
    return v


def _scalar(v: torch.Tensor) -> torch.Tensor:  # NoiseInjection.weight [1] -> noise_strength []
    return v.reshape([])


def _noise(v: torch.Tensor) -> torch.Tensor:  # [1, 1, r, r] -> [r, r]
    return v[0, 0]


def _const(v: torch.Tensor) -> torch.Tensor:  # ConstantInput [1, C, 4, 4] -> [C, 4, 4]
    return v[0]


def _rgb_bias(v: torch.Tensor) -> torch.Tensor:  # ToRGB bias [1, 3, 1, 1] -> [3]
    return v.reshape(-1)


def _modconv(v: torch.Tensor) -> torch.Tensor:
    """``[1, out, in, k, k]`` -> ``[out, in, k, k]`` times rosinality's runtime ``1/sqrt(in*k*k)``."""
    w = v[0]
    return w * (1 / math.sqrt(w.shape[1] * w.shape[2] * w.shape[3]))


def _torgb(v: torch.Tensor) -> torch.Tensor:  # [1, 3, in, 1, 1] -> [3, in, 1, 1]; both scale by 1/sqrt(in)
    return v[0]


def _styled_conv_rows(src: str, dst: str) -> list[Row]:
    return [
        (rf"{src}\.conv\.weight", f"{dst}.weight", _modconv),
        (rf"{src}\.conv\.modulation\.weight", f"{dst}.affine.weight", _same),
        (rf"{src}\.conv\.modulation\.bias", f"{dst}.affine.bias", _same),
        (rf"{src}\.noise\.weight", f"{dst}.noise_strength", _scalar),
        (rf"{src}\.activate\.bias", f"{dst}.bias", _same),
    ]


def _torgb_rows(src: str, dst: str) -> list[Row]:
    return [
        (rf"{src}\.conv\.weight", f"{dst}.weight", _torgb),
        (rf"{src}\.conv\.modulation\.weight", f"{dst}.affine.weight", _same),
        (rf"{src}\.conv\.modulation\.bias", f"{dst}.affine.bias", _same),
        (rf"{src}\.bias", f"{dst}.bias", _rgb_bias),
    ]


def key_table(size: int) -> tuple[list[Row], list[str]]:
    """Mapping rows for a generator of ``size`` and the blur-kernel keys (checked, then folded into filters)."""
    log2 = int(round(math.log2(size)))
    rows: list[Row] = [
        (r"style\.(\d+)\.weight", "mapping.fc{i}.weight", _same),  # index shifted below (PixelNorm is style.0)
        (r"style\.(\d+)\.bias", "mapping.fc{i}.bias", _same),
        (r"input\.input", "synthesis.b4.const", _const),
        *_styled_conv_rows("conv1", "synthesis.b4.conv1"),
        *_torgb_rows("to_rgb1", "synthesis.b4.torgb"),
        (r"noises\.noise_0", "synthesis.b4.conv1.noise_const", _noise),
    ]
    blur_keys = []
    for k in range(3, log2 + 1):
        i, res = k - 3, 2 ** k
        rows += _styled_conv_rows(rf"convs\.{2 * i}", f"synthesis.b{res}.conv0")
        rows += _styled_conv_rows(rf"convs\.{2 * i + 1}", f"synthesis.b{res}.conv1")
        rows += _torgb_rows(rf"to_rgbs\.{i}", f"synthesis.b{res}.torgb")
        rows += [(rf"noises\.noise_{2 * i + 1}", f"synthesis.b{res}.conv0.noise_const", _noise),
                 (rf"noises\.noise_{2 * i + 2}", f"synthesis.b{res}.conv1.noise_const", _noise)]
        blur_keys += [f"convs.{2 * i}.conv.blur.kernel", f"to_rgbs.{i}.upsample.kernel"]
    return rows, blur_keys


def _expand_style_rows(rows: list[Row], n_mlp: int) -> list[Row]:
    """Explicit rows ``style.{1..n_mlp}`` -> ``mapping.fc{0..n_mlp-1}`` (style.0 is the parameter-free PixelNorm)."""
    out: list[Row] = []
    for pat, tmpl, fn in rows:
        if pat.startswith(r"style\."):
            leaf = pat.rsplit(".", 1)[-1]
            out += [(rf"style\.{j + 1}\.{leaf}", tmpl.format(i=j), fn) for j in range(n_mlp)]
        else:
            out.append((pat, tmpl, fn))
    return out


def mean_latent(G: torch.nn.Module, n: int = MEAN_LATENT_SAMPLES, seed: int = 0) -> torch.Tensor:
    """Mean of the mapping over ``n`` fixed-seed normal z (generate.py's ``mean_latent``)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.z_dim, generator=g)
    with torch.no_grad():
        x = normalize_2nd_moment(z)
        for i in range(G.mapping.num_layers):
            x = getattr(G.mapping, f"fc{i}")(x)
    return x.mean(0)


def convert_checkpoint(ckpt: dict[str, Any], where: str = "checkpoint") -> Converted:
    """Pure conversion of a loaded rosinality checkpoint dict (takes ``g_ema``)."""
    sd = {str(k): v for k, v in ckpt["g_ema"].items()}
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ConversionError(f"{where}: g_ema entry {bad[0]} is not a tensor")
    cfg = infer_config(sd, where)
    size, style_dim, n_mlp, channels = cfg["size"], cfg["style_dim"], cfg["n_mlp"], cfg["channels"]
    rows, blur_keys = key_table(size)
    rows = _expand_style_rows(rows, n_mlp)

    taps = [1.0, 3.0, 3.0, 1.0]
    for i, key in enumerate(blur_keys):
        if key not in sd:
            raise ConversionError(f"{where}: g_ema has no {key}")
        t = blur_taps(sd.pop(key), f"{where}: {key}")
        if i and t != taps:
            raise ConversionError(f"{where}: {key} differs from the other blur kernels")
        taps = t

    compiled = [(re.compile(f"^{pat}$"), fn) for pat, _, fn in rows]
    values = {}
    for name, value in sd.items():
        fns = [fn for rx, fn in compiled if rx.match(name)]
        values[name] = fns[0](value.to(torch.float32)) if len(fns) == 1 else value
    tensors = strict_map(values, [(p, t) for p, t, _ in rows], where=f"{where}: g_ema key")

    kwargs: dict[str, Any] = dict(z_dim=style_dim, c_dim=0, w_dim=style_dim, img_resolution=size, img_channels=3,
                                  mapping_kwargs=dict(num_layers=n_mlp, layer_features=style_dim,
                                                      lr_multiplier=LR_MLP),
                                  resample_filter=[int(t) if float(t).is_integer() else t for t in taps],
                                  z_convention="torch")
    rule = _channels_rule(channels)
    if rule is not None:
        kwargs["channel_base"], kwargs["channel_max"] = rule
    else:
        kwargs["channels"] = {str(r): c for r, c in sorted(channels.items())}
    config = build_config("stylegan2", kwargs)
    filt = make_filter(kwargs["resample_filter"])
    for key in expected_tensors(config):
        if key.endswith("resample_filter"):
            tensors[key] = filt.clone()

    notes = ["converted from rosinality/stylegan2-pytorch g_ema; modulated-conv kernels pre-scaled by "
             "1/sqrt(fan_in); seeds follow torch.manual_seed(seed); torch.randn(1, style_dim)"]
    latent_avg = ckpt.get("latent_avg")
    if isinstance(latent_avg, torch.Tensor):
        if latent_avg.numel() != style_dim:
            raise ConversionError(f"{where}: latent_avg has {latent_avg.numel()} values, expected {style_dim}")
        tensors["mapping.w_avg"] = latent_avg.reshape(style_dim).to(torch.float32)
    else:
        from zoo.models.stylegan2 import StyleGAN2Generator

        G = StyleGAN2Generator(**kwargs)
        G.load_state_dict({**G.state_dict(), **tensors}, strict=True)
        tensors["mapping.w_avg"] = mean_latent(G)
        notes.append(f"no latent_avg in the checkpoint: w_avg is the mapping mean over {MEAN_LATENT_SAMPLES} "
                     "normal z drawn with seed 0")
    try:
        check_tensors(config, tensors, where=f"{where}: converted g_ema")
    except ValueError as e:
        raise ConversionError(str(e)) from None
    extra: dict[str, Any] = {"upstream_codebase": "rosinality-stylegan2-pytorch"}
    args = ckpt.get("args")
    if args is not None and isinstance(getattr(args, "state", None), dict):
        arch = args.state.get("arch")
        if arch not in (None, "stylegan2"):
            raise ConversionError(f"{where}: checkpoint was trained with --arch {arch}; only stylegan2 is supported")
    return Converted("stylegan2", kwargs, tensors, extra_config=extra, notes=notes)


def convert_file(path: Path) -> Converted:
    return convert_checkpoint(read_checkpoint(path), where=path.name)


def _sniff(path: Path, head: bytes) -> bool:
    if not path.is_file():
        return False
    if is_torch_zip(path):
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if not names:
                return False
            data = z.read(names[0])
        return b"g_ema" in data and b"noises.noise_0" in data
    # legacy (pre-zip) torch.save: the pickled dict with its keys precedes the tensor data
    return head[:2] == b"\x80\x02" and b"g_ema" in head and b"noises.noise_0" in head


register_format(SourceFormat(
    name="rosinality-pt",
    description="rosinality/stylegan2-pytorch checkpoint .pt (dict with g_ema)",
    sniff=_sniff,
    convert=convert_file,
    priority=30,
))
