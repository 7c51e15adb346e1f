"""MobileStyleGAN PyTorch Lightning ``.ckpt`` -> ``mobilestylegan`` common format.

Format facts (bes-dev/MobileStyleGAN.pytorch ``train.py`` + PyTorch Lightning 1.0.2 ``dump_checkpoint``):
``torch.save`` of ``{'epoch', 'global_step', 'pytorch-lightning_version', 'callbacks', 'optimizer_states',
'lr_schedulers', 'state_dict'}``. ``callbacks`` is keyed by the class object
``pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint``; it is read as a data-only stub and never
imported. ``state_dict`` is the whole ``core.distiller.Distiller``; we keep

* ``student.*``: the distilled synthesis network users generate with (``generate.py``'s default);
* ``mapping_net.layers.{1..n}.*``: the StyleGAN2 mapping (``layers.0`` is the parameter-free PixelNorm);
* ``style_mean``: the truncation centre. Checkpoints written before the W+ change (dc2057f, Aug 2021; the
  published ``mobilestylegan_ffhq.ckpt`` came with 238eb11) store ``[1, D]``; later ones ``[1, wsize, D]``
  with equal rows (2d18a80 onwards). Upstream HEAD's ``load_weights`` silently drops a ``[1, D]`` value
  (shape mismatch) and keeps a fresh random recomputation; we always use the stored value.

and account for the rest as ignored: ``synthesis_net.*`` (the StyleGAN2 teacher), ``loss.*`` (VGG features,
discriminator, DWT/IDWT filters of the loss), ``inception.*`` (FID network), ``device_info`` buffers.
Widths come from tensor shapes; the Haar filters must be the db1 synthesis filters.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from zoo.errors import ConversionError
from zoo.format import build_config, check_tensors, expected_tensors
from zoo.models.mobilestylegan import haar_filters

from .base import Converted, SourceFormat, register_format, strict_map
from .safe_pickle import is_torch_zip, torch_safe_load

MODEL_CHECKPOINT = ("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint")
#: Other Lightning callback classes a ``callbacks`` dict may be keyed by (stubs only, never imported).
CALLBACK_STUBS = [MODEL_CHECKPOINT, ("pytorch_lightning.callbacks.early_stopping", "EarlyStopping")]
#: MappingNetwork's default lr multiplier (configs never change it; it is not stored).
LR_MLP = 0.01

IGNORED = [r"synthesis_net\..*", r"loss\..*", r"inception\..*", r"device_info", r"student\.device_info"]
TABLE = [
    (r"mapping_net\.layers\.(\d+)\.(weight|bias)", r"mapping.layers.\1.\2"),
    (r"student\.((?!device_info$).+)", r"synthesis.\1"),
]


def read_checkpoint(path: Path) -> dict[str, Any]:
    ckpt = torch_safe_load(path, stubs=CALLBACK_STUBS, source=path.name)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        keys = ", ".join(map(str, ckpt)) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ConversionError(f"{path.name}: expected a PyTorch Lightning checkpoint with 'state_dict' "
                              f"(found: {keys})")
    return ckpt


def infer_config(sd: dict[str, torch.Tensor], where: str) -> dict[str, Any]:
    def need(key: str) -> torch.Tensor:
        if key not in sd:
            raise ConversionError(f"{where}: state_dict has no {key}; not a MobileStyleGAN Distiller checkpoint")
        return sd[key]

    n_mlp = len([k for k in sd if re.fullmatch(r"mapping_net\.layers\.\d+\.weight", k)])
    if n_mlp == 0:
        raise ConversionError(f"{where}: state_dict has no mapping_net.layers.N.weight")
    style_dim = int(need("mapping_net.layers.1.weight").shape[1])
    channels = [int(need("student.input.input").shape[1])]
    i = 0
    while f"student.layers.{i}.conv2.conv.weight_permute" in sd:
        channels.append(int(sd[f"student.layers.{i}.conv2.conv.weight_permute"].shape[0]))
        i += 1
    if i == 0:
        raise ConversionError(f"{where}: student has no layers.N blocks (student.layers.0.conv2.conv.weight_permute "
                              "missing); not a MobileSynthesisNetwork")
    if "student.layers.0.conv1.conv.weight" in sd:
        raise ConversionError(f"{where}: student blocks use full (not depthwise) modulated convolutions; only "
                              "upstream's ModulatedDWConv2d student is supported")
    return dict(style_dim=style_dim, n_mlp=n_mlp, channels=channels)


def _style_mean(value: Any, num_ws: int, style_dim: int, where: str) -> tuple[torch.Tensor, str]:
    if not isinstance(value, torch.Tensor):
        raise ConversionError(f"{where}: state_dict has no style_mean tensor (the truncation centre)")
    v = value.to(torch.float32)
    if tuple(v.shape) in ((style_dim,), (1, style_dim)):
        return v.reshape(style_dim), f"style_mean [1, {style_dim}] (checkpoint written before W+ support)"
    if tuple(v.shape) == (1, num_ws, style_dim):
        rows = v[0]
        if not torch.equal(rows, rows[:1].expand_as(rows)):
            spread = (rows - rows[:1]).abs().max().item()
            raise ConversionError(f"{where}: style_mean [1, {num_ws}, {style_dim}] has different rows (max-abs "
                                  f"{spread:.3g}): a per-layer mean from the short-lived dc2057f code, which this "
                                  "converter does not support (expected equal rows or [1, D])")
        return rows[0].clone(), f"style_mean [1, {num_ws}, {style_dim}] with equal rows (W+ era checkpoint)"
    raise ConversionError(f"{where}: style_mean has shape {list(v.shape)}; expected [1, {style_dim}] or "
                          f"[1, {num_ws}, {style_dim}]")


def _source_name(key: str) -> str:
    """The checkpoint key a converted tensor name comes from (for error messages)."""
    if key.startswith("synthesis."):
        return "student." + key[len("synthesis."):]
    if key == "mapping.w_avg":
        return "style_mean"
    return "mapping_net." + key[len("mapping."):]


def convert_checkpoint(ckpt: dict[str, Any], where: str = "checkpoint") -> Converted:
    """Pure conversion of a loaded Lightning checkpoint dict (student + mapping + style_mean)."""
    sd = {str(k): v for k, v in ckpt["state_dict"].items()}
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ConversionError(f"{where}: state_dict entry {bad[0]} is not a tensor")
    cfg = infer_config(sd, where)
    kwargs: dict[str, Any] = dict(style_dim=cfg["style_dim"], n_mlp=cfg["n_mlp"], channels=cfg["channels"],
                                  lr_mlp=LR_MLP)
    config = build_config("mobilestylegan", kwargs)
    w_avg, layout = _style_mean(sd.pop("style_mean", None), config["num_ws"], cfg["style_dim"], where)

    haar = haar_filters()
    for key in [k for k in sd if re.fullmatch(r"student\.(?:.+\.)?idwt\.g[01]_(?:col|row)", k)]:
        ref = haar[key.rsplit(".", 1)[1]]
        if sd[key].shape != ref.shape or not torch.allclose(sd[key].to(torch.float32), ref, atol=1e-6):
            raise ConversionError(f"{where}: {key} is not the Haar (db1) synthesis filter; only upstream's "
                                  "DWTInverse(wave='db1') is supported")

    tensors = strict_map(sd, TABLE, ignore=IGNORED, where=f"{where}: state_dict key")
    tensors = {k: v.to(torch.float32) for k, v in tensors.items()}
    tensors["mapping.w_avg"] = w_avg
    expected = expected_tensors(config)
    unknown = sorted(_source_name(k) for k in set(tensors) - set(expected))
    missing = sorted(_source_name(k) for k in set(expected) - set(tensors))
    if unknown or missing:
        parts = ([f"unrecognised {', '.join(unknown[:6])}"] if unknown else []) + \
            ([f"missing {', '.join(missing[:6])}"] if missing else [])
        raise ConversionError(f"{where}: the student/mapping differ from upstream's MobileStyleGAN layout for "
                              f"channels {cfg['channels']}: {'; '.join(parts)}")
    try:
        check_tensors(config, tensors, where=f"{where}: converted student")
    except ValueError as e:
        raise ConversionError(str(e)) from None
    notes = [f"converted the MobileStyleGAN student + mapping network; truncation centre from {layout}; the "
             "StyleGAN2 teacher (synthesis_net.*) is not converted",
             "seeds follow torch.manual_seed(seed); torch.randn(1, style_dim); no constant noise exists upstream: "
             "noise_mode none/const is zero noise, random draws upstream's fresh noise"]
    extra = {"upstream_codebase": "bes-dev/MobileStyleGAN.pytorch",
             "pytorch_lightning_version": str(ckpt.get("pytorch-lightning_version", "unknown")),
             "style_mean_layout": layout}
    return Converted("mobilestylegan", kwargs, tensors, extra_config=extra, notes=notes)


def convert_file(path: Path) -> Converted:
    return convert_checkpoint(read_checkpoint(path), where=path.name)


def _sniff(path: Path, head: bytes) -> bool:
    if not path.is_file():
        return False
    if not is_torch_zip(path):  # legacy torch.save: the pickled dict and its keys precede the tensor data
        return head[:2] == b"\x80\x02" and b"pytorch-lightning_version" in head and b"student.input.input" in head
    with zipfile.ZipFile(path) as z:
        names = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if not names:
            return False
        data = z.read(names[0])
    return b"pytorch-lightning_version" in data and b"student.input.input" in data and b"mapping_net.layers" in data


register_format(SourceFormat(
    name="mobilestylegan-ckpt",
    description="MobileStyleGAN PyTorch Lightning .ckpt (Distiller: student + mapping + style_mean)",
    sniff=_sniff,
    convert=convert_file,
    priority=25,
))
