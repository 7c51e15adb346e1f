"""StyleGAN3 generator (Alias-Free GAN, Karras et al. 2021), configs T and R, in plain PyTorch.

Follows the semantics of ``training/networks_stylegan3.py`` in NVlabs/stylegan3: a StyleGAN2-style
mapping network, a Fourier-feature input layer (``SynthesisInput``) whose ``transform`` buffer holds a
user-specified *inverse* transform of the output image, and ``num_layers + 1`` synthesis layers, each a
modulated convolution followed by a filtered leaky ReLU (bias, FIR upsample, gain, leaky ReLU, clamp,
FIR downsample). Config R uses 1x1 convolutions and radially symmetric (jinc) downsampling filters.

Every per-layer quantity (cutoffs, sampling rates, sizes, channel counts, padding, filters) is derived
from the constructor arguments exactly as upstream derives it; parameter and buffer names equal the
upstream ``state_dict`` names (``synthesis.L<idx>_<size>_<channels>.*``). Layers always run in float32
(upstream uses float16 only on CUDA). No custom kernels: the filtered leaky ReLU is the reference
sequence of ``upfirdn2d`` and ``bias_act`` calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..base import StyleGenerator
from .ops import bias_act, on_host, upfirdn2d
from ..registry import ModelEntry, register_architecture, register_models
from .stylegan2 import FullyConnectedLayer, MappingNetwork

NOISE_MODES = ("const", "random", "none")


# --- Filter design ----------------------------------------------------------------------------------
# Kaiser-window FIR design, written from the textbook formulas (Kaiser 1974; the same definitions
# scipy.signal.kaiser_atten / kaiser_beta / firwin use): upstream designs its filters with scipy,
# which ganzoo does not depend on. Results match the filters stored in NVIDIA pickles to ~1e-8.

def kaiser_atten(numtaps: int, width: float) -> float:
    """Stop-band attenuation (dB) of a Kaiser FIR with ``numtaps`` taps and normalised transition ``width``."""
    return 2.285 * (numtaps - 1) * math.pi * width + 7.95


def kaiser_beta(atten: float) -> float:
    if atten > 50:
        return 0.1102 * (atten - 8.7)
    if atten > 21:
        return 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21)
    return 0.0


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float,
                          radial: bool = False) -> torch.Tensor | None:
    """Low-pass FIR: ``None`` for one tap, 1-D separable Kaiser-windowed sinc, or 2-D jinc (``radial``)."""
    if numtaps < 1:
        raise ValueError("numtaps must be >= 1")
    if numtaps == 1:
        return None
    nyq = fs / 2
    beta = kaiser_beta(kaiser_atten(numtaps, width / nyq))
    window = np.kaiser(numtaps, beta)
    if not radial:
        c = cutoff / nyq
        m = np.arange(numtaps) - (numtaps - 1) / 2
        h = c * np.sinc(c * m) * window
        h = h / h.sum()
        return torch.as_tensor(h, dtype=torch.float32, device="cpu")
    # Radially symmetric: J1(2 pi fc r) / (pi r), times the separable Kaiser window, unit DC gain.
    t = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(t, t))
    j1 = torch.special.bessel_j1(torch.as_tensor(2 * cutoff * np.pi * r, dtype=torch.float64, device="cpu")).numpy()
    h = j1 / (np.pi * r) * np.outer(window, window)
    h = h / h.sum()
    return torch.as_tensor(h, dtype=torch.float32, device="cpu")


# --- Layer geometry ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerSpec:
    """Everything a synthesis layer derives from the network config (upstream attribute names)."""

    name: str
    is_torgb: bool
    is_critically_sampled: bool
    use_fp16: bool
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: int
    out_sampling_rate: int
    tmp_sampling_rate: int
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    conv_kernel: int
    up_factor: int
    down_factor: int
    up_taps: int
    down_taps: int
    down_radial: bool
    padding: tuple[int, int, int, int]


@dataclass(frozen=True)
class InputSpec:
    channels: int
    size: int
    sampling_rate: float
    bandwidth: float


def synthesis_geometry(img_resolution: int, img_channels: int, channel_base: int = 32768, channel_max: int = 512,
                       num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2,
                       first_stopband: float = 2 ** 2.1, last_stopband_rel: float = 2 ** 0.3,
                       margin_size: int = 10, num_fp16_res: int = 4, conv_kernel: int = 3, filter_size: int = 6,
                       lrelu_upsampling: int = 2, use_radial_filters: bool = False
                       ) -> tuple[InputSpec, list[LayerSpec]]:
    """The input layer and per-layer specs (Alias-Free GAN, Sec. 3 and Appendix C.3: geometric cutoff
    progression from ``first_cutoff`` to Nyquist, with the last ``num_critical`` layers critically sampled)."""
    if num_layers <= num_critical:
        raise ValueError(f"num_layers ({num_layers}) must exceed num_critical ({num_critical})")
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels

    inp = InputSpec(channels=int(channels[0]), size=int(sizes[0]), sampling_rate=float(rates[0]),
                    bandwidth=float(cutoffs[0]))
    layers = []
    for idx in range(num_layers + 1):
        prev = max(idx - 1, 0)
        torgb = idx == num_layers
        critical = idx >= num_layers - num_critical
        in_rate, out_rate = int(rates[prev]), int(rates[idx])
        tmp_rate = max(in_rate, out_rate) * (1 if torgb else lrelu_upsampling)
        up = int(np.rint(tmp_rate / in_rate))
        down = int(np.rint(tmp_rate / out_rate))
        if in_rate * up != tmp_rate or out_rate * down != tmp_rate:
            raise ValueError("sampling rates are not integer multiples; check lrelu_upsampling")
        up_taps = filter_size * up if up > 1 and not torgb else 1
        down_taps = filter_size * down if down > 1 and not torgb else 1
        k = 1 if torgb else conv_kernel
        in_size, out_size = int(sizes[prev]), int(sizes[idx])
        # Output size before downsampling, minus the upsampled input, plus what the two FIRs trim.
        pad_total = (out_size - 1) * down + 1 - (in_size + k - 1) * up + up_taps + down_taps - 2
        pad_lo = (pad_total + up) // 2  # symmetric sample positions (Appendix C.3)
        pad_hi = pad_total - pad_lo
        out_ch = int(channels[idx])
        layers.append(LayerSpec(
            name=f"L{idx}_{out_size}_{out_ch}", is_torgb=torgb, is_critically_sampled=critical,
            use_fp16=bool(rates[idx] * (2 ** num_fp16_res) > img_resolution),
            in_channels=int(channels[prev]), out_channels=out_ch, in_size=in_size, out_size=out_size,
            in_sampling_rate=in_rate, out_sampling_rate=out_rate, tmp_sampling_rate=tmp_rate,
            in_cutoff=float(cutoffs[prev]), out_cutoff=float(cutoffs[idx]),
            in_half_width=float(half_widths[prev]), out_half_width=float(half_widths[idx]),
            conv_kernel=k, up_factor=up, down_factor=down, up_taps=up_taps, down_taps=down_taps,
            down_radial=bool(use_radial_filters and not critical),
            padding=(pad_lo, pad_hi, pad_lo, pad_hi)))
    return inp, layers


# --- Ops ---------------------------------------------------------------------------------------------

def modulated_conv2d_sg3(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                         padding: int = 0, input_gain: torch.Tensor | None = None) -> torch.Tensor:
    """StyleGAN3 modulated convolution, in activation-scaling form.

    Upstream pre-normalises the weight (per output channel) and the styles (by their RMS) before
    modulating, then demodulates and multiplies the weight by ``input_gain``. Scaling the input channels
    and the output channels instead of the weight gives the same result with a batch-independent graph.
    Upstream takes the style RMS over the whole batch; demodulation cancels that scalar up to its 1e-8
    epsilon, so we take it per sample: identical to upstream at batch size 1 (``gen_images.py``) and
    the same image for a seed whatever the batch size.
    """
    n = x.shape[0]
    w = weight.to(torch.float32)
    s = styles.to(torch.float32)
    if demodulate:
        w = w * w.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean(dim=1, keepdim=True).rsqrt()
    scale_in = s
    if input_gain is not None:
        scale_in = scale_in * input_gain
    x = x * scale_in.to(x.dtype).reshape(n, -1, 1, 1)
    x = F.conv2d(x, w.to(x.dtype), padding=padding)
    if demodulate:
        # sum_{i,k} (w[o,i,k] s[n,i])^2 == (s^2) @ (sum_k w^2)^T
        dcoefs = (s.square() @ w.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()
        x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
    return x


def _fir(x: torch.Tensor, f: torch.Tensor | None, up: int = 1, down: int = 1,
         padding: tuple[int, int, int, int] = (0, 0, 0, 0), gain: float = 1.0) -> torch.Tensor:
    if f is None:  # identity filter
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    return upfirdn2d(x, f, up=up, down=down, padding=padding, gain=gain)


def filtered_lrelu(x: torch.Tensor, fu: torch.Tensor | None, fd: torch.Tensor | None, b: torch.Tensor | None,
                   up: int = 1, down: int = 1, padding: tuple[int, int, int, int] = (0, 0, 0, 0),
                   gain: float = math.sqrt(2), slope: float = 0.2, clamp: float | None = None) -> torch.Tensor:
    """Bias, upsample (zero insertion + ``fu``), gain, leaky ReLU, clamp, then ``fd`` + decimation."""
    x = bias_act(x, b)
    x = _fir(x, fu, up=up, padding=padding, gain=up ** 2)
    x = bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    return _fir(x, fd, down=down)


# --- Modules -----------------------------------------------------------------------------------------

@on_host
def _disc_frequencies(channels: int, bandwidth: float) -> torch.Tensor:
    """Random frequencies inside a disc of radius ``bandwidth`` (the values come from the checkpoint)."""
    freqs = torch.randn([channels, 2])
    radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
    return freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth


class SynthesisInput(nn.Module):
    """Fourier features: a learned per-sample rotation+translation, then the user ``transform``."""

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float) -> None:
        super().__init__()
        self.w_dim, self.channels = w_dim, channels
        self.size = int(size)
        self.sampling_rate, self.bandwidth = float(sampling_rate), float(bandwidth)
        freqs = _disc_frequencies(channels, bandwidth)
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4)
        with torch.no_grad():  # upstream init: zero weight, bias (1, 0, 0, 0) = identity rotation
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        # Inverse of the user transform of the output image (what gen_images.py writes).
        self.register_buffer("transform", on_host(torch.eye)(3, 3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand([channels]).sub_(0.5))

    def forward(self, w: torch.Tensor, transform: torch.Tensor | None = None) -> torch.Tensor:
        """``transform`` ([3, 3], the inverse image transform) overrides the buffer for this call."""
        n = w.shape[0]
        user = self.transform if transform is None else transform.to(torch.float32)
        t = self.affine(w)  # (r_c, r_s, t_x, t_y)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        eye = torch.eye(3, device=w.device, dtype=torch.float32)
        m_r = eye.unsqueeze(0).repeat([n, 1, 1])  # inverse rotation of the output image
        m_r[:, 0, 0] = t[:, 0]
        m_r[:, 0, 1] = -t[:, 1]
        m_r[:, 1, 0] = t[:, 1]
        m_r[:, 1, 1] = t[:, 0]
        m_t = eye.unsqueeze(0).repeat([n, 1, 1])  # inverse translation
        m_t[:, 0, 2] = -t[:, 2]
        m_t[:, 1, 2] = -t[:, 3]
        transforms = m_r @ m_t @ user.unsqueeze(0)

        freqs = self.freqs.unsqueeze(0)
        phases = self.phases.unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]
        # Fade out frequencies that a user transform pushed beyond the band limit.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

        theta = torch.zeros(1, 2, 3, device=w.device, dtype=torch.float32)
        theta[0, 0, 0] = 0.5 * self.size / self.sampling_rate
        theta[0, 1, 1] = 0.5 * self.size / self.sampling_rate
        grid = F.affine_grid(theta, [1, 1, self.size, self.size], align_corners=False)  # [1, H, W, 2]

        x = (grid.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)  # [N, H, W, C]
        x = x + phases.unsqueeze(1).unsqueeze(2)
        x = torch.sin(x * (2 * math.pi)) * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)


class SynthesisLayer(nn.Module):
    def __init__(self, spec: LayerSpec, w_dim: int, conv_clamp: float | None = 256,
                 magnitude_ema_beta: float = 0.999) -> None:
        super().__init__()
        self.spec = spec
        self.w_dim = w_dim
        self.is_torgb = spec.is_torgb
        self.in_channels, self.out_channels = spec.in_channels, spec.out_channels
        self.conv_kernel = spec.conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta
        self.padding = list(spec.padding)
        self.affine = FullyConnectedLayer(w_dim, spec.in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([spec.out_channels, spec.in_channels, spec.conv_kernel,
                                                spec.conv_kernel]))
        self.bias = nn.Parameter(torch.zeros([spec.out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))
        self.register_buffer("up_filter", _to_device(design_lowpass_filter(
            spec.up_taps, spec.in_cutoff, spec.in_half_width * 2, spec.tmp_sampling_rate)))
        self.register_buffer("down_filter", _to_device(design_lowpass_filter(
            spec.down_taps, spec.out_cutoff, spec.out_half_width * 2, spec.tmp_sampling_rate,
            radial=spec.down_radial)))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.spec
        if x.shape[1:] != (s.in_channels, s.in_size, s.in_size):
            raise ValueError(f"{s.name} expects [N, {s.in_channels}, {s.in_size}, {s.in_size}], got {list(x.shape)}")
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / math.sqrt(self.in_channels * self.conv_kernel ** 2))
        x = modulated_conv2d_sg3(x.to(torch.float32), self.weight, styles, demodulate=not self.is_torgb,
                                 padding=self.conv_kernel - 1, input_gain=self.magnitude_ema.rsqrt())
        gain = 1.0 if self.is_torgb else math.sqrt(2)
        slope = 1.0 if self.is_torgb else 0.2
        return filtered_lrelu(x, self.up_filter, self.down_filter, self.bias.to(x.dtype), up=s.up_factor,
                              down=s.down_factor, padding=s.padding, gain=gain, slope=slope, clamp=self.conv_clamp)


def _to_device(t: torch.Tensor | None) -> torch.Tensor | None:
    """Filters are designed on CPU; move them to the default device (``meta`` during shape-only builds)."""
    if t is None:
        return None
    return t.to(torch.empty(0).device)


class SynthesisNetwork(nn.Module):
    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2,
                 first_stopband: float = 2 ** 2.1, last_stopband_rel: float = 2 ** 0.3, margin_size: int = 10,
                 output_scale: float = 0.25, num_fp16_res: int = 4, conv_kernel: int = 3, filter_size: int = 6,
                 lrelu_upsampling: int = 2, use_radial_filters: bool = False, conv_clamp: float | None = 256,
                 magnitude_ema_beta: float = 0.999) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_layers = num_layers
        self.num_ws = num_layers + 2
        self.output_scale = output_scale
        inp, specs = synthesis_geometry(
            img_resolution, img_channels, channel_base=channel_base, channel_max=channel_max, num_layers=num_layers,
            num_critical=num_critical, first_cutoff=first_cutoff, first_stopband=first_stopband,
            last_stopband_rel=last_stopband_rel, margin_size=margin_size, num_fp16_res=num_fp16_res,
            conv_kernel=conv_kernel, filter_size=filter_size, lrelu_upsampling=lrelu_upsampling,
            use_radial_filters=use_radial_filters)
        self.input_spec = inp
        self.layer_specs = specs
        self.input = SynthesisInput(w_dim, inp.channels, inp.size, inp.sampling_rate, inp.bandwidth)
        self.layer_names = []
        for spec in specs:
            setattr(self, spec.name, SynthesisLayer(spec, w_dim, conv_clamp=conv_clamp,
                                                    magnitude_ema_beta=magnitude_ema_beta))
            self.layer_names.append(spec.name)

    num_noise = 0  # StyleGAN3 layers take no noise

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", transform: torch.Tensor | None = None,
                noise: Sequence[torch.Tensor | None] | None = None, **_: Any) -> torch.Tensor:
        """``ws [N, num_ws, w_dim]`` -> image; ``noise_mode`` is accepted for API symmetry (no noise in SG3).

        ``transform``: an inverse image transform ``[3, 3]`` for this call instead of ``input.transform``.
        ``noise``: StyleGAN3 has no noise inputs, so only ``None`` or an empty list is accepted (anything else
        would be silently ignored otherwise).
        """
        if noise is not None and len(noise) != 0:
            raise ValueError(f"StyleGAN3 synthesis has no noise inputs: got {len(noise)} noise tensor(s)")
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be const, random or none, got {noise_mode!r}")
        ws_list = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws_list[0], transform)
        for name, w in zip(self.layer_names, ws_list[1:]):
            x = getattr(self, name)(x, w)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32)


SYNTHESIS_DEFAULTS: dict[str, Any] = dict(
    channel_base=32768, channel_max=512, num_layers=14, num_critical=2, first_cutoff=2, first_stopband=2 ** 2.1,
    last_stopband_rel=2 ** 0.3, margin_size=10, output_scale=0.25, num_fp16_res=4, conv_kernel=3, filter_size=6,
    lrelu_upsampling=2, use_radial_filters=False, conv_clamp=256, magnitude_ema_beta=0.999)
MAPPING_DEFAULTS: dict[str, Any] = dict(num_layers=2, lr_multiplier=0.01, w_avg_beta=0.998)


@register_architecture
class StyleGAN3Generator(StyleGenerator):
    """StyleGAN3 generator: ``G(z, c) = synthesis(mapping(z, c))``; configs T and R differ only in arguments."""

    architecture = "stylegan3"

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict[str, Any] | None = None, **synthesis_kwargs: Any) -> None:
        super().__init__()
        unknown = set(synthesis_kwargs) - set(SYNTHESIS_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown StyleGAN3 synthesis option(s) {sorted(unknown)}")
        mapping = dict(mapping_kwargs or {})
        bad = set(mapping) - set(MAPPING_DEFAULTS)
        if bad:
            raise ValueError(f"unknown StyleGAN3 mapping option(s) {sorted(bad)}")
        self._kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                            img_channels=img_channels, mapping_kwargs=mapping, **synthesis_kwargs)
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          **{**SYNTHESIS_DEFAULTS, **synthesis_kwargs})
        self.num_ws = self.synthesis.num_ws
        # Same layout as the StyleGAN2 mapping (embed -> w_dim, every hidden layer w_dim wide).
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                      **{**MAPPING_DEFAULTS, **mapping})

    def onnx_extra_inputs(self, parts: str) -> dict[str, torch.Tensor]:
        """ONNX exports take the input transform ``[3, 3]`` as a graph input (default: the model's buffer)."""
        return {} if parts == "mapping" else {"transform": self.synthesis.input.transform.detach().clone()}


# --- Published checkpoints -------------------------------------------------------------------------
# URLs: NVlabs/stylegan3 README ("Additional material": NGC nvidia/research/stylegan3, version 1).
# FIDs: Alias-Free GAN paper (arXiv 2106.12423) Table 1 where it reports the released configuration
# at that dataset and resolution; None otherwise.
_NGC = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files"
_PAPER = "Alias-Free Generative Adversarial Networks (Karras et al., NeurIPS 2021)"
_CFG_NOTE = {"t": "Config T (translation equivariant).", "r": "Config R (translation and rotation equivariant)."}


def _sg3(cfg: str, key: str, dataset: str, res: int, fid: float | None = None) -> ModelEntry:
    file = f"stylegan3-{cfg}-{key}-{res}x{res}.pkl"
    return ModelEntry(name=f"stylegan3-{cfg}-{key}-{res}", family="stylegan3", architecture="stylegan3",
                      source_format="nvidia-pickle", url=f"{_NGC}/{file}", dataset=dataset, resolution=res,
                      license="nvidia-source-code-license", paper=_PAPER, fid=fid, source_file=file,
                      notes=_CFG_NOTE[cfg], tags=(f"config-{cfg}",))


register_models(
    _sg3("t", "ffhq", "FFHQ", 1024, 2.79),
    _sg3("r", "ffhq", "FFHQ", 1024, 3.07),
    _sg3("t", "ffhqu", "FFHQ-U (unaligned)", 1024, 3.67),
    _sg3("r", "ffhqu", "FFHQ-U (unaligned)", 1024, 3.66),
    _sg3("t", "ffhqu", "FFHQ-U (unaligned)", 256),
    _sg3("r", "ffhqu", "FFHQ-U (unaligned)", 256),
    _sg3("t", "afhqv2", "AFHQv2", 512, 4.04),
    _sg3("r", "afhqv2", "AFHQv2", 512, 4.40),
    _sg3("t", "metfaces", "MetFaces", 1024),
    _sg3("r", "metfaces", "MetFaces", 1024),
    _sg3("t", "metfacesu", "MetFaces-U (unaligned)", 1024),
    _sg3("r", "metfacesu", "MetFaces-U (unaligned)", 1024),
)
