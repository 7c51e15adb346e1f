"""Fully-connected GAN generator state dicts -> common format (architecture ``mlp-gan``).

Layout (csinva/gan-vae-pretrained-pytorch ``mnist_gan_mlp/weights/G--300.ckpt``): a bare state dict of one
``nn.Sequential`` with keys ``0.*``, ``2.*``, ``4.*``: Linear(64, 256), ReLU, Linear(256, 256), ReLU,
Linear(256, 784), Tanh. Linear weights are ``[out, in]``. The output width is ``C * R * R``: one grey
channel when it is a square number (784 = 28 * 28), else three RGB channels when ``out / 3`` is.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from zoo.errors import ConversionError

from .base import Converted, SourceFormat, register_format, strict_map
from .dcgan import unwrap_state_dict
from .safe_pickle import torch_safe_load
from .statedict import param_names

_KEY = re.compile(r"(\d+)\.(weight|bias)")


def mlp_table() -> list[tuple[str, str]]:
    return [(r"(\d+)\.(weight|bias)", r"main.\1.\2")]


def image_shape(out_features: int, where: str, img_channels: int | None = None) -> tuple[int, int]:
    """``(img_channels, img_resolution)`` for a flat output of ``out_features`` values."""
    for c in ([img_channels] if img_channels else [1, 3]):
        r = math.isqrt(out_features // c) if out_features % c == 0 else 0
        if r and c * r * r == out_features:
            return c, r
    raise ConversionError(f"{where}: the last layer has {out_features} outputs, which is not C x R x R for "
                          f"{img_channels or '1 or 3'} channel(s)")


def convert_state_dict(sd: dict[str, torch.Tensor], where: str = "checkpoint",
                       img_channels: int | None = None) -> Converted:
    """Pure conversion of an ``nn.Sequential`` Linear/ReLU/.../Linear/Tanh generator state dict."""
    idx = sorted({int(m.group(1)) for k in sd if (m := _KEY.fullmatch(k))})
    if len(idx) < 2:
        raise ConversionError(f"{where}: expected at least two Linear layers keyed 0.weight, 2.weight, ...")
    if idx != list(range(0, 2 * len(idx), 2)):
        raise ConversionError(f"{where}: Linear layers at indices {idx}, expected 0, 2, 4, ... "
                              "(each Linear followed by one activation)")
    weights = [sd.get(f"{i}.weight") for i in idx]
    if any(w is None or w.ndim != 2 for w in weights):
        raise ConversionError(f"{where}: every layer must be a Linear with a 2-D weight")
    for a, b in zip(weights, weights[1:]):
        if a.shape[0] != b.shape[1]:
            raise ConversionError(f"{where}: layer widths do not chain ({list(a.shape)} then {list(b.shape)})")
    tensors = strict_map(sd, mlp_table(), where=where)
    channels, res = image_shape(int(weights[-1].shape[0]), where, img_channels)
    kwargs = dict(z_dim=int(weights[0].shape[1]), hidden=[int(w.shape[0]) for w in weights[:-1]],
                  img_resolution=res, img_channels=channels)
    return Converted("mlp-gan", kwargs, tensors)


def convert_file(path: Path, img_channels: int | None = None) -> Converted:
    sd = unwrap_state_dict(torch_safe_load(path), path.name)
    return convert_state_dict(sd, where=path.name, img_channels=img_channels)


def _sniff(path: Path, head: bytes) -> bool:
    names = param_names(path, head)
    return len(names) >= 4 and all(_KEY.fullmatch(n) for n in names)


register_format(SourceFormat(
    name="mlp-gan",
    description="fully-connected GAN generator state dict, nn.Sequential keys 0.weight, 2.weight, ... .ckpt/.pt",
    sniff=_sniff,
    convert=convert_file,
    priority=65,
    options=("img_channels",),
))
