"""microsoft/StyleSwin training checkpoints ``.pt`` -> ``styleswin`` common format.

Format facts (``train_styleswin.py``): ``torch.save({'g', 'd', 'g_ema', 'g_optim', 'd_optim', 'args'})`` with
``args`` an ``argparse.Namespace`` (read as a data-only stub). We take ``g_ema`` (``g`` is the training copy).
Everything the architecture needs is read off tensor shapes, since forks change upstream's hard-coded width
table: widths from ``qkv``, heads from the bias tables, windows from the index buffers, the MLP ratio from
``fc1``. The constant buffers (``relative_position_index``, ``attn_mask2``, the ToRGB FIR ``kernel``, the
positional embedding's ``_float_tensor`` dtype marker) are checked against what the architecture computes and
not stored. ``args`` is cross-checked (size, style_dim, n_mlp, mlp_ratio) when present.

The file is told apart from a rosinality StyleGAN2 ``.pt`` (same ``g_ema`` + ``args`` container) by its
Swin keys (``relative_position_bias_table``, ``blocks.0.qkv``) and the absence of ``noises.noise_0``.
No average latent is stored: ``w_avg`` is :func:`zoo.models.styleswin.mean_latent` (4096 z, seed 0), and the
recipe is recorded in config.json under ``w_avg_recipe``.
"""

from __future__ import annotations

import math
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from zoo.errors import ConversionError
from zoo.format import build_config, check_tensors
from zoo.models.ops import make_filter
from zoo.models.styleswin import (MEAN_LATENT_SAMPLES, MEAN_LATENT_SEED, StyleSwinGenerator, mean_latent,
                                  relative_position_index, shifted_window_mask)

from .base import Converted, SourceFormat, register_format, strict_map
from .safe_pickle import is_torch_zip, torch_safe_load

NAMESPACE = ("argparse", "Namespace")
LR_MLP = 0.01

_BLOCK = r"layers\.\d+\.blocks\.[01]\."
TABLE = [
    (r"style\.(\d+)\.(weight|bias)", r"mapping.style.\1.\2"),
    (r"input\.input", r"synthesis.input.input"),
    (rf"({_BLOCK}(?:norm[12]\.style|qkv|proj|mlp\.fc[12])\.(?:weight|bias))", r"synthesis.\1"),
    (rf"({_BLOCK}attn\.[01]\.relative_position_bias_table)", r"synthesis.\1"),
    (r"(layers\.\d+\.upsample\.(?:norm\.weight|norm\.bias|reduction\.weight|alpha))", r"synthesis.\1"),
    (r"(to_rgbs\.\d+\.(?:conv\.weight|conv\.bias|bias))", r"synthesis.\1"),
]
#: Constant buffers, compared with the architecture's own values before they are dropped.
CONSTANTS = [rf"{_BLOCK}attn\.[01]\.relative_position_index", rf"{_BLOCK}attn_mask2",
             r"to_rgbs\.\d+\.upsample\.kernel", r"layers\.\d+\.upsample\.sin_pos_embed\._float_tensor"]


def read_checkpoint(path: Path) -> dict[str, Any]:
    ckpt = torch_safe_load(path, stubs=[NAMESPACE], source=path.name)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("g_ema"), dict):
        keys = ", ".join(map(str, ckpt)) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ConversionError(f"{path.name}: expected a StyleSwin checkpoint dict with 'g_ema' (found: {keys})")
    return ckpt


def _args(ckpt: dict[str, Any]) -> dict[str, Any]:
    args = ckpt.get("args")
    state = getattr(args, "state", None)
    return dict(state) if isinstance(state, dict) else {}


def infer_config(sd: dict[str, torch.Tensor], where: str) -> dict[str, Any]:
    def need(key: str) -> torch.Tensor:
        if key not in sd:
            raise ConversionError(f"{where}: g_ema has no {key}; not a StyleSwin generator")
        return sd[key]

    if "noises.noise_0" in sd:
        raise ConversionError(f"{where}: g_ema has noises.noise_0: this is a rosinality StyleGAN2 checkpoint "
                              "(use --format rosinality-pt)")
    n_mlp = len([k for k in sd if re.fullmatch(r"style\.\d+\.weight", k)])
    style_dim = int(need("style.1.weight").shape[1])
    n_layers = len({int(m.group(1)) for k in sd if (m := re.fullmatch(r"layers\.(\d+)\.blocks\.0\.qkv\.weight", k))})
    if n_layers == 0:
        raise ConversionError(f"{where}: g_ema has no layers.N.blocks.0.qkv.weight; not a StyleSwin generator")
    channels, heads, windows, ratios = [], [], [], set()
    for k in range(n_layers):
        dim = int(need(f"layers.{k}.blocks.0.qkv.weight").shape[1])
        table = need(f"layers.{k}.blocks.0.attn.0.relative_position_bias_table")
        side = math.isqrt(int(table.shape[0]))
        if side * side != table.shape[0] or side % 2 == 0:
            raise ConversionError(f"{where}: layers.{k} bias table has {table.shape[0]} rows, not (2w-1)^2")
        channels.append(dim)
        heads.append(int(table.shape[1]))
        windows.append((side + 1) // 2)
        ratios.add(need(f"layers.{k}.blocks.0.mlp.fc1.weight").shape[0] / dim)
    if len(ratios) != 1:
        raise ConversionError(f"{where}: MLP ratios differ between layers ({sorted(ratios)}); upstream uses one")
    ratio = ratios.pop()
    qkv_bias = "layers.0.blocks.0.qkv.bias" in sd
    return dict(size=2 ** (n_layers + 1), style_dim=style_dim, n_mlp=n_mlp, channels=channels,
                heads_per_attention=heads, window_sizes=windows,
                mlp_ratio=int(ratio) if float(ratio).is_integer() else ratio, qkv_bias=qkv_bias)


def _check_args(cfg: dict[str, Any], args: dict[str, Any], where: str) -> float:
    """``lr_mlp`` from the run's args; the shape-derived config must agree with what args state."""
    for key in ("size", "style_dim", "n_mlp", "mlp_ratio"):
        if key in args and args[key] is not None and args[key] != cfg[key]:
            raise ConversionError(f"{where}: args.{key}={args[key]} but the g_ema tensors say {cfg[key]}: "
                                  "the checkpoint is inconsistent or from a modified StyleSwin")
    lr = args.get("lr_mlp", LR_MLP)
    return float(lr) if isinstance(lr, (int, float)) else LR_MLP


def _check_constants(sd: dict[str, torch.Tensor], G: StyleSwinGenerator, where: str) -> None:
    syn = G.synthesis
    for k, layer in enumerate(syn.layers):
        for j, block in enumerate(layer.blocks):
            pre = f"layers.{k}.blocks.{j}"
            for a in range(2):
                key = f"{pre}.attn.{a}.relative_position_index"
                if key not in sd or not torch.equal(sd[key].to(torch.int64), relative_position_index(block.window)):
                    raise ConversionError(f"{where}: {key} is missing or not Swin's relative index for window "
                                          f"{block.window}")
            key = f"{pre}.attn_mask2"
            if block.shift > 0:
                ref = shifted_window_mask(block.resolution, block.window, block.shift)
                if key not in sd or sd[key].shape != ref.shape or not torch.equal(sd[key].to(torch.float32), ref):
                    raise ConversionError(f"{where}: {key} is missing or differs from the shifted-window mask "
                                          f"(resolution {block.resolution}, window {block.window}, "
                                          f"shift {block.shift})")
            elif key in sd:
                raise ConversionError(f"{where}: {key} exists but layer {k} (resolution {block.resolution}, window "
                                      f"{block.window}) has no shifted windows upstream")
    kernel = make_filter([1, 3, 3, 1]) * 4
    for key in [k for k in sd if re.fullmatch(r"to_rgbs\.\d+\.upsample\.kernel", k)]:
        if sd[key].shape != kernel.shape or not torch.allclose(sd[key].to(torch.float32), kernel, atol=1e-7):
            raise ConversionError(f"{where}: {key} is not the [1, 3, 3, 1] upsampling kernel")


def convert_checkpoint(ckpt: dict[str, Any], where: str = "checkpoint") -> Converted:
    """Pure conversion of a loaded StyleSwin checkpoint dict (takes ``g_ema``)."""
    sd = {str(k): v for k, v in ckpt["g_ema"].items()}
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ConversionError(f"{where}: g_ema entry {bad[0]} is not a tensor")
    cfg = infer_config(sd, where)
    args = _args(ckpt)
    lr_mlp = _check_args(cfg, args, where)
    kwargs: dict[str, Any] = dict(cfg, lr_mlp=lr_mlp, qk_scale=None)
    config = build_config("styleswin", kwargs)
    G = StyleSwinGenerator(**kwargs)
    _check_constants(sd, G, where)
    tensors = strict_map(sd, TABLE, ignore=CONSTANTS, where=f"{where}: g_ema key")
    tensors = {k: v.to(torch.float32) for k, v in tensors.items()}
    tensors["mapping.w_avg"] = torch.zeros(cfg["style_dim"])
    try:
        check_tensors(config, tensors, where=f"{where}: converted g_ema")
    except ValueError as e:
        raise ConversionError(str(e)) from None
    G.load_state_dict(tensors, strict=True)
    tensors["mapping.w_avg"] = mean_latent(G, MEAN_LATENT_SAMPLES, MEAN_LATENT_SEED)
    recipe = {"samples": MEAN_LATENT_SAMPLES, "seed": MEAN_LATENT_SEED,
              "how": "mean of mapping(z) over z = torch.randn(samples, style_dim) after torch.manual_seed(seed) "
                     "(rosinality mean_latent recipe); StyleSwin checkpoints store no average latent"}
    notes = ["converted StyleSwin g_ema; output de-normalised from ImageNet statistics to [-1, 1]; seeds follow "
             "torch.manual_seed(seed); torch.randn(1, style_dim)",
             f"no average latent in the checkpoint: w_avg is the mapping mean over {MEAN_LATENT_SAMPLES} z "
             f"(seed {MEAN_LATENT_SEED}); pass truncation_latent= for another centre"]
    extra = {"upstream_codebase": "microsoft/StyleSwin", "w_avg_recipe": recipe}
    return Converted("styleswin", kwargs, tensors, extra_config=extra, notes=notes)


def convert_file(path: Path) -> Converted:
    return convert_checkpoint(read_checkpoint(path), where=path.name)


def _looks_like(data: bytes) -> bool:
    return (b"g_ema" in data and b"relative_position_bias_table" in data and b"blocks.0.qkv.weight" in data
            and b"noises.noise_0" not in data)


def _sniff(path: Path, head: bytes) -> bool:
    if not path.is_file():
        return False
    if is_torch_zip(path):
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            return bool(names) and _looks_like(z.read(names[0]))
    return head[:2] == b"\x80\x02" and _looks_like(head)


register_format(SourceFormat(
    name="styleswin-pt",
    description="microsoft/StyleSwin training checkpoint .pt (dict with g_ema + args)",
    sniff=_sniff,
    convert=convert_file,
    priority=28,
))
