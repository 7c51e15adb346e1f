"""MobileStyleGAN (Belousov 2021): a StyleGAN2 mapping network driving a distilled, phone-sized synthesis network.

The synthesis network (upstream ``core.models.mobile_synthesis_network.MobileSynthesisNetwork``, the "student")
predicts a 12-channel Haar wavelet map at every resolution; each block upsamples with a modulated inverse DWT
instead of a transposed convolution, its convolutions are depthwise-separable modulated convolutions whose
demodulation uses a stored ``style_inv`` buffer (not the style), and the image is the inverse DWT of the last
wavelet map. Module and parameter names follow upstream so a key in a converted file reads like the upstream
``student.*`` / ``mapping_net.*`` key it came from.

Facts from bes-dev/MobileStyleGAN.pytorch (HEAD a9776ff): the student's activations are ``nn.LeakyReLU(0.2)``
without gain while the mapping's ``fused_lrelu`` multiplies by sqrt(2); modulations are plain ``nn.Linear``
(bias initialised to 1) scaled by ``1/sqrt(fan_in)``; the W+ layout (since dc2057f) gives the 4x4 conv
``ws[:, 0]``, the first wavelet head ``ws[:, 1]`` and block ``i`` the rows ``3i+1`` (upsample and conv1),
``3i+2`` (conv2) and ``3i+3`` (wavelet head); the last row of ``ws`` is never read.

Noise: upstream keeps no constant noise and draws fresh ``torch.randn`` on every call. ``noise_mode="none"``
(and ``"const"``, which has nothing stored to be constant about) uses zeros: the deterministic default.
``noise_mode="random"`` draws from torch's global generator in upstream's order and shapes (``[1, 1, 4, 4]``,
then ``[2, 1, s, s]`` per block, shared by the batch), so a seeded call reproduces upstream.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..base import StyleGenerator
from ..registry import ModelEntry, register_architecture, register_models

NOISE_MODES = ("const", "random", "none")


# --- mapping (rosinality layout, shared with StyleSwin) ------------------------------------------------------

class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x ** 2, dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Equalised-lr dense layer: weights stored divided by ``lr_mul``; ``activation`` adds the sqrt(2)-gain lrelu."""

    def __init__(self, in_dim: int, out_dim: int, lr_mul: float = 1.0, activation: bool = False,
                 bias_init: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full([out_dim], float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    @property
    def weight_gain(self) -> float:
        """The runtime weight scale (what SeFa multiplies the stored weight by)."""
        return self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation:
            out = F.linear(x, self.weight * self.scale)
            return F.leaky_relu(out + self.bias * self.lr_mul, 0.2) * math.sqrt(2)
        return F.linear(x, self.weight * self.scale, bias=self.bias * self.lr_mul)


def truncate(ws: torch.Tensor, centre: torch.Tensor, psi: float | torch.Tensor,
             cutoff: int | None = None) -> torch.Tensor:
    """``centre + psi * (ws - centre)`` on ``ws[:, :cutoff]`` (every row when ``cutoff`` is None).

    ``centre`` is ``[w_dim]``, ``[1, w_dim]`` or ``[N, w_dim]``; written as upstream writes it (not ``lerp``)."""
    if not isinstance(psi, torch.Tensor) and psi == 1:
        return ws
    if centre.ndim == 2:
        centre = centre.unsqueeze(1)
    if cutoff is None:
        return centre + psi * (ws - centre)
    head = centre + psi * (ws[:, :cutoff] - centre)
    return torch.cat([head, ws[:, cutoff:]], dim=1)


def check_truncation_latent(t: torch.Tensor, n: int, w_dim: int) -> torch.Tensor:
    if t.ndim == 1:
        t = t.unsqueeze(0)
    if t.ndim != 2 or t.shape[1] != w_dim or t.shape[0] not in (1, n):
        raise ValueError(f"truncation_latent must have shape [{w_dim}], [1, {w_dim}] or [{n}, {w_dim}], "
                         f"got {list(t.shape)}")
    return t


class MappingNetwork(nn.Module):
    """``PixelNorm`` then ``n_layers`` equalised-lr lrelu layers; ``w_avg`` is the truncation centre.

    The submodule holding the layers is named like upstream's (``layers`` here, ``style`` in StyleSwin)."""

    def __init__(self, w_dim: int, num_layers: int, num_ws: int, lr_mlp: float = 0.01,
                 layers_name: str = "layers") -> None:
        super().__init__()
        self.z_dim = self.w_dim = w_dim
        self.num_ws, self.num_layers = num_ws, num_layers
        self.layers_name = layers_name
        seq = nn.Sequential(PixelNorm(), *[EqualLinear(w_dim, w_dim, lr_mul=lr_mlp, activation=True)
                                           for _ in range(num_layers)])
        setattr(self, layers_name, seq)
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float | torch.Tensor = 1.0,
                truncation_cutoff: int | None = None, *, truncation_latent: torch.Tensor | None = None) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {list(z.shape)}")
        w = getattr(self, self.layers_name)(z.to(torch.float32))
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if isinstance(truncation_psi, torch.Tensor) or truncation_psi != 1:
            centre = self.w_avg if truncation_latent is None else \
                check_truncation_latent(truncation_latent.to(ws), ws.shape[0], self.w_dim)
            ws = truncate(ws, centre, truncation_psi, truncation_cutoff)
        return ws


# --- synthesis ------------------------------------------------------------------------------------------------

class ModulatedConv2d(nn.Module):
    """x * (scale * modulation(w)) -> conv -> * rsqrt(sum((scale * style_inv * W)^2) + 1e-8) (when demodulating)."""

    def __init__(self, channels_in: int, channels_out: int, style_dim: int, kernel_size: int,
                 demodulate: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(channels_out, channels_in, kernel_size, kernel_size))
        self.modulation = nn.Linear(style_dim, channels_in, bias=True)
        self.demodulate = demodulate
        if demodulate:
            self.register_buffer("style_inv", torch.randn(1, 1, channels_in, 1, 1))
        self.scale = 1.0 / math.sqrt(channels_in * kernel_size ** 2)
        self.padding = kernel_size // 2

    def full_weight(self) -> torch.Tensor:
        return self.weight

    def conv(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, padding=self.padding)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x = self.scale * self.modulation(style).view(style.shape[0], -1, 1, 1) * x
        x = self.conv(x)
        if self.demodulate:
            w = self.full_weight().unsqueeze(0)
            norm = torch.rsqrt((self.scale * self.style_inv * w).pow(2).sum([2, 3, 4]) + 1e-8)
            x = norm.view(*norm.shape, 1, 1) * x
        return x


class ModulatedDWConv2d(ModulatedConv2d):
    """Depthwise ``k x k`` then pointwise ``1 x 1``; demodulation uses their product as the full kernel."""

    def __init__(self, channels_in: int, channels_out: int, style_dim: int, kernel_size: int,
                 demodulate: bool = True) -> None:
        nn.Module.__init__(self)
        self.weight_dw = nn.Parameter(torch.randn(channels_in, 1, kernel_size, kernel_size))
        self.weight_permute = nn.Parameter(torch.randn(channels_out, channels_in, 1, 1))
        self.modulation = nn.Linear(style_dim, channels_in, bias=True)
        self.demodulate = demodulate
        if demodulate:
            self.register_buffer("style_inv", torch.randn(1, 1, channels_in, 1, 1))
        self.scale = 1.0 / math.sqrt(channels_in * kernel_size ** 2)
        self.padding = kernel_size // 2

    def full_weight(self) -> torch.Tensor:
        return self.weight_dw.transpose(0, 1) * self.weight_permute

    def conv(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight_dw, padding=self.padding, groups=x.shape[1])
        return F.conv2d(x, self.weight_permute)


class NoiseInjection(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        return x if noise is None else x + self.weight * noise


class StyledConv2d(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, style_dim: int, kernel_size: int,
                 depthwise: bool = False) -> None:
        super().__init__()
        cls = ModulatedDWConv2d if depthwise else ModulatedConv2d
        self.conv = cls(channels_in, channels_out, style_dim, kernel_size)
        self.noise = NoiseInjection()
        self.bias = nn.Parameter(torch.zeros(1, channels_out, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return F.leaky_relu(self.noise(self.conv(x, style), noise) + self.bias, 0.2)


class MultichannelImage(nn.Module):
    """The wavelet head: 1x1 modulated conv without demodulation, to 12 channels (LL rgb + 3 bands per colour)."""

    def __init__(self, channels_in: int, channels_out: int, style_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(channels_in, channels_out, style_dim, 1, demodulate=False)
        self.conv.is_torgb = True  # an output head: SeFa leaves its style affine out by default
        self.bias = nn.Parameter(torch.zeros(1, channels_out, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.conv(x, style) + self.bias


def haar_filters() -> dict[str, torch.Tensor]:
    """pytorch_wavelets ``prep_filt_sfb2d`` for db1: synthesis filters (rec_lo, rec_hi), column and row shaped."""
    r = math.sqrt(0.5)
    lo, hi = torch.tensor([r, r]), torch.tensor([r, -r])
    return {"g0_col": lo.view(1, 1, 2, 1), "g1_col": hi.view(1, 1, 2, 1),
            "g0_row": lo.view(1, 1, 1, 2), "g1_row": hi.view(1, 1, 1, 2)}


def _sfb1d(lo: torch.Tensor, hi: torch.Tensor, g0: torch.Tensor, g1: torch.Tensor, dim: int) -> torch.Tensor:
    """One synthesis filter-bank pass along ``dim`` (2: rows of the image, 3: columns), zero padding."""
    c = lo.shape[1]
    taps = g0.numel()
    stride = (2, 1) if dim == 2 else (1, 2)
    pad = (taps - 2, 0) if dim == 2 else (0, taps - 2)
    g0 = g0.repeat(c, 1, 1, 1)
    g1 = g1.repeat(c, 1, 1, 1)
    return F.conv_transpose2d(lo, g0, stride=stride, padding=pad, groups=c) + \
        F.conv_transpose2d(hi, g1, stride=stride, padding=pad, groups=c)


class DWTInverse(nn.Module):
    """One level of the 2-D inverse DWT (pytorch_wavelets ``DWTInverse(mode='zero')``, filters stored)."""

    def __init__(self) -> None:
        super().__init__()
        for name, f in haar_filters().items():
            self.register_buffer(name, f)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """``low [B, C, H, W]``, ``high [B, C, 3, H, W]`` (LH, HL, HH) -> ``[B, C, 2H, 2W]``."""
        lh, hl, hh = torch.unbind(high, dim=2)
        lo = _sfb1d(low, lh, self.g0_col, self.g1_col, dim=2)
        hi = _sfb1d(hl, hh, self.g0_col, self.g1_col, dim=2)
        return _sfb1d(lo, hi, self.g0_row, self.g1_row, dim=3)


class IDWTUpsample(nn.Module):
    """Modulate, then read channels as (low C/4, high 3C/4 band-major per channel) and inverse-DWT to 2x size."""

    def __init__(self, channels_in: int, style_dim: int) -> None:
        super().__init__()
        if channels_in % 4:
            raise ValueError(f"IDWT upsampling needs a channel count divisible by 4, got {channels_in}")
        self.channels = channels_in // 4
        self.idwt = DWTInverse()
        self.modulation = nn.Linear(style_dim, channels_in, bias=True)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        x = self.modulation(style).view(b, -1, 1, 1) * x
        return self.idwt(x[:, :self.channels], x[:, self.channels:].reshape(b, self.channels, 3, h, w))


class MobileSynthesisBlock(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, style_dim: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.up = IDWTUpsample(channels_in, style_dim)
        self.conv1 = StyledConv2d(channels_in // 4, channels_out, style_dim, kernel_size, depthwise=True)
        self.conv2 = StyledConv2d(channels_out, channels_out, style_dim, kernel_size, depthwise=True)
        self.to_img = MultichannelImage(channels_out, 12, style_dim)

    def forward(self, x: torch.Tensor, ws: torch.Tensor,
                noise: Sequence[torch.Tensor | None]) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.up(x, ws[:, 0])
        x = self.conv1(x, ws[:, 0], noise[0])
        x = self.conv2(x, ws[:, 1], noise[1])
        return x, self.to_img(x, ws[:, 2])


class MobileSynthesisNetwork(nn.Module):
    """The student: ``ws [N, 3 * len(channels) - 1, D]`` -> image ``[N, 3, 4 * 2**len(channels), ...]``."""

    def __init__(self, style_dim: int, channels: Sequence[int]) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if len(channels) < 2:
            raise ValueError(f"MobileStyleGAN needs at least two channel widths, got {channels}")
        self.style_dim = self.w_dim = style_dim
        self.input = nn.Module()
        self.input.input = nn.Parameter(torch.randn(1, channels[0], 4, 4))
        self.conv1 = StyledConv2d(channels[0], channels[0], style_dim, 3)
        self.to_img1 = MultichannelImage(channels[0], 12, style_dim)
        self.layers = nn.ModuleList(MobileSynthesisBlock(cin, cout, style_dim)
                                    for cin, cout in zip(channels[:-1], channels[1:]))
        self.idwt = DWTInverse()
        self.num_ws = 3 * len(self.layers) + 2
        self.img_resolution = 4 * 2 ** len(channels)

    def noise_shapes(self) -> list[tuple[int, ...]]:
        """Upstream's noise list: ``[1, 1, 4, 4]`` for the 4x4 conv, then ``[2, 1, s, s]`` per block (conv1, conv2)."""
        return [(1, 1, 4, 4)] + [(2, 1, 2 ** (i + 3), 2 ** (i + 3)) for i in range(len(self.layers))]

    def _noise(self, noise_mode: str, noise: Sequence[Any] | None) -> list[list[torch.Tensor | None]]:
        """Per layer group: ``[conv1]`` then ``[conv1, conv2]`` per block; ``None`` adds nothing."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        shapes = self.noise_shapes()
        if noise is not None and len(noise) != len(shapes):
            raise ValueError(f"noise must be a list of {len(shapes)} entries (4x4 conv, then one per block "
                             f"of shape [2, 1 or N, s, s]), got {len(noise)}")
        out: list[list[torch.Tensor | None]] = []
        device = self.input.input.device
        for i, shape in enumerate(shapes):
            given = None if noise is None else noise[i]
            per_layer = 1 if i == 0 else 2
            if given is None:
                # drawn for every group in order even when only some are given, as upstream's NoiseManager does
                drawn = torch.randn(shape).to(device) if noise_mode == "random" else None
                out.append([None if drawn is None else (drawn if i == 0 else drawn[j]) for j in range(per_layer)])
                continue
            items = [given] if i == 0 else list(given)
            if len(items) != per_layer:
                raise ValueError(f"noise[{i}] must hold {per_layer} noise map(s), got {len(items)}")
            for t in items:
                if not isinstance(t, torch.Tensor) or t.shape[-2:] != shape[-2:]:
                    got = list(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                    raise ValueError(f"noise[{i}] must be {shape[-1]}x{shape[-1]} maps, got {got}")
            out.append(items)
        return out

    def forward(self, ws: torch.Tensor, noise_mode: str = "none",
                noise: Sequence[Any] | None = None) -> torch.Tensor:
        """``noise``: upstream's list, one entry per resolution: ``[1 or N, 1, 4, 4]`` for the 4x4 conv, then per
        block a ``[2, 1 or N, s, s]`` tensor (or two ``[1 or N, s, s]`` maps) for its conv1 and conv2; a ``None``
        entry follows ``noise_mode``."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        ws = ws.to(torch.float32)
        noises = self._noise(noise_mode, noise)
        x = self.input.input.repeat(ws.shape[0], 1, 1, 1)
        x = self.conv1(x, ws[:, 0], noises[0][0])
        freq = self.to_img1(x, ws[:, 1])
        for i, block in enumerate(self.layers):
            x, freq = block(x, ws[:, 3 * i + 1: 3 * i + 4], noises[i + 1])
        b, _, h, w = freq.shape
        return self.idwt(freq[:, :3], freq[:, 3:].reshape(b, 3, 3, h, w))


@register_architecture
class MobileStyleGANGenerator(StyleGenerator):
    """MobileStyleGAN: ``G(z) = student(mapping(z))``; z is the mapping's input width (= ``style_dim``)."""

    architecture = "mobilestylegan"
    z_convention = "torch"
    #: upstream's name for the style affines (``sdk.directions.sefa`` looks for these under ``synthesis``)
    style_affine_names = ("modulation",)

    def __init__(self, style_dim: int, n_mlp: int, channels: Sequence[int], lr_mlp: float = 0.01) -> None:
        super().__init__()
        self._kwargs = dict(style_dim=style_dim, n_mlp=n_mlp, channels=[int(c) for c in channels], lr_mlp=lr_mlp)
        self.synthesis = MobileSynthesisNetwork(style_dim, channels)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(style_dim, n_mlp, self.num_ws, lr_mlp=lr_mlp, layers_name="layers")
        self.z_dim = self.w_dim = style_dim
        self.c_dim = 0
        self.img_resolution = self.synthesis.img_resolution
        self.img_channels = 3

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "none", *,
                truncation_latent: torch.Tensor | None = None,
                noise: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        """As :meth:`StyleGenerator.forward`; ``noise_mode`` "const" means "none" (upstream stores no noise)."""
        return super().forward(z, c, truncation_psi, truncation_cutoff, noise_mode,
                               truncation_latent=truncation_latent, noise=noise)


# --- Published checkpoints -------------------------------------------------------------------------
# bes-dev/MobileStyleGAN.pytorch README "Pretrained models" and configs/model_zoo.json (HEAD a9776ff):
# mobilestylegan_ffhq.ckpt on Google Drive, FID 7.75 (the earlier v1 file, id 1e4A6..., was listed with 12.38).
# Licence: Apache-2.0 (repository LICENSE); the README lists its CUDA kernels under NVIDIA's licence, which
# covers code this port does not use.
register_models(
    ModelEntry(
        name="mobilestylegan-ffhq-1024", family="mobilestylegan", architecture="mobilestylegan",
        source_format="mobilestylegan-ckpt", url="https://drive.google.com/uc?id=11Kja0XGE8liLb6R5slNZjF3j3v_6xydt",
        dataset="FFHQ", resolution=1024, license="apache-2.0",
        paper="MobileStyleGAN: A Lightweight Convolutional Neural Network for High-Fidelity Image Synthesis "
              "(Belousov, arXiv 2104.04767, 2021)",
        fid=7.75, source_file="mobilestylegan_ffhq.ckpt",
        license_note="Code and checkpoint: Apache-2.0 (bes-dev/MobileStyleGAN.pytorch). The student was distilled "
                     "from NVIDIA's StyleGAN2 FFHQ config-f (under NVIDIA's own source-code licence); upstream "
                     "does not say whether that licence reaches the distilled weights.",
        notes="Student network of the released Lightning checkpoint (md5 8de24b4d08049c32dbec8beca5ed2074 per "
              "configs/model_zoo.json); the StyleGAN2 teacher in the same file is not converted.",
        tags=("mobile", "distilled", "style-based"),
    ),
)
