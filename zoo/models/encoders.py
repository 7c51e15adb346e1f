"""Image -> W+ encoders for StyleGAN2 decoders: pSp, e4e and ReStyle (pSp / e4e variants).

One architecture, ``psp-encoder``, covers the released checkpoints of eladrich/pixel2style2pixel,
omertov/encoder4editing and yuval-alaluf/restyle-encoder. The module holds the encoder (``encoder.*``,
upstream parameter names), the decoder as a zoo :class:`~zoo.models.stylegan2.StyleGAN2Generator`
(``generator.*``) and ``latent_avg`` (the offset every encoding starts from).

Encoder numerics, as the upstream code defines them (``models/encoders/helpers.py``, ``psp_encoders.py``,
``restyle_*_encoders.py``, ``map2style.py``):

* backbone ``ir_se`` / ``ir``: IR-50 (ArcFace ResNet, 3+4+14+3 units); a unit is
  ``res = BN -> conv3x3 -> PReLU -> conv3x3(stride) -> BN [-> SE]`` plus a shortcut that is plain strided
  subsampling when the width is unchanged, else conv1x1(stride) + BN; every stage starts with stride 2;
* backbone ``resnet34``: torchvision BasicBlocks (3+4+6+3) behind a 7x7 stride-2 stem with PReLU, no max-pool;
* ``GradualStyleBlock``: log2(spatial) 3x3 stride-2 convs with bias and LeakyReLU(0.01), then an
  equalised linear layer; FPN heads read the ends of stages 4 / 3 / 2 (``c3``/``c2``/``c1``) with
  ``p2 = bilinear(c3, align_corners=True) + latlayer1(c2)``;
* heads: ``GradualStyleEncoder`` (pSp; each row its own block over c3 / p2 / p1), ``Encoder4Editing``
  (``w0 = styles[0](c3)`` on every row plus per-row deltas), ``BackboneEncoder`` (ReStyle-pSp; every row
  from the 16x16 body output), ``ProgressiveBackboneEncoder`` (ReStyle-e4e; w0 + deltas from the body
  output), ``BackboneEncoderUsingLastLayerIntoW`` (one w) and ``...IntoWPlus`` (pSp).

ReStyle (6 input channels) iterates: iteration 1 feeds ``[x, avg_image]`` and adds ``latent_avg``, later
iterations feed ``[x, face_pool(previous image)]`` and add the previous latent (restyle-encoder
``utils/inference_utils.py run_on_batch``, ``models/psp.py forward``).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ZooError
from ..registry import ModelEntry, register_architecture, register_models
from .stylegan2 import StyleGAN2Generator

#: ``encoder_type`` (upstream opts) -> (head kind, progressive w0 + deltas?)
HEADS = {
    "GradualStyleEncoder": ("fpn", False),
    "ResNetGradualStyleEncoder": ("fpn", False),
    "Encoder4Editing": ("fpn", True),
    "BackboneEncoder": ("backbone", False),
    "ResNetBackboneEncoder": ("backbone", False),
    "ProgressiveBackboneEncoder": ("backbone", True),
    "ResNetProgressiveBackboneEncoder": ("backbone", True),
    "BackboneEncoderUsingLastLayerIntoW": ("w", False),
    "SingleStyleCodeEncoder": ("w", False),  # e4e's name for the same head
    "BackboneEncoderUsingLastLayerIntoWPlus": ("wplus", False),
}
IR50_UNITS = (3, 4, 14, 3)
RESNET34_UNITS = (3, 4, 6, 3)
#: pSp / e4e / ReStyle resize every input to this size and pool outputs back to it (``face_pool``).
INPUT_SIZE = 256


class EncoderInputError(ZooError, ValueError):
    """An image batch the encoder cannot take (wrong shape, range or channel count)."""


class EqualLinear(nn.Module):
    """rosinality's equalised dense layer without activation: ``x @ (W / sqrt(in) * lr)^T + b * lr``."""

    def __init__(self, in_dim: int, out_dim: int, lr_mul: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class SEModule(nn.Module):
    """Squeeze-and-excitation gate: global mean -> 1x1 -> ReLU -> 1x1 -> sigmoid, no biases."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class Subsample(nn.Module):
    """The identity shortcut of a strided unit (upstream ``MaxPool2d(1, stride)``: no pooling, just striding)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x


class BottleneckIR(nn.Module):
    """An IR(-SE) unit; the stride sits on the second 3x3 conv (``res_layer.3``)."""

    def __init__(self, in_channels: int, depth: int, stride: int, se: bool) -> None:
        super().__init__()
        if in_channels == depth:
            self.shortcut_layer: nn.Module = Subsample(stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_channels, depth, 1, stride, bias=False),
                                                nn.BatchNorm2d(depth))
        layers: list[nn.Module] = [nn.BatchNorm2d(in_channels), nn.Conv2d(in_channels, depth, 3, 1, 1, bias=False),
                                   nn.PReLU(depth), nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
                                   nn.BatchNorm2d(depth)]
        if se:
            layers.append(SEModule(depth, 16))
        self.res_layer = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock (same parameter names: conv1, bn1, conv2, bn2, downsample)."""

    def __init__(self, in_channels: int, depth: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, depth, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(depth)
        self.conv2 = nn.Conv2d(depth, depth, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(depth)
        self.downsample = None
        if stride != 1 or in_channels != depth:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class GradualStyleBlock(nn.Module):
    """``spatial`` -> 1 by stride-2 convs (LeakyReLU 0.01), then an equalised linear layer."""

    def __init__(self, in_c: int, out_c: int, spatial: int) -> None:
        super().__init__()
        self.out_c = out_c
        layers: list[nn.Module] = []
        for i in range(int(math.log2(spatial))):
            layers += [nn.Conv2d(in_c if i == 0 else out_c, out_c, 3, 2, 1), nn.LeakyReLU(0.01)]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_c, out_c, lr_mul=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.convs(x).reshape(-1, self.out_c))


def _upsample_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y


class StyleEncoder(nn.Module):
    """The encoder network of one ``encoder_type`` (upstream module layout and names)."""

    def __init__(self, encoder_type: str, backbone: str, input_nc: int, widths: Sequence[int], units: Sequence[int],
                 w_dim: int, n_styles: int) -> None:
        super().__init__()
        if encoder_type not in HEADS:
            raise ValueError(f"unknown encoder_type {encoder_type!r}; known: {', '.join(HEADS)}")
        self.head, self.progressive = HEADS[encoder_type]
        self.backbone, self.n_styles, self.w_dim = backbone, n_styles, w_dim
        if len(widths) != 4 or len(units) != 4:
            raise ValueError("widths and units must list the 4 backbone stages")
        stem = widths[0]
        if backbone == "resnet34":
            self.conv1 = nn.Conv2d(input_nc, stem, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(stem)
            self.relu = nn.PReLU(stem)
        elif backbone in ("ir_se", "ir"):
            self.input_layer = nn.Sequential(nn.Conv2d(input_nc, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem),
                                             nn.PReLU(stem))
        else:
            raise ValueError(f"unknown backbone {backbone!r}")
        blocks: list[nn.Module] = []
        in_c = stem
        for stage, (depth, count) in enumerate(zip(widths, units)):
            for u in range(count):
                if backbone == "resnet34":
                    blocks.append(BasicBlock(in_c, depth, 2 if (u == 0 and stage > 0) else 1))
                else:
                    blocks.append(BottleneckIR(in_c, depth, 2 if u == 0 else 1, se=backbone == "ir_se"))
                in_c = depth
        self.body = nn.Sequential(*blocks)
        ends = [sum(units[:k + 1]) - 1 for k in range(4)]
        self.taps = (ends[1], ends[2], ends[3])  # c1, c2, c3
        top = widths[3]
        if self.head == "fpn":
            self.styles = nn.ModuleList(
                GradualStyleBlock(top, w_dim, 16 if i < 3 else 32 if i < 7 else 64) for i in range(n_styles))
            self.latlayer1 = nn.Conv2d(widths[2], top, 1)
            self.latlayer2 = nn.Conv2d(widths[1], top, 1)
        elif self.head == "backbone":
            self.styles = nn.ModuleList(GradualStyleBlock(top, w_dim, 16) for _ in range(n_styles))
        elif self.head == "w":
            self.linear = EqualLinear(top, w_dim, lr_mul=1)
        else:  # wplus
            self.output_layer_2 = nn.Sequential(nn.BatchNorm2d(top), nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten(),
                                                nn.Linear(top * 49, w_dim))
            self.linear = EqualLinear(w_dim, w_dim * n_styles, lr_mul=1)

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.backbone == "resnet34":
            x = self.relu(self.bn1(self.conv1(x)))
        else:
            x = self.input_layer(x)
        feats = []
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in self.taps:
                feats.append(x)
        return feats  # [c1, c2, c3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Codes before the ``latent_avg`` offset: [N, n_styles, w_dim] (``w`` head: [N, w_dim])."""
        c1, c2, c3 = self._features(x)
        if self.head == "w":
            return self.linear(c3.mean(dim=(2, 3)))
        if self.head == "wplus":
            return self.linear(self.output_layer_2(c3)).view(-1, self.n_styles, self.w_dim)
        if self.head == "backbone":
            feats = [c3] * self.n_styles
        else:
            p2 = _upsample_add(c3, self.latlayer1(c2))
            p1 = _upsample_add(p2, self.latlayer2(c1))
            feats = [c3 if i < 3 else p2 if i < 7 else p1 for i in range(self.n_styles)]
        if not self.progressive:
            return torch.stack([self.styles[i](f) for i, f in enumerate(feats)], dim=1)
        w0 = self.styles[0](feats[0])
        rows = [w0] + [w0 + self.styles[i](feats[i]) for i in range(1, self.n_styles)]
        return torch.stack(rows, dim=1)


class _LinkedInfo(dict):
    """An encoder's ``model_info`` that keeps its generator's in step (name, weights sha256), also when the
    loader fills it in key by key, so latents and tuned copies of the generator record where they came from."""

    def __init__(self, generator: nn.Module, info: dict[str, Any]) -> None:
        super().__init__(info)
        self._generator = generator
        self._sync()

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._sync()

    def _sync(self) -> None:
        where = self.get("model_name") or self.get("folder")
        gen: dict[str, Any] = {}
        if where:
            gen["model_name"] = f"{where}:generator"
        if self.get("weights_sha256"):  # the folder's weights file, which holds the generator too
            gen["weights_sha256"] = self["weights_sha256"]
        self._generator.model_info = gen


@register_architecture
class PSPEncoder(nn.Module):
    """An image encoder with its StyleGAN2 decoder: ``encode(x) -> ws``, ``reconstruct(x) -> images``.

    ``x`` is the network's own input: an RGB batch ``[N, 3, 256, 256]`` in [-1, 1] (``input_nc`` channels for
    pSp's non-RGB tasks). ``generator`` is the decoder as a zoo generator, so every sdk function works on it.
    """

    architecture = "psp-encoder"
    is_encoder = True

    def __init__(self, encoder_type: str, family: str, backbone: str, input_nc: int, widths: Sequence[int],
                 units: Sequence[int], n_styles: int, latent_avg_rows: int, generator_kwargs: dict[str, Any],
                 start_from_latent_avg: bool = True, default_n_iters: int = 1, dataset_type: str = "") -> None:
        super().__init__()
        self._kwargs = dict(encoder_type=encoder_type, family=family, backbone=backbone, input_nc=input_nc,
                            widths=list(widths), units=list(units), n_styles=n_styles,
                            latent_avg_rows=latent_avg_rows, generator_kwargs=dict(generator_kwargs),
                            start_from_latent_avg=start_from_latent_avg, default_n_iters=default_n_iters,
                            dataset_type=dataset_type)
        self.family, self.encoder_type, self.input_nc = family, encoder_type, input_nc
        self.start_from_latent_avg, self.default_n_iters = start_from_latent_avg, default_n_iters
        self.iterative = input_nc == 6 and family.startswith("restyle")
        self.cars = dataset_type == "cars_encode"  # upstream's only non-square domain
        self.generator = StyleGAN2Generator(**generator_kwargs)
        G = self.generator
        if n_styles != G.num_ws:
            raise ValueError(f"n_styles {n_styles} != the decoder's {G.num_ws} latents")
        self.encoder = StyleEncoder(encoder_type, backbone, input_nc, widths, units, G.w_dim, n_styles)
        self.register_buffer("latent_avg", torch.zeros(latent_avg_rows, G.w_dim))
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = G.z_dim, G.c_dim, G.w_dim, G.num_ws
        self.img_resolution, self.img_channels = G.img_resolution, G.img_channels
        self.class_names: list[str] | None = None
        self.model_info = {}

    @property
    def model_info(self) -> dict[str, Any]:
        return self._model_info

    @model_info.setter
    def model_info(self, info: dict[str, Any]) -> None:
        self._model_info = _LinkedInfo(self.generator, info)


    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "PSPEncoder":
        return cls(**config["init_kwargs"])

    def init_kwargs(self) -> dict[str, Any]:
        return dict(self._kwargs)

    @property
    def in_channels(self) -> int:
        """Image channels ``encode`` takes (ReStyle's 6-channel input adds the previous image itself)."""
        return 3 if self.iterative else self.input_nc

    @property
    def input_size(self) -> tuple[int, int]:
        """``(H, W)`` of the encoder input: 256 x 256, or 192 x 256 for the car models (their images are 4:3)."""
        return (192, 256) if self.cars else (INPUT_SIZE, INPUT_SIZE)

    def face_pool(self, img: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(img, (INPUT_SIZE, INPUT_SIZE))

    def _crop(self, img: torch.Tensor) -> torch.Tensor:
        """Cars: the 4:3 image inside the square output (upstream rows 32:224 of 256, 64:448 of 512)."""
        if not self.cars:
            return img
        m = img.shape[-2] // 8
        return img[:, :, m:img.shape[-2] - m, :]

    def _feedback(self, img: torch.Tensor) -> torch.Tensor:
        """ReStyle's next-iteration input from a decoder image (upstream ``face_pool``; cars: crop, then pool)."""
        if self.cars:
            return F.adaptive_avg_pool2d(self._crop(img), self.input_size)
        return self.face_pool(img)

    def _check(self, x: torch.Tensor) -> None:
        h, w = self.input_size
        if x.ndim != 4 or x.shape[1] != self.in_channels or tuple(x.shape[2:]) != (h, w):
            raise EncoderInputError(f"encoder input must be [N, {self.in_channels}, {h}, {w}] in [-1, 1], got "
                                    f"{list(x.shape)}; resize the aligned photo to {w}x{h} px")

    def _offset(self, codes: torch.Tensor, base: torch.Tensor | None) -> torch.Tensor:
        if codes.ndim == 2:  # one w for every layer (learn_in_w), broadcast as the decoder does
            codes = codes.unsqueeze(1).expand(-1, self.num_ws, -1)
        if base is not None:
            return codes + base
        if self.start_from_latent_avg:
            return codes + self.latent_avg.unsqueeze(0)  # [1 or num_ws, w_dim] rows broadcast
        return codes.contiguous()

    def average_image(self) -> torch.Tensor:
        """ReStyle's starting image: the decoder's image of ``latent_avg``, pooled to the input size. [1, 3, H, W]."""
        ws = self.latent_avg.unsqueeze(0).expand(1, self.num_ws, self.w_dim)
        return self._feedback(self.generator.synthesis(ws, noise_mode="const"))

    def encode(self, x: torch.Tensor, n_iters: int | None = None, *, return_all: bool = False) -> torch.Tensor:
        """Latents ``[N, num_ws, w_dim]`` for images ``x`` ([N, 3, 256, 256], [-1, 1]).

        ReStyle encoders run ``n_iters`` refinement steps (default: the value they were trained with);
        ``return_all`` gives every step's latents stacked on dim 0. Single-pass encoders take ``n_iters`` 1.
        """
        self._check(x)
        x = x.to(self.latent_avg.dtype)
        if not self.iterative:
            if n_iters not in (None, 1):
                raise EncoderInputError(f"{self.family} encodes in one pass; n_iters={n_iters} needs a ReStyle "
                                        "encoder (or use sdk.invert(..., method='encoder+optimize'))")
            ws = self._offset(self.encoder(x), None)
            return ws.unsqueeze(0) if return_all else ws
        steps = self.default_n_iters if n_iters is None else int(n_iters)
        if steps < 1:
            raise EncoderInputError(f"n_iters must be >= 1, got {n_iters}")
        prev = self.average_image().expand(x.shape[0], -1, -1, -1)
        ws = None
        out = []
        for _ in range(steps):
            ws = self._offset(self.encoder(torch.cat([x, prev], dim=1)), ws)
            out.append(ws)
            prev = self._feedback(self.generator.synthesis(ws, noise_mode="const"))
        return torch.stack(out) if return_all else out[-1]

    def decode(self, ws: torch.Tensor, resize: bool = False) -> torch.Tensor:
        img = self.generator.synthesis(ws, noise_mode="const")
        return self._crop(self.face_pool(img) if resize else img)

    def reconstruct(self, x: torch.Tensor, n_iters: int | None = None, resize: bool = False) -> torch.Tensor:
        """The decoder's image of ``encode(x)`` (constant noise); ``resize`` pools it to 256 px as upstream."""
        return self.decode(self.encode(x, n_iters), resize=resize)

    def forward(self, x: torch.Tensor, n_iters: int | None = None) -> torch.Tensor:
        return self.encode(x, n_iters)


# --- Published encoders -------------------------------------------------------------------------------
# From the three repositories' READMEs ("Pretrained Models" tables): Google Drive links, MIT licence (code and
# released encoders), and the StyleGAN2 generator each was trained over (rosinality conversions of the official
# weights: FFHQ 1024 config-f; restyle-encoder: LSUN Car 512x384, LSUN Church / Horse 256, AFHQ Wild 512 from
# StyleGAN-ADA). Each file carries that generator as its decoder; ``GENERATOR_OF`` names it.
_DRIVE = "https://drive.google.com/file/d/{}/view"
_REPOS = {"e4e": "omertov/encoder4editing", "psp": "eladrich/pixel2style2pixel",
          "restyle-psp": "yuval-alaluf/restyle-encoder", "restyle-e4e": "yuval-alaluf/restyle-encoder"}
_PAPERS = {
    "e4e": "Designing an Encoder for StyleGAN Image Manipulation (Tov et al., SIGGRAPH 2021)",
    "psp": "Encoding in Style: a StyleGAN Encoder for Image-to-Image Translation (Richardson et al., CVPR 2021)",
    "restyle-psp": "ReStyle: A Residual-Based StyleGAN Encoder via Iterative Refinement (Alaluf et al., ICCV 2021)",
}
_PAPERS["restyle-e4e"] = _PAPERS["restyle-psp"]
_NVIDIA_NOTE = ("The decoder inside the file is NVIDIA's StyleGAN2 ({}) converted by rosinality; NVIDIA's weights "
                "are licensed for non-commercial use only.")
_GENERATOR_TEXT = {
    "stylegan2-ffhq": "FFHQ 1024 config-f", "stylegan2-lsun-car": "LSUN Car 512x384 config-f",
    "stylegan2-lsun-church": "LSUN Church 256 config-f", "stylegan2-lsun-horse": "LSUN Horse 256 config-f",
    "stylegan2-afhqwild": "StyleGAN2-ADA AFHQ Wild 512", "toonify": "Toonify (Doron Adler and Justin Pinkney), "
    "fine-tuned from FFHQ config-f"}
#: (name, family, Drive id, file, dataset, resolution, generator, note)
_RELEASED = [
    ("e4e-ffhq", "e4e", "1cUv_reLE6k3604or78EranS7XzuVMWeO", "e4e_ffhq_encode.pt", "FFHQ", 1024, "stylegan2-ffhq", ""),
    ("e4e-cars", "e4e", "17faPqBce2m1AQeLCLHUVXaDfxMRU2QcV", "e4e_cars_encode.pt", "Stanford Cars", 512,
     "stylegan2-lsun-car", ""),
    ("e4e-horse", "e4e", "1TkLLnuX86B_BMo2ocYD0kX9kWh53rUVX", "e4e_horse_encode.pt", "LSUN Horse", 256,
     "stylegan2-lsun-horse", ""),
    ("e4e-church", "e4e", "1-L0ZdnQLwtdy6-A_Ccgq5uNJGTqE7qBa", "e4e_church_encode.pt", "LSUN Church", 256,
     "stylegan2-lsun-church", ""),
    ("psp-ffhq-encode", "psp", "1bMTNWkh5LArlaWSc_wa8VKyq2V42T2z0", "psp_ffhq_encode.pt", "FFHQ", 1024,
     "stylegan2-ffhq", ""),
    ("psp-ffhq-frontalization", "psp", "1_S4THAzXb-97DbpXmanjHtXRyKxqjARv", "psp_ffhq_frontalization.pt", "FFHQ",
     1024, "stylegan2-ffhq", "Face frontalisation: same photo-in, W+-out call."),
    ("psp-celebs-super-resolution", "psp", "1ZpmSXBpJ9pFEov6-jjQstAlfYbkebECu", "psp_celebs_super_resolution.pt",
     "CelebA-HQ", 1024, "stylegan2-ffhq", "Super-resolution: pass the low-resolution face resized to 256 px."),
    ("psp-celebs-sketch-to-face", "psp", "1lB7wk7MwtdxL-LL4Z_T76DuCfk00aSXA", "psp_celebs_sketch_to_face.pt",
     "CelebA-HQ", 1024, "stylegan2-ffhq", "Input is a 1-channel sketch ([N, 1, 256, 256]); upstream style-mixes "
     "the fine layers, which ganzoo leaves to sdk.mix."),
    ("psp-celebs-seg-to-face", "psp", "1VpEKc6E6yG3xhYuZ0cq8D2_1CbT0Dstz", "psp_celebs_seg_to_face.pt",
     "CelebAMask-HQ", 1024, "stylegan2-ffhq", "Input is a 19-class one-hot segmentation map ([N, 19, 256, 256])."),
    ("psp-ffhq-toonify", "psp", "1YKoiVuFaqdvzDP5CZaqa3k5phL-VDmyz", "psp_ffhq_toonify.pt", "FFHQ", 1024, "toonify",
     ""),
    ("restyle-psp-ffhq", "restyle-psp", "1sw6I2lRIB0MpuJkpc8F5BJiSZrc0hjfE", "restyle_psp_ffhq_encode.pt", "FFHQ",
     1024, "stylegan2-ffhq", ""),
    ("restyle-psp-cars", "restyle-psp", "1zJHqHRQ8NOnVohVVCGbeYMMr6PDhRpPR", "restyle_psp_cars_encode.pt",
     "Stanford Cars", 512, "stylegan2-lsun-car", "ResNet-34 backbone; upstream feeds 192x256 car crops."),
    ("restyle-psp-church", "restyle-psp", "1bcxx7mw-1z7dzbJI_z7oGpWG1oQAvMaD", "restyle_psp_church_encode.pt",
     "LSUN Church", 256, "stylegan2-lsun-church", "ResNet-34 backbone."),
    ("restyle-psp-afhq-wild", "restyle-psp", "1GyFXVTNDUw3IIGHmGS71ChhJ1Rmslhk7", "restyle_psp_afhq_wild_encode.pt",
     "AFHQ Wild", 512, "stylegan2-afhqwild", "ResNet-34 backbone."),
    ("restyle-psp-toonify", "restyle-psp", "1GtudVDig59d4HJ_8bGEniz5huaTSGO_0", "restyle_psp_toonify.pt",
     "FFHQ", 1024, "toonify", ""),
    ("restyle-e4e-ffhq", "restyle-e4e", "1e2oXVeBPXMQoUoC_4TNwAWpOPpSEhE_e", "restyle_e4e_ffhq_encode.pt", "FFHQ",
     1024, "stylegan2-ffhq", ""),
    ("restyle-e4e-cars", "restyle-e4e", "1v6Yi-Yne6JX0Pyas6XPS83IzKKUvCe8r", "restyle_e4e_cars_encode.pt",
     "Stanford Cars", 512, "stylegan2-lsun-car", "ResNet-34 backbone; upstream feeds 192x256 car crops."),
    ("restyle-e4e-church", "restyle-e4e", "1sCRzbM1fGTgTbWO87jP_rxApw-tS0CH_", "restyle_e4e_church_encode.pt",
     "LSUN Church", 256, "stylegan2-lsun-church", "ResNet-34 backbone."),
    ("restyle-e4e-afhq-wild", "restyle-e4e", "1HQlUPKirShHyL3kGnwVRjhfcb-j9s4V3", "restyle_e4e_afhq_wild_encode.pt",
     "AFHQ Wild", 512, "stylegan2-afhqwild", "ResNet-34 backbone."),
    ("restyle-e4e-horse", "restyle-e4e", "19_sUpTYtJmhSAolKLm3VgI-ptYqd-hgY", "restyle_e4e_horse_encode.pt",
     "LSUN Horse", 256, "stylegan2-lsun-horse", "ResNet-34 backbone."),
]
#: encoder name -> the generator it inverts into (a registry name where ganzoo registers that generator).
GENERATOR_OF = {r[0]: r[6] for r in _RELEASED}
#: generator registry name -> the encoder ``sdk.invert`` / ``ganzoo edit-photo`` use for it by default. Only where
#: the encoder's decoder is the same network as the registered generator: the e4e FFHQ decoder is rosinality's
#: conversion of the official config-f FFHQ weights that ``stylegan2-ffhq`` also holds (one W space). e4e is the
#: encoder its authors made for editing.
DEFAULT_ENCODER = {"stylegan2-ffhq": "e4e-ffhq"}


def _entry(name: str, family: str, drive: str, file: str, dataset: str, res: int, gen: str, note: str) -> ModelEntry:
    repo = _REPOS[family]
    text = (f"Encoder into the W+ space of {gen} ({_GENERATOR_TEXT[gen]}). Google Drive file from "
            f"github.com/{repo}: if the download is refused, fetch it in a browser and pass the path to zoo.load.")
    return ModelEntry(name=name, family=family, architecture="psp-encoder", source_format="psp-encoder-pt",
                      url=_DRIVE.format(drive), dataset=dataset, resolution=res, license="mit", paper=_PAPERS[family],
                      source_file=file, tags=("encoder", f"generator:{gen}"),
                      license_note=_NVIDIA_NOTE.format(_GENERATOR_TEXT[gen]),
                      notes=f"{text}{(' ' + note) if note else ''}")


register_models(*(_entry(*r) for r in _RELEASED))
