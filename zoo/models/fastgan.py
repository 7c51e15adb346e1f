"""FastGAN (Liu et al., ICLR 2021) and Projected GAN's FastGAN generators (Sauer et al., NeurIPS 2021).

Two codebases, one set of blocks:

- ``fastgan``: ``models.Generator`` of odegeasslbc/FastGAN-pytorch. ``G(z)`` feeds z as is (no
  normalisation) through ``init`` (4x4 transposed conv + BatchNorm + GLU), up-blocks ``feat_8`` ...
  ``feat_1024`` and skip-layer excitation ``se_64`` ... ``se_512``; the image is ``to_big`` of the last
  feature map (``im_size`` 256, 512 or 1024; only 1024 ends in tanh). ``feat_8/32/128/512`` carry noise
  injection.
- ``projected-fastgan``: ``pg_modules.networks_fastgan.Generator`` of autonomousvision/projected-gan,
  the same trunk with another width table, ``normalize_2nd_moment`` on z, a biased ``to_big`` and no tanh,
  in the full (noise in every block) or ``lite`` variant (no noise), optionally class-conditional
  (conditional BatchNorm whose gain/bias come from a class embedding).

Upstream wraps every convolution in ``torch.nn.utils.spectral_norm``; a converted checkpoint holds the
effective weights ``weight_orig / sigma`` (sigma from the stored power-iteration vectors, which is what
upstream computes in eval mode), so the modules here are plain convolutions. Module paths equal the
upstream state-dict names (``feat_8.1.weight`` was ``feat_8.1.weight_orig``).

Noise: neither codebase stores noise; upstream draws ``torch.randn(N, 1, H, W)`` on the CPU default
generator at every noise injection of every call. ``noise_mode="random"`` does exactly that, in upstream's
call order, so ``torch.manual_seed(s)`` right before the call reproduces an upstream call; ``"none"``
(alias ``"const"``: there is no stored constant noise) adds zero noise and is the sampling default
(``default_noise_mode``). Explicit noise tensors can be given with ``noise=[...]``, one per injection call.

Truncation: FastGAN has none upstream; ``truncation_psi`` scales z (ganzoo's z-space truncation, psi=1 is
the upstream call). Projected GAN accepts and ignores it, as upstream does (its z is normalised anyway).
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..base import GanGenerator
from ..registry import ModelEntry, register_architecture, register_models
from .ops import embedding, normalize_2nd_moment

NOISE_MODES = ("random", "none", "const")
#: ``nfc_multi`` of FastGAN-pytorch ``models.py`` (channels = int(mult * ngf)).
FASTGAN_MULT = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5, 512: 0.25, 1024: 0.125}
#: ``nfc_multi`` of projected-gan ``pg_modules/networks_fastgan.py`` (adds the 2 -> 16 entry for ``init``).
PROJECTED_MULT = {2: 16, 4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5, 512: 0.25, 1024: 0.125}


def widths(mult: dict[int, float], ngf: int) -> dict[int, int]:
    return {k: int(v * ngf) for k, v in mult.items()}


def glu(x: torch.Tensor) -> torch.Tensor:
    """Gated linear unit over channels: first half * sigmoid(second half)."""
    if x.shape[1] % 2:
        raise ValueError(f"GLU needs an even channel count, got {x.shape[1]}")
    half = x.shape[1] // 2
    return x[:, :half] * torch.sigmoid(x[:, half:])


class GLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return glu(x)


class Swish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class NoiseSource:
    """Per-call noise: explicit tensors first (``noise=[...]``), else ``noise_mode``; counts the calls."""

    def __init__(self, noise_mode: str, noise: Sequence[torch.Tensor | None] | None = None) -> None:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be random, none or const, got {noise_mode!r}")
        self.mode = noise_mode
        self.explicit = list(noise) if noise is not None else None
        self.calls = 0

    def take(self, x: torch.Tensor) -> torch.Tensor | None:
        i = self.calls
        self.calls += 1
        shape = (x.shape[0], 1, x.shape[2], x.shape[3])
        if self.explicit is not None:
            if i >= len(self.explicit):
                raise ValueError(f"noise has {len(self.explicit)} tensor(s), but the network injects noise more often; "
                                 "pass one per injection (G.num_noise_inputs)")
            n = self.explicit[i]
            if n is not None:
                if n.ndim != 4 or n.shape[1] != 1 or tuple(n.shape[2:]) != shape[2:] or n.shape[0] not in (1, shape[0]):
                    raise ValueError(f"noise[{i}] must have shape [{shape[0]} or 1, 1, {shape[2]}, {shape[3]}], "
                                     f"got {list(n.shape)}")
                return n.to(x.device, x.dtype)
        if self.mode == "random":
            # drawn on the CPU default generator, then moved, as upstream's torch.randn(...).to(device)
            return torch.randn(shape).to(x.device)
        return None

    def finish(self) -> None:
        if self.explicit is not None and len(self.explicit) != self.calls:
            raise ValueError(f"noise has {len(self.explicit)} tensor(s); this network injects noise {self.calls} times")


class NoiseInjection(nn.Module):
    """``x + weight * noise`` with one learned scalar ``weight``."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, src: NoiseSource) -> torch.Tensor:
        noise = src.take(x)
        return x if noise is None else x + self.weight * noise


def _conv(cin: int, cout: int, k: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, 1, k // 2 if k == 3 else 0, bias=bias)


class InitLayer(nn.Module):
    """``init``: z as a 1x1 map -> 4x4 transposed conv (no bias) -> BatchNorm -> GLU."""

    def __init__(self, nz: int, channel: int) -> None:
        super().__init__()
        self.init = nn.Sequential(nn.ConvTranspose2d(nz, channel * 2, 4, 1, 0, bias=False),
                                  nn.BatchNorm2d(channel * 2), GLU())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.init(z.reshape(z.shape[0], -1, 1, 1))


class UpBlock(nn.Sequential):
    """Nearest x2 -> conv3x3 -> BatchNorm -> GLU (FastGAN ``UpBlock``, Projected GAN ``UpBlockSmall``)."""

    num_noise = 0

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), _conv(cin, cout * 2, 3),
                         nn.BatchNorm2d(cout * 2), GLU())

    def forward(self, x: torch.Tensor, src: NoiseSource, e: torch.Tensor | None = None) -> torch.Tensor:
        for m in self:
            x = m(x)
        return x


class UpBlockComp(nn.Sequential):
    """Two conv3x3 -> noise -> BatchNorm -> GLU stages after a nearest x2 (``UpBlockComp`` / ``UpBlockBig``)."""

    num_noise = 2

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), _conv(cin, cout * 2, 3), NoiseInjection(),
                         nn.BatchNorm2d(cout * 2), GLU(), _conv(cout, cout * 2, 3), NoiseInjection(),
                         nn.BatchNorm2d(cout * 2), GLU())

    def forward(self, x: torch.Tensor, src: NoiseSource, e: torch.Tensor | None = None) -> torch.Tensor:
        for m in self:
            x = m(x, src) if isinstance(m, NoiseInjection) else m(x)
        return x


class CCBN(nn.Module):
    """Class-conditional BatchNorm: ``bn(x) * (1 + gain(e)) + bias(e)`` over stored statistics."""

    def __init__(self, channels: int, embed_dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gain = nn.Linear(embed_dim, channels)
        self.bias = nn.Linear(embed_dim, channels)
        self.register_buffer("stored_mean", torch.zeros(channels))
        self.register_buffer("stored_var", torch.ones(channels))

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        out = F.batch_norm(x, self.stored_mean, self.stored_var, None, None, False, 0.0, self.eps)
        n = e.shape[0]
        return out * (1 + self.gain(e)).view(n, -1, 1, 1) + self.bias(e).view(n, -1, 1, 1)


class UpBlockSmallCond(nn.Module):
    num_noise = 0

    def __init__(self, cin: int, cout: int, embed_dim: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = _conv(cin, cout * 2, 3)
        self.bn = CCBN(cout * 2, embed_dim)
        self.act = GLU()

    def forward(self, x: torch.Tensor, src: NoiseSource, e: torch.Tensor | None = None) -> torch.Tensor:
        return self.act(self.bn(self.conv(self.up(x)), e))


class UpBlockBigCond(nn.Module):
    """Upstream uses one ``noise`` module (one weight) for both stages; it still draws noise twice."""

    num_noise = 2

    def __init__(self, cin: int, cout: int, embed_dim: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv1 = _conv(cin, cout * 2, 3)
        self.conv2 = _conv(cout, cout * 2, 3)
        self.bn1 = CCBN(cout * 2, embed_dim)
        self.bn2 = CCBN(cout * 2, embed_dim)
        self.act = GLU()
        self.noise = NoiseInjection()

    def forward(self, x: torch.Tensor, src: NoiseSource, e: torch.Tensor | None = None) -> torch.Tensor:
        x = self.act(self.bn1(self.noise(self.conv1(self.up(x)), src), e))
        return self.act(self.bn2(self.noise(self.conv2(x), src), e))


class SEBlock(nn.Module):
    """Skip-layer excitation: ``big * sigmoid(conv1x1(swish(conv4x4(avgpool4(small)))))``."""

    def __init__(self, ch_small: int, ch_big: int) -> None:
        super().__init__()
        self.main = nn.Sequential(nn.AdaptiveAvgPool2d(4), _conv(ch_small, ch_big, 4), Swish(),
                                  _conv(ch_big, ch_big, 1), nn.Sigmoid())

    def forward(self, small: torch.Tensor, big: torch.Tensor) -> torch.Tensor:
        return big * self.main(small)


def _check_z(G: GanGenerator, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    if z.ndim == 4:
        z = z.flatten(1)
    G.check_inputs(z, c)
    return z


@register_architecture
class FastGANGenerator(GanGenerator):
    """FastGAN-pytorch ``Generator(ngf, nz, nc, im_size)``: ``G(z) -> [N, nc, im_size, im_size]``."""

    architecture = "fastgan"
    z_convention = "torch"  # scripts draw torch.randn(N, nz); seed s -> torch.manual_seed(s) draw
    default_noise_mode = "none"
    SIZES = (256, 512, 1024)

    def __init__(self, ngf: int = 64, nz: int = 256, nc: int = 3, im_size: int = 1024) -> None:
        super().__init__()
        if im_size not in self.SIZES:
            raise ValueError(f"FastGAN im_size must be one of {self.SIZES}, got {im_size}")
        self._kwargs = dict(ngf=ngf, nz=nz, nc=nc, im_size=im_size)
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = nz, 0, 0, 0
        self.img_resolution, self.img_channels, self.im_size = im_size, nc, im_size
        nfc = widths(FASTGAN_MULT, ngf)
        self.nfc = nfc
        self.init = InitLayer(nz, nfc[4])
        self.feat_8 = UpBlockComp(nfc[4], nfc[8])
        self.feat_16 = UpBlock(nfc[8], nfc[16])
        self.feat_32 = UpBlockComp(nfc[16], nfc[32])
        self.feat_64 = UpBlock(nfc[32], nfc[64])
        self.feat_128 = UpBlockComp(nfc[64], nfc[128])
        self.feat_256 = UpBlock(nfc[128], nfc[256])
        self.se_64 = SEBlock(nfc[4], nfc[64])
        self.se_128 = SEBlock(nfc[8], nfc[128])
        self.se_256 = SEBlock(nfc[16], nfc[256])
        self.to_128 = _conv(nfc[128], nc, 1)
        self.to_big = _conv(nfc[im_size], nc, 3)
        if im_size > 256:
            self.feat_512 = UpBlockComp(nfc[256], nfc[512])
            self.se_512 = SEBlock(nfc[32], nfc[512])
        if im_size > 512:
            self.feat_1024 = UpBlock(nfc[512], nfc[1024])

    @property
    def num_noise_inputs(self) -> int:
        return sum(m.num_noise for m in self._blocks())

    def _blocks(self) -> Iterator[nn.Module]:
        for res in (8, 16, 32, 64, 128, 256, 512, 1024):
            if hasattr(self, f"feat_{res}"):
                yield getattr(self, f"feat_{res}")

    def features(self, z: torch.Tensor, src: NoiseSource) -> tuple[torch.Tensor, torch.Tensor]:
        """``(last feature map, feat_128)`` of upstream's forward."""
        feat_4 = self.init(z)
        feat_8 = self.feat_8(feat_4, src)
        feat_16 = self.feat_16(feat_8, src)
        feat_32 = self.feat_32(feat_16, src)
        feat_64 = self.se_64(feat_4, self.feat_64(feat_32, src))
        feat_128 = self.se_128(feat_8, self.feat_128(feat_64, src))
        feat = self.se_256(feat_16, self.feat_256(feat_128, src))
        if self.im_size > 256:
            feat = self.se_512(feat_32, self.feat_512(feat, src))
        if self.im_size > 512:
            feat = self.feat_1024(feat, src)
        return feat, feat_128

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float | torch.Tensor = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "none", *,
                noise: Sequence[torch.Tensor | None] | None = None, return_small: bool = False) -> Any:
        """The big image (upstream's ``forward(z)[0]``); ``return_small=True`` also returns the 128 px one.

        ``noise``: one ``[N or 1, 1, H, W]`` tensor (or None: use ``noise_mode``) per injection, in call order
        ``feat_8`` (2), ``feat_32`` (2), ``feat_128`` (2)[, ``feat_512`` (2)].
        """
        z = self.prepare_z(z, c, truncation_psi)
        src = NoiseSource(noise_mode, noise)
        feat, feat_128 = self.features(z, src)
        src.finish()
        img, small = self.to_big(feat), self.to_128(feat_128)
        if self.im_size == 1024:
            img, small = torch.tanh(img), torch.tanh(small)
        return (img, small) if return_small else img


class DummyMapping(nn.Module):
    """Projected GAN's mapping: ``ws = z.unsqueeze(1)``; class and truncation arguments are ignored."""

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float | torch.Tensor = 1.0,
                truncation_cutoff: int | None = None, truncation_latent: torch.Tensor | None = None) -> torch.Tensor:
        return z.unsqueeze(1)


class ProjectedSynthesis(nn.Module):
    """``FastganSynthesis`` / ``FastganSynthesisCond`` of projected-gan."""

    def __init__(self, ngf: int, z_dim: int, nc: int, img_resolution: int, lite: bool, cond: bool,
                 num_classes: int) -> None:
        super().__init__()
        self.img_resolution, self.z_dim, self.cond = img_resolution, z_dim, cond
        nfc = widths(PROJECTED_MULT, ngf)
        self.init = InitLayer(z_dim, nfc[2])
        if cond:
            block = UpBlockSmallCond if lite else UpBlockBigCond
            make = lambda cin, cout: block(cin, cout, z_dim)  # noqa: E731
        else:
            make = UpBlock if lite else UpBlockComp
        for res in (8, 16, 32, 64, 128, 256):
            setattr(self, f"feat_{res}", make(nfc[res // 2], nfc[res]))
        self.se_64 = SEBlock(nfc[4], nfc[64])
        self.se_128 = SEBlock(nfc[8], nfc[128])
        self.se_256 = SEBlock(nfc[16], nfc[256])
        self.to_big = _conv(nfc[img_resolution], nc, 3, bias=True)
        if img_resolution > 256:
            self.feat_512 = make(nfc[256], nfc[512])
            self.se_512 = SEBlock(nfc[32], nfc[512])
        if img_resolution > 512:
            self.feat_1024 = make(nfc[512], nfc[1024])
        if cond:
            self.embed = embedding(num_classes, z_dim)

    def forward(self, ws: torch.Tensor, c: torch.Tensor | None = None, noise_mode: str = "none", *,
                noise: Sequence[torch.Tensor | None] | None = None, **_: Any) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[2] != self.z_dim:
            raise ValueError(f"ws must have shape [N, 1, {self.z_dim}], got {list(ws.shape)}")
        e = None
        if self.cond:
            if c is None or c.ndim != 2 or c.shape[0] != ws.shape[0]:
                raise ValueError("this model is conditional: pass c, a [N, c_dim] one-hot tensor")
            e = self.embed(c.argmax(1))
        src = NoiseSource(noise_mode, noise)
        x = normalize_2nd_moment(ws[:, 0])
        feat_4 = self.init(x)
        feat_8 = self.feat_8(feat_4, src, e)
        feat_16 = self.feat_16(feat_8, src, e)
        feat_32 = self.feat_32(feat_16, src, e)
        feat_64 = self.se_64(feat_4, self.feat_64(feat_32, src, e))
        feat = self.se_128(feat_8, self.feat_128(feat_64, src, e))
        if self.img_resolution >= 256:
            feat = self.se_256(feat_16, self.feat_256(feat, src, e))
        if self.img_resolution >= 512:
            feat = self.se_512(feat_32, self.feat_512(feat, src, e))
        if self.img_resolution >= 1024:
            feat = self.feat_1024(feat, src, e)
        src.finish()
        return self.to_big(feat)


@register_architecture
class ProjectedFastGANGenerator(GanGenerator):
    """projected-gan ``pg_modules.networks_fastgan.Generator`` (``--cfg fastgan`` / ``fastgan_lite``).

    ``mapping`` / ``synthesis`` exist as upstream (``ws = z.unsqueeze(1)``, ``num_ws = 1``, ``w_dim = z_dim``),
    but the model has no W space beyond z, so the zoo treats it as a z-space generator (``style_based`` False:
    inversion, SeFa and GANSpace work on z). Conditional models look the class up in a 1000-row embedding
    (``c.argmax(1)``), as upstream, whatever ``c_dim``.
    """

    architecture = "projected-fastgan"
    default_noise_mode = "none"
    psi_dtype = None  # upstream ignores truncation_psi: the exported graph has no such input
    SIZES = (128, 256, 512, 1024)

    def __init__(self, z_dim: int = 256, c_dim: int = 0, img_resolution: int = 256, img_channels: int = 3,
                 ngf: int = 128, lite: bool = False, cond: bool = False, num_classes: int = 1000) -> None:
        super().__init__()
        if img_resolution not in self.SIZES:
            raise ValueError(f"Projected GAN FastGAN img_resolution must be one of {self.SIZES}, got {img_resolution}")
        if cond and img_resolution > 256:
            raise ValueError("upstream cannot build a conditional FastGAN above 256 px (FastganSynthesisCond)")
        if cond != (c_dim > 0):
            raise ValueError(f"cond={cond} disagrees with c_dim={c_dim}")
        self._kwargs = dict(z_dim=z_dim, c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels,
                            ngf=ngf, lite=lite, cond=cond, num_classes=num_classes)
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, z_dim, 1
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.mapping = DummyMapping()
        self.synthesis = ProjectedSynthesis(ngf, z_dim, img_channels, img_resolution, lite, cond, num_classes)

    @property
    def num_noise_inputs(self) -> int:
        res = [r for r in (8, 16, 32, 64, 128, 256, 512, 1024) if r <= max(self.img_resolution, 128)]
        return sum(getattr(self.synthesis, f"feat_{r}").num_noise for r in res)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float | torch.Tensor = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "none", *,
                truncation_latent: torch.Tensor | None = None,
                noise: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        """``synthesis(mapping(z, c), c)``; truncation arguments are accepted and ignored, as upstream."""
        z = _check_z(self, z, c)
        ws = self.mapping(z, c)
        return self.synthesis(ws, c, noise_mode=noise_mode, noise=noise)


# --- Published checkpoints -------------------------------------------------------------------------
# Projected GAN: README "We provide the following pretrained models" (s3 .../projected_gan/models/<name>.pkl),
# code licence MIT. FIDs: the paper's reported FID50k for LSUN Church / Bedroom and FFHQ at 256 px (Sauer et
# al., "Projected GANs Converge Faster", NeurIPS 2021); the others are left unset rather than guessed. The
# resolution is the paper's 256 px setting; the pickles' own z_dim / ngf / cfg / resolution are read at
# conversion (train.py defaults z_dim 256, ngf 128).
_PG = "https://s3.eu-central-1.amazonaws.com/avg-projects/projected_gan/models"
_PG_PAPER = "Projected GANs Converge Faster (Sauer et al., NeurIPS 2021)"
_PG_NOTE = ("Code: MIT (autonomousvision/projected-gan). The weights carry no separate licence; each was trained "
            "on a third-party dataset whose terms apply to generated images.")


def _pg(name: str, dataset: str, res: int, fid: float | None, tags: tuple[str, ...] = ()) -> ModelEntry:
    return ModelEntry(name=f"projected-gan-{name.replace('_', '-')}", family="projected-gan", architecture="projected-fastgan",
                      source_format="projected-gan-pickle", url=f"{_PG}/{name}.pkl", dataset=dataset,
                      resolution=res, license="mit", paper=_PG_PAPER, fid=fid, source_file=f"{name}.pkl",
                      license_note=_PG_NOTE, tags=("few-shot",) + tags,
                      notes="FastGAN generator of Projected GAN; truncation is ignored, as upstream.")


register_models(
    _pg("art_painting", "Art Painting (FastGAN few-shot set, 1000 images)", 256, None, ("art",)),
    _pg("church", "LSUN Church", 256, 1.59),
    _pg("bedroom", "LSUN Bedroom", 256, 1.52),
    _pg("cityscapes", "Cityscapes", 256, None),
    _pg("clevr", "CLEVR", 256, None),
    _pg("ffhq", "FFHQ", 256, 3.39, ("faces",)),
    _pg("flowers", "Oxford 102 Flowers", 256, None),
    _pg("landscape", "Landscape (Kaggle landscape pictures)", 256, None),
    _pg("pokemon", "Pokemon (FastGAN few-shot set, 833 images)", 256, None),
)

# FastGAN: the authors share their trained checkpoints (with each model's own models.py) in one Google
# Drive folder (FastGAN-pytorch README, "Pre-trained models"); licence GPL-3.0 (repository LICENSE), "for
# research use only" (README). FIDs as reported in the paper (Liu et al., "Towards Faster and Stabilized GAN
# Training for High-fidelity Few-shot Image Synthesis", ICLR 2021): 100-shot Obama / Grumpy cat / Panda and
# AnimalFace Dog at 256 px, Pokemon at 1024 px; unset where no figure could be sourced.
_FG_URL = "https://drive.google.com/drive/folders/1nCpr84nKkrs9-aVMET5h8gqFbUYJRPLR"
_FG_PAPER = ("Towards Faster and Stabilized GAN Training for High-fidelity Few-shot Image Synthesis "
             "(Liu et al., ICLR 2021)")
_FG_NOTE = ("Code and weights: GPL-3.0 (odegeasslbc/FastGAN-pytorch); the README says the code is for research use "
            "only. Datasets are third-party; their terms apply to generated images.")


def _fg(name: str, dataset: str, res: int, fid: float | None, tags: tuple[str, ...] = ()) -> ModelEntry:
    return ModelEntry(name=f"fastgan-{name}", family="fastgan", architecture="fastgan", source_format="fastgan",
                      url=_FG_URL, dataset=dataset, resolution=res, license="gpl-3.0", paper=_FG_PAPER, fid=fid,
                      source_file="all_50000.pth", license_note=_FG_NOTE,
                      tags=("few-shot",) + tags,
                      notes=("Shared as a Google Drive folder (no direct file URL): download the dataset's "
                             "checkpoint and convert it with `ganzoo convert`. Each model was trained with its own "
                             "models.py; variants whose layers differ from the released Generator are refused by "
                             "name."))


register_models(
    _fg("pokemon", "Pokemon (few-shot, 833 images)", 1024, 56.46),
    _fg("art-paintings", "Art paintings (few-shot, 1000 images)", 1024, None, ("art",)),
    _fg("animal-face-dog", "AnimalFace Dog (few-shot, 389 images)", 256, 50.66),
    _fg("animal-face-cat", "AnimalFace Cat (few-shot, 160 images)", 256, None),
    _fg("obama", "100-shot Obama", 256, 41.05, ("faces",)),
    _fg("grumpy-cat", "100-shot Grumpy cat", 256, 26.65),
    _fg("panda", "100-shot Panda", 256, 10.03),
)
