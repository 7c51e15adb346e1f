"""DCGAN generator state dicts -> common format (architecture ``dcgan``).

Two upstream layouts of the same graph:

- ``dcgan``: pytorch/examples ``dcgan/main.py`` / PyTorch DCGAN tutorial, one ``nn.Sequential`` named
  ``main`` (``main.0`` transposed conv, ``main.1`` BatchNorm, ``main.2`` ReLU, ...). Used by
  gan-face-generate 1.1.1 (wrapped under ``netG_state_dict``) and omniart-eye-generator 0.1 (conditional:
  z_dim 100 + 8 one-hot classes = 108 inputs, Dropout after the first block so the next conv is ``main.4``).
- ``dcgan-named``: named layers ``convTr1..convTrN`` (ConvTranspose2d, no bias) and ``batchNorm1..N-1``;
  forward ``convTr_k -> batchNorm_k -> ReLU`` for k < N, then ``convTrN -> tanh`` (generateme 0.1.2,
  ``generateme/static/Models/dcGanGeneratorModel.pt``). Mapped onto ``main.<3(k-1)>`` / ``main.<3(k-1)+1>``.

Facts: ``ConvTranspose2d`` weights are ``[in, out, kh, kw]``; BatchNorm layers carry ``running_mean``,
``running_var`` and ``num_batches_tracked``. Class-conditional files carry no class names: they come
from the registry entry whose sha256 matches the file, or from the ``class_names``/``num_classes``
converter options (``ganzoo convert --classes``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import torch

from zoo.errors import ConversionError

from .base import Converted, SourceFormat, register_format, strict_map
from .safe_pickle import torch_safe_load
from .statedict import param_names

WRAPPER_KEYS = ("netG_state_dict", "state_dict", "generator", "netG", "G")
_BN_FIELDS = "weight|bias|running_mean|running_var|num_batches_tracked"


def unwrap_state_dict(obj: Any, where: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for k in WRAPPER_KEYS:
            if k in obj and isinstance(obj[k], dict):
                obj = obj[k]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConversionError(f"{where}: expected a generator state dict of tensors")
    return dict(obj)


def resolve_classes(class_names: Sequence[str] | None, num_classes: int | None, where: str) -> tuple[int, list[str] | None]:
    """``(c_dim, names)`` from the converter options; names win, and must agree with ``num_classes``."""
    if class_names is not None:
        names = [str(n).strip() for n in class_names]
        if not names or any(not n for n in names):
            raise ConversionError(f"{where}: class names must be non-empty, e.g. --classes cat,dog")
        if len(set(names)) != len(names):
            raise ConversionError(f"{where}: class names must be distinct, got {', '.join(names)}")
        if num_classes is not None and num_classes != len(names):
            raise ConversionError(f"{where}: {len(names)} class names given but num_classes={num_classes}")
        return len(names), names
    if num_classes is not None and int(num_classes) < 0:
        raise ConversionError(f"{where}: num_classes must be >= 0, got {num_classes}")
    return int(num_classes or 0), None


def infer_sequential_dcgan(sd: dict[str, torch.Tensor], where: str, c_dim: int = 0) -> dict[str, Any]:
    """Read z_dim / channel widths / image channels off the ``main.N`` transposed-conv weights."""
    conv_idx = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(r"main\.(\d+)\.weight", k))
                      and sd[k].ndim == 4)
    if len(conv_idx) < 2:
        raise ConversionError(f"{where}: no main.N transposed-convolution weights found")
    widths = [int(sd[f"main.{i}.weight"].shape[1]) for i in conv_idx]
    in_dim = int(sd[f"main.{conv_idx[0]}.weight"].shape[0])
    if c_dim >= in_dim:
        raise ConversionError(f"{where}: the first layer takes {in_dim} inputs, too few for z plus {c_dim} classes")
    # Dropout after the first block shifts the next conv from index 3 to 4; its rate is not stored
    # (0.2 in omniart-eye-generator) and is the identity at inference.
    first_dropout = 0.2 if conv_idx[1] - conv_idx[0] == 4 else 0.0
    return dict(z_dim=in_dim - c_dim, channels=widths[:-1], img_channels=widths[-1], c_dim=c_dim,
                first_dropout=first_dropout)


def dcgan_table() -> list[tuple[str, str]]:
    return [(rf"main\.(\d+)\.({_BN_FIELDS})", r"main.\1.\2")]


def convert_state_dict(sd: dict[str, torch.Tensor], where: str = "checkpoint", c_dim: int = 0,
                       class_names: list[str] | None = None) -> Converted:
    """Pure conversion of a pytorch-examples DCGAN generator state dict."""
    kwargs = infer_sequential_dcgan(sd, where, c_dim=c_dim)
    tensors = strict_map(sd, dcgan_table(), where=where)
    notes = []
    if c_dim == 0 and kwargs["first_dropout"] and kwargs["z_dim"] != 100:
        notes.append(f"first layer takes {kwargs['z_dim']} inputs and is followed by Dropout, the layout of "
                     "class-conditional DCGANs: if this one is, convert with --classes NAMES")
    return Converted("dcgan", kwargs, tensors, class_names=class_names, notes=notes)


def named_table(num_convs: int) -> list[tuple[str, str]]:
    """Explicit rows ``convTrK``/``batchNormK`` -> ``main.<index>`` for a named DCGAN with ``num_convs`` convs."""
    rows: list[tuple[str, str]] = []
    for k in range(1, num_convs + 1):
        conv = 3 * (k - 1)  # each block is ConvTranspose2d, BatchNorm2d, ReLU
        rows.append((rf"convTr{k}\.weight", f"main.{conv}.weight"))
        if k < num_convs:
            rows.append((rf"batchNorm{k}\.({_BN_FIELDS})", rf"main.{conv + 1}.\1"))
    return rows


def convert_named_state_dict(sd: dict[str, torch.Tensor], where: str = "checkpoint", c_dim: int = 0,
                             class_names: list[str] | None = None) -> Converted:
    """Pure conversion of a named-layer DCGAN generator (``convTrK``/``batchNormK``) state dict."""
    convs = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(r"convTr(\d+)\.weight", k)))
    if len(convs) < 2 or convs != list(range(1, len(convs) + 1)):
        raise ConversionError(f"{where}: expected transposed convolutions convTr1..convTrN, found "
                              f"{', '.join(f'convTr{i}' for i in convs) or 'none'}")
    tensors = strict_map(sd, named_table(len(convs)), where=where)
    if any(tensors[f"main.{3 * (k - 1)}.weight"].ndim != 4 for k in convs):
        raise ConversionError(f"{where}: convTrK.weight tensors must be 4-D transposed-convolution kernels")
    kwargs = infer_sequential_dcgan(tensors, where, c_dim=c_dim)
    return Converted("dcgan", kwargs, tensors, class_names=class_names)


def convert_file(path: Path, class_names: Sequence[str] | None = None, num_classes: int | None = None) -> Converted:
    c_dim, names = resolve_classes(class_names, num_classes, path.name)
    sd = unwrap_state_dict(torch_safe_load(path), path.name)
    return convert_state_dict(sd, where=path.name, c_dim=c_dim, class_names=names)


def convert_named_file(path: Path, class_names: Sequence[str] | None = None,
                       num_classes: int | None = None) -> Converted:
    c_dim, names = resolve_classes(class_names, num_classes, path.name)
    sd = unwrap_state_dict(torch_safe_load(path), path.name)
    return convert_named_state_dict(sd, where=path.name, c_dim=c_dim, class_names=names)


def _sniff(path: Path, head: bytes) -> bool:
    return "main.0.weight" in param_names(path, head)


def _sniff_named(path: Path, head: bytes) -> bool:
    names = param_names(path, head)
    return {"convTr1.weight", "convTr2.weight", "batchNorm1.running_mean"} <= names


register_format(SourceFormat(
    name="dcgan",
    description="DCGAN generator state dict, pytorch-examples layout (main.N.*) .pt/.pth/.tar",
    sniff=_sniff,
    convert=convert_file,
    priority=60,
    options=("class_names", "num_classes"),
))

register_format(SourceFormat(
    name="dcgan-named",
    description="DCGAN generator state dict with named layers convTrK/batchNormK (generateme) .pt",
    sniff=_sniff_named,
    convert=convert_named_file,
    priority=60,
    options=("class_names", "num_classes"),
))
