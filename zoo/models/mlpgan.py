"""Fully-connected GAN generators (Goodfellow et al. 2014 style): z -> Linear/ReLU stack -> Tanh -> image.

``main`` is one ``nn.Sequential`` of ``Linear, ReLU, ..., Linear, Tanh`` whose indices (``main.0``,
``main.2``, ...) follow the upstream ``nn.Sequential`` (csinva/gan-vae-pretrained-pytorch
``mnist_gan_mlp/gan_mnist.py``: Linear(64, 256), ReLU, Linear(256, 256), ReLU, Linear(256, 784), Tanh),
so state-dict names carry over with a ``main.`` prefix. The flat output is reshaped row-major to
``[N, img_channels, img_resolution, img_resolution]``, as upstream's ``view(N, 1, 28, 28)``.
"""

from __future__ import annotations


import torch
from torch import nn

from ..base import GanGenerator
from ..registry import ModelEntry, register_architecture, register_model


@register_architecture
class MLPGANGenerator(GanGenerator):
    """``G(z)``: z ``[N, z_dim]`` -> ``[N, img_channels, img_resolution, img_resolution]`` in [-1, 1]."""

    architecture = "mlp-gan"
    style_based = False

    def __init__(self, z_dim: int = 64, hidden: list[int] | tuple[int, ...] = (256, 256), img_resolution: int = 28,
                 img_channels: int = 1) -> None:
        super().__init__()
        if z_dim < 1 or img_resolution < 1 or img_channels < 1 or any(int(h) < 1 for h in hidden):
            raise ValueError("z_dim, hidden widths, img_resolution and img_channels must be positive")
        self._kwargs = dict(z_dim=z_dim, hidden=[int(h) for h in hidden], img_resolution=img_resolution,
                            img_channels=img_channels)
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, 0, 0, 0
        self.img_resolution, self.img_channels = img_resolution, img_channels
        layers: list[nn.Module] = []
        in_f = z_dim
        for h in self._kwargs["hidden"]:
            layers += [nn.Linear(in_f, h), nn.ReLU()]
            in_f = h
        layers += [nn.Linear(in_f, img_channels * img_resolution * img_resolution), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "const") -> torch.Tensor:
        z = self.prepare_z(z, c, truncation_psi)
        x = self.main(z)
        return x.reshape(z.shape[0], self.img_channels, self.img_resolution, self.img_resolution)


register_model(ModelEntry(
    name="mlpgan-mnist-28", family="mlp-gan", architecture="mlp-gan", source_format="mlp-gan",
    url=("https://raw.githubusercontent.com/csinva/gan-vae-pretrained-pytorch/"
         "9b6401e122fa186a3a57f97c5df57e3603121fba/mnist_gan_mlp/weights/G--300.ckpt"),
    dataset="MNIST (handwritten digits, 28x28 grey)", resolution=28, license="mit",
    paper="Generative Adversarial Nets (Goodfellow et al., 2014)",
    sha256="3163c6503c144d35fe44bb0247bbc61cd8e49c50ea3d84c1b7c080dc18fbf84c", size_bytes=1136812,
    source_file="mnist_gan_mlp/weights/G--300.ckpt",
    license_note="Weights: MIT (stated in the README of github.com/csinva/gan-vae-pretrained-pytorch).",
    notes="A small fully-connected GAN (64 -> 256 -> 256 -> 784), one grey channel; a quick smoke-test model.",
    tags=("digits", "grayscale"),
))
