"""Image similarity for inversion: PSNR, (multi-scale) SSIM and LPIPS-VGG when its weights are on disk.

LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric") is
looked up without touching the network, in this order:

1. the ``lpips`` package, when it imports and torchvision's VGG16 ImageNet weights are already in the
   torch hub cache (``lpips`` would otherwise try to download them);
2. a converted file ``<ganzoo cache>/perceptual/lpips_vgg16.safetensors`` (or ``GANZOO_LPIPS_WEIGHTS``)
   holding torchvision's ``features.N.*`` VGG16 tensors plus the LPIPS ``linK.model.1.weight`` heads;
   :func:`convert_lpips_weights` writes it from the two upstream ``.pth`` files.

Without either, :func:`get_lpips` returns ``None`` and callers fall back to a pixel + SSIM loss.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from zoo.fileio import atomic_write

LPIPS_FILE = "lpips_vgg16.safetensors"
# torchvision ``vgg16`` ImageNet weights file name (torchvision.models.VGG16_Weights.IMAGENET1K_V1).
TORCHVISION_VGG16 = "vgg16-397923af.pth"
# VGG16 ``features`` indices of the 13 convolutions, and the slice ends LPIPS taps (relu1_2 ... relu5_3);
# source: torchvision vgg16 cfg "D" and the lpips package's ``pretrained_networks.vgg16`` slicing.
_VGG_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
_VGG_CHANNELS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
_TAP_AFTER = (3, 8, 15, 22, 29)  # index of the ReLU whose output each LPIPS layer reads
_TAP_CHANNELS = (64, 128, 256, 512, 512)
# LPIPS input scaling (the package's ScalingLayer constants, for inputs in [-1, 1]).
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)

PerceptualFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# --- pixel metrics ---------------------------------------------------------------------------------

def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of images in [-1, 1] (peak = the full range)."""
    mse = ((a.float() - b.float()) / 2).square().flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-12))


def _gaussian(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-x.square() / (2 * sigma ** 2))
    return g / g.sum()


def _ssim_parts(x: torch.Tensor, y: torch.Tensor, win: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure term per image; x, y in [0, 1]; Gaussian window, 'valid'."""
    c = x.shape[1]
    g = _gaussian(win, 1.5 * win / 11, x.device)
    kh = g.view(1, 1, 1, win).repeat(c, 1, 1, 1)
    kv = g.view(1, 1, win, 1).repeat(c, 1, 1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, kh, groups=c), kv, groups=c)

    c1, c2 = 0.01 ** 2, 0.03 ** 2  # Wang et al. 2004 constants for a dynamic range of 1
    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return (lum * cs).flatten(1).mean(1), cs.flatten(1).mean(1)


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (11x11 Gaussian window, sigma 1.5; smaller window for tiny images) of [-1, 1] images."""
    win = min(11, a.shape[-1], a.shape[-2])
    return _ssim_parts((a.float() + 1) / 2, (b.float() + 1) / 2, win)[0]


def ms_ssim(a: torch.Tensor, b: torch.Tensor, max_scales: int = 5) -> torch.Tensor:
    """Multi-scale SSIM (Wang et al. 2003 weights) over as many 2x scales as the image size allows."""
    weights = torch.tensor([0.0448, 0.2856, 0.3001, 0.2363, 0.1333], device=a.device)
    x, y = (a.float() + 1) / 2, (b.float() + 1) / 2
    scales = max(1, min(max_scales, int(math.log2(min(x.shape[-2:]) / 8)) + 1))
    w = weights[:scales] / weights[:scales].sum()
    vals = []
    for i in range(scales):
        win = min(11, x.shape[-1], x.shape[-2])
        full, cs = _ssim_parts(x, y, win)
        vals.append(full if i == scales - 1 else cs)
        if i < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    stacked = torch.stack(vals, dim=1).clamp_min(1e-6)
    return torch.prod(stacked ** w, dim=1)


# --- LPIPS ----------------------------------------------------------------------------------------

class LpipsVGG(nn.Module):
    """LPIPS distance with a VGG16 trunk (our own module; weights come from a converted file)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_c = 3
        conv_i = 0
        for idx in range(30):
            if idx in _VGG_CONVS:
                layers.append(nn.Conv2d(in_c, _VGG_CHANNELS[conv_i], 3, padding=1))
                in_c = _VGG_CHANNELS[conv_i]
                conv_i += 1
            elif idx in (4, 9, 16, 23):
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers.append(nn.ReLU(inplace=False))
        self.features = nn.Sequential(*layers)
        for k, c in enumerate(_TAP_CHANNELS):
            head = nn.Sequential(nn.Dropout(0.0), nn.Conv2d(c, 1, 1, bias=False))
            setattr(self, f"lin{k}", nn.Module())
            getattr(self, f"lin{k}").model = head
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        x = (torch.cat([a, b]).float() - self.shift) / self.scale
        n = a.shape[0]
        total = torch.zeros(n, device=a.device)
        k = 0
        for idx, layer in enumerate(self.features):
            x = layer(x)
            if idx in _TAP_AFTER:
                f = x / (x.square().sum(1, keepdim=True).sqrt() + 1e-10)
                d = (f[:n] - f[n:]).square()
                total = total + getattr(self, f"lin{k}").model(d).mean((1, 2, 3))
                k += 1
                if k == len(_TAP_AFTER):
                    break
        return total


def lpips_weights_path() -> Path:
    env = os.environ.get("GANZOO_LPIPS_WEIGHTS")
    if env:
        return Path(env).expanduser()
    from zoo.loading import cache_dir

    return cache_dir() / "perceptual" / LPIPS_FILE


def convert_lpips_weights(vgg_pth: str | os.PathLike[str], lpips_lin_pth: str | os.PathLike[str],
                          out: str | os.PathLike[str] | None = None) -> Path:
    """torchvision ``vgg16-397923af.pth`` + lpips ``weights/v0.1/vgg.pth`` -> one safetensors file.

    Both inputs are plain state dicts, read with ``torch.load(weights_only=True)``.
    """
    from safetensors.torch import save_file

    vgg = torch.load(vgg_pth, map_location="cpu", weights_only=True)
    lin = torch.load(lpips_lin_pth, map_location="cpu", weights_only=True)
    model = LpipsVGG()
    wanted = {k for k in model.state_dict() if k not in ("shift", "scale")}
    tensors = {k: v for k, v in vgg.items() if k in wanted}
    tensors.update({k: v for k, v in lin.items() if k in wanted})
    missing = sorted(wanted - tensors.keys())
    if missing:
        raise ValueError(f"LPIPS conversion: the inputs lack {missing[0]} (and {len(missing) - 1} more); pass "
                         f"torchvision's {TORCHVISION_VGG16} and lpips' v0.1 vgg.pth")
    path = Path(out) if out is not None else lpips_weights_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        save_file({k: v.float().contiguous() for k, v in tensors.items()}, str(tmp))
    return path


def _from_lpips_package(device: torch.device) -> PerceptualFn | None:
    try:
        hub = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_VGG16
        if not hub.is_file():
            return None
        import lpips  # type: ignore[import-not-found]

        net = lpips.LPIPS(net="vgg", verbose=False).to(device).eval().requires_grad_(False)
    except Exception:  # a broken torchvision/lpips install must not stop inversion
        return None
    return lambda a, b: net(a, b, normalize=False).flatten()


def _from_converted(device: torch.device) -> PerceptualFn | None:
    path = lpips_weights_path()
    if not path.is_file():
        return None
    from safetensors.torch import load_file

    net = LpipsVGG()
    tensors = load_file(str(path))
    tensors["shift"], tensors["scale"] = net.shift, net.scale
    try:
        net.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path} is not a converted LPIPS-VGG16 file ({str(e).splitlines()[0]}); delete it or "
                         "re-create it with sdk.latent.perceptual.convert_lpips_weights") from None
    net = net.to(device).eval().requires_grad_(False)
    return lambda a, b: net(a, b)


_CACHE: dict[tuple[str, str], tuple[PerceptualFn | None, str]] = {}


def get_lpips(device: torch.device | str = "cpu") -> tuple[PerceptualFn | None, str]:
    """``(fn, source)``: an LPIPS-VGG distance ``fn(a, b) -> [N]`` on [-1, 1] images, or ``(None, reason)``."""
    device = torch.device(device)
    key = (str(device), str(lpips_weights_path()))
    if key not in _CACHE:
        fn = _from_lpips_package(device)
        if fn is not None:
            _CACHE[key] = (fn, "lpips package (VGG)")
        else:
            fn = _from_converted(device)
            _CACHE[key] = (fn, f"converted LPIPS-VGG16 ({lpips_weights_path()})") if fn is not None else \
                (None, f"no LPIPS-VGG weights found (lpips package with cached torchvision VGG16, or "
                       f"{lpips_weights_path()})")
    return _CACHE[key]


def downscale_for_vgg(img: torch.Tensor, size: int = 256) -> torch.Tensor:
    """Area-downsample images larger than ``size`` (LPIPS/VGG is run at <= 256 px, as in the NVlabs projector)."""
    if img.shape[-1] > size:
        img = F.interpolate(img, size=(size, size), mode="area")
    if img.shape[1] == 1:
        img = img.repeat(1, 3, 1, 1)
    return img
