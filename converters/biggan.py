"""Hugging Face pytorch-pretrained-BigGAN checkpoints -> common format (architecture ``biggan-deep``).

The upstream model is two files (``BigGAN.from_pretrained`` and ``convert_tf_to_pytorch.py``):
``pytorch_model.bin``, a torch.save'd ``state_dict`` (legacy serialisation), and ``config.json``, a
``BigGANConfig`` (``output_dim``, ``z_dim``, ``class_embed_dim``, ``channel_width``, ``num_classes``,
``layers`` as ``[up, in_mult, out_mult]``, ``attention_layer_position``, ``eps``, ``n_stats``). The S3
release names the pair ``biggan-deep-N-pytorch_model.bin`` / ``biggan-deep-N-config.json``.

Accepted inputs: a folder holding both files, or the ``.bin`` file with its config beside it (either
``config.json`` or the S3-style ``<prefix>-config.json``). State-dict names are kept unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from zoo.errors import ConversionError
from zoo.imagenet import imagenet_class_names

from .base import Converted, SourceFormat, register_format, strict_map
from .safe_pickle import torch_safe_load

WEIGHTS_NAME = "pytorch_model.bin"
CONFIG_NAME = "config.json"
CONFIG_KEYS = ("output_dim", "z_dim", "channel_width", "num_classes", "layers", "attention_layer_position",
               "n_stats")
OPTIONAL_DEFAULTS: dict[str, Any] = {"class_embed_dim": 128, "eps": 1e-4}

_SN = r"(weight_orig|weight_u|weight_v)"
BIGGAN_TABLE: list[tuple[str, str]] = [
    (r"embeddings\.weight", r"embeddings.weight"),
    (rf"generator\.gen_z\.({_SN[1:-1]}|bias)", r"generator.gen_z.\1"),
    (r"generator\.layers\.(\d+)\.bn_([0-3])\.(running_means|running_vars)", r"generator.layers.\1.bn_\2.\3"),
    (rf"generator\.layers\.(\d+)\.bn_([0-3])\.(scale|offset)\.{_SN}", r"generator.layers.\1.bn_\2.\3.\4"),
    (rf"generator\.layers\.(\d+)\.conv_([0-3])\.({_SN[1:-1]}|bias)", r"generator.layers.\1.conv_\2.\3"),
    (r"generator\.layers\.(\d+)\.gamma", r"generator.layers.\1.gamma"),
    (rf"generator\.layers\.(\d+)\.snconv1x1_(theta|phi|g|o_conv)\.{_SN}", r"generator.layers.\1.snconv1x1_\2.\3"),
    (r"generator\.bn\.(weight|bias|running_means|running_vars)", r"generator.bn.\1"),
    (rf"generator\.conv_to_rgb\.({_SN[1:-1]}|bias)", r"generator.conv_to_rgb.\1"),
]


def config_beside(weights: Path) -> Path | None:
    """The config that belongs to ``weights``: ``<prefix>-config.json`` (S3 naming) or ``config.json``."""
    if weights.name.endswith(WEIGHTS_NAME) and weights.name != WEIGHTS_NAME:
        paired = weights.with_name(weights.name[: -len(WEIGHTS_NAME)] + CONFIG_NAME)
        if paired.is_file():
            return paired
    plain = weights.with_name(CONFIG_NAME)
    return plain if plain.is_file() else None


def source_files(path: Path) -> tuple[Path, Path]:
    """``(weights, config)`` for a BigGAN folder or weights file; ConversionError when one is missing."""
    if path.is_dir():
        weights, config = path / WEIGHTS_NAME, path / CONFIG_NAME
        if not weights.is_file() or not config.is_file():
            raise ConversionError(f"{path} must contain {WEIGHTS_NAME} and {CONFIG_NAME} (a pytorch-pretrained-"
                                  "BigGAN model folder)")
        return weights, config
    config = config_beside(path)
    if config is None:
        raise ConversionError(f"{path.name}: the BigGAN config is missing; put {CONFIG_NAME} (or "
                              f"{path.name.replace(WEIGHTS_NAME, CONFIG_NAME)}) next to it")
    return path, config


def read_biggan_config(path: Path) -> dict[str, Any]:
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConversionError(f"{path.name} is not a readable JSON config ({e})") from None
    if not isinstance(cfg, dict):
        raise ConversionError(f"{path.name} must hold a JSON object")
    missing = [k for k in CONFIG_KEYS if k not in cfg]
    if missing:
        raise ConversionError(f"{path.name} is not a BigGAN config: missing {', '.join(missing)}")
    return cfg


def is_biggan_config(path: Path) -> bool:
    try:
        read_biggan_config(path)
        return True
    except ConversionError:
        return False


def init_kwargs_from_config(cfg: dict[str, Any], where: str) -> dict[str, Any]:
    kwargs = {k: cfg[k] for k in CONFIG_KEYS}
    for k, default in OPTIONAL_DEFAULTS.items():
        kwargs[k] = cfg.get(k, default)
    try:
        kwargs["layers"] = [[bool(u), int(a), int(b)] for u, a, b in cfg["layers"]]
        for k in ("output_dim", "z_dim", "class_embed_dim", "channel_width", "num_classes",
                  "attention_layer_position", "n_stats"):
            kwargs[k] = int(kwargs[k])
        kwargs["eps"] = float(kwargs["eps"])
    except (TypeError, ValueError) as e:
        raise ConversionError(f"{where}: malformed BigGAN config ({e})") from None
    return kwargs


def convert_state_dict(sd: dict[str, torch.Tensor], cfg: dict[str, Any], where: str = "checkpoint") -> Converted:
    """Pure conversion: upstream state dict + BigGANConfig dict -> ``biggan-deep`` tensors and kwargs."""
    kwargs = init_kwargs_from_config(cfg, where)
    tensors = strict_map(sd, BIGGAN_TABLE, where=where)
    class_names = imagenet_class_names() if kwargs["num_classes"] == 1000 else None
    notes = ["spectral-norm u/v kept as stored (eval-mode semantics of torch.nn.utils.spectral_norm)"]
    return Converted("biggan-deep", kwargs, tensors, class_names=class_names, notes=notes)


def convert_path(path: Path) -> Converted:
    weights, config = source_files(path)
    cfg = read_biggan_config(config)
    sd = torch_safe_load(weights)
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ConversionError(f"{weights.name}: expected a BigGAN state dict of tensors")
    return convert_state_dict(dict(sd), cfg, where=weights.name)


def _sniff(path: Path, head: bytes) -> bool:
    if path.is_dir():
        return (path / WEIGHTS_NAME).is_file() and is_biggan_config(path / CONFIG_NAME)
    if not path.name.endswith(".bin"):
        return False
    config = config_beside(path)
    return config is not None and is_biggan_config(config)


register_format(SourceFormat(
    name="biggan-hf",
    description="pytorch-pretrained-BigGAN folder (pytorch_model.bin + config.json) or the .bin beside its config",
    sniff=_sniff,
    convert=convert_path,
    priority=20,
))
