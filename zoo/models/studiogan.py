"""StudioGAN generators (POSTECH-CVLab/PyTorch-StudioGAN): every non-style backbone it ships.

Facts (PyTorch-StudioGAN ``src/models/*.py``, ``src/utils/ops.py``, ``src/config.py``, commit 947b35e):

- Backbones: ``deep_conv`` (DCGAN: ``linear0`` -> 4x4, stride-2 ``deconv0`` 4x4 + BN + act per block, ``conv4``
  3x3, tanh), ``resnet`` (SNGAN/WGAN-GP/ACGAN/ProjGAN: ``linear0(z)`` -> 4x4, residual up-blocks, ``bn4`` -> act
  -> ``conv2d5`` -> tanh), ``big_resnet`` (BigGAN family: hierarchical z, ``torch.split(z, z_dim // (blocks + 1))``,
  chunk 0 feeds ``linear0``, block i's conditional BN reads ``cat([shared(label), chunk_{i+1}])``) and the two
  BigGAN-deep variants ``big_resnet_deep_legacy`` (CompareGAN: bottleneck blocks, the skip drops channels) and
  ``big_resnet_deep_studiogan`` (a 1x1 ``conv2d0`` on the skip); both read ``cat([shared(label), z])`` everywhere.
  The pre-2022 name ``deep_big_resnet`` is the legacy layout.
- Every BatchNorm2d is ``ops.batchnorm_2d``: eps 1e-4. ``ConditionalBatchNorm2d`` = BN(affine=False) followed by
  ``* (1 + gain(y)) + bias(y)`` with bias-free ``g_linear`` layers; ``y`` is the one-hot label (``resnet``,
  ``deep_conv``) or the affine vector above. Plain BN (affine) when ``g_cond_mtd`` is ``W/O`` in ``resnet`` /
  ``deep_conv``; ``big_resnet`` always uses the conditional form (``config.define_modules``).
- ``shared`` is a plain ``nn.Embedding`` (never spectrally normalised); we evaluate it as ``c @ shared.weight`` so
  a one-hot c gives exactly the embedding row and a soft c blends classes.
- ``apply_g_sn``: ``torch.nn.utils.spectral_norm(eps=1e-6)`` on every conv/deconv/linear, which stores
  ``weight_orig``/``weight_u``/``weight_v``; in eval mode the weight is ``weight_orig / (u . (W_mat v))`` with the
  stored vectors (no power iteration, no renormalisation). ``W_mat`` is ``weight_orig`` with dim 0 first, dim 1
  for transposed convolutions (torch's default ``dim``).
- ``SelfAttention`` (SAGAN): theta/phi C/8, g C/2, bias-free 1x1 convs, 2x2 max-pool on phi and g,
  ``x + sigma * conv1x1_attn(...)``; it occupies its own ``blocks`` entry after resolution group ``i`` when
  ``i + 1`` is in ``attn_g_loc``, so later block indices shift by one.
- Activations (``g_act_fn``): ReLU, Leaky_ReLU (slope 0.1), ELU (alpha 1), GELU.

Truncation: StudioGAN has no truncation inside G. Its ``truncation_factor`` t resamples the prior: t < 0 (default)
draws ``torch.randn``, t > 0 draws ``scipy.stats.truncnorm.rvs(-t, t)`` on numpy's global RNG
(``src/utils/sample.py``). ganzoo maps ``truncation_psi`` onto t in the seed recipe (``z_convention
"studiogan"``): psi == 1 draws the untruncated normal, any other psi > 0 draws truncnorm(-psi, psi).
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..base import GanGenerator
from ..registry import ModelEntry, register_architecture, register_models
from .ops import embedding

BACKBONES = ("deep_conv", "resnet", "big_resnet", "big_resnet_deep_legacy", "big_resnet_deep_studiogan")
DEEP_BACKBONES = ("big_resnet_deep_legacy", "big_resnet_deep_studiogan")
ACTIVATIONS = ("ReLU", "Leaky_ReLU", "ELU", "GELU")
BN_EPS = 1e-4  # ops.batchnorm_2d default


# --- layers ----------------------------------------------------------------------------------------------------

class _SpectralNorm(nn.Module):
    """Eval-mode ``torch.nn.utils.spectral_norm``: ``weight = weight_orig / (u . (W_mat v))`` with stored u, v."""

    sn_dim: int = 0

    def _init_sn(self, shape: Sequence[int], bias: int | None) -> None:
        shape = tuple(int(s) for s in shape)
        rows = shape[self.sn_dim]
        self.weight_orig = nn.Parameter(torch.zeros(shape))
        self.bias = nn.Parameter(torch.zeros(bias)) if bias else None
        self.register_buffer("weight_u", torch.zeros(rows))
        self.register_buffer("weight_v", torch.zeros(math.prod(shape) // rows))

    def _mat(self) -> torch.Tensor:
        w = self.weight_orig
        return (w.transpose(0, 1) if self.sn_dim == 1 else w).reshape(w.shape[self.sn_dim], -1)

    @property
    def weight(self) -> torch.Tensor:
        sigma = torch.dot(self.weight_u, torch.mv(self._mat(), self.weight_v))
        return self.weight_orig / sigma

    @torch.no_grad()
    def power_iteration_(self, eps: float = 1e-6) -> None:
        """One train-mode step of torch's ``spectral_norm`` (eps 1e-6 as ``ops.sn*``): update v, then u."""
        mat = self._mat()
        self.weight_v.copy_(F.normalize(torch.mv(mat.t(), self.weight_u), dim=0, eps=eps))
        self.weight_u.copy_(F.normalize(torch.mv(mat, self.weight_v), dim=0, eps=eps))


class SNLinear(_SpectralNorm):
    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._init_sn((out_features, in_features), out_features if bias else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class SNConv2d(_SpectralNorm):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0,
                 bias: bool = True) -> None:
        super().__init__()
        self.padding = padding
        self._init_sn((out_channels, in_channels, kernel_size, kernel_size), out_channels if bias else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, padding=self.padding)


class SNConvTranspose2d(_SpectralNorm):
    sn_dim = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int,
                 bias: bool = True) -> None:
        super().__init__()
        self.stride, self.padding = stride, padding
        self._init_sn((in_channels, out_channels, kernel_size, kernel_size), out_channels if bias else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)


def _linear(cin: int, cout: int, bias: bool, sn: bool) -> nn.Module:
    return SNLinear(cin, cout, bias) if sn else nn.Linear(cin, cout, bias=bias)


def _conv(cin: int, cout: int, k: int, sn: bool, bias: bool = True) -> nn.Module:
    return SNConv2d(cin, cout, k, padding=k // 2, bias=bias) if sn else nn.Conv2d(cin, cout, k, padding=k // 2,
                                                                                    bias=bias)


def _deconv(cin: int, cout: int, sn: bool) -> nn.Module:
    return SNConvTranspose2d(cin, cout, 4, 2, 1) if sn else nn.ConvTranspose2d(cin, cout, 4, 2, 1)


class BatchNorm(nn.Module):
    """BatchNorm2d with running statistics only (eval semantics whatever the module's mode)."""

    def __init__(self, num_features: int, affine: bool = True, eps: float = BN_EPS) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, training=False,
                            eps=self.eps)


class ConditionalBatchNorm2d(nn.Module):
    """``BN(x) * (1 + gain(y)) + bias(y)`` (StudioGAN ``ops.ConditionalBatchNorm2d``)."""

    def __init__(self, affine_dim: int, num_features: int, sn: bool) -> None:
        super().__init__()
        self.bn = BatchNorm(num_features, affine=False)
        self.gain = _linear(affine_dim, num_features, False, sn)
        self.bias = _linear(affine_dim, num_features, False, sn)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gain = (1 + self.gain(y))[:, :, None, None]
        return self.bn(x) * gain + self.bias(y)[:, :, None, None]


class SelfAttention(nn.Module):
    """SAGAN self-attention with max-pooled keys/values and a learned residual gain ``sigma``."""

    def __init__(self, channels: int, sn: bool) -> None:
        super().__init__()
        self.conv1x1_theta = _conv(channels, channels // 8, 1, sn, bias=False)
        self.conv1x1_phi = _conv(channels, channels // 8, 1, sn, bias=False)
        self.conv1x1_g = _conv(channels, channels // 2, 1, sn, bias=False)
        self.conv1x1_attn = _conv(channels // 2, channels, 1, sn, bias=False)
        self.sigma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, ch, h, w = x.shape
        theta = self.conv1x1_theta(x).reshape(n, ch // 8, h * w)
        phi = F.max_pool2d(self.conv1x1_phi(x), 2).reshape(n, ch // 8, h * w // 4)
        attn = torch.softmax(torch.bmm(theta.transpose(1, 2), phi), dim=-1)
        g = F.max_pool2d(self.conv1x1_g(x), 2).reshape(n, ch // 2, h * w // 4)
        out = torch.bmm(g, attn.transpose(1, 2)).reshape(n, ch // 2, h, w)
        return x + self.sigma * self.conv1x1_attn(out)


def activation(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "ReLU":
        return F.relu(x)
    if name == "Leaky_ReLU":
        return F.leaky_relu(x, 0.1)
    if name == "ELU":
        return F.elu(x, 1.0)
    if name == "GELU":
        return F.gelu(x)
    raise ValueError(f"unknown activation {name!r}; StudioGAN generators use one of {', '.join(ACTIVATIONS)}")


def _norm(affine_dim: int, ch: int, sn: bool) -> nn.Module:
    """Conditional BN when there is an affine input, plain affine BN otherwise."""
    return ConditionalBatchNorm2d(affine_dim, ch, sn) if affine_dim else BatchNorm(ch)


def _apply_norm(bn: nn.Module, x: torch.Tensor, affine: torch.Tensor | None) -> torch.Tensor:
    return bn(x, affine) if isinstance(bn, ConditionalBatchNorm2d) else bn(x)


# --- blocks ----------------------------------------------------------------------------------------------------

class ConvGenBlock(nn.Module):
    """``deep_conv``: stride-2 transposed conv -> BN -> act."""

    def __init__(self, cin: int, cout: int, affine_dim: int, sn: bool, act: str) -> None:
        super().__init__()
        self.act = act
        self.deconv0 = _deconv(cin, cout, sn)
        self.bn0 = _norm(affine_dim, cout, sn)

    def forward(self, x: torch.Tensor, affine: torch.Tensor | None) -> torch.Tensor:
        return activation(self.act, _apply_norm(self.bn0, self.deconv0(x), affine))


class ResGenBlock(nn.Module):
    """``resnet`` / ``big_resnet``: BN-act-up-conv3x3-BN-act-conv3x3, skip = conv1x1(up(x))."""

    def __init__(self, cin: int, cout: int, affine_dim: int, sn: bool, act: str) -> None:
        super().__init__()
        self.act = act
        self.bn1 = _norm(affine_dim, cin, sn)
        self.bn2 = _norm(affine_dim, cout, sn)
        self.conv2d0 = _conv(cin, cout, 1, sn)
        self.conv2d1 = _conv(cin, cout, 3, sn)
        self.conv2d2 = _conv(cout, cout, 3, sn)

    def forward(self, x: torch.Tensor, affine: torch.Tensor | None) -> torch.Tensor:
        h = activation(self.act, _apply_norm(self.bn1, x, affine))
        h = self.conv2d1(F.interpolate(h, scale_factor=2, mode="nearest"))
        h = self.conv2d2(activation(self.act, _apply_norm(self.bn2, h, affine)))
        return h + self.conv2d0(F.interpolate(x, scale_factor=2, mode="nearest"))


class DeepGenBlock(nn.Module):
    """BigGAN-deep bottleneck block (channel ratio 4); ``skip_conv`` selects the StudioGAN variant."""

    def __init__(self, cin: int, cout: int, affine_dim: int, upsample: bool, sn: bool, act: str,
                 skip_conv: bool) -> None:
        super().__init__()
        hidden = cin // 4
        self.act, self.upsample, self.skip_conv, self.cout = act, upsample, skip_conv, cout
        self.bn1 = ConditionalBatchNorm2d(affine_dim, cin, sn)
        self.bn2 = ConditionalBatchNorm2d(affine_dim, hidden, sn)
        self.bn3 = ConditionalBatchNorm2d(affine_dim, hidden, sn)
        self.bn4 = ConditionalBatchNorm2d(affine_dim, hidden, sn)
        if skip_conv:
            self.conv2d0 = _conv(cin, cout, 1, sn)
        self.conv2d1 = _conv(cin, hidden, 1, sn)
        self.conv2d2 = _conv(hidden, hidden, 3, sn)
        self.conv2d3 = _conv(hidden, hidden, 3, sn)
        self.conv2d4 = _conv(hidden, cout, 1, sn)

    def forward(self, x: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
        a = self.act
        skip = x if self.skip_conv or x.shape[1] == self.cout else x[:, :self.cout]
        h = self.conv2d1(activation(a, self.bn1(x, affine)))
        h = activation(a, self.bn2(h, affine))
        if self.upsample:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.conv2d2(h)
        h = self.conv2d3(activation(a, self.bn3(h, affine)))
        h = self.conv2d4(activation(a, self.bn4(h, affine)))
        if self.upsample:
            skip = F.interpolate(skip, scale_factor=2, mode="nearest")
        if self.skip_conv:
            skip = self.conv2d0(skip)
        return h + skip


# --- the generator ---------------------------------------------------------------------------------------------

@register_architecture
class StudioGANGenerator(GanGenerator):
    """``G(z, c)``: z ``[N, z_dim]`` as drawn by the prior (already truncated), c one-hot ``[N, num_classes]``.

    ``blocks`` lists ``G.blocks`` entries in upstream order: ``["block", in, out, upsample]`` or ``["attn", ch]``.
    ``linear0_in`` is the width ``linear0`` reads (a z chunk for ``big_resnet``; ``z_dim`` or
    ``z_dim + g_shared_dim`` for the deep backbones). ``truncation_psi`` does not change G: StudioGAN truncates
    the prior, which ``sdk.sample`` does from the psi (see the module docstring).
    """

    architecture = "studiogan"
    style_based = False
    z_convention = "studiogan"
    psi_dtype = None  # no truncation inside the graph: it happens when z is drawn

    def __init__(self, backbone: str = "resnet", img_size: int = 32, z_dim: int = 128, num_classes: int = 10,
                 g_cond_mtd: str = "W/O", g_shared_dim: int = 0, apply_g_sn: bool = False, g_act_fn: str = "ReLU",
                 blocks: Sequence[Sequence[Any]] = (), linear0_in: int | None = None) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown StudioGAN backbone {backbone!r}; supported: {', '.join(BACKBONES)}")
        if g_cond_mtd not in ("W/O", "cBN"):
            raise ValueError(f"g_cond_mtd must be 'W/O' or 'cBN', got {g_cond_mtd!r}")
        if g_act_fn not in ACTIVATIONS:
            raise ValueError(f"g_act_fn must be one of {', '.join(ACTIVATIONS)}, got {g_act_fn!r}")
        specs = [list(b) for b in blocks]
        gen_blocks = [b for b in specs if b[0] == "block"]
        if not gen_blocks:
            raise ValueError("blocks must list at least one generator block")
        cond = g_cond_mtd == "cBN"
        uses_shared = cond and backbone not in ("resnet", "deep_conv")
        if uses_shared and g_shared_dim <= 0:
            raise ValueError(f"{backbone} with cBN needs g_shared_dim > 0")
        n_gen = len(gen_blocks)
        chunk = z_dim // (n_gen + 1)
        if backbone == "big_resnet":
            if z_dim % (n_gen + 1):
                raise ValueError(f"big_resnet splits z into {n_gen + 1} chunks: z_dim {z_dim} does not divide")
            linear0_in = chunk
        elif backbone in DEEP_BACKBONES:
            linear0_in = int(linear0_in if linear0_in is not None else z_dim + (g_shared_dim if uses_shared else 0))
        else:
            linear0_in = z_dim
        self._kwargs = dict(backbone=backbone, img_size=img_size, z_dim=z_dim, num_classes=num_classes,
                            g_cond_mtd=g_cond_mtd, g_shared_dim=g_shared_dim if uses_shared else 0,
                            apply_g_sn=bool(apply_g_sn), g_act_fn=g_act_fn, blocks=specs, linear0_in=linear0_in)
        self.backbone, self.act, self.uses_shared = backbone, g_act_fn, uses_shared
        self.z_dim, self.c_dim = z_dim, (num_classes if cond else 0)
        self.w_dim, self.num_ws = 0, 0
        self.img_resolution, self.img_channels = img_size, 3
        self.chunk = chunk
        sn = bool(apply_g_sn)

        if backbone == "big_resnet":
            affine_dim = chunk + (g_shared_dim if uses_shared else 0)
        elif backbone in DEEP_BACKBONES:
            affine_dim = z_dim + (g_shared_dim if uses_shared else 0)
        else:
            affine_dim = num_classes if cond else 0
        self.in0 = int(gen_blocks[0][1])
        self.linear0 = _linear(linear0_in, self.in0 * 16, True, sn)
        if uses_shared:
            self.shared = embedding(num_classes, g_shared_dim)
        mods: list[nn.Module] = []
        for spec in specs:
            if spec[0] == "attn":
                mod: nn.Module = SelfAttention(int(spec[1]), sn)
            elif backbone == "deep_conv":
                mod = ConvGenBlock(int(spec[1]), int(spec[2]), affine_dim, sn, g_act_fn)
            elif backbone in DEEP_BACKBONES:
                mod = DeepGenBlock(int(spec[1]), int(spec[2]), affine_dim, bool(spec[3]), sn, g_act_fn,
                                   skip_conv=backbone == "big_resnet_deep_studiogan")
            else:
                mod = ResGenBlock(int(spec[1]), int(spec[2]), affine_dim, sn, g_act_fn)
            mods.append(nn.ModuleList([mod]))
        self.blocks = nn.ModuleList(mods)
        n_up = sum(1 for b in gen_blocks if backbone not in DEEP_BACKBONES or bool(b[3]))
        if 4 * 2 ** n_up != img_size:
            raise ValueError(f"blocks upsample 4 -> {4 * 2 ** n_up}, but img_size is {img_size}")
        last = int(gen_blocks[-1][2])
        if backbone == "deep_conv":
            self.conv4 = _conv(last, 3, 3, sn)
        else:
            self.bn4 = BatchNorm(last)
            self.conv2d5 = _conv(last, 3, 3, sn)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "const") -> torch.Tensor:
        if z.ndim == 4:
            z = z.flatten(1)
        self.check_inputs(z, c)
        if truncation_cutoff is not None:
            raise ValueError("StudioGAN generators have no per-layer truncation: drop truncation_cutoff")
        if not isinstance(truncation_psi, torch.Tensor):
            psi = float(truncation_psi)
            if not (math.isfinite(psi) and psi > 0):
                raise ValueError(f"truncation_psi must be a positive number, got {truncation_psi}")
        c = None if c is None else c.to(z.dtype)
        shared = c @ self.shared.weight if self.uses_shared else None
        affines: list[torch.Tensor] | None = None
        affine_all: torch.Tensor | None = None
        if self.backbone == "big_resnet":
            zs = torch.split(z, self.chunk, dim=1)
            x = self.linear0(zs[0])
            affines = [z_i if shared is None else torch.cat([shared, z_i], dim=1) for z_i in zs[1:]]
        elif self.backbone in DEEP_BACKBONES:
            full = z if shared is None else torch.cat([shared, z], dim=1)
            x = self.linear0(full if self.linear0_reads_condition else z)
            affine_all = full
        else:
            x = self.linear0(z)
            affine_all = c
        x = x.reshape(z.shape[0], self.in0, 4, 4)
        k = 0
        for entry in self.blocks:
            block = entry[0]
            if isinstance(block, SelfAttention):
                x = block(x)
            else:
                x = block(x, affines[k] if affines is not None else affine_all)
                k += 1
        if self.backbone == "deep_conv":
            return torch.tanh(self.conv4(x))
        return torch.tanh(self.conv2d5(activation(self.act, self.bn4(x))))

    def spectral_norm_step_(self, steps: int = 1) -> None:
        """Run ``steps`` power iterations on every spectral-norm layer (updating the stored u/v in place).

        StudioGAN's evaluation path (``GeneratorController.prepare_generator``) puts convolutions and linears back
        in train mode, so torch's spectral norm steps once before every call and outputs drift. ``steps=1`` on a
        freshly loaded model, then a normal call, reproduces that path's first call; the published numbers of
        this zoo are the ``eval()`` ones with the stored vectors.
        """
        for _ in range(int(steps)):
            for m in self.modules():
                if isinstance(m, _SpectralNorm):
                    m.power_iteration_()

    @property
    def linear0_reads_condition(self) -> bool:
        return self._kwargs["linear0_in"] != self.z_dim

    def z_projection(self) -> tuple[str, torch.Tensor]:
        """The first projection of z as ``(name, A [features, z_dim])`` for SeFa / GANSpace.

        ``big_resnet`` reads only chunk 0 in ``linear0``: the other chunks' columns are zero, so SeFa's
        directions move chunk 0. The deep backbones' ``linear0`` reads ``cat([shared, z])``: its z columns.
        """
        w = self.linear0.weight.detach()
        if self.backbone == "big_resnet":
            a = w.new_zeros(w.shape[0], self.z_dim)
            a[:, :self.chunk] = w
            return "linear0", a
        return "linear0", w[:, w.shape[1] - self.z_dim:]


# --- StudioGAN's sampler ---------------------------------------------------------------------------------------

_STD_NORMAL = NormalDist()


def truncnorm_from_uniform(u: np.ndarray, t: float) -> np.ndarray:
    """``scipy.stats.truncnorm.ppf(u, -t, t)`` in float64 (scipy draws ``rvs`` as ``ppf(uniform)``)."""
    lo, hi = _STD_NORMAL.cdf(-t), _STD_NORMAL.cdf(t)
    flat = [_STD_NORMAL.inv_cdf(lo + x * (hi - lo)) for x in np.asarray(u, dtype=np.float64).ravel().tolist()]
    return np.array(flat, dtype=np.float64).reshape(np.shape(u))


def sample_zy(seed: int, batch_size: int, z_dim: int, num_classes: int,
              truncation_factor: float = -1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """StudioGAN's ``misc.fix_seed(seed)`` + ``sample.sample_zy`` (gaussian prior, ``totally_random`` labels).

    Labels come first from torch's RNG (``torch.randint``), then z: ``torch.randn`` for ``truncation_factor < 0``,
    else truncnorm(-t, t) from numpy's RNG seeded with the same seed. Private generators leave the global RNGs alone.
    Returns ``(z [batch, z_dim] float32, labels [batch] int64)``.
    """
    if not 0 <= int(seed) < 2 ** 32:
        raise ValueError(f"seed {seed} out of range: seeds are integers in [0, 2**32)")
    g = torch.Generator().manual_seed(int(seed))
    labels = torch.randint(0, max(int(num_classes), 1), (batch_size,), generator=g, dtype=torch.long)
    if truncation_factor is None or float(truncation_factor) < 0:
        z = torch.randn(batch_size, z_dim, generator=g)
    else:
        t = float(truncation_factor)
        if not t > 0:
            raise ValueError(f"truncation factor must be > 0 (or -1 for none), got {truncation_factor}")
        u = np.random.RandomState(int(seed)).uniform(size=(batch_size, z_dim))
        z = torch.from_numpy(truncnorm_from_uniform(u, t).astype(np.float32))
    return z, labels


def studiogan_seed_to_z(seed: int, z_dim: int, psi: float) -> torch.Tensor:
    """One seed's z ``[1, z_dim]``: StudioGAN's sampler with batch 1; psi == 1 -> no truncation, else t = psi."""
    t = -1.0 if float(psi) == 1.0 else float(psi)
    return sample_zy(seed, 1, z_dim, 1, t)[0]


# --- released checkpoints --------------------------------------------------------------------------------------

HUB_REPO = "Mingguksky/PyTorch-StudioGAN"
_HUB = f"https://huggingface.co/{HUB_REPO}/tree/main/studiogan_official_ckpt"
_PAPER = "StudioGAN: A Taxonomy and Benchmark of GANs for Image Synthesis (Kang, Shin & Park, TPAMI 2023)"
# Scores: IS / FID from the benchmark tables of the StudioGAN README at commit 9e60a56 (July 2022), which report
# the runs of its earlier (Google Drive) release; the Hub release re-trained the models and gives its scores in
# the README's benchmark figure only (docs/figures/StudioGAN_Benchmark_.png), so they are not copied here.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
AFHQ_CLASSES = ("cat", "dog", "wild")
_LICENSE_NOTE = ("StudioGAN code and checkpoints: MIT (PyTorch-StudioGAN LICENSE; some modules carry other "
                 "permissive licences). Trained on {data}; check the dataset's terms for your use.")


def _entry(name: str, model: str, backbone: str, dataset: str, data_short: str, res: int, classes: int,
           fid: float | None, inception: float | None, folder: str, tags: tuple[str, ...],
           conditional: bool = True) -> ModelEntry:
    class_names = {"CIFAR10": CIFAR10_CLASSES, "AFHQv2": AFHQ_CLASSES}.get(data_short, ()) if conditional else ()
    score = (f"Reported IS {inception:g}, FID {fid:g} for the earlier (Google Drive) release of this model "
             "(StudioGAN README benchmark table)." if fid is not None else
             "StudioGAN reports its scores in the README's benchmark figure only.")
    return ModelEntry(
        name=name, family="studiogan", architecture="studiogan", source_format="studiogan", url=f"{_HUB}/{folder}",
        dataset=dataset, resolution=res, license="mit", conditional=conditional,
        num_classes=classes if conditional else 0, paper=_PAPER, fid=fid,
        license_note=_LICENSE_NOTE.format(data=dataset),
        notes=(f"{model} on {data_short}, StudioGAN backbone `{backbone}`. Released on the Hugging Face Hub "
               f"({HUB_REPO}, folder `studiogan_official_ckpt/{folder}`): download the run folder "
               "(`model=G_ema-...pth` or `model=G-...pth`) with the run's YAML config (`src/configs/"
               f"{data_short}/`) and run `ganzoo convert RUN_FOLDER OUT`. {score}"),
        tags=("studiogan",) + (("class-conditional",) if conditional else ()) + tags, class_names=class_names,
    )


_C10 = "CIFAR-10 (10 classes)"
_IN = "ImageNet (ILSVRC-2012, 1000 classes)"
register_models(
    _entry("studiogan-dcgan-cifar10", "DCGAN", "deep_conv", "CIFAR-10", "CIFAR10", 32, 10, 49.030, 6.638,
           "CIFAR10_tailored/CIFAR10-DCGAN-train-2022_01_11_20_32_07", ("cifar10",), conditional=False),
    _entry("studiogan-sngan-cifar10", "SNGAN", "resnet", _C10, "CIFAR10", 32, 10, 13.248, 8.677,
           "CIFAR10_tailored", ("cifar10",)),
    _entry("studiogan-sagan-cifar10", "SAGAN", "resnet", _C10, "CIFAR10", 32, 10, 14.009, 8.680,
           "CIFAR10_tailored", ("cifar10",)),
    _entry("studiogan-biggan-cifar10", "BigGAN", "big_resnet", _C10, "CIFAR10", 32, 10, 8.034, 9.746,
           "CIFAR10_tailored", ("cifar10",)),
    _entry("studiogan-contragan-cifar10", "ContraGAN", "big_resnet", _C10, "CIFAR10", 32, 10, 8.065, 9.729,
           "CIFAR10_tailored", ("cifar10",)),
    _entry("studiogan-reacgan-cifar10", "ReACGAN", "big_resnet", _C10, "CIFAR10", 32, 10, 7.792, 9.974,
           "CIFAR10_tailored", ("cifar10",)),
    _entry("studiogan-biggan-tiny-imagenet", "BigGAN", "big_resnet", "Tiny ImageNet (200 classes)",
           "Tiny_ImageNet", 64, 200, 31.920, 11.998, "Tiny_ImageNet_tailored", ("tiny-imagenet",)),
    _entry("studiogan-biggan-imagenet-128", "BigGAN (batch 2048)", "big_resnet", _IN, "ImageNet", 128, 1000, 7.893,
           99.705, "ImageNet_tailored", ("imagenet",)),
    _entry("studiogan-reacgan-imagenet-128", "ReACGAN (batch 2048)", "big_resnet", _IN, "ImageNet", 128, 1000,
           8.206, 96.299, "ImageNet_tailored", ("imagenet",)),
    _entry("studiogan-biggan-afhqv2-256", "BigGAN", "big_resnet", "AFHQv2 (cat, dog, wild)", "AFHQv2", 256, 3,
           None, None, "AFHQv2_tailored", ("afhq",)),
)
