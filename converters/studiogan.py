"""PyTorch-StudioGAN run checkpoints -> common format (architecture ``studiogan``).

A run folder, as StudioGAN's ``WORKER.save`` (``utils/misc.save_model``) writes it and as the released
checkpoints are downloaded: ``model=G-{best,current}-weights-step=N.pth`` (``{"state_dict", "optimizer"}``),
``model=G_ema-...pth`` (``{"state_dict"}``, written when ``apply_g_ema``), ``model=D-...pth`` (discriminator plus
run metadata) and the run's YAML config. The ``.pth`` files say nothing about the architecture: the YAML, merged
over StudioGAN's defaults (:data:`STUDIOGAN_DEFAULTS`), gives backbone, conditioning, activation, attention
locations and depth; tensor shapes give the widths. G_ema is converted when present (StudioGAN samples and
evaluates with it). The generator files load with ``torch.load(weights_only=True)``; the D file is never read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import torch

from zoo.errors import ConversionError
from zoo.imagenet import imagenet_class_names
from zoo.models.studiogan import AFHQ_CLASSES, BACKBONES, CIFAR10_CLASSES, DEEP_BACKBONES, StudioGANGenerator

from .base import Converted, SourceFormat, register_format, strict_map
from .safe_pickle import torch_safe_load
from .statedict import pickle_strings

#: The defaults this converter needs, from ``Configurations.load_base_cfgs`` in PyTorch-StudioGAN
#: ``src/config.py`` (commit 947b35e). Keys absent from a run's YAML take these values.
STUDIOGAN_DEFAULTS: dict[str, dict[str, Any]] = {
    "DATA": {"name": "CIFAR10", "img_size": 32, "num_classes": 10, "img_channels": 3},
    "MODEL": {"backbone": "resnet", "g_cond_mtd": "W/O", "apply_g_sn": False, "g_act_fn": "ReLU",
              "apply_attn": False, "attn_g_loc": ["N/A"], "z_prior": "gaussian", "z_dim": 128,
              "g_shared_dim": "N/A", "g_conv_dim": 64, "g_depth": "N/A", "apply_g_ema": False,
              "info_type": "N/A", "g_info_injection": "N/A"},
}
#: Resolution -> number of resolution groups of the resnet-style generators (``g_in_dims_collection``).
GROUPS_BY_SIZE = {32: 3, 64: 4, 128: 5, 256: 6, 512: 7}
#: Backbone names of earlier StudioGAN releases (``models/deep_big_resnet.py`` became the legacy file in 2022).
BACKBONE_ALIASES = {"deep_big_resnet": "big_resnet_deep_legacy"}

CKPT_NAME = re.compile(r"^model=(G|G_ema|D)-(best|current)-weights-step=(\d+)\.pth$")
_W = r"(weight|bias|weight_orig|weight_u|weight_v)"
_BN = r"(running_mean|running_var|weight|bias)"
STUDIOGAN_TABLE: list[tuple[str, str]] = [
    (rf"linear0\.{_W}", r"linear0.\1"),
    (r"shared\.weight", r"shared.weight"),
    (rf"blocks\.(\d+)\.0\.(deconv0|conv2d[0-4])\.{_W}", r"blocks.\1.0.\2.\3"),
    (rf"blocks\.(\d+)\.0\.(bn[0-4])\.{_BN}", r"blocks.\1.0.\2.\3"),
    (r"blocks\.(\d+)\.0\.(bn[0-4])\.bn\.(running_mean|running_var)", r"blocks.\1.0.\2.bn.\3"),
    (rf"blocks\.(\d+)\.0\.(bn[0-4])\.(gain|bias)\.{_W}", r"blocks.\1.0.\2.\3.\4"),
    (rf"blocks\.(\d+)\.0\.conv1x1_(theta|phi|g|attn)\.{_W}", r"blocks.\1.0.conv1x1_\2.\3"),
    (r"blocks\.(\d+)\.0\.sigma", r"blocks.\1.0.sigma"),
    (rf"bn4\.{_BN}", r"bn4.\1"),
    (rf"(conv2d5|conv4)\.{_W}", r"\1.\2"),
]
IGNORED = [r".*num_batches_tracked"]  # BatchNorm step counters: no effect in eval mode


# --- run config ------------------------------------------------------------------------------------------------

def read_run_config(path: Path) -> dict[str, Any]:
    """The run's YAML (safe loader), checked to look like a StudioGAN config."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        first = (str(e).splitlines() or [""])[0]
        raise ConversionError(f"{path.name} is not a readable YAML config ({first})") from None
    if not isinstance(data, dict) or not any(k in data for k in ("MODEL", "DATA")):
        raise ConversionError(f"{path.name} is not a StudioGAN run config: it has no DATA/MODEL sections")
    return data


def merged_config(run_cfg: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``run_cfg`` over :data:`STUDIOGAN_DEFAULTS` (section by section, as ``Configurations._overwrite_cfgs``)."""
    out = {sec: dict(vals) for sec, vals in STUDIOGAN_DEFAULTS.items()}
    for sec in out:
        given = run_cfg.get(sec) or {}
        if not isinstance(given, dict):
            raise ConversionError(f"run config section {sec} must be a mapping")
        out[sec].update(given)
    return out


# --- the source files ------------------------------------------------------------------------------------------

def _pick_generator(folder: Path) -> Path:
    ckpts = [(p, CKPT_NAME.match(p.name)) for p in sorted(folder.iterdir()) if p.is_file()]
    ckpts = [(p, m) for p, m in ckpts if m]
    for kind in ("G_ema", "G"):
        for tag in ("best", "current"):
            found = [p for p, m in ckpts if m.group(1) == kind and m.group(2) == tag]
            if len(found) > 1:
                raise ConversionError(f"{folder.name} holds several {kind} {tag} checkpoints "
                                      f"({', '.join(p.name for p in found)}); convert one file with --config")
            if found:
                return found[0]
    if any(m.group(1) == "D" for _, m in ckpts):
        raise ConversionError(f"{folder.name} holds only a StudioGAN discriminator (model=D-...); the generator "
                              "file model=G_ema-...pth or model=G-...pth is needed")
    raise ConversionError(f"{folder.name} has no StudioGAN generator checkpoint (model=G_ema-...pth / model=G-...pth)")


def _find_config(folder: Path) -> Path:
    yamls = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".yaml", ".yml"))
    if len(yamls) == 1:
        return yamls[0]
    if not yamls:
        raise ConversionError(f"no run config next to the checkpoint in {folder.name}: pass --config RUN.yaml "
                              "(the YAML the run was trained with, from StudioGAN's src/configs/)")
    raise ConversionError(f"{folder.name} holds several YAML files ({', '.join(p.name for p in yamls)}): "
                          "pass --config RUN.yaml")


def source_files(path: Path, config: str | Path | None) -> tuple[Path, Path]:
    """``(generator checkpoint, run YAML)`` for a run folder or a G/G_ema file."""
    if path.is_dir():
        weights = _pick_generator(path)
    else:
        m = CKPT_NAME.match(path.name)
        if m and m.group(1) == "D":
            raise ConversionError(f"{path.name} is a StudioGAN discriminator checkpoint: convert the generator "
                                  f"model=G_ema-{m.group(2)}-weights-step={m.group(3)}.pth (or model=G-...) instead")
        weights = path
    cfg = Path(config) if config is not None else _find_config(weights.parent)
    if not cfg.is_file():
        raise ConversionError(f"run config {cfg} does not exist")
    return weights, cfg


def load_generator_state(weights: Path) -> dict[str, torch.Tensor]:
    obj = torch_safe_load(weights)
    sd = obj.get("state_dict") if isinstance(obj, dict) else None
    if not isinstance(sd, Mapping) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ConversionError(f"{weights.name}: expected a StudioGAN checkpoint dict with a 'state_dict' of tensors")
    sd = dict(sd)
    if all(k.startswith("module.") for k in sd):  # saved from a DataParallel/DDP wrapper
        sd = {k[len("module."):]: v for k, v in sd.items()}
    if any(k.startswith(("mapping.", "synthesis.")) for k in sd):
        raise ConversionError(f"{weights.name} is a StudioGAN StyleGAN generator (mapping/synthesis): its "
                              "stylegan2/stylegan3 backbones keep NVIDIA's module layout as a bare state dict, which "
                              "ganzoo's stylegan2/stylegan3 families do not read yet (they read NVIDIA pickles)")
    return sd


# --- the architecture ------------------------------------------------------------------------------------------

def _w(sd: Mapping[str, torch.Tensor], prefix: str) -> torch.Tensor | None:
    return sd.get(prefix + ".weight_orig", sd.get(prefix + ".weight"))


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConversionError(f"run config: {what} must be an integer, got {value!r}") from None


def architecture_kwargs(sd: Mapping[str, torch.Tensor], cfg: Mapping[str, Mapping[str, Any]],
                        where: str) -> dict[str, Any]:
    """``StudioGANGenerator`` arguments: switches from the merged config, widths from the tensor shapes."""
    data, model = cfg["DATA"], cfg["MODEL"]
    backbone = BACKBONE_ALIASES.get(str(model["backbone"]), str(model["backbone"]))
    if backbone in ("stylegan2", "stylegan3"):
        raise ConversionError(f"{where}: backbone {backbone!r} is StudioGAN's port of NVIDIA's StyleGAN, not a "
                              "studiogan-family generator (its state dict is not convertible yet)")
    if backbone not in BACKBONES:
        raise ConversionError(f"{where}: unknown StudioGAN backbone {backbone!r}; supported: {', '.join(BACKBONES)}")
    if str(model["info_type"]) != "N/A":
        raise ConversionError(f"{where}: InfoGAN runs (MODEL.info_type {model['info_type']!r}) are not supported: "
                              "their generator takes extra latent codes")
    cond = str(model["g_cond_mtd"])
    if cond not in ("W/O", "cBN"):
        raise ConversionError(f"{where}: g_cond_mtd {cond!r} is not a conditioning of these backbones (W/O or cBN)")
    if str(model["g_act_fn"]) not in ("ReLU", "Leaky_ReLU", "ELU", "GELU"):
        raise ConversionError(f"{where}: g_act_fn {model['g_act_fn']!r} is not supported")
    img_size = _int(data["img_size"], "DATA.img_size")
    num_classes = _int(data["num_classes"], "DATA.num_classes")
    z_dim = _int(model["z_dim"], "MODEL.z_dim")
    if _int(data.get("img_channels", 3), "DATA.img_channels") != 3:
        raise ConversionError(f"{where}: these generators always write 3 channels; DATA.img_channels differs")
    has_sn = any(k.endswith(".weight_orig") for k in sd)
    if has_sn != bool(model["apply_g_sn"]):
        raise ConversionError(f"{where}: the run config says apply_g_sn {bool(model['apply_g_sn'])} but the "
                              f"checkpoint {'has' if has_sn else 'has no'} spectral norm (weight_orig/u/v): "
                              "wrong YAML for this checkpoint?")
    attn = bool(model["apply_attn"])
    attn_loc = [a for a in (model["attn_g_loc"] or []) if a != "N/A"]
    attn_loc = [_int(a, "MODEL.attn_g_loc") for a in attn_loc] if attn else []
    if backbone == "deep_conv":
        groups, depth = 3, 1
    else:
        if img_size not in GROUPS_BY_SIZE:
            raise ConversionError(f"{where}: img_size {img_size} is not one StudioGAN builds "
                                  f"({', '.join(map(str, GROUPS_BY_SIZE))})")
        groups = GROUPS_BY_SIZE[img_size]
        depth = _int(model["g_depth"], "MODEL.g_depth (BigGAN-deep)") if backbone in DEEP_BACKBONES else 1

    blocks: list[list[Any]] = []
    for group in range(groups):
        for d in range(depth):
            k = len(blocks)
            if backbone == "deep_conv":
                w = _w(sd, f"blocks.{k}.0.deconv0")
                spec = None if w is None else ["block", int(w.shape[0]), int(w.shape[1]), True]
            elif backbone in DEEP_BACKBONES:
                w1, w4 = _w(sd, f"blocks.{k}.0.conv2d1"), _w(sd, f"blocks.{k}.0.conv2d4")
                spec = None if w1 is None or w4 is None else ["block", int(w1.shape[1]), int(w4.shape[0]),
                                                                d == depth - 1]
            else:
                w = _w(sd, f"blocks.{k}.0.conv2d1")
                spec = None if w is None else ["block", int(w.shape[1]), int(w.shape[0]), True]
            if spec is None:
                raise ConversionError(f"{where}: no generator block at blocks.{k} (backbone {backbone}, img_size "
                                      f"{img_size}, attn_g_loc {attn_loc}, g_depth {model['g_depth']}): the YAML "
                                      "does not describe this checkpoint")
            blocks.append(spec)
        if group + 1 in attn_loc:
            k = len(blocks)
            w = _w(sd, f"blocks.{k}.0.conv1x1_theta")
            if w is None:
                raise ConversionError(f"{where}: the run config puts self-attention at blocks.{k} (attn_g_loc "
                                      f"{attn_loc}) but the checkpoint has none there")
            blocks.append(["attn", int(w.shape[1])])
    extra_blocks = sorted({int(k.split(".")[1]) for k in sd if k.startswith("blocks.")} - set(range(len(blocks))))
    if extra_blocks:
        raise ConversionError(f"{where}: the checkpoint has blocks {extra_blocks} that the run config does not "
                              f"build (apply_attn {attn}, attn_g_loc {attn_loc}, g_depth {model['g_depth']})")

    shared = sd.get("shared.weight")
    uses_shared = cond == "cBN" and backbone not in ("resnet", "deep_conv")
    if uses_shared and shared is None:
        raise ConversionError(f"{where}: g_cond_mtd cBN on {backbone} needs the class embedding shared.weight, "
                              "which the checkpoint lacks")
    g_shared_dim = 0
    if uses_shared:
        if int(shared.shape[0]) != num_classes:
            raise ConversionError(f"{where}: shared.weight has {shared.shape[0]} classes but DATA.num_classes is "
                                  f"{num_classes}")
        g_shared_dim = int(shared.shape[1])
    lin = _w(sd, "linear0")
    if lin is None:
        raise ConversionError(f"{where}: no linear0 weight: not a StudioGAN generator state dict")
    linear0_in = int(lin.shape[1])
    n_gen = sum(1 for b in blocks if b[0] == "block")
    expect = {"big_resnet": [z_dim // (n_gen + 1)], "resnet": [z_dim], "deep_conv": [z_dim]}.get(
        backbone, [z_dim, z_dim + g_shared_dim])
    if linear0_in not in expect:
        raise ConversionError(f"{where}: linear0 reads {linear0_in} features but z_dim {z_dim} on {backbone} gives "
                              f"{' or '.join(map(str, expect))}: wrong MODEL.z_dim in the run config?")
    return dict(backbone=backbone, img_size=img_size, z_dim=z_dim, num_classes=num_classes, g_cond_mtd=cond,
                g_shared_dim=g_shared_dim, apply_g_sn=has_sn, g_act_fn=str(model["g_act_fn"]), blocks=blocks,
                linear0_in=linear0_in)


def _class_names(cfg: Mapping[str, Mapping[str, Any]], kwargs: Mapping[str, Any]) -> list[str] | None:
    if kwargs["g_cond_mtd"] != "cBN":
        return None
    name, n = str(cfg["DATA"]["name"]), int(kwargs["num_classes"])
    if name == "CIFAR10" and n == 10:
        return list(CIFAR10_CLASSES)
    if name == "AFHQv2" and n == 3:
        return list(AFHQ_CLASSES)
    if name == "ImageNet" and n == 1000:
        return imagenet_class_names()
    return None


def convert_state_dict(sd: Mapping[str, torch.Tensor], run_cfg: Mapping[str, Any],
                       where: str = "checkpoint") -> Converted:
    """Pure conversion: a StudioGAN generator state dict + its run YAML (as a dict) -> ``studiogan`` tensors."""
    cfg = merged_config(run_cfg)
    kwargs = architecture_kwargs(sd, cfg, where)
    tensors = strict_map(sd, STUDIOGAN_TABLE, ignore=IGNORED, where=where)
    expected = {k: tuple(v.shape) for k, v in StudioGANGenerator(**kwargs).state_dict().items()}
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in set(expected) & set(tensors) if tuple(tensors[k].shape) != expected[k])
    if missing or unexpected or wrong:
        parts = [f"missing {', '.join(missing[:6])}" if missing else "",
                 f"unexpected {', '.join(unexpected[:6])}" if unexpected else "",
                 f"wrong shape {', '.join(wrong[:6])}" if wrong else ""]
        raise ConversionError(f"{where}: the checkpoint does not match the {kwargs['backbone']} generator its run "
                              f"config describes ({'; '.join(p for p in parts if p)})")
    tensors = {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in tensors.items()}
    model = cfg["MODEL"]
    extra = {"studiogan": {"backbone": str(model["backbone"]), "g_cond_mtd": kwargs["g_cond_mtd"],
                           "z_prior": str(model["z_prior"]), "dataset": str(cfg["DATA"]["name"])}}
    notes = []
    if kwargs["apply_g_sn"]:
        notes.append("spectral-norm u/v kept as stored (eval-mode semantics of torch.nn.utils.spectral_norm)")
    if str(model["z_prior"]) != "gaussian":
        notes.append(f"the run used z_prior {model['z_prior']!r}; ganzoo's seed recipe draws a gaussian z")
    return Converted("studiogan", kwargs, tensors, class_names=_class_names(cfg, kwargs), extra_config=extra,
                     notes=notes)


def convert_path(path: Path, config: str | Path | None = None) -> Converted:
    weights, cfg_path = source_files(path, config)
    run_cfg = read_run_config(cfg_path)
    sd = load_generator_state(weights)
    converted = convert_state_dict(sd, run_cfg, where=weights.name)
    m = CKPT_NAME.match(weights.name)
    if m and m.group(1) == "G":
        ema = weights.with_name(weights.name.replace("model=G-", "model=G_ema-", 1))
        if ema.is_file():
            converted.notes.append(f"converted the training generator {weights.name}; StudioGAN samples with "
                                   f"{ema.name}, which sits beside it (convert that file or the run folder)")
        elif bool(merged_config(run_cfg)["MODEL"]["apply_g_ema"]) and path.is_dir():
            converted.notes.append("the run config has apply_g_ema but no model=G_ema file was found: converted G")
    converted.notes.insert(0, f"generator {weights.name}, run config {cfg_path.name}")
    return converted


_G_KEYS = ("linear0.weight", "linear0.weight_orig")


def _sniff(path: Path, head: bytes) -> bool:
    if path.is_dir():
        return any(CKPT_NAME.match(p.name) for p in path.iterdir() if p.is_file())
    if CKPT_NAME.match(path.name):
        return True
    if not path.name.endswith((".pth", ".pt")):
        return False
    strings = set(pickle_strings(path, head))
    return "state_dict" in strings and any(k in strings for k in _G_KEYS) and \
        any(s.startswith(("conv2d5.", "conv4.")) for s in strings)


register_format(SourceFormat(
    name="studiogan",
    description="PyTorch-StudioGAN run folder (model=G_ema/G-...pth + run YAML) or a G/G_ema .pth with --config",
    sniff=_sniff,
    convert=convert_path,
    priority=15,
    options=("config",),
))
