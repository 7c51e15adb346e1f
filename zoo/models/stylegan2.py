"""StyleGAN2 / StyleGAN2-ADA generator (Karras et al. 2020), one implementation for both NVIDIA codebases.

Covers ``training/networks.py`` of NVlabs/stylegan2-ada-pytorch and ``training/networks_stylegan2.py``
of NVlabs/stylegan3 (same parameter layout): architectures ``orig`` / ``skip`` / ``resnet``,
conditional mapping, ``conv_clamp``, truncation with cutoff, noise modes ``const`` / ``random`` / ``none``.
Parameter and buffer names equal the upstream ``state_dict`` names so parity bugs stay traceable.
``num_fp16_res`` is recorded but blocks always run in float32 (what the stylegan3 repo does off-GPU).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..base import StyleGenerator
from .ops import bias_act, make_filter, modulated_conv2d, normalize_2nd_moment, conv2d_resample, upsample2d
from ..registry import ModelEntry, register_architecture, register_models

#: Run the FIR resampling filter as two 1-D passes instead of one 2-D pass (equal up to float rounding).
#: Off by default: on the CPUs measured so far each depthwise pass cost about as much as the whole 4x4 pass
#: (memory-bound). ``sdk.backends.tune.kernel_forms`` times both on the machine that samples and sets this.
SEPARABLE_FIR = False


def _fir(f: torch.Tensor) -> torch.Tensor:
    """The stored 2-D resampling filter, or its 1-D factor when ``SEPARABLE_FIR`` is on.

    StyleGAN2 filters are outer products of symmetric taps (``make_filter``), so one 1-D factor serves both
    passes; taking it with tensor ops keeps the graph free of data-dependent checks (exportable).
    """
    if not SEPARABLE_FIR or f.ndim != 2:
        return f
    return f.sum(dim=0) / f.sum().sqrt()


class FullyConnectedLayer(nn.Module):
    """Dense layer with equalized learning rate: weights stored scaled by 1/lr_multiplier."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0) -> None:
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features).div_(lr_multiplier))
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)


class MappingNetwork(nn.Module):
    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, num_layers: int = 8,
                 embed_features: int | None = None, layer_features: int | None = None,
                 activation: str = "lrelu", lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.995) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, c_dim, w_dim, num_ws, num_layers
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(features[i], features[i + 1], activation=activation,
                                                        lr_multiplier=lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, truncation_latent: torch.Tensor | None = None) -> torch.Tensor:
        """``truncation_latent`` ([1, w_dim] or [N, w_dim]): the truncation centre instead of ``w_avg``."""
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if self.num_ws is None:
            return x
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        return truncate_ws(x, truncation_centre(self.w_avg, truncation_latent, x), truncation_psi, truncation_cutoff)


def truncation_centre(w_avg: torch.Tensor, truncation_latent: torch.Tensor | None, ws: torch.Tensor) -> torch.Tensor:
    """The stored ``w_avg``, or an explicit ``[1 | N, w_dim]`` centre shaped to broadcast over ``ws [N, L, w_dim]``."""
    if truncation_latent is None:
        return w_avg
    t = truncation_latent.to(device=ws.device, dtype=ws.dtype)
    if t.ndim != 2 or t.shape[1] != ws.shape[2] or t.shape[0] not in (1, ws.shape[0]):
        raise ValueError(f"truncation_latent must have shape [1, {ws.shape[2]}] or [{ws.shape[0]}, {ws.shape[2]}], "
                         f"got {list(t.shape)}")
    return t.unsqueeze(1)


def truncate_ws(ws: torch.Tensor, w_avg: torch.Tensor, psi: float | torch.Tensor = 1.0,
                cutoff: int | None = None) -> torch.Tensor:
    """The truncation trick: lerp ``ws[:, :cutoff]`` (all layers when ``cutoff`` is None) towards ``w_avg``.

    ``w_avg`` is ``[w_dim]`` or a broadcastable centre such as ``[N, 1, w_dim]``.
    """
    if not isinstance(psi, torch.Tensor) and psi == 1:
        return ws
    lerp = not isinstance(psi, torch.Tensor) and w_avg.ndim == 1  # the upstream op for the stored average
    if cutoff is None:
        return w_avg.lerp(ws, psi) if lerp else w_avg + psi * (ws - w_avg)
    head = ws[:, :cutoff]
    head = w_avg.lerp(head, psi) if lerp else w_avg + psi * (head - w_avg)
    return torch.cat([head, ws[:, cutoff:]], dim=1)


class SynthesisLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kernel_size: int = 3,
                 up: int = 1, use_noise: bool = True, activation: str = "lrelu",
                 resample_filter: Sequence[float] = (1, 3, 3, 1), conv_clamp: float | None = None) -> None:
        super().__init__()
        if activation not in ("lrelu", "relu", "linear"):  # forward relies on act(g * y) == g * act(y), g > 0
            raise ValueError(f"unknown activation {activation!r}: use lrelu, relu or linear")
        self.resolution, self.up, self.use_noise, self.activation = resolution, up, use_noise, activation
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.register_buffer("resample_filter", make_filter(resample_filter))
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const", gain: float = 1.0,
                noise_input: torch.Tensor | None = None) -> torch.Tensor:
        expected = self.resolution // self.up
        if x.shape[2] != expected or x.shape[3] != expected:
            raise ValueError(f"SynthesisLayer expects {expected}x{expected} input, got {list(x.shape)}")
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_input is not None:  # explicit noise, broadcastable to [N, 1, r, r]
            noise = noise_input.to(device=x.device, dtype=x.dtype) * self.noise_strength
        elif self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        # bias_act(conv + noise, bias, act, gain=sqrt(2) * gain, clamp), with the positive gain moved in front of
        # the activation (lrelu and relu commute with it): fewer passes over the activations, the later ones in
        # place (eager batch 8: 1320 -> 1073 ms/image, benchmarks/bench_generate.py config).
        clamp = None if self.conv_clamp is None or self.conv_clamp < 0 else self.conv_clamp * gain
        return modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                                resample_filter=_fir(self.resample_filter), flip_weight=(self.up == 1),
                                bias=self.bias, out_scale=math.sqrt(2) * gain, activation=self.activation,
                                clamp=clamp)


class ToRGBLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size * kernel_size)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class Conv2dLayer(nn.Module):
    """Plain equalized-lr convolution (used for the resnet skip path)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None) -> None:
        super().__init__()
        self.activation, self.up, self.conv_clamp = activation, up, conv_clamp
        self.register_buffer("resample_filter", make_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = self.weight * self.weight_gain
        x = conv2d_resample(x, w.to(x.dtype), f=_fir(self.resample_filter), up=self.up, padding=self.padding,
                            flip_weight=(self.up == 1))
        act_gain = (math.sqrt(2) if self.activation == "lrelu" else 1.0) * gain
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        b = self.bias.to(x.dtype) if self.bias is not None else None
        return bias_act(x, b, act=self.activation, gain=act_gain, clamp=clamp)


class SynthesisBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, architecture: str = "skip", resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None, use_noise: bool = True, activation: str = "lrelu") -> None:
        super().__init__()
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"unknown StyleGAN2 architecture {architecture!r}: use orig, skip or resnet")
        self.in_channels, self.resolution, self.is_last, self.architecture = in_channels, resolution, is_last, architecture
        self.register_buffer("resample_filter", make_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        layer = dict(w_dim=w_dim, resolution=resolution, resample_filter=resample_filter, conv_clamp=conv_clamp,
                     use_noise=use_noise, activation=activation)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, **layer)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                noise_mode: str = "const", noise: Sequence[torch.Tensor | None] | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``noise``: explicit noise for this block's conv layers (``num_conv`` entries, None = ``noise_mode``)."""
        w_iter = iter(ws.unbind(dim=1))
        n_iter = iter(noise if noise is not None else [None] * self.num_conv)
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, noise_input=next(n_iter))
        elif self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode, noise_input=next(n_iter))
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, gain=math.sqrt(0.5), noise_input=next(n_iter))
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode, noise_input=next(n_iter))
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, noise_input=next(n_iter))
        if img is not None:
            img = upsample2d(img, _fir(self.resample_filter))
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter)).to(torch.float32)
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_fp16_res: int = 0, channels: dict[Any, int] | None = None,
                 **block_kwargs: Any) -> None:
        super().__init__()
        log2 = int(np.log2(img_resolution))
        if img_resolution < 4 or 2 ** log2 != img_resolution:
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_fp16_res = num_fp16_res
        self.block_resolutions = [2 ** i for i in range(2, log2 + 1)]
        if channels is None:
            channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        else:  # explicit widths per resolution (checkpoints whose widths follow no base/max rule)
            given = {int(k): int(v) for k, v in channels.items()}
            missing = [r for r in self.block_resolutions if r not in given]
            if missing:
                raise ValueError(f"channels lacks resolution(s) {missing}")
            channels = given
        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels[res // 2] if res > 4 else 0
            block = SynthesisBlock(in_channels, channels[res], w_dim=w_dim, resolution=res, img_channels=img_channels,
                                   is_last=(res == img_resolution), **block_kwargs)
            self.num_ws += block.num_conv
            if res == img_resolution:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    @property
    def num_noise(self) -> int:
        """How many per-layer noise inputs ``forward(noise=...)`` takes (one per conv layer, ``num_ws - 1``)."""
        return sum(getattr(self, f"b{res}").num_conv for res in self.block_resolutions)

    def forward(self, ws: torch.Tensor, noise_mode: str = "const",
                noise: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        """``ws [N, num_ws, w_dim]`` -> image. ``noise``: ``num_noise`` per-layer tensors in layer order
        (b4.conv1, b8.conv0, b8.conv1, ...), each broadcastable to ``[N, 1, r, r]`` or None (``noise_mode``)."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        if noise_mode not in ("const", "random", "none"):
            raise ValueError(f"noise_mode must be const, random or none, got {noise_mode!r}")
        if noise is not None and len(noise) != self.num_noise:
            raise ValueError(f"noise must list {self.num_noise} per-layer tensors (or None), got {len(noise)}")
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = n_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            cur = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            block_noise = None if noise is None else list(noise[n_idx:n_idx + block.num_conv])
            n_idx += block.num_conv
            x, img = block(x, img, cur, noise_mode=noise_mode, noise=block_noise)
        return img


@register_architecture
class StyleGAN2Generator(StyleGenerator):
    """StyleGAN2 generator: ``G(z, c) = synthesis(mapping(z, c))``."""

    architecture = "stylegan2"

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict[str, Any] | None = None, channel_base: int = 32768, channel_max: int = 512,
                 num_fp16_res: int = 0, conv_clamp: float | None = None, architecture: str = "skip",
                 resample_filter: Sequence[float] = (1, 3, 3, 1), use_noise: bool = True,
                 activation: str = "lrelu", channels: dict[Any, int] | None = None,
                 z_convention: str | None = None) -> None:
        super().__init__()
        self._kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                            img_channels=img_channels, mapping_kwargs=dict(mapping_kwargs or {}),
                            channel_base=channel_base, channel_max=channel_max, num_fp16_res=num_fp16_res,
                            conv_clamp=conv_clamp, architecture=architecture, resample_filter=list(resample_filter),
                            use_noise=use_noise, activation=activation)
        # Optional arguments enter the config only when set, so existing configs stay unchanged.
        if channels is not None:
            self._kwargs["channels"] = {str(k): int(v) for k, v in channels.items()}
        if z_convention is not None:
            self._kwargs["z_convention"] = z_convention
            self.z_convention = z_convention  # the seed -> z recipe of the source codebase
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          channel_base=channel_base, channel_max=channel_max,
                                          num_fp16_res=num_fp16_res, architecture=architecture,
                                          resample_filter=resample_filter, conv_clamp=conv_clamp,
                                          use_noise=use_noise, activation=activation, channels=channels)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                      **(mapping_kwargs or {}))


# --- Published checkpoints -------------------------------------------------------------------------
# URLs: NVlabs/stylegan2-ada-pytorch README ("Pretrained networks") and the stylegan3 release's
# StyleGAN2 pickles on NGC (nvidia/research/stylegan2, version 1). FIDs: StyleGAN2-ADA paper
# (Karras et al. 2020, arXiv 2006.06676) for the ADA-trained sets; StyleGAN2 paper Table 1 (config F) for FFHQ.
_ADA = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained"
_NGC = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files"
_NV_LICENSE = "nvidia-source-code-license"
_ADA_PAPER = "Training Generative Adversarial Networks with Limited Data (Karras et al., NeurIPS 2020)"
_SG2_PAPER = "Analyzing and Improving the Image Quality of StyleGAN (Karras et al., CVPR 2020)"


def _sg2(name: str, url: str, dataset: str, res: int, fid: float | None = None, paper: str = _ADA_PAPER,
         classes: int = 0, notes: str = "") -> ModelEntry:
    return ModelEntry(name=name, family="stylegan2", architecture="stylegan2", source_format="nvidia-pickle",
                      url=url, dataset=dataset, resolution=res, license=_NV_LICENSE, conditional=classes > 0,
                      num_classes=classes, paper=paper, fid=fid, source_file=url.rsplit("/", 1)[-1], notes=notes)


register_models(
    _sg2("stylegan2-ffhq", f"{_ADA}/ffhq.pkl", "FFHQ", 1024, 2.84, _SG2_PAPER,
         notes="Original StyleGAN2 config-f FFHQ weights re-exported by stylegan2-ada-pytorch."),
    _sg2("stylegan2-metfaces", f"{_ADA}/metfaces.pkl", "MetFaces", 1024, 18.22,
         notes="Transfer-learned from FFHQ with ADA."),
    _sg2("stylegan2-afhqcat", f"{_ADA}/afhqcat.pkl", "AFHQ Cat", 512, 3.55),
    _sg2("stylegan2-afhqdog", f"{_ADA}/afhqdog.pkl", "AFHQ Dog", 512, 7.40),
    _sg2("stylegan2-afhqwild", f"{_ADA}/afhqwild.pkl", "AFHQ Wild", 512, 3.05),
    _sg2("stylegan2-brecahad", f"{_ADA}/brecahad.pkl", "BreCaHAD", 512, 15.71),
    _sg2("stylegan2-cifar10", f"{_ADA}/cifar10.pkl", "CIFAR-10 (class-conditional)", 32, 2.42, classes=10),
    _sg2("stylegan2-ffhq-1024-sg3release", f"{_NGC}/stylegan2-ffhq-1024x1024.pkl", "FFHQ", 1024),
    _sg2("stylegan2-ffhq-512-sg3release", f"{_NGC}/stylegan2-ffhq-512x512.pkl", "FFHQ", 512),
    _sg2("stylegan2-ffhq-256-sg3release", f"{_NGC}/stylegan2-ffhq-256x256.pkl", "FFHQ", 256),
    _sg2("stylegan2-ffhqu-1024-sg3release", f"{_NGC}/stylegan2-ffhqu-1024x1024.pkl", "FFHQ-U (unaligned)", 1024),
    _sg2("stylegan2-ffhqu-256-sg3release", f"{_NGC}/stylegan2-ffhqu-256x256.pkl", "FFHQ-U (unaligned)", 256),
    _sg2("stylegan2-metfaces-1024-sg3release", f"{_NGC}/stylegan2-metfaces-1024x1024.pkl", "MetFaces", 1024),
    _sg2("stylegan2-metfacesu-1024-sg3release", f"{_NGC}/stylegan2-metfacesu-1024x1024.pkl",
         "MetFaces-U (unaligned)", 1024),
    _sg2("stylegan2-afhqv2-512-sg3release", f"{_NGC}/stylegan2-afhqv2-512x512.pkl", "AFHQv2", 512),
    _sg2("stylegan2-afhqcat-512-sg3release", f"{_NGC}/stylegan2-afhqcat-512x512.pkl", "AFHQ Cat", 512),
    _sg2("stylegan2-afhqdog-512-sg3release", f"{_NGC}/stylegan2-afhqdog-512x512.pkl", "AFHQ Dog", 512),
    _sg2("stylegan2-afhqwild-512-sg3release", f"{_NGC}/stylegan2-afhqwild-512x512.pkl", "AFHQ Wild", 512),
    _sg2("stylegan2-brecahad-512-sg3release", f"{_NGC}/stylegan2-brecahad-512x512.pkl", "BreCaHAD", 512),
    _sg2("stylegan2-cifar10-32-sg3release", f"{_NGC}/stylegan2-cifar10-32x32.pkl", "CIFAR-10 (class-conditional)",
         32, classes=10),
    _sg2("stylegan2-celebahq-256-sg3release", f"{_NGC}/stylegan2-celebahq-256x256.pkl", "CelebA-HQ", 256),
    _sg2("stylegan2-lsundog-256-sg3release", f"{_NGC}/stylegan2-lsundog-256x256.pkl", "LSUN Dog", 256),
)
