"""R3GAN generator ("The GAN is dead; long live the GAN! A Modern GAN Baseline", Huang et al., NeurIPS 2024).

Follows ``R3GAN/Networks.py`` of brownvc/R3GAN (the same code was published as ``BaselineGAN/Networks.py``
before the project was renamed): a z-space generator without mapping network or W space.

- Stage 0, ``GenerativeBasis``: a learned ``[C, 4, 4]`` basis scaled per channel by ``Linear(z)``.
- Every later stage starts with ``UpsampleLayer``: an optional bias-free 1x1 convolution when the width
  changes, then interpolative 2x upsampling with the ``[1, 3, 3, 1]`` FIR kernel (gain 4).
- Each stage then runs ``ResidualBlock``s: ``x + conv1x1(act(grouped conv kxk(act(conv1x1(x)))))``, the middle
  convolution grouped by the stage's cardinality, ``act`` = bias + leaky ReLU(0.2) with gain 1.
- ``AggregationLayer``: a bias-free 1x1 convolution to RGB; no output non-linearity (nominal [-1, 1]).
- Conditional models concatenate ``EmbeddingLayer(c)`` (bias-free linear) after z.

Parameter names equal the upstream ``state_dict`` of ``training.networks.Generator`` (``Model.MainLayers...``).
Precision: upstream marks some stages bfloat16 (train.py ``FP16Stages``) and runs them in bfloat16 even on
CPU; this implementation runs every stage in float32 by default (bfloat16 rounding moves pixels by ~0.02).
``G.emulate_bfloat16 = True`` reproduces the upstream mixed-precision path.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..base import GanGenerator
from ..registry import ModelEntry, register_architecture, register_models
from .ops import on_host, upsample2d


@on_host
def lowpass_kernel(taps: Sequence[float]) -> torch.Tensor:
    """The interpolative resampling kernel: ``taps`` convolved with ``[1, 1]``, outer product, unit sum."""
    k = torch.as_tensor([float(t) for t in taps], dtype=torch.float64)
    k = F.conv1d(k.view(1, 1, -1), torch.ones(1, 1, 2, dtype=torch.float64), padding=1).view(-1)
    k2 = torch.outer(k, k)
    return (k2 / k2.sum()).to(torch.float32)


class Convolution(nn.Module):
    """Bias-free convolution (``Layer`` keeps the upstream ``nn.Conv2d`` name), run in the input's dtype."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, groups: int = 1) -> None:
        super().__init__()
        self.Layer = nn.Conv2d(in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2,
                               groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.Layer.weight.to(x.dtype), padding=self.Layer.padding, groups=self.Layer.groups)


class BiasedActivation(nn.Module):
    """Bias then leaky ReLU(0.2), gain 1 (upstream calls ``bias_act(..., act='lrelu', gain=1)``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.Bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.Bias.to(x.dtype)
        return F.leaky_relu(x + b.view(1, -1, *([1] * (x.ndim - 2))), 0.2)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, cardinality: int, expansion: int, kernel_size: int) -> None:
        super().__init__()
        wide = channels * expansion
        if wide % cardinality:
            raise ValueError(f"expanded width {wide} is not divisible by cardinality {cardinality}")
        self.LinearLayer1 = Convolution(channels, wide, 1)
        self.LinearLayer2 = Convolution(wide, wide, kernel_size, groups=cardinality)
        self.LinearLayer3 = Convolution(wide, channels, 1)
        self.NonLinearity1 = BiasedActivation(wide)
        self.NonLinearity2 = BiasedActivation(wide)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.LinearLayer1(x)
        y = self.LinearLayer2(self.NonLinearity1(y))
        y = self.LinearLayer3(self.NonLinearity2(y))
        return x + y


class InterpolativeUpsampler(nn.Module):
    def __init__(self, taps: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("Kernel", lowpass_kernel(taps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsample2d(x, self.Kernel)


class UpsampleLayer(nn.Module):
    """Optional 1x1 width change, then 2x interpolative upsampling (in that order, as upstream)."""

    def __init__(self, in_channels: int, out_channels: int, taps: Sequence[float]) -> None:
        super().__init__()
        self.Resampler = InterpolativeUpsampler(taps)
        if in_channels != out_channels:
            self.LinearLayer = Convolution(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "LinearLayer"):
            x = self.LinearLayer(x)
        return self.Resampler(x)


class GenerativeBasis(nn.Module):
    def __init__(self, in_features: int, channels: int) -> None:
        super().__init__()
        self.Basis = nn.Parameter(torch.randn(channels, 4, 4))
        self.LinearLayer = nn.Linear(in_features, channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # modules are called (not their weights used) so forward hooks see them, as in upstream
        return self.Basis.view(1, -1, 4, 4) * self.LinearLayer(x).view(x.shape[0], -1, 1, 1)


class GeneratorStage(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, cardinality: int, blocks: int, expansion: int,
                 kernel_size: int, taps: Sequence[float] | None) -> None:
        super().__init__()
        first: nn.Module = (GenerativeBasis(in_channels, out_channels) if taps is None
                            else UpsampleLayer(in_channels, out_channels, taps))
        self.Layers = nn.ModuleList([first] + [ResidualBlock(out_channels, cardinality, expansion, kernel_size)
                                               for _ in range(blocks)])
        self.DataType = torch.float32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.DataType)
        for layer in self.Layers:
            x = layer(x)
        return x


class R3GANNetwork(nn.Module):
    """The upstream ``R3GAN.Networks.Generator`` module tree (the ``Model`` of ``training.networks.Generator``)."""

    def __init__(self, NoiseDimension: int, WidthPerStage: Sequence[int], CardinalityPerStage: Sequence[int],
                 BlocksPerStage: Sequence[int], ExpansionFactor: int, ConditionDimension: int | None = None,
                 ConditionEmbeddingDimension: int = 0, KernelSize: int = 3,
                 ResamplingFilter: Sequence[float] = (1, 2, 1)) -> None:
        super().__init__()
        n = len(WidthPerStage)
        if not (len(CardinalityPerStage) == len(BlocksPerStage) == n) or n == 0:
            raise ValueError("WidthPerStage, CardinalityPerStage and BlocksPerStage must have the same length")
        stages = [GeneratorStage(NoiseDimension + ConditionEmbeddingDimension, WidthPerStage[0],
                                 CardinalityPerStage[0], BlocksPerStage[0], ExpansionFactor, KernelSize, None)]
        stages += [GeneratorStage(WidthPerStage[i], WidthPerStage[i + 1], CardinalityPerStage[i + 1],
                                  BlocksPerStage[i + 1], ExpansionFactor, KernelSize, ResamplingFilter)
                   for i in range(n - 1)]
        self.MainLayers = nn.ModuleList(stages)
        self.AggregationLayer = Convolution(WidthPerStage[-1], 3, 1)
        if ConditionDimension is not None:
            self.EmbeddingLayer = nn.Linear(ConditionDimension, ConditionEmbeddingDimension, bias=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if hasattr(self, "EmbeddingLayer"):
            x = torch.cat([x, self.EmbeddingLayer(y.to(x.dtype))], dim=1)
        for stage in self.MainLayers:
            x = stage(x)
        return self.AggregationLayer(x)


@register_architecture
class R3GANGenerator(GanGenerator):
    """``G(z, c)``: z ``[N, z_dim]`` (and one-hot ``c`` for conditional models) -> ``[N, 3, R, R]``.

    R3GAN has no truncation trick (no W space; the paper samples without one): ``truncation_psi`` must be 1.
    """

    architecture = "r3gan"
    psi_dtype = None
    style_based = False

    def __init__(self, NoiseDimension: int, WidthPerStage: Sequence[int], CardinalityPerStage: Sequence[int],
                 BlocksPerStage: Sequence[int], ExpansionFactor: int = 2, c_dim: int = 0,
                 ConditionEmbeddingDimension: int = 0, KernelSize: int = 3,
                 ResamplingFilter: Sequence[float] = (1, 2, 1), bfloat16_stages: Sequence[int] = ()) -> None:
        super().__init__()
        if c_dim and not ConditionEmbeddingDimension:
            raise ValueError("a conditional R3GAN (c_dim > 0) needs ConditionEmbeddingDimension > 0")
        n = len(WidthPerStage)
        stages_bf16 = sorted({int(i) % n for i in bfloat16_stages}) if n else []
        self._kwargs: dict[str, Any] = dict(
            NoiseDimension=int(NoiseDimension), WidthPerStage=[int(w) for w in WidthPerStage],
            CardinalityPerStage=[int(g) for g in CardinalityPerStage], BlocksPerStage=[int(b) for b in BlocksPerStage],
            ExpansionFactor=int(ExpansionFactor), c_dim=int(c_dim),
            ConditionEmbeddingDimension=int(ConditionEmbeddingDimension) if c_dim else 0,
            KernelSize=int(KernelSize), ResamplingFilter=[float(t) for t in ResamplingFilter],
            bfloat16_stages=stages_bf16)
        self.Model = R3GANNetwork(NoiseDimension, WidthPerStage, CardinalityPerStage, BlocksPerStage, ExpansionFactor,
                                  ConditionDimension=c_dim or None,
                                  ConditionEmbeddingDimension=ConditionEmbeddingDimension if c_dim else 0,
                                  KernelSize=KernelSize, ResamplingFilter=ResamplingFilter)
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = int(NoiseDimension), int(c_dim), 0, 0
        self.img_resolution = 4 * 2 ** (n - 1)
        self.img_channels = 3
        #: stages upstream computes in bfloat16 (``FP16Stages``; kept to reproduce that path on request)
        self.bfloat16_stages = stages_bf16
        self._emulate_bf16 = False

    @property
    def emulate_bfloat16(self) -> bool:
        """Run the upstream bfloat16 stages in bfloat16, like the plain upstream call (default: all float32)."""
        return self._emulate_bf16

    @emulate_bfloat16.setter
    def emulate_bfloat16(self, on: bool) -> None:
        self._emulate_bf16 = bool(on)
        for i, stage in enumerate(self.Model.MainLayers):
            stage.DataType = torch.bfloat16 if (on and i in self.bfloat16_stages) else torch.float32

    def z_projection(self) -> tuple[str, torch.Tensor]:
        """The first layer reading z (the basis projection; conditional models feed it [z, embedding(c)])."""
        name = "Model.MainLayers.0.Layers.0.LinearLayer"
        return name, self.Model.MainLayers[0].Layers[0].LinearLayer.weight.detach()[:, :self.z_dim]

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "const") -> torch.Tensor:
        """``noise_mode`` is accepted for API symmetry (R3GAN has no noise inputs)."""
        if z.ndim == 4:
            z = z.flatten(1)
        self.check_inputs(z, c)
        if isinstance(truncation_psi, torch.Tensor) or float(truncation_psi) != 1 or truncation_cutoff is not None:
            raise ValueError("R3GAN has no truncation trick: use truncation_psi=1 (the paper samples untruncated)")
        # gen_images.py passes float64 z; the first stage casts to its dtype, so float32 z is exact.
        img = self.Model(z.to(torch.float32), None if self.c_dim == 0 else c.to(torch.float32))
        return img.to(torch.float32)


# --- Published checkpoints ---------------------------------------------------------------------------------
# brownvc/R3GAN README "Pre-trained models" (config E on each dataset): one Hugging Face Hub repository per model,
# each holding network-snapshot-final.pkl. FIDs: the paper (arXiv 2501.05441) for CIFAR-10 (1.96),
# FFHQ-256 (2.75) and ImageNet-32 (1.27); None where we could not confirm the published number.
# Presets (widths, cardinality, bfloat16 stages): train.py --preset.
_HF = "https://huggingface.co/brownvc"
_FILE = "network-snapshot-final.pkl"
_PAPER = "The GAN is dead; long live the GAN! A Modern GAN Baseline (Huang et al., NeurIPS 2024)"
_LICENSE_NOTE = ("brownvc/R3GAN publishes no licence for its code or weights; its training code is NVIDIA's "
                 "StyleGAN3 code base (NVIDIA's non-commercial source-code licence). Treat the weights as "
                 "research-only, non-commercial, and check the training dataset's terms.")


def _r3(name: str, repo: str, dataset: str, res: int, fid: float | None, preset: str,
        num_classes: int = 0, tags: tuple[str, ...] = ()) -> ModelEntry:
    return ModelEntry(
        name=name, family="r3gan", architecture="r3gan", source_format="r3gan-pickle",
        url=f"{_HF}/{repo}/resolve/main/{_FILE}", dataset=dataset, resolution=res,
        license="unspecified", conditional=num_classes > 0, num_classes=num_classes,
        paper=_PAPER, fid=fid, source_file=_FILE, license_note=_LICENSE_NOTE,
        notes=(f"Config E, train.py preset {preset} (Hub repository brownvc/{repo}). Sampled like upstream "
               "gen_images.py: z = RandomState(seed).randn, no truncation. Upstream runs its last stages in "
               "bfloat16; ganzoo runs float32 unless G.emulate_bfloat16 = True."), tags=tags)


register_models(
    _r3("r3gan-ffhq-256", "R3GAN-FFHQ-256x256", "FFHQ", 256, 2.75, "FFHQ-256", tags=("faces",)),
    _r3("r3gan-ffhq-64", "R3GAN-FFHQ-64x64", "FFHQ", 64, None, "FFHQ-64", tags=("faces",)),
    _r3("r3gan-cifar10-32", "R3GAN-CIFAR10", "CIFAR-10", 32, 1.96, "CIFAR10", num_classes=10),
    _r3("r3gan-imagenet-32", "R3GAN-ImgNet-32x32", "ImageNet", 32, 1.27, "ImageNet-32", num_classes=1000),
    _r3("r3gan-imagenet-64", "R3GAN-ImgNet-64x64", "ImageNet", 64, None, "ImageNet-64", num_classes=1000),
)
