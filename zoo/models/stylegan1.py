"""StyleGAN (v1) generator (Karras et al., CVPR 2019): NVlabs/stylegan ``G_style`` = ``G_mapping`` + ``G_synthesis``.

Behaviour written from the format facts of the TF code (``training/networks_stylegan.py``), our own code:

- mapping: pixel norm of ``z`` (after concatenating the ``LabelConcat`` embedding for conditional models),
  ``num_layers`` dense layers with equalised learning rate (weight gain ``sqrt(2)/sqrt(fan_in) * lrmul``,
  bias ``* lrmul``) and a plain leaky ReLU (the ``sqrt(2)`` gain lives in the weights, not after the
  activation), broadcast to ``num_ws``;
- synthesis: a learned 4x4 constant, then per layer ``conv -> [blur] -> noise * per-channel weight -> bias ->
  lrelu -> instance norm -> style modulation``; upsampling layers are nearest 2x + 3x3 conv, or, for blocks
  whose output is >= 128 px (``fused_scale="auto"``), one transposed convolution with the 4-tap summed kernel;
- output: ``ToRGB_lod0`` at full resolution, blended with the upsampled lower-resolution heads when the
  progressive-growing level of detail ``lod`` is > 0 (snapshots taken while growing).

Names follow the TF scopes: ``synthesis.b{r}.conv0`` is ``{r}x{r}/Conv0_up`` (``4x4/Const`` at 4 px),
``conv1`` is ``{r}x{r}/Conv1`` (``4x4/Conv``), ``torgb`` is ``ToRGB_lod{log2(R/r)}``; in a layer ``weight`` /
``bias`` / ``noise_weight`` / ``affine`` / ``noise_const`` are ``weight`` / ``bias`` / ``Noise/weight`` /
``StyleMod`` / ``noise{i}``. Truncation uses the zoo convention (``truncation_cutoff=None``: every layer);
upstream ``Gs.run`` defaults to psi 0.7 / cutoff 8, and there a cutoff of None switches truncation off.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..base import StyleGenerator
from ..registry import ModelEntry, register_architecture, register_models
from .ops import make_filter, on_host
from .stylegan2 import truncation_centre

NOISE_MODES = ("const", "random", "none")
#: ``fused_scale="auto"`` in G_synthesis fuses the upsampling conv of blocks whose output is >= this size.
FUSED_MIN_RES = 128


def _act(x: torch.Tensor, activation: str) -> torch.Tensor:
    if activation == "lrelu":
        return F.leaky_relu(x, 0.2)
    if activation == "relu":
        return F.relu(x)
    raise ValueError(f"unknown activation {activation!r}: use lrelu or relu")


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def instance_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    x = x - x.mean(dim=[2, 3], keepdim=True)
    return x * (x.square().mean(dim=[2, 3], keepdim=True) + eps).rsqrt()


def truncate_ws(ws: torch.Tensor, centre: torch.Tensor, psi: float | torch.Tensor = 1.0,
                cutoff: int | None = None) -> torch.Tensor:
    """``lerp(centre, ws, psi)`` on layers ``< cutoff`` (all layers when ``cutoff`` is None).

    ``centre`` is ``[w_dim]`` (the stored average) or ``[N or 1, 1, w_dim]`` (an explicit truncation latent).
    """
    if not isinstance(psi, torch.Tensor) and psi == 1:
        return ws
    if cutoff is None:
        return centre + (ws - centre) * psi
    head = centre + (ws[:, :cutoff] - centre) * psi
    return torch.cat([head, ws[:, cutoff:]], dim=1)


class DenseLayer(nn.Module):
    """TF ``dense`` + ``apply_bias``: weight stored ``[out, in]`` at N(0, 1/lrmul), scaled at run time."""

    def __init__(self, in_features: int, out_features: int, gain: float = math.sqrt(2),
                 lr_multiplier: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features).div_(lr_multiplier))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.weight_gain = gain / math.sqrt(in_features) * lr_multiplier
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.bias * self.bias_gain if self.bias_gain != 1 else self.bias
        return torch.addmm(b.unsqueeze(0), x, (self.weight * self.weight_gain).t())


class MappingNetwork(nn.Module):
    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 8,
                 layer_features: int | None = None, activation: str = "lrelu", lr_multiplier: float = 0.01,
                 normalize_latents: bool = True) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, c_dim, w_dim, num_ws, num_layers
        self.activation, self.normalize_latents = activation, normalize_latents
        layer_features = w_dim if layer_features is None else layer_features
        if c_dim > 0:  # TF "LabelConcat": a plain [c_dim, z_dim] matrix (no equalised lr), concatenated to z
            self.label_concat = nn.Parameter(torch.randn(z_dim, c_dim))
        features = [z_dim * (2 if c_dim > 0 else 1)] + [layer_features] * (num_layers - 1) + [w_dim]
        for i in range(num_layers):
            setattr(self, f"fc{i}", DenseLayer(features[i], features[i + 1], lr_multiplier=lr_multiplier))
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float | torch.Tensor = 1.0,
                truncation_cutoff: int | None = None, truncation_latent: torch.Tensor | None = None) -> torch.Tensor:
        x = z.to(torch.float32)
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this mapping is conditional: pass c of shape [N, {self.c_dim}]")
            x = torch.cat([x, c.to(torch.float32) @ self.label_concat.t()], dim=1)
        if self.normalize_latents:
            x = pixel_norm(x)
        for i in range(self.num_layers):
            x = _act(getattr(self, f"fc{i}")(x), self.activation)
        ws = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        return truncate_ws(ws, truncation_centre(self.w_avg, truncation_latent, ws), truncation_psi, truncation_cutoff)


@on_host
def _depthwise_filter(taps: Sequence[float], channels: int) -> torch.Tensor:
    """``[channels, 1, k, k]``: the normalised blur filter once per channel (a grouped-conv weight)."""
    return make_filter(taps)[None, None].repeat(channels, 1, 1, 1)


class SynthesisLayer(nn.Module):
    """One layer and its epilogue. ``kind``: "const" (4x4/Const), "conv" (3x3, same size), "up" (Conv0_up)."""

    def __init__(self, kind: str, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 fused: bool = False, activation: str = "lrelu", use_noise: bool = True,
                 blur_filter: Sequence[float] = (1, 2, 1)) -> None:
        super().__init__()
        self.kind, self.resolution, self.fused, self.activation, self.use_noise = kind, resolution, fused, \
            activation, use_noise
        self.out_channels = out_channels
        if kind == "const":
            self.const = nn.Parameter(torch.ones([out_channels, resolution, resolution]))
        else:
            self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 3, 3]))
            self.weight_gain = math.sqrt(2) / math.sqrt(in_channels * 9)
        if kind == "up":
            self.register_buffer("blur_filter", _depthwise_filter(blur_filter, out_channels))
        if use_noise:
            self.noise_weight = nn.Parameter(torch.zeros([out_channels]))
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.affine = DenseLayer(w_dim, 2 * out_channels, gain=1.0)

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        if self.kind == "conv":
            return F.conv2d(x, w, padding=1)
        if self.fused:
            # TF: conv2d_transpose with the 4-tap sum of the zero-padded 3x3 kernel (the kernel applied to a
            # nearest-upsampled input, folded into one stride-2 op); torch's conv_transpose2d wants [in, out, k, k].
            w = F.pad(w, [1, 1, 1, 1])
            w4 = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]
            x = F.conv_transpose2d(x, w4.transpose(0, 1), stride=2, padding=1)
        else:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = F.conv2d(x, w, padding=1)
        # blur [1, 2, 1] x [1, 2, 1] / 16, SAME zero padding, depthwise (symmetric: no flip question)
        return F.conv2d(x, self.blur_filter.to(x.dtype), padding=1, groups=self.out_channels)

    def forward(self, x: torch.Tensor | None, w: torch.Tensor, noise_mode: str = "const",
                noise: torch.Tensor | None = None) -> torch.Tensor:
        if self.kind == "const":
            x = self.const.unsqueeze(0).repeat([w.shape[0], 1, 1, 1])
        else:
            assert x is not None
            expected = self.resolution // (2 if self.kind == "up" else 1)
            if x.shape[2] != expected or x.shape[3] != expected:
                raise ValueError(f"layer at {self.resolution}px expects {expected}x{expected} input, got {list(x.shape)}")
            x = self._conv(x)
        if self.use_noise and (noise is not None or noise_mode != "none"):
            if noise is None:
                noise = self.noise_const if noise_mode == "const" else \
                    torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device)
            x = x + noise.to(device=x.device, dtype=x.dtype) * self.noise_weight.reshape(1, -1, 1, 1)
        x = _act(x + self.bias.reshape(1, -1, 1, 1), self.activation)
        x = instance_norm(x)
        style = self.affine(w).reshape(w.shape[0], 2, self.out_channels, 1, 1)
        return x * (style[:, 0] + 1) + style[:, 1]


class ToRGBLayer(nn.Module):
    def __init__(self, in_channels: int, img_channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn([img_channels, in_channels, 1, 1]))
        self.bias = nn.Parameter(torch.zeros([img_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.weight_gain, self.bias)


class SynthesisBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 fused: bool, has_torgb: bool, **layer: Any) -> None:
        super().__init__()
        self.resolution = resolution
        if resolution == 4:
            self.conv0 = SynthesisLayer("const", 0, out_channels, w_dim, 4, **layer)
        else:
            self.conv0 = SynthesisLayer("up", in_channels, out_channels, w_dim, resolution, fused=fused, **layer)
        self.conv1 = SynthesisLayer("conv", out_channels, out_channels, w_dim, resolution, **layer)
        if has_torgb:
            self.torgb = ToRGBLayer(out_channels, img_channels)


class SynthesisNetwork(nn.Module):
    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, fmap_base: int = 8192,
                 fmap_max: int = 512, channels: dict[Any, int] | None = None, fused_scale: bool | str = "auto",
                 activation: str = "lrelu", use_noise: bool = True, blur_filter: Sequence[float] = (1, 2, 1),
                 lod: float = 0.0, progressive: bool = True) -> None:
        super().__init__()
        log2 = int(round(math.log2(img_resolution)))
        if img_resolution < 4 or 2 ** log2 != img_resolution:
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        if fused_scale not in ("auto", True, False):
            raise ValueError(f"fused_scale must be 'auto', True or False, got {fused_scale!r}")
        if not progressive and lod != 0:
            raise ValueError("lod > 0 needs the progressive-growing ToRGB heads (progressive=True)")
        if not 0 <= lod <= log2 - 2:
            raise ValueError(f"lod must be in [0, {log2 - 2}], got {lod}")
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.lod, self.progressive = float(lod), progressive
        self.block_resolutions = [2 ** i for i in range(2, log2 + 1)]
        if channels is None:  # nf(stage) = min(fmap_base / 2**stage, fmap_max), stage = log2(res) - 1
            channels = {r: min(fmap_base // (r // 2), fmap_max) for r in self.block_resolutions}
        channels = {int(k): int(v) for k, v in channels.items()}
        missing = [r for r in self.block_resolutions if r not in channels]
        if missing:
            raise ValueError(f"channels lacks resolution(s) {missing}")
        self.num_ws = 2 * len(self.block_resolutions)
        layer = dict(activation=activation, use_noise=use_noise, blur_filter=blur_filter)
        for res in self.block_resolutions:
            fused = (res >= FUSED_MIN_RES) if fused_scale == "auto" else bool(fused_scale)
            setattr(self, f"b{res}", SynthesisBlock(channels.get(res // 2, 0), channels[res], w_dim, res, img_channels,
                                                    fused=fused, has_torgb=progressive or res == img_resolution,
                                                    **layer))

    @property
    def num_noise(self) -> int:
        """How many per-layer noise inputs ``forward(noise=...)`` takes (every layer has one: ``num_ws``)."""
        return self.num_ws

    def layers(self) -> list[SynthesisLayer]:
        """The synthesis layers in ``ws`` / ``noise`` order."""
        out = []
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            out += [block.conv0, block.conv1]
        return out

    def forward(self, ws: torch.Tensor, noise_mode: str = "const",
                noise: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        """``ws [N, num_ws, w_dim]`` -> image ``[N, C, H, W]``.

        ``noise``: one entry per layer (``num_ws`` of them, in ``ws`` order), each ``None`` (use ``noise_mode``)
        or a tensor broadcastable to ``[N, 1, r, r]``, scaled by the layer's per-channel noise weights.
        """
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be const, random or none, got {noise_mode!r}")
        if noise is not None and len(noise) != self.num_ws:
            raise ValueError(f"noise must list {self.num_ws} per-layer tensors (or None), got {len(noise)}")
        ws = ws.to(torch.float32)
        x: torch.Tensor | None = None
        img: torch.Tensor | None = None
        log2 = len(self.block_resolutions) + 1
        for i, res in enumerate(self.block_resolutions):
            block = getattr(self, f"b{res}")
            n0 = None if noise is None else noise[2 * i]
            n1 = None if noise is None else noise[2 * i + 1]
            x = block.conv0(x, ws[:, 2 * i], noise_mode=noise_mode, noise=n0)
            x = block.conv1(x, ws[:, 2 * i + 1], noise_mode=noise_mode, noise=n1)
            lod = log2 - int(round(math.log2(res)))
            # Linear structure: img = lerp(ToRGB(x), upscale(img), clip(lod_in - lod, 0, 1)); only the heads
            # whose blend weight can be non-zero at this ``lod`` are computed.
            t = min(max(self.lod - lod, 0.0), 1.0)
            if res == self.img_resolution or (self.progressive and self.lod > lod - 1):
                rgb = block.torgb(x)
                if img is None:
                    img = rgb
                else:
                    up = F.interpolate(img, scale_factor=2.0, mode="nearest")
                    img = rgb if t == 0 else (up if t == 1 else rgb + (up - rgb) * t)
        assert img is not None
        return img


@register_architecture
class StyleGAN1Generator(StyleGenerator):
    """StyleGAN (v1) generator: ``G(z, c) = synthesis(mapping(z, c))``."""

    architecture = "stylegan1"

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict[str, Any] | None = None, fmap_base: int = 8192, fmap_max: int = 512,
                 channels: dict[Any, int] | None = None, fused_scale: bool | str = "auto", activation: str = "lrelu",
                 use_noise: bool = True, blur_filter: Sequence[float] = (1, 2, 1), lod: float = 0.0,
                 progressive: bool = True) -> None:
        super().__init__()
        self._kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                            img_channels=img_channels, mapping_kwargs=dict(mapping_kwargs or {}), fmap_base=fmap_base,
                            fmap_max=fmap_max, fused_scale=fused_scale, activation=activation, use_noise=use_noise,
                            blur_filter=list(blur_filter), lod=float(lod), progressive=progressive)
        if channels is not None:
            self._kwargs["channels"] = {str(k): int(v) for k, v in channels.items()}
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, fmap_base=fmap_base, fmap_max=fmap_max,
                                          channels=channels, fused_scale=fused_scale, activation=activation,
                                          use_noise=use_noise, blur_filter=blur_filter, lod=lod,
                                          progressive=progressive)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, **(mapping_kwargs or {}))


# --- Published checkpoints -------------------------------------------------------------------------
# NVlabs/stylegan README ("Using pre-trained networks": the karras2019stylegan-*.pkl list); the URLs are the
# Google Drive ids its pretrained_example.py / generate_figures.py download. Licence: CC BY-NC 4.0 (README
# "Licenses"). FIDs: the StyleGAN paper (arXiv 1812.04948): Table 1 configuration F (CelebA-HQ 5.06, FFHQ 4.40)
# and the LSUN figure captions (bedroom 2.65, car 3.27, cat 8.53; 50k images).
_GDRIVE = "https://drive.google.com/uc?id="
_PAPER = "A Style-Based Generator Architecture for Generative Adversarial Networks (Karras et al., CVPR 2019)"
_SAMPLING = "Upstream examples sample with truncation psi 0.7, cutoff 8 (G_style's defaults)."


#: Architecture of the official releases (train.py: every G_style default; resolution from the dataset).
_RELEASE_RES = {"stylegan1-ffhq": 1024, "stylegan1-celebahq": 1024, "stylegan1-bedrooms": 256, "stylegan1-cars": 512,
                "stylegan1-cats": 256}


def release_init_kwargs(name: str) -> dict[str, Any]:
    """Constructor arguments of an official StyleGAN release (z 512, W 512, fmap_base 8192 / fmap_max 512)."""
    if name not in _RELEASE_RES:
        raise KeyError(f"{name!r} is not an official StyleGAN (v1) release; known: {', '.join(sorted(_RELEASE_RES))}")
    return dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=_RELEASE_RES[name], img_channels=3)


def _sg1(name: str, file_id: str, file: str, dataset: str, res: int, fid: float, notes: str = "") -> ModelEntry:
    return ModelEntry(name=name, family="stylegan1", architecture="stylegan1", source_format="tf-stylegan1-pickle",
                      url=f"{_GDRIVE}{file_id}", dataset=dataset, resolution=res, license="cc-by-nc-4.0",
                      license_note="CC BY-NC 4.0: non-commercial use only.", paper=_PAPER, fid=fid,
                      source_file=file, notes=f"{notes} {_SAMPLING}".strip(), tags=("tensorflow-original",))


register_models(
    _sg1("stylegan1-ffhq", "1MEGjdvVpUsu1jB4zrXZN7Y4kBBOzizDQ", "karras2019stylegan-ffhq-1024x1024.pkl",
         "FFHQ", 1024, 4.40),
    _sg1("stylegan1-celebahq", "1MGqJl28pN4t7SAtSrPdSRJSQJqahkzUf", "karras2019stylegan-celebahq-1024x1024.pkl",
         "CelebA-HQ", 1024, 5.06),
    _sg1("stylegan1-bedrooms", "1MOSKeGF0FJcivpBI7s63V9YHloUTORiF", "karras2019stylegan-bedrooms-256x256.pkl",
         "LSUN Bedroom", 256, 2.65),
    _sg1("stylegan1-cars", "1MJ6iCfNtMIRicihwRorsM3b7mmtmK9c3", "karras2019stylegan-cars-512x384.pkl",
         "LSUN Car", 512, 3.27,
         notes="A square 512x512 network trained on 512x384 photos pasted into black 512x512 frames: the car "
               "occupies rows 64-447; crop them for the upstream 512x384 aspect ratio."),
    _sg1("stylegan1-cats", "1MQywl0FNt6lHu8E_EUqnRbviagS7fbiJ", "karras2019stylegan-cats-256x256.pkl",
         "LSUN Cat", 256, 8.53),
)
