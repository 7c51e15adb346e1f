"""pytorch_GAN_zoo ProgressiveGAN checkpoints (``BaseGAN.save``) -> common format (architecture ``progan``).

Facts (facebookresearch/pytorch_GAN_zoo, ``models/base_GAN.py`` ``getStateDict``/``load_state_dict``):
the file is ``torch.save({'config': BaseConfig, 'netG': ..., 'netD': ..., 'avgG': ...})``. ``BaseConfig``
is a plain attribute bag (``models.utils.config.BaseConfig``), read here through a data-only stub.
``avgG`` is the moving-average generator that torch.hub / ``test(getAvG=True)`` use; ``netG`` and
``netD`` are training state and are not converted. ``utils.loadStateDictCompatible`` also accepts older
names without ``.module.`` (``formatLayer.weight``); both spellings map onto ``<layer>.module.<param>``.
Config facts used: ``latentVectorDim``, ``depthScale0``, ``depthOtherScales``, ``alpha``,
``leakyReluLeak``, ``equalizedlR``, ``perChannelNormalization``, ``dimOutput``, ``lossCriterion``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from zoo.errors import ConversionError

from .base import Converted, SourceFormat, register_format, strict_map
from .safe_pickle import is_torch_zip, torch_safe_load

CONFIG_STUB = ("models.utils.config", "BaseConfig")
# Last activation per loss (models/loss_criterions/base_loss_criterions.py: generationActivation).
LOSS_ACTIVATION = {"WGANGP": "none", "Logistic": "none", "MSE": "tanh", "DCGAN": "tanh"}

_LAYER = r"(formatLayer|groupScale0\.\d+|scaleLayers\.\d+\.\d+|toRGBLayers\.\d+)"
PGAN_TABLE: list[tuple[str, str]] = [
    (rf"{_LAYER}\.module\.(weight|bias)", r"\1.module.\2"),
    (rf"{_LAYER}\.(weight|bias)", r"\1.module.\2"),  # pre-".module." spelling
]


def _config_dict(cfg: Any, where: str) -> dict[str, Any]:
    state = getattr(cfg, "state", None) if not isinstance(cfg, dict) else cfg
    if not isinstance(state, dict):
        raise ConversionError(f"{where}: the checkpoint's 'config' is not a pytorch_GAN_zoo BaseConfig")
    return state


def infer_kwargs(cfg: dict[str, Any], sd: dict[str, torch.Tensor], where: str) -> dict[str, Any]:
    """Constructor arguments from the config, cross-checked against tensor shapes."""
    if cfg.get("perChannelNormalization", True) is False:
        raise ConversionError(f"{where}: perChannelNormalization=False is not supported (upstream GNet cannot run "
                              "without its normalization layer either)")
    try:
        fmt_w = sd["formatLayer.module.weight"]
        z_dim = int(fmt_w.shape[1])
        depths = [int(fmt_w.shape[0]) // 16]
        s = 0
        while f"scaleLayers.{s}.0.module.weight" in sd:
            depths.append(int(sd[f"scaleLayers.{s}.0.module.weight"].shape[0]))
            s += 1
        img_channels = int(sd["toRGBLayers.0.module.weight"].shape[0])
    except KeyError as e:
        raise ConversionError(f"{where}: not a ProGAN generator state dict (missing {e.args[0]})") from None
    expected = [cfg.get("depthScale0", depths[0]), *cfg.get("depthOtherScales", depths[1:])]
    if [int(d) for d in expected] != depths:
        raise ConversionError(f"{where}: config scale depths {expected} disagree with the weights {depths}")
    if int(cfg.get("latentVectorDim", z_dim)) != z_dim:
        raise ConversionError(f"{where}: config latentVectorDim {cfg['latentVectorDim']} != weights {z_dim}")
    loss = str(cfg.get("lossCriterion", "WGANGP"))
    if loss not in LOSS_ACTIVATION:
        raise ConversionError(f"{where}: unknown lossCriterion {loss!r}; known: {', '.join(LOSS_ACTIVATION)}")
    return dict(z_dim=z_dim, depths=depths, img_channels=img_channels,
                leaky_relu_leak=float(cfg.get("leakyReluLeak", 0.2)), equalized_lr=bool(cfg.get("equalizedlR", True)),
                alpha=float(cfg.get("alpha", 0.0)), activation=LOSS_ACTIVATION[loss])


def convert_checkpoint(ckpt: dict[str, Any], where: str = "checkpoint") -> Converted:
    """Pure conversion of a loaded ``BaseGAN.getStateDict()`` dict (takes ``avgG``)."""
    if not isinstance(ckpt, dict) or "netG" not in ckpt or "config" not in ckpt:
        raise ConversionError(f"{where}: expected a pytorch_GAN_zoo checkpoint dict with 'config' and 'netG'")
    notes = []
    if isinstance(ckpt.get("avgG"), dict):
        sd = ckpt["avgG"]
        notes.append("generator: avgG (moving average), as torch.hub / test(getAvG=True)")
    else:
        sd = ckpt["netG"]
        notes.append("generator: netG (the checkpoint has no avgG)")
    if not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ConversionError(f"{where}: the generator state dict holds non-tensors")
    tensors = strict_map(sd, PGAN_TABLE, where=where)
    kwargs = infer_kwargs(_config_dict(ckpt["config"], where), tensors, where)
    return Converted("progan", kwargs, tensors, notes=notes)


def convert_file(path: Path) -> Converted:
    return convert_checkpoint(torch_safe_load(path, stubs=[CONFIG_STUB]), where=path.name)


def _sniff(path: Path, head: bytes) -> bool:
    if not path.is_file():
        return False
    if is_torch_zip(path):
        import zipfile

        with zipfile.ZipFile(path) as z:
            name = next((n for n in z.namelist() if n.endswith("/data.pkl")), None)
            head = z.read(name) if name else b""
    # Legacy torch files start with a pickled magic number; the checkpoint's pickle follows within 64 KiB.
    return b"models.utils.config" in head and b"BaseConfig" in head and re.search(rb"avgG|netG", head) is not None


register_format(SourceFormat(
    name="pgan-zoo",
    description="pytorch_GAN_zoo ProgressiveGAN checkpoint (.pth dict with config, netG, netD, avgG)",
    sniff=_sniff,
    convert=convert_file,
    priority=30,
))
