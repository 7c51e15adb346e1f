"""Progressive GAN generators (Karras et al., ICLR 2018) as trained by facebookresearch/pytorch_GAN_zoo.

Facts (pytorch_GAN_zoo commit b75dee4, ``models/networks/progressive_conv_net.py`` ``GNet`` and
``models/networks/custom_layers.py``):

- Equalized learning rate: each ``Conv2d``/``Linear`` is wrapped as ``<layer>.module`` and its *output*
  (bias included) is multiplied by He's constant ``sqrt(2 / fan_in)`` at run time; the stored weights
  are the unscaled N(0, 1)-initialised ones.
- Pixel norm ``x * rsqrt(mean(x^2 over channels) + 1e-8)`` on the latent, after the format layer and
  after every conv.
- ``formatLayer``: Linear ``dimLatent -> 16 * depthScale0`` + LeakyReLU, viewed as ``[N, C, 4, 4]``
  (channel-major, no permute); ``groupScale0``: one 3x3 conv at 4x4; each further scale: nearest 2x
  upsampling and two 3x3 convs; ``toRGBLayers[s]``: 1x1 conv per scale (only the last one, and the one
  before it while ``alpha > 0``, take part in a forward pass).
- ``alpha`` blends the upsampled previous-scale RGB output in: ``alpha * y + (1 - alpha) * x``.
- The last activation comes from the loss: none for WGANGP/Logistic, tanh for MSE/DCGAN.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..base import GanGenerator
from ..registry import ModelEntry, register_architecture, register_models


class EqualizedLayer(nn.Module):
    """``module(x) * sqrt(2 / fan_in)`` (upstream ``ConstrainedLayer``; state-dict names ``module.*``)."""

    def __init__(self, module: nn.Module, equalized: bool = True) -> None:
        super().__init__()
        self.module = module
        fan_in = math.prod(module.weight.shape[1:])
        self.scale = math.sqrt(2.0 / fan_in) if equalized else 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.module(x)
        return x * self.scale if self.scale != 1.0 else x


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * ((x ** 2).mean(dim=1, keepdim=True) + eps).rsqrt()


def _conv(cin: int, cout: int, k: int, equalized: bool) -> EqualizedLayer:
    return EqualizedLayer(nn.Conv2d(cin, cout, k, padding=k // 2), equalized)


@register_architecture
class ProGANGenerator(GanGenerator):
    """``G(z)``: z ``[N, z_dim]`` -> ``[N, img_channels, R, R]``; ``R = 4 * 2 ** (len(depths) - 1)``.

    Outputs are not bounded when ``activation`` is ``"none"`` (WGAN-GP models), nominally [-1, 1].
    """

    architecture = "progan"
    psi_dtype = None  # no truncation trick: pixel norm undoes any scaling of z
    style_based = False

    def __init__(self, z_dim: int = 512, depths: Sequence[int] = (512,), img_channels: int = 3,
                 leaky_relu_leak: float = 0.2, equalized_lr: bool = True, alpha: float = 0.0,
                 activation: str = "none") -> None:
        super().__init__()
        depths = [int(d) for d in depths]
        if not depths:
            raise ValueError("depths must list at least the 4x4 scale's width")
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if alpha > 0 and len(depths) < 2:
            raise ValueError("alpha > 0 needs at least two scales")
        if activation not in ("none", "tanh"):
            raise ValueError(f"activation must be 'none' or 'tanh', got {activation!r}")
        self._kwargs = dict(z_dim=z_dim, depths=depths, img_channels=img_channels, leaky_relu_leak=leaky_relu_leak,
                            equalized_lr=equalized_lr, alpha=alpha, activation=activation)
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, 0, 0, 0
        self.img_channels = img_channels
        self.img_resolution = 4 * 2 ** (len(depths) - 1)
        self.leak, self.alpha, self.activation = leaky_relu_leak, float(alpha), activation
        self.formatLayer = EqualizedLayer(nn.Linear(z_dim, 16 * depths[0]), equalized_lr)
        self.groupScale0 = nn.ModuleList([_conv(depths[0], depths[0], 3, equalized_lr)])
        self.scaleLayers = nn.ModuleList(
            nn.ModuleList([_conv(cin, cout, 3, equalized_lr), _conv(cout, cout, 3, equalized_lr)])
            for cin, cout in zip(depths[:-1], depths[1:]))
        self.toRGBLayers = nn.ModuleList(_conv(d, img_channels, 1, equalized_lr) for d in depths)

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.leak)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "const") -> torch.Tensor:
        self.check_inputs(z, c)
        if float(truncation_psi) != 1 or truncation_cutoff is not None:
            # The latent is pixel-normalised first, so scaling z (the usual z-space truncation) changes nothing.
            raise ValueError("ProGAN has no truncation trick (its latent is normalised): use truncation_psi=1")
        x = pixel_norm(z)
        x = self._act(self.formatLayer(x)).reshape(z.shape[0], -1, 4, 4)
        x = pixel_norm(x)
        for conv in self.groupScale0:
            x = pixel_norm(self._act(conv(x)))
        y = None
        n = len(self.scaleLayers)
        if self.alpha > 0 and n == 1:
            y = _upscale(self.toRGBLayers[-2](x))
        for s, group in enumerate(self.scaleLayers):
            x = _upscale(x)
            for conv in group:
                x = pixel_norm(self._act(conv(x)))
            if self.alpha > 0 and s == n - 2:
                y = _upscale(self.toRGBLayers[-2](x))
        x = self.toRGBLayers[-1](x)
        if y is not None:
            x = self.alpha * y + (1.0 - self.alpha) * x
        return torch.tanh(x) if self.activation == "tanh" else x


def _upscale(x: torch.Tensor) -> torch.Tensor:
    return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)


_PGAN = "https://dl.fbaipublicfiles.com/gan_zoo/PGAN"
_PGAN_PAPER = "Progressive Growing of GANs for Improved Quality, Stability, and Variation (Karras et al., ICLR 2018)"


def _pgan(name: str, file: str, dataset: str, res: int, notes: str = "", tags: tuple[str, ...] = ()) -> ModelEntry:
    return ModelEntry(
        name=name, family="progan", architecture="progan", source_format="pgan-zoo", url=f"{_PGAN}/{file}",
        dataset=dataset, resolution=res, license="bsd-3-clause", paper=_PGAN_PAPER, source_file=file,
        license_note=("pytorch_GAN_zoo (code and released checkpoints): BSD-3-Clause, Copyright 2019 Facebook. "
                      "Check the training dataset's terms for your use."),
        notes=("Published by facebookresearch/pytorch_GAN_zoo (torch.hub `PGAN`); the file-name suffix is the "
               "first 8 hex digits of its sha256. The EMA generator (avgG) is used. " + notes).strip(),
        tags=tags,
    )


register_models(
    _pgan("progan-celebahq-256", "celebaHQ_s6_i80000-6196db68.pth", "CelebA-HQ", 256, tags=("faces",)),
    _pgan("progan-celebahq-512", "celebaHQ16_december_s7_i96000-9c72988c.pth", "CelebA-HQ", 512, tags=("faces",)),
    _pgan("progan-dtd-128", "testDTD_s5_i96000-04efa39f.pth", "DTD (Describable Textures Dataset)", 128,
          tags=("textures",)),
    _pgan("progan-celeba-128", "celebaCropped_s5_i83000-2b0acc76.pth", "CelebA (cropped)", 128, tags=("faces",)),
)
