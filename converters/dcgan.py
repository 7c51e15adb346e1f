"""DCGAN state dicts (PyTorch DCGAN tutorial / pytorch-examples ``main.N.*`` layout) -> common format.

Facts: ``ConvTranspose2d`` weights are ``[in, out, kh, kw]``; the first layer's ``in`` is z_dim
(+ classes for conditional variants); BatchNorm layers carry ``running_mean``, ``running_var`` and
``num_batches_tracked``. The checkpoint may be a bare state dict or wrap it under a key such as
``netG_state_dict`` (gan-face-generate) or ``state_dict``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from zoo.errors import ConversionError

from .base import Converted, SourceFormat, register_format, strict_map
from .safe_pickle import is_torch_zip, torch_safe_load

WRAPPER_KEYS = ("netG_state_dict", "state_dict", "generator", "netG", "G")


def unwrap_state_dict(obj: Any, where: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for k in WRAPPER_KEYS:
            if k in obj and isinstance(obj[k], dict):
                obj = obj[k]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConversionError(f"{where}: expected a generator state dict of tensors")
    return dict(obj)


def infer_sequential_dcgan(sd: dict[str, torch.Tensor], where: str, c_dim: int = 0) -> dict[str, Any]:
    """Read z_dim / channel widths / image channels off the ``main.N`` transposed-conv weights."""
    conv_idx = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(r"main\.(\d+)\.weight", k))
                      and sd[k].ndim == 4)
    if len(conv_idx) < 2:
        raise ConversionError(f"{where}: no main.N transposed-convolution weights found")
    widths = [int(sd[f"main.{i}.weight"].shape[1]) for i in conv_idx]
    in_dim = int(sd[f"main.{conv_idx[0]}.weight"].shape[0])
    # Dropout after the first block shifts the next conv from index 3 to 4.
    first_dropout = 0.2 if len(conv_idx) > 1 and conv_idx[1] - conv_idx[0] == 4 else 0.0
    return dict(z_dim=in_dim - c_dim, channels=widths[:-1], img_channels=widths[-1], c_dim=c_dim,
                first_dropout=first_dropout)


def dcgan_table() -> list[tuple[str, str]]:
    return [(r"main\.(\d+)\.(weight|bias|running_mean|running_var|num_batches_tracked)", r"main.\1.\2")]


def convert_state_dict(sd: dict[str, torch.Tensor], where: str = "checkpoint", c_dim: int = 0,
                       class_names: list[str] | None = None) -> Converted:
    """Pure conversion of a pytorch-examples DCGAN generator state dict."""
    kwargs = infer_sequential_dcgan(sd, where, c_dim=c_dim)
    tensors = strict_map(sd, dcgan_table(), where=where)
    return Converted("dcgan", kwargs, tensors, class_names=class_names)


def _sniff(path: Path, head: bytes) -> bool:
    if not path.is_file():
        return False
    if is_torch_zip(path):
        import zipfile

        with zipfile.ZipFile(path) as z:
            names = z.namelist()
        return any(n.endswith("/data.pkl") for n in names) and b"main.0.weight" in _zip_pickle(path)
    return head[:2] == b"\x80\x02" and b"main.0.weight" in head


def _zip_pickle(path: Path) -> bytes:
    import zipfile

    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
        return z.read(name)


def convert_file(path: Path) -> Converted:
    sd = unwrap_state_dict(torch_safe_load(path), path.name)
    return convert_state_dict(sd, where=path.name)


register_format(SourceFormat(
    name="dcgan",
    description="DCGAN generator state dict, pytorch-examples layout (main.N.*) .pt/.pth/.tar",
    sniff=_sniff,
    convert=convert_file,
    priority=60,
))
