"""StyleSwin (Zhang et al., CVPR 2022): a style-based generator built from Swin transformer blocks.

Facts from microsoft/StyleSwin ``models/generator.py`` (HEAD a7c28b3), which this module follows layer by layer
with upstream's module names:

* mapping: rosinality's PixelNorm + ``n_mlp`` equalised-lr lrelu layers (``style.1..n``), z width = style_dim;
* one ``StyleBasicLayer`` per resolution 4, 8, ..., size, each two ``StyleSwinTransformerBlock``s then (except
  the last) a ``BilinearUpsample``; layer ``k`` reads ``ws[:, 2k]`` in block 0 and ``ws[:, 2k+1]`` in block 1;
* a block: AdaIN (``InstanceNorm1d`` over tokens, eps 1e-5, no affine; ``gamma, beta = style(w)``, no +1 on
  gamma), one ``qkv`` projection whose channels are split in halves: ``attn[0]`` attends within regular
  windows, ``attn[1]`` within windows shifted by ``window // 2`` (``torch.roll``, mask filled with -100);
  each attention has its own relative position bias table; ``proj``, residual, AdaIN + GELU MLP, residual.
  Where the map is no larger than the window, the window is the whole map and there is no shift;
* ``BilinearUpsample``: bilinear 2x (``align_corners=False``), LayerNorm, bias-free Linear to the next width,
  plus ``alpha`` times a 2-D sinusoidal position grid (positions 1..H, ``exp(-log(1e4) / (d/2 - 1) * i)``
  frequencies, x-grid channels first);
* output: the sum of per-resolution 1x1 ``ToRGB`` convs, the running skip upsampled with the [1, 3, 3, 1] FIR;
  the network was trained on ImageNet-normalised images, so the [-1, 1] image is ``(raw * std + mean) * 2 - 1``
  (``train_styleswin.py`` ``tensor_transform_reverse``).

StyleSwin has no noise inputs: ``noise_mode`` is accepted and has no effect. Checkpoints store no average
latent; the converter computes ``w_avg`` by a seeded recipe (see :func:`mean_latent`) and records it.
Upstream truncates only for ``truncation < 1``; here any psi != 1 lerps (psi > 1 extrapolates).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..base import StyleGenerator
from ..registry import ModelEntry, register_architecture, register_models
from .mobilestylegan import EqualLinear, MappingNetwork
from .ops import make_filter, on_host, upsample2d

#: ``transforms.Normalize`` constants of ``train_styleswin.py`` (ImageNet mean / std).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NOISE_MODES = ("const", "random", "none")
#: ``mean_latent`` defaults recorded in config.json (rosinality's ``mean_latent(4096)`` sample count).
MEAN_LATENT_SAMPLES = 4096
MEAN_LATENT_SEED = 0


@on_host
def relative_position_index(window: int) -> torch.Tensor:
    """Swin's pairwise index into the ``(2w-1)^2`` bias table for the ``w*w`` tokens of a window."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[:, :, 0] * (2 * window - 1) + rel[:, :, 1]


@on_host
def shifted_window_mask(resolution: int, window: int, shift: int) -> torch.Tensor:
    """``[nW, w*w, w*w]``: 0 within a region of the rolled map, -100 across regions."""
    labels = torch.zeros(resolution, resolution)
    bounds = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, hs in enumerate(bounds):
        for j, ws in enumerate(bounds):
            labels[hs, ws] = i * 3 + j
    win = window_partition(labels.view(1, resolution, resolution, 1), window).reshape(-1, window * window)
    diff = win.unsqueeze(1) - win.unsqueeze(2)
    return torch.where(diff != 0, torch.full_like(diff, -100.0), torch.zeros_like(diff))


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """``[B, H, W, C]`` -> ``[B * nW, window, window, C]`` (row-major windows)."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    c = windows.shape[-1]
    x = windows.reshape(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


@on_host
def sinusoidal_grid(channels: int, height: int, width: int) -> torch.Tensor:
    """``[channels, height, width]``: mmgeneration's SPE2d as StyleSwin configures it (padding_idx 0,
    ``div_half_dim=False``, no centre shift); positions run 1..size, x-grid channels first."""
    dim = channels // 2
    half = dim // 2
    freq = torch.exp(torch.arange(half, dtype=torch.float32) * -(math.log(10000) / (half - 1)))

    def embed(n: int) -> torch.Tensor:  # [dim, n] for positions 1..n
        arg = torch.arange(1, n + 1, dtype=torch.float32).unsqueeze(1) * freq.unsqueeze(0)
        return torch.cat([torch.sin(arg), torch.cos(arg)], dim=1).t()

    x_grid = embed(width).unsqueeze(1).expand(dim, height, width)
    y_grid = embed(height).unsqueeze(2).expand(dim, height, width)
    return torch.cat([x_grid, y_grid], dim=0)


class AdaptiveInstanceNorm(nn.Module):
    def __init__(self, channels: int, style_dim: int) -> None:
        super().__init__()
        self.style = EqualLinear(style_dim, channels * 2)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``x [B, C, L]`` normalised over L, then ``gamma * x + beta``."""
        gamma, beta = self.style(w).unsqueeze(-1).chunk(2, dim=1)
        return gamma * F.instance_norm(x, eps=1e-5) + beta


class WindowAttention(nn.Module):
    def __init__(self, dim: int, window: int, num_heads: int, qk_scale: float | None = None) -> None:
        super().__init__()
        self.window, self.num_heads = window, num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window), persistent=False)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        bw, n, c = q.shape
        heads = self.num_heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(bw, n, heads, c // heads).permute(0, 2, 1, 3)

        q, k, v = split(q) * self.scale, split(k), split(v)
        attn = q @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)].reshape(n, n, -1)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = (attn.reshape(-1, nw, heads, n, n) + mask.unsqueeze(1).unsqueeze(0)).reshape(-1, heads, n, n)
        attn = attn.softmax(dim=-1)
        return (attn @ v).transpose(1, 2).reshape(bw, n, c)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class StyleSwinTransformerBlock(nn.Module):
    def __init__(self, dim: int, resolution: int, heads_per_attention: int, window: int, mlp_ratio: float,
                 style_dim: int, qkv_bias: bool = True, qk_scale: float | None = None) -> None:
        super().__init__()
        self.dim, self.resolution = dim, resolution
        self.window = min(window, resolution)
        self.shift = self.window // 2 if resolution > window else 0
        self.norm1 = AdaptiveInstanceNorm(dim, style_dim)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.attn = nn.ModuleList(WindowAttention(dim // 2, self.window, heads_per_attention, qk_scale)
                                  for _ in range(2))
        if self.shift > 0:
            self.register_buffer("attn_mask2", shifted_window_mask(resolution, self.window, self.shift),
                                 persistent=False)
        else:
            self.attn_mask2 = None
        self.norm2 = AdaptiveInstanceNorm(dim, style_dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def _windows(self, t: torch.Tensor) -> torch.Tensor:
        return window_partition(t, self.window).reshape(-1, self.window * self.window, t.shape[-1])

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        r, half, s = self.resolution, c // 2, self.shift
        if n != r * r or c != self.dim:
            raise ValueError(f"StyleSwin block expects [N, {r * r}, {self.dim}] tokens, got {list(x.shape)}")
        shortcut = x
        x = self.norm1(x.transpose(-1, -2), w).transpose(-1, -2)
        qkv = self.qkv(x).reshape(b, n, 3, c).permute(2, 0, 1, 3).reshape(3 * b, r, r, c)
        qkv1 = qkv[..., :half].reshape(3, b, r, r, half)
        qkv2 = qkv[..., half:]
        if s > 0:
            qkv2 = torch.roll(qkv2, shifts=(-s, -s), dims=(1, 2))
        qkv2 = qkv2.reshape(3, b, r, r, half)
        x1 = self.attn[0](self._windows(qkv1[0]), self._windows(qkv1[1]), self._windows(qkv1[2]), None)
        x2 = self.attn[1](self._windows(qkv2[0]), self._windows(qkv2[1]), self._windows(qkv2[2]), self.attn_mask2)
        x1 = window_reverse(x1, self.window, r, r)
        x2 = window_reverse(x2, self.window, r, r)
        if s > 0:
            x2 = torch.roll(x2, shifts=(s, s), dims=(1, 2))
        x = self.proj(torch.cat([x1.reshape(b, n, half), x2.reshape(b, n, half)], dim=2))
        x = shortcut + x
        return x + self.mlp(self.norm2(x.transpose(-1, -2), w).transpose(-1, -2))


class BilinearUpsample(nn.Module):
    def __init__(self, resolution: int, dim: int, out_dim: int) -> None:
        super().__init__()
        self.resolution, self.dim, self.out_dim = resolution, dim, out_dim
        self.norm = nn.LayerNorm(dim)
        self.reduction = nn.Linear(dim, out_dim, bias=False)
        self.alpha = nn.Parameter(torch.zeros(1))
        self.register_buffer("pos_grid", sinusoidal_grid(out_dim, 2 * resolution, 2 * resolution).unsqueeze(0),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        r = self.resolution
        x = x.reshape(b, r, r, c).permute(0, 3, 1, 2)
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        x = self.reduction(self.norm(x.permute(0, 2, 3, 1).reshape(b, 4 * n, c)))
        x = x.reshape(b, 2 * r, 2 * r, self.out_dim).permute(0, 3, 1, 2)
        x = x + self.pos_grid * self.alpha
        return x.permute(0, 2, 3, 1).reshape(b, 4 * n, self.out_dim)


class StyleBasicLayer(nn.Module):
    def __init__(self, dim: int, resolution: int, heads_per_attention: int, window: int, out_dim: int | None,
                 mlp_ratio: float, style_dim: int, qkv_bias: bool, qk_scale: float | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(StyleSwinTransformerBlock(dim, resolution, heads_per_attention, window, mlp_ratio,
                                                              style_dim, qkv_bias, qk_scale) for _ in range(2))
        self.upsample = BilinearUpsample(resolution, dim, out_dim) if out_dim is not None else None

    def forward(self, x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
        x = self.blocks[1](self.blocks[0](x, w1), w2)
        return self.upsample(x) if self.upsample is not None else x


class ToRGB(nn.Module):
    def __init__(self, channels: int, upsample: bool) -> None:
        super().__init__()
        self.is_upsample = upsample
        self.conv = nn.Conv2d(channels, 3, kernel_size=1)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.register_buffer("kernel", make_filter([1, 3, 3, 1]), persistent=False)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        out = self.conv(x) + self.bias
        if skip is not None:
            out = out + (upsample2d(skip, self.kernel) if self.is_upsample else skip)
        return out


class StyleSwinSynthesis(nn.Module):
    """``ws [N, 2 * layers, style_dim]`` -> image in [-1, 1] (de-normalised from ImageNet statistics)."""

    def __init__(self, size: int, style_dim: int, channels: Sequence[int], heads_per_attention: Sequence[int],
                 window_sizes: Sequence[int], mlp_ratio: float = 4, qkv_bias: bool = True,
                 qk_scale: float | None = None) -> None:
        super().__init__()
        log2 = int(round(math.log2(size)))
        if size < 4 or 2 ** log2 != size:
            raise ValueError(f"size must be a power of two >= 4, got {size}")
        n_layers = log2 - 1
        for name, seq in (("channels", channels), ("heads_per_attention", heads_per_attention),
                          ("window_sizes", window_sizes)):
            if len(seq) != n_layers:
                raise ValueError(f"{name} must list {n_layers} values (resolutions 4..{size}), got {len(seq)}")
        self.size, self.w_dim = size, style_dim
        self.input = nn.Module()
        self.input.input = nn.Parameter(torch.randn(1, channels[0], 4, 4))
        self.layers = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        for k in range(n_layers):
            last = k == n_layers - 1
            out_dim = None if last else channels[k + 1]
            self.layers.append(StyleBasicLayer(channels[k], 4 * 2 ** k, heads_per_attention[k], window_sizes[k],
                                               out_dim, mlp_ratio, style_dim, qkv_bias, qk_scale))
            self.to_rgbs.append(ToRGB(channels[k] if last else channels[k + 1], upsample=not last))
        self.num_ws = 2 * n_layers
        self.register_buffer("rgb_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("rgb_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", noise: Any = None) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        if noise is not None:
            raise ValueError("StyleSwin has no noise inputs: pass noise=None")
        ws = ws.to(torch.float32)
        x = self.input.input.repeat(ws.shape[0], 1, 1, 1)
        b, c, h, w = x.shape
        x = x.permute(0, 2, 3, 1).reshape(b, h * w, c)
        skip = None
        for k, (layer, to_rgb) in enumerate(zip(self.layers, self.to_rgbs)):
            x = layer(x, ws[:, 2 * k], ws[:, 2 * k + 1])
            n, ch = x.shape[1], x.shape[2]
            r = int(math.isqrt(n))
            skip = to_rgb(x.transpose(-1, -2).reshape(b, ch, r, r), skip)
        return (skip * self.rgb_std + self.rgb_mean) * 2 - 1


def default_layout(size: int, channel_multiplier: int = 2,
                   enable_full_resolution: int = 8) -> dict[str, list[int]]:
    """Upstream's hard-coded widths, heads and windows for ``size`` (``Generator.__init__``)."""
    cm = channel_multiplier
    table = [512, 512, 512, 512, 256 * cm, 128 * cm, 64 * cm, 32 * cm, 16 * cm]
    n = int(round(math.log2(size))) - 1
    full = int(math.log2(enable_full_resolution))
    channels = table[:n]
    return dict(channels=channels, heads_per_attention=[max(c // 32, 4) // 2 for c in channels],
                window_sizes=[2 ** i if i <= full else 8 for i in range(2, n + 2)])


@register_architecture
class StyleSwinGenerator(StyleGenerator):
    """StyleSwin: ``G(z) = synthesis(mapping(z))``, z width = ``style_dim``; ``num_ws = 2 * log2(size) - 2``."""

    architecture = "styleswin"
    z_convention = "torch"
    #: the AdaIN style affines (``norm1.style`` / ``norm2.style``) are what SeFa factorises
    style_affine_names = ("style",)

    def __init__(self, size: int, style_dim: int, n_mlp: int, channels: Sequence[int],
                 heads_per_attention: Sequence[int], window_sizes: Sequence[int], lr_mlp: float = 0.01,
                 mlp_ratio: float = 4, qkv_bias: bool = True, qk_scale: float | None = None) -> None:
        super().__init__()
        self._kwargs = dict(size=size, style_dim=style_dim, n_mlp=n_mlp, channels=[int(c) for c in channels],
                            heads_per_attention=[int(h) for h in heads_per_attention],
                            window_sizes=[int(w) for w in window_sizes], lr_mlp=lr_mlp, mlp_ratio=mlp_ratio,
                            qkv_bias=qkv_bias, qk_scale=qk_scale)
        self.synthesis = StyleSwinSynthesis(size, style_dim, channels, heads_per_attention, window_sizes,
                                            mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(style_dim, n_mlp, self.num_ws, lr_mlp=lr_mlp, layers_name="style")
        self.z_dim = self.w_dim = style_dim
        self.c_dim = 0
        self.img_resolution, self.img_channels = size, 3


def mean_latent(G: StyleSwinGenerator, n: int = MEAN_LATENT_SAMPLES, seed: int = MEAN_LATENT_SEED) -> torch.Tensor:
    """``[w_dim]``: the mapping's mean over ``n`` z drawn by ``torch.Generator().manual_seed(seed)`` (the
    values ``torch.manual_seed(seed); torch.randn(n, style_dim)`` gives), rosinality's ``mean_latent`` recipe."""
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(int(seed))).to(G.mapping.w_avg.device)
    with torch.no_grad():
        return G.mapping.style(z).mean(0)


# --- Published checkpoints -------------------------------------------------------------------------
# microsoft/StyleSwin README "Quantitative Results" (HEAD a7c28b3): FID and the Azure Storage links (read-only
# SAS valid to 2099). Licence: "The codes and the pretrained model in this repository are under the MIT license".
# 256 px models train with --G_channel_multiplier 2, 1024 px ones with the default 1 (README commands).
_AZ = "https://facevcstandard.blob.core.windows.net/v-bowenz/output/styleswin_final_results"
_PAPER = "StyleSwin: Transformer-based GAN for High-resolution Image Generation (Zhang et al., CVPR 2022)"


def _entry(name: str, path_and_query: str, dataset: str, res: int, fid: float) -> ModelEntry:
    file = path_and_query.split("?", 1)[0].rsplit("/", 1)[-1]
    return ModelEntry(name=name, family="styleswin", architecture="styleswin", source_format="styleswin-pt",
                      url=f"{_AZ}/{path_and_query}", dataset=dataset, resolution=res, license="mit", paper=_PAPER,
                      fid=fid, source_file=file,
                      license_note="Code and pretrained models: MIT (microsoft/StyleSwin README).",
                      notes="Training checkpoint; the g_ema generator is converted. w_avg is computed at "
                            f"conversion ({MEAN_LATENT_SAMPLES} z, seed {MEAN_LATENT_SEED}).",
                      tags=("transformer", "style-based"))


register_models(
    _entry("styleswin-ffhq-256", "FFHQ256/FFHQ_256.pt?sv=2020-10-02&st=2022-03-14T12%3A36%3A35Z&se=2099-12-31T15"
           "%3A59%3A00Z&sr=b&sp=r&sig=QBETIToFQ8MtlnnVLpNlbcPB8MPTZkiDDTNjlgovf%2Fo%3D", "FFHQ", 256, 2.81),
    _entry("styleswin-lsunchurch-256", "LSUNChurch256/LSUNChurch_256.pt?sv=2020-10-02&st=2022-03-14T12%3A37%3A41Z"
           "&se=2099-12-31T15%3A59%3A00Z&sr=b&sp=r&sig=VPWMsvHbJKUj8v6a9gp2u424OAS9o%2BL1qKKfGtYWMN8%3D",
           "LSUN Church", 256, 2.95),
    _entry("styleswin-celebahq-256", "CelebAHQ256/CelebAHQ_256.pt?sv=2020-10-02&st=2022-03-14T12%3A39%3A42Z&se=2099"
           "-12-31T15%3A59%3A00Z&sr=b&sp=r&sig=xasn7w5ou739bM9NAwmA3HEFkxKXOrqddH76EviXewo%3D", "CelebA-HQ", 256, 3.25),
    _entry("styleswin-ffhq-1024", "FFHQ1024/FFHQ_1024.pt?sv=2020-10-02&st=2022-03-14T12%3A40%3A20Z&se=2099-12-31T15"
           "%3A59%3A00Z&sr=b&sp=r&sig=Di7J57LLvayVVTmEymjI61y42q%2BxS9pxCmBHbay6t%2Bk%3D", "FFHQ", 1024, 5.07),
    _entry("styleswin-celebahq-1024", "CelebAHQ1024/CelebAHQ_1024.pt?sv=2020-10-02&st=2022-03-14T12%3A40%3A49Z&se="
           "2099-12-31T15%3A59%3A00Z&sr=b&sp=r&sig=gicenvMBClfUmFr1gew06exUoN033JWADmNLCCtyu4w%3D",
           "CelebA-HQ", 1024, 4.43),
)
