"""DCGAN generators (Radford et al. 2016) in the PyTorch DCGAN-tutorial / pytorch-examples layout.

``main`` is one ``nn.Sequential``: a 4x4 transposed convolution from ``[N, z_dim (+c_dim), 1, 1]``,
then stride-2 transposed convolutions (kernel 4, padding 1) each followed by BatchNorm + ReLU, and a
final transposed convolution to ``img_channels`` + Tanh. Module indices (``main.0``, ``main.1``, ...)
match pytorch/examples ``dcgan/main.py`` so state-dict names carry over unchanged. Conditional variants
concatenate a one-hot label to z (optionally with Dropout after the first block, as some packages do).
"""

from __future__ import annotations


import torch
from torch import nn

from ..base import GanGenerator
from ..registry import ModelEntry, register_architecture, register_model


@register_architecture
class DCGANGenerator(GanGenerator):
    """``G(z, c)``: z ``[N, z_dim]`` (or ``[N, z_dim, 1, 1]``), optional one-hot c, output in [-1, 1]."""

    architecture = "dcgan"
    style_based = False

    def __init__(self, z_dim: int = 100, channels: list[int] | tuple[int, ...] = (512, 256, 128, 64),
                 img_channels: int = 3, c_dim: int = 0, first_dropout: float = 0.0) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must list at least one feature width")
        self._kwargs = dict(z_dim=z_dim, channels=list(channels), img_channels=img_channels, c_dim=c_dim,
                            first_dropout=first_dropout)
        self.z_dim, self.c_dim, self.img_channels = z_dim, c_dim, img_channels
        self.w_dim = 0  # no intermediate latent space
        self.num_ws = 0
        self.img_resolution = 4 * 2 ** len(channels)
        layers: list[nn.Module] = []
        in_c = z_dim + c_dim
        for i, out_c in enumerate(channels):
            stride, pad = (1, 0) if i == 0 else (2, 1)
            layers += [nn.ConvTranspose2d(in_c, out_c, 4, stride, pad, bias=False), nn.BatchNorm2d(out_c),
                       nn.ReLU(True)]
            if i == 0 and first_dropout > 0:
                layers.append(nn.Dropout(first_dropout))
            in_c = out_c
        layers += [nn.ConvTranspose2d(in_c, img_channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "const") -> torch.Tensor:
        z = self.prepare_z(z, c, truncation_psi)
        if self.c_dim > 0:
            z = torch.cat([z, c.to(z.dtype)], dim=1)
        return self.main(z.reshape(z.shape[0], -1, 1, 1))


register_model(ModelEntry(
    name="dcgan-digiface-64", family="dcgan", architecture="dcgan", source_format="dcgan",
    url="https://pypi.org/project/gan-face-generate/1.1.1/", dataset="DigiFace-1M (synthetic faces)", resolution=64,
    license="mit", paper="Unsupervised Representation Learning with Deep Convolutional GANs (Radford et al., 2016)",
    sha256="0c3b90b138cfc4e8a73310b9fd5ce2a8f1f3a542a037de277412307fcd28771f", size_bytes=14322251,
    source_file="gan_face_generate/weights.tar", embedded=True,
    license_note=("Weights: MIT (c) 2023 chien liu, from the PyPI package gan-face-generate 1.1.1. The training "
                  "data, DigiFace-1M, is licensed for non-commercial research only; treat generated images "
                  "accordingly."),
    notes="Embedded in the ganzoo package (fp16 safetensors) so `ganzoo sample` works offline on a fresh machine.",
    tags=("faces",),
))

register_model(ModelEntry(
    name="dcgan-generateme-celeb-64", family="dcgan", architecture="dcgan", source_format="dcgan-named",
    url="https://pypi.org/project/generateme/0.1.2/", dataset="celebrity faces",
    resolution=64, license="mit",
    paper="Unsupervised Representation Learning with Deep Convolutional GANs (Radford et al., 2016)",
    sha256="9837db49baa6f8ab5c36b138278218603ece4c0e69ea7202fb730834dd0992e8", size_bytes=14318332,
    source_file="generateme/static/Models/dcGanGeneratorModel.pt",
    license_note="Weights: MIT, from the PyPI package generateme 0.1.2 (github.com/Nikolay1499/GenerateMe).",
    notes="Named-layer checkpoint (convTr1..5, batchNorm1..4) mapped onto the pytorch-examples DCGAN graph.",
    tags=("faces",),
))

OMNIART_EYE_CLASSES = ("amber", "blue", "brown", "gray", "grayscale", "green", "hazel", "red")

register_model(ModelEntry(
    name="dcgan-omniart-eyes-128", family="dcgan", architecture="dcgan", source_format="dcgan",
    url="https://pypi.org/project/omniart-eye-generator/0.1/",
    dataset="OmniArt painted eyes (crops of eyes from paintings), labelled by eye colour", resolution=128,
    license="mit", conditional=True, num_classes=len(OMNIART_EYE_CLASSES), class_names=OMNIART_EYE_CLASSES,
    paper="Unsupervised Representation Learning with Deep Convolutional GANs (Radford et al., 2016)",
    sha256="dd486abbd738bfe3d28ddd46987bec11e3842ddcc8c28ccc5251b52c6ecf4da0", size_bytes=51691195,
    source_file="omniart_eye_generator/generator_model_state.pth",
    license_note=("Weights: MIT, from the PyPI package omniart-eye-generator 0.1 "
                  "(github.com/rogierknoester/omniart_eye_generator)."),
    notes=("Class-conditional: a one-hot eye-colour label is concatenated to z (100 + 8 inputs). The file stores "
           "no class names; ganzoo records them from this registry entry when it converts the file."),
    tags=("eyes", "art", "conditional"),
))
