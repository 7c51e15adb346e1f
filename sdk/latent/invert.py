"""Real-image inversion: find the latent whose generated image matches a given picture.

Style-based generators (``G.style_based``: ``mapping`` / ``synthesis`` / ``w_avg``) are inverted in W
(one w for all layers) or W+ (one w per layer), together with their per-layer noise maps, in the spirit of
the NVlabs StyleGAN2 projector (Karras et al. 2020, ``projector.py`` of NVlabs/stylegan2-ada-pytorch):
start at the mean w; Adam with a warm-up + cosine ramp-down learning rate over the latent and the noise
maps, a multi-scale autocorrelation penalty on the maps and re-normalisation after every step. Every other
generator is inverted in z through ``G(z, c)`` from several random starts, keeping the best.

The default schedule differs from the published projector settings (1000 steps, Adam at lr 0.1 on raw w,
random initial noise maps, noise weight 1e5: :data:`NVLABS_SCHEDULE`) to reach >= 30 dB PSNR in <= 100 steps
on images the generator can produce. The latent is optimised in units of the per-dimension spread of W,
first with L-BFGS (strong Wolfe line search) for 80 % of the steps: the pixel loss is smooth but badly
conditioned in W, and quasi-Newton steps gain far more per evaluation than Adam. The remaining 20 % are the
projector-style Adam phase (latent at a tenth of the rate, noise maps from the generator's own constant
maps, warm-up + cosine ramp-down, autocorrelation penalty, re-normalisation). Pixel errors are one-sided
where the target is saturated (a stored 255 only says "at least 1"), and the MS-SSIM / LPIPS terms see the
image the same way, so the true latent is a zero-loss point. ``benchmarks/bench_invert.py`` compares both
schedules.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm.auto import tqdm

from zoo.errors import ZooError

from ..images import to_pil
from .latents import generator_sha256, model_id, noise_buffers, use_noise
from .perceptual import downscale_for_vgg, get_lpips, ms_ssim, psnr, ssim

Space = Literal["w", "w+", "z"]
LossName = Literal["auto", "lpips", "pixel"]


class ImageInputError(ZooError, ValueError):
    """An input image cannot be read or converted."""


class PerceptualFallbackWarning(UserWarning):
    """LPIPS-VGG weights are not available, so inversion runs with the pixel + SSIM loss."""


# --- schedules ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Schedule:
    """Optimisation settings for style-based inversion (fractions are of the total step count)."""

    optimizer: str = "lbfgs"        # "lbfgs": L-BFGS phase, then an Adam refinement; "adam": Adam throughout
    refine: float = 0.2             # fraction of steps for the Adam phase (latent + noise maps) after L-BFGS
    refine_latent_lr: float = 0.1   # latent learning rate multiplier in that phase
    lr: float = 0.1                 # peak Adam learning rate for the latent
    rampup: float = 0.05            # linear warm-up length
    rampdown: float = 0.25          # cosine ramp-down length (at the end)
    latent_units: str = "w_std"     # "w_std": optimise (w - w_avg) / per-dim std; "raw": optimise w itself
    w_noise: float = 0.0            # initial Gaussian jitter added to w, times the scalar W spread ...
    w_noise_ramp: float = 0.75      # ... fading out quadratically over this fraction
    noise_init: str = "const"       # "const": the generator's noise maps; "random": fresh N(0, 1)
    noise_lr_mult: float = 0.1      # noise-map learning rate relative to ``lr``
    noise_reg: float = 1e5          # weight of the autocorrelation penalty on the noise maps
    pixel_weight: float = 1.0       # MSE weight (pixel and lpips losses)
    ssim_weight: float = 0.01       # (1 - MS-SSIM) weight (pixel loss)
    lpips_weight: float = 1.0       # LPIPS weight (lpips loss)
    pyramid: int = 0                # extra 2x-downsampled MSE terms
    w_avg_samples: int = 10000      # mapping samples used for w_avg / the W spread
    betas: tuple[float, float] = (0.9, 0.999)


#: ganzoo's default schedule (tuned on in-range StyleGAN2 targets for <= 100 steps).
DEFAULT_SCHEDULE = Schedule()

#: The published NVlabs projector defaults: 1000 steps, lr 0.1 on raw w, ramp-up 0.05 / ramp-down 0.25,
#: initial w noise 0.05 x the scalar W spread fading over 0.75, noise maps re-drawn at random, noise weight
#: 1e5, w_avg from 10000 samples, LPIPS only (source: NVlabs/stylegan2-ada-pytorch projector.py arguments).
NVLABS_SCHEDULE = Schedule(optimizer="adam", lr=0.1, rampup=0.05, rampdown=0.25, latent_units="raw", w_noise=0.05,
                           w_noise_ramp=0.75,
                           noise_init="random", noise_lr_mult=1.0, noise_reg=1e5, pixel_weight=0.0, ssim_weight=0.0,
                           lpips_weight=1.0, w_avg_samples=10000)
NVLABS_STEPS = 1000


def lr_at(t: float, sched: Schedule) -> float:
    """Learning-rate multiplier at progress ``t`` in [0, 1]: linear warm-up times a cosine ramp-down."""
    down = min(1.0, (1.0 - t) / sched.rampdown) if sched.rampdown > 0 else 1.0
    down = 0.5 - 0.5 * math.cos(down * math.pi)
    up = min(1.0, t / sched.rampup) if sched.rampup > 0 else 1.0
    return down * up


# --- image input ----------------------------------------------------------------------------------

def open_image(image: Any) -> Image.Image:
    """A path / PIL image / array as a PIL image; :class:`ImageInputError` (one line) when unreadable."""
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise ImageInputError(f"cannot read image {path}: no such file")
        try:
            with Image.open(path) as im:
                im.load()
                return im.copy() if im.mode != "P" else im.convert("RGBA")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            kind = "not an image format Pillow can read" if isinstance(e, UnidentifiedImageError) else \
                f"corrupt or truncated ({type(e).__name__})"
            raise ImageInputError(f"cannot read image {path}: {kind}; pass a PNG, JPEG or WebP file") from None
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.dtype != np.uint8:
            arr = np.clip(arr, 0, 255).astype(np.uint8) if arr.max() > 1.0 else (np.clip(arr, 0, 1) * 255).round()\
                .astype(np.uint8)
        try:
            return Image.fromarray(arr)
        except (TypeError, ValueError) as e:
            raise ImageInputError(f"cannot make an image from an array of shape {list(image.shape)} ({e})") from None
    raise ImageInputError(f"cannot use a {type(image).__name__} as an image; pass a file path, PIL image, "
                          "numpy array or [C, H, W] tensor")


def _to_mode(im: Image.Image, channels: int) -> Image.Image:
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # high-bit-depth grey: rescale instead of clipping
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        peak = 65535.0 if im.mode.startswith("I;16") or hi > 255 else 255.0
        if im.mode == "F" and hi <= 1.0 and lo >= 0.0:
            peak = 1.0
        im = Image.fromarray(np.clip(arr / peak * 255.0, 0, 255).round().astype(np.uint8), mode="L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))  # transparent areas become white
        im = Image.alpha_composite(background, im)
    if channels == 1:
        return im.convert("L")
    if channels == 3:
        return im.convert("RGB")
    if channels == 4:
        return im.convert("RGBA")
    raise ImageInputError(f"cannot convert images for a generator with {channels} channels")


def prepare_image(image: Any, resolution: int, channels: int = 3, fit: str = "crop") -> torch.Tensor:
    """Any image -> ``[1, channels, resolution, resolution]`` float in [-1, 1].

    Files, PIL images and uint8/float arrays are converted to RGB or grey (alpha composited on white),
    made square by centre-cropping (``fit="crop"``) or padding with the edge colour mean (``fit="pad"``),
    and resized with a Lanczos filter. Tensors are taken as generator-convention images in [-1, 1]
    (``[C, H, W]`` or ``[1, C, H, W]``) and only resized.
    """
    if fit not in ("crop", "pad"):
        raise ValueError(f"fit must be 'crop' or 'pad', got {fit!r}")
    if isinstance(image, torch.Tensor):
        t = image.detach().to(torch.float32)
        if t.ndim == 3:
            t = t.unsqueeze(0)
        if t.ndim != 4 or t.shape[0] != 1:
            raise ImageInputError(f"image tensors must be [C, H, W] or [1, C, H, W], got {list(image.shape)}")
        if t.shape[1] != channels:
            if t.shape[1] == 3 and channels == 1:
                t = (t * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
            elif t.shape[1] == 1 and channels == 3:
                t = t.repeat(1, 3, 1, 1)
            else:
                raise ImageInputError(f"image tensor has {t.shape[1]} channels; the generator makes {channels}")
        h, w = t.shape[-2:]
        if h != w:
            s = min(h, w)
            t = t[..., (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        if t.shape[-1] != resolution:
            mode = "area" if t.shape[-1] > resolution else "bicubic"
            t = F.interpolate(t, size=(resolution, resolution), mode=mode)
        return t.clamp(-1, 1)
    im = _to_mode(open_image(image), channels)
    if im.width == 0 or im.height == 0:
        raise ImageInputError("the image is empty (zero width or height)")
    if im.width != im.height:
        if fit == "crop":
            im = ImageOps.fit(im, (min(im.size),) * 2, method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
        else:
            side = max(im.size)
            arr = np.asarray(im)
            edge = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]]).reshape(-1, *arr.shape[2:])
            fill = tuple(int(v) for v in np.atleast_1d(edge.mean(0).round()))
            canvas = Image.new(im.mode, (side, side), fill if len(fill) > 1 else fill[0])
            canvas.paste(im, ((side - im.width) // 2, (side - im.height) // 2))
            im = canvas
    if im.size != (resolution, resolution):
        im = im.resize((resolution, resolution), Image.Resampling.LANCZOS)
    arr = np.asarray(im, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    # uint8 v holds generator values in [(v - 128) / 127.5, (v - 127) / 127.5) (``sdk.images.to_uint8``
    # truncates), so map it to the middle of that interval.
    return ((torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0) - 127.5) / 127.5).clamp(-1, 1)


# --- result ---------------------------------------------------------------------------------------

@dataclass
class Inversion:
    """The result of :func:`invert`.

    ``latent`` is ``[1, w_dim]`` (w), ``[1, num_ws, w_dim]`` (w+) or ``[1, z_dim]`` (z). Style-based
    reconstructions use the optimised ``noise`` maps: render them with ``sdk.latent.latents.use_noise(G, noise)``.
    """

    latent: torch.Tensor
    space: str
    reconstruction: torch.Tensor
    image: Image.Image
    target: torch.Tensor
    metrics: dict[str, float]
    loss: str
    weights_sha256: str
    model: str
    steps: int
    noise: dict[str, torch.Tensor] = field(default_factory=dict)
    c: torch.Tensor | None = None
    history: list[float] = field(default_factory=list)
    loss_detail: str = ""
    #: "optimize", "encoder" or "encoder+optimize"; ``encoder`` names the encoder that gave the start.
    method: str = "optimize"
    encoder: str = ""

    @property
    def ws(self) -> torch.Tensor:
        """The latent as ``[1, num_ws, w_dim]`` (style-based spaces only)."""
        if self.space == "z":
            raise ValueError("a z-space inversion has no ws; invert with space='w' or 'w+'")
        return self.latent if self.latent.ndim == 3 else self.latent.unsqueeze(1)

    def save(self, path: str | os.PathLike[str], G: Any) -> Path:
        """Write the latent (and noise maps / c) with its generator identity, see :func:`sdk.save_latent`."""
        from .latents import save_latent

        return save_latent(path, self.latent, space=self.space, G=G, noise=self.noise or None, c=self.c,
                           steps=str(self.steps), loss=self.loss, metrics=self.metrics)


# --- losses ---------------------------------------------------------------------------------------

_NOTICE_SHOWN = False


def _notice_fallback(reason: str) -> None:
    global _NOTICE_SHOWN
    if _NOTICE_SHOWN:
        return
    _NOTICE_SHOWN = True
    warnings.warn(f"ganzoo invert: {reason}; using the pixel + MS-SSIM loss instead of LPIPS "
                  "(see sdk.latent.perceptual for how to add the weights)", PerceptualFallbackWarning, stacklevel=3)


def resolve_loss(loss: str, device: torch.device) -> tuple[str, Callable | None, str]:
    """``(name, lpips_fn, detail)`` for the requested loss; warns once per process on fallback."""
    if loss not in ("auto", "lpips", "pixel"):
        raise ValueError(f"unknown loss {loss!r}: use auto, lpips or pixel")
    if loss == "pixel":
        return "pixel", None, "MSE + MS-SSIM"
    fn, detail = get_lpips(device)
    if fn is not None:
        return "lpips", fn, detail
    if loss == "lpips":
        raise ValueError(f"loss 'lpips' requested but {detail}; use --loss pixel or add the weights")
    _notice_fallback(detail)
    return "pixel", None, f"MSE + MS-SSIM ({detail})"


def _image_loss(img: torch.Tensor, target: torch.Tensor, sched: Schedule, lpips_fn: Callable | None,
                target_vgg: torch.Tensor | None) -> torch.Tensor:
    """Per-sample loss ``[N]``."""
    err = pixel_error(img, target)
    # The structural terms see the image as the target would store it: values beyond a saturated target
    # pixel count as equal to it. Comparing the raw image there would penalise the generator's own output
    # (stored clipped) and pull the optimum away from the true latent.
    seen = target + err
    loss = sched.pixel_weight * err.square().flatten(1).mean(1)
    for _ in range(sched.pyramid):  # coarser scales weigh low frequencies more: a smoother landscape early on
        err = F.avg_pool2d(err, 2)
        loss = loss + sched.pixel_weight * err.square().flatten(1).mean(1)
    if lpips_fn is not None:
        loss = loss + sched.lpips_weight * lpips_fn(downscale_for_vgg(seen),
                                                    target_vgg.expand(img.shape[0], -1, -1, -1))
    elif sched.ssim_weight > 0:
        loss = loss + sched.ssim_weight * (1 - ms_ssim(seen, target.expand_as(img)))
    return loss


SATURATED = 0.99


def pixel_error(img: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``img - target``, one-sided where the target is saturated (a pixel stored as 255 only says the
    generator's value was >= 1, so overshooting it is no error); keeps gradients that a clamp would kill."""
    diff = img - target
    diff = torch.where(target >= SATURATED, diff.clamp(max=0), diff)
    return torch.where(target <= -SATURATED, diff.clamp(min=0), diff)


def noise_regularisation(noises: list[torch.Tensor]) -> torch.Tensor:
    """Sum over maps and 2x scales (down to 8x8) of squared 1-pixel autocorrelations along x and y."""
    reg = torch.zeros((), device=noises[0].device) if noises else torch.zeros(())
    for n in noises:
        v = n.view(1, 1, *n.shape[-2:])
        while True:
            reg = reg + (v * torch.roll(v, shifts=1, dims=3)).mean().square()
            reg = reg + (v * torch.roll(v, shifts=1, dims=2)).mean().square()
            if v.shape[-1] <= 8:
                break
            v = F.avg_pool2d(v, 2)
    return reg


# --- helpers --------------------------------------------------------------------------------------

_W_STATS: dict[tuple[str, str, int, int], tuple[torch.Tensor, torch.Tensor, float]] = {}


def w_statistics(G: Any, c: torch.Tensor | None, samples: int = 10000, seed: int = 123
                 ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``(w_avg [w_dim], per-dim std [w_dim], scalar spread)`` of ``G.mapping`` over ``samples`` random z.

    The scalar spread is ``sqrt(E ||w - w_avg||^2)`` (the projector's ``w_std``). Cached per generator.
    """
    device = _device_of(G)
    key = (generator_sha256(G), "none" if c is None else ",".join(f"{v:.4g}" for v in c.flatten().tolist()),
           samples, seed)
    if key not in _W_STATS:
        gen = torch.Generator().manual_seed(seed)
        ws = []
        with torch.no_grad():
            for i in range(0, samples, 2048):
                n = min(2048, samples - i)
                z = torch.randn(n, G.z_dim, generator=gen).to(device)
                cc = None if c is None else c.expand(n, -1)
                ws.append(G.mapping(z, cc)[:, 0].to(torch.float64))
        w = torch.cat(ws)
        avg = w.mean(0)
        std = w.std(0).clamp_min(1e-8)
        spread = float((w - avg).square().sum(1).mean().sqrt())
        _W_STATS[key] = (avg.float(), std.float(), spread)
    avg, std, spread = _W_STATS[key]
    return avg.to(device), std.to(device), spread


def _device_of(G: Any) -> torch.device:
    try:
        return next(G.parameters()).device
    except StopIteration:
        return torch.device("cpu")


class _Frozen:
    """Eval mode and no parameter gradients for the duration of the inversion, restored afterwards."""

    def __init__(self, G: torch.nn.Module) -> None:
        self.G = G

    def __enter__(self) -> None:
        self.training = self.G.training
        self.flags = [p.requires_grad for p in self.G.parameters()]
        self.G.eval().requires_grad_(False)

    def __exit__(self, *exc: Any) -> None:
        self.G.train(self.training)
        for p, f in zip(self.G.parameters(), self.flags):
            p.requires_grad_(f)


def _c_for(G: Any, class_idx: int | None, device: torch.device) -> torch.Tensor | None:
    if G.c_dim == 0:
        if class_idx is not None:
            raise ValueError("this model is unconditional: drop the class argument")
        return None
    if class_idx is None:
        raise ValueError(f"this model is conditional ({G.c_dim} classes): pass class_idx 0..{G.c_dim - 1} "
                         "(--class) for the image's class")
    return G.make_c(int(class_idx), 1, device=device)


# --- the optimisation -----------------------------------------------------------------------------

Method = Literal["optimize", "encoder", "encoder+optimize"]
METHODS = ("optimize", "encoder", "encoder+optimize")


def encoder_for(G: Any) -> str | None:
    """The registry name of the encoder registered for ``G`` (by its model name), if any."""
    from zoo.models.encoders import DEFAULT_ENCODER

    return DEFAULT_ENCODER.get(str((getattr(G, "model_info", None) or {}).get("model_name", "")))


def resolve_encoder(G: Any, encoder: Any) -> Any:
    """``encoder`` (a loaded encoder, a registry name or a folder/file) loaded and checked against ``G``."""
    if isinstance(encoder, (str, os.PathLike)):
        import zoo

        encoder = zoo.load(encoder, device=_device_of(G), quiet=True)
    if not getattr(encoder, "is_encoder", False):
        raise ImageInputError(f"{type(encoder).__name__} is not an image encoder (pSp / e4e / ReStyle)")
    gen = encoder.generator
    if (gen.w_dim, gen.num_ws) != (G.w_dim, G.num_ws):
        raise ImageInputError(f"the encoder's generator has W+ [{gen.num_ws}, {gen.w_dim}] but the model has "
                              f"[{G.num_ws}, {G.w_dim}]: use the encoder made for this model (or its .generator)")
    return encoder


def _default_method(G: Any, encoder: Any) -> tuple[str, Any]:
    if encoder is not None:
        return "encoder+optimize", encoder
    name = encoder_for(G)
    if name is None or not getattr(G, "style_based", False):
        return "optimize", None
    from zoo.loading import load_embedded_or_cached
    from zoo.registry import get_entry

    if load_embedded_or_cached(get_entry(name)) is None:  # registered but not on this machine: no surprise download
        return "optimize", None
    return "encoder+optimize", name


def encoder_latent(encoder: Any, image: Any, fit: str = "crop", n_iters: int | None = None) -> torch.Tensor:
    """``encoder.encode`` of ``image`` (any size; resized to the encoder's input size). [1, num_ws, w_dim]."""
    h, w = encoder.input_size
    if h == w:
        x = prepare_image(image, w, 3, fit=fit)
    else:  # the car encoders take 4:3 images: resize, do not crop
        arr = np.asarray(open_image(image).convert("RGB").resize((w, h), Image.Resampling.LANCZOS), dtype=np.float32)
        x = ((torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0) - 127.5) / 127.5).clamp(-1, 1)
    x = x.to(encoder.latent_avg.device)
    with torch.no_grad():
        return encoder.encode(x, n_iters=n_iters)


def invert(G: Any, image: Any, *, method: Method | None = None, encoder: Any = None, n_iters: int | None = None,
           space: Space | None = None, steps: int = 100, loss: LossName = "auto",
           noise_reg: float | None = None, seed: int = 0, callback: Callable[[int, int, float], Any] | None = None,
           quiet: bool = False, class_idx: int | None = None, optimize_noise: bool = True,
           optimize_c: bool = False, starts: int | None = None, fit: str = "crop",
           schedule: Schedule | None = None, init: torch.Tensor | None = None) -> Inversion:
    """Invert ``image`` into ``G``'s latent space and return an :class:`Inversion`.

    ``method``: ``"optimize"`` (below), ``"encoder"`` (one forward pass of a pSp / e4e / ReStyle ``encoder``:
    a loaded encoder, a registry name or a folder; ``n_iters`` ReStyle steps) or ``"encoder+optimize"`` (the
    encoder's W+ latent starts the optimisation). Default: ``"encoder+optimize"`` when ``encoder`` is given or
    an encoder registered for ``G`` is on this machine, else ``"optimize"``.
    """
    from ..backends.allocator import configure_allocator

    configure_allocator()  # freed activations reused, not page-faulted in again every step
    if method is None:
        method, encoder = _default_method(G, encoder)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use {', '.join(METHODS)}")
    if method == "optimize":
        return _optimize(G, image, space=space, steps=steps, loss=loss, noise_reg=noise_reg, seed=seed,
                         callback=callback, quiet=quiet, class_idx=class_idx, optimize_noise=optimize_noise,
                         optimize_c=optimize_c, starts=starts, fit=fit, schedule=schedule, init=init)
    if encoder is None:
        name = encoder_for(G)
        if name is None:
            raise ImageInputError(f"method {method!r} needs an encoder: pass encoder=NAME|FOLDER (no encoder is "
                                  f"registered for {model_id(G) or type(G).__name__})")
        encoder = name
    if init is not None:
        raise ValueError("init and an encoder both give the start; pass one of them")
    if space not in (None, "w+"):
        raise ValueError(f"encoders give W+ latents; space={space!r} is not available with method {method!r}")
    enc = resolve_encoder(G, encoder)
    enc_name = model_id(enc)
    ws = encoder_latent(enc, image, fit=fit, n_iters=n_iters).to(_device_of(G))
    if method == "encoder+optimize":
        inv = _optimize(G, image, space="w+", steps=steps, loss=loss, noise_reg=noise_reg, seed=seed,
                        callback=callback, quiet=quiet, class_idx=class_idx, optimize_noise=optimize_noise,
                        fit=fit, schedule=schedule, init=ws)
        return replace(inv, method=method, encoder=enc_name)
    device = _device_of(G)
    target = prepare_image(image, int(G.img_resolution), int(G.img_channels), fit=fit).to(device)
    with warnings.catch_warnings():  # only for the LPIPS metric here: no fallback notice
        warnings.simplefilter("ignore", PerceptualFallbackWarning)
        lpips_fn = resolve_loss(loss, device)[1]
    with torch.no_grad():
        recon = G.synthesis(ws, noise_mode="const")
    return Inversion(latent=ws.cpu(), space="w+", reconstruction=recon, image=to_pil(recon)[0], target=target.cpu(),
                     metrics=image_metrics(recon, target, lpips_fn), loss="none", weights_sha256=generator_sha256(G),
                     model=model_id(G), steps=0, loss_detail=f"encoder only ({enc.family} {enc.encoder_type})",
                     method=method, encoder=enc_name)


def _optimize(G: Any, image: Any, *, space: Space | None = None, steps: int = 100, loss: LossName = "auto",
              noise_reg: float | None = None, seed: int = 0, callback: Callable[[int, int, float], Any] | None = None,
              quiet: bool = False, class_idx: int | None = None, optimize_noise: bool = True,
              optimize_c: bool = False, starts: int | None = None, fit: str = "crop",
              schedule: Schedule | None = None, init: torch.Tensor | None = None) -> Inversion:
    """Invert ``image`` into ``G``'s latent space and return an :class:`Inversion`.

    ``space`` defaults to ``"w"`` for style-based generators and ``"z"`` otherwise. ``loss="auto"`` uses
    LPIPS-VGG (+ MSE) when its weights are on disk, else MSE + MS-SSIM with a one-time warning; ``"lpips"``
    fails instead of falling back. ``noise_reg`` overrides the noise-map autocorrelation weight.
    ``callback(step, steps, loss)`` is called after every step (one step = one generator forward +
    backward). In z space ``starts`` random starting points (default 8) are optimised together for 40 % of
    the steps and the best one continues; ``optimize_c`` also optimises a continuous class vector there.
    ``schedule`` replaces the style-based optimisation settings (:class:`Schedule`). ``init`` starts from a
    given latent instead of the mean w / random z (to refine an earlier inversion): ``[1, w_dim]`` or
    ``[1, num_ws, w_dim]`` in W / W+, ``[1, z_dim]`` in z (then ``starts`` defaults to 1).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    style = bool(getattr(G, "style_based", False))
    space = space or ("w" if style else "z")
    if space not in ("w", "w+", "z"):
        raise ValueError(f"unknown latent space {space!r}: use w, w+ or z")
    if space != "z" and not style:
        raise ValueError(f"{type(G).__name__} has no W space (not style-based); use space='z'")
    sched = schedule or DEFAULT_SCHEDULE
    if noise_reg is not None:
        sched = replace(sched, noise_reg=float(noise_reg))
    device = _device_of(G)
    target = prepare_image(image, int(G.img_resolution), int(G.img_channels), fit=fit).to(device)
    loss_name, lpips_fn, loss_detail = resolve_loss(loss, device)
    if lpips_fn is None and loss_name == "pixel" and sched.pixel_weight == 0 and sched.ssim_weight == 0:
        # an LPIPS-only schedule (NVLABS_SCHEDULE) without LPIPS weights: use the default pixel terms
        sched = replace(sched, pixel_weight=DEFAULT_SCHEDULE.pixel_weight, ssim_weight=DEFAULT_SCHEDULE.ssim_weight)
    target_vgg = downscale_for_vgg(target) if lpips_fn is not None else None
    free_c = space == "z" and optimize_c and G.c_dim > 0 and class_idx is None  # c found by the optimisation
    c = None if free_c else _c_for(G, class_idx, device)
    gen = torch.Generator().manual_seed(int(seed))
    start = None if init is None else _check_init(G, init, space).to(device)
    with _Frozen(G):
        if space == "z":
            latent, recon, c_out, history = _invert_z(G, target, c, steps, sched, lpips_fn, target_vgg, gen,
                                                      starts or (1 if start is not None else 8), optimize_c,
                                                      callback, quiet, start)
            noise: dict[str, torch.Tensor] = {}
        else:
            latent, recon, noise, history = _invert_w(G, target, c, space, steps, sched, lpips_fn, target_vgg, gen,
                                                      optimize_noise, callback, quiet, start)
            c_out = c
    metrics = image_metrics(recon, target, lpips_fn)
    return Inversion(latent=latent, space=space, reconstruction=recon, image=to_pil(recon)[0], target=target.cpu(),
                     metrics=metrics, loss=loss_name, weights_sha256=generator_sha256(G), model=model_id(G),
                     steps=steps, noise=noise, c=None if c_out is None else c_out.detach().cpu(), history=history,
                     loss_detail=loss_detail)


def _check_init(G: Any, init: torch.Tensor, space: str) -> torch.Tensor:
    """``init`` as ``[1, z_dim]`` (z) or ``[1, layers, w_dim]`` (w: 1 layer, w+: num_ws layers)."""
    t = torch.as_tensor(init).detach().to(torch.float32)
    if space == "z":
        if t.numel() != G.z_dim:
            raise ValueError(f"init has shape {list(t.shape)}; a z-space start needs [1, {G.z_dim}]")
        return t.reshape(1, G.z_dim)
    if t.shape[-1] != G.w_dim or t.numel() not in (G.w_dim, G.num_ws * G.w_dim):
        raise ValueError(f"init has shape {list(t.shape)}; a {space} start needs [1, {G.w_dim}] or "
                         f"[1, {G.num_ws}, {G.w_dim}]")
    t = t.reshape(1, -1, G.w_dim)
    if space == "w" and t.shape[1] > 1:
        if not torch.allclose(t, t[:, :1].expand_as(t)):
            raise ValueError("init holds a different w per layer; invert with space='w+' to start from it")
        t = t[:, :1]
    if space == "w+" and t.shape[1] == 1:
        t = t.expand(-1, G.num_ws, -1)
    return t.clone()


def image_metrics(recon: torch.Tensor, target: torch.Tensor, lpips_fn: Callable | None = None) -> dict[str, float]:
    """PSNR (dB), SSIM and, when available, LPIPS between a reconstruction and its target."""
    r = recon.to(target.device).clamp(-1, 1)
    out = {"psnr": float(psnr(r, target)[0]), "ssim": float(ssim(r, target)[0])}
    if lpips_fn is not None:
        with torch.no_grad():
            out["lpips"] = float(lpips_fn(downscale_for_vgg(r), downscale_for_vgg(target))[0])
    return out


class _Budget:
    """Counts generator evaluations (one "step" = one forward + backward) for the progress bar and callback."""

    def __init__(self, steps: int, quiet: bool, desc: str, callback: Callable | None) -> None:
        self.steps, self.done, self.callback = steps, 0, callback
        self.history: list[float] = []
        self.bar = tqdm(total=steps, desc=desc, unit="step", disable=quiet, file=sys.stderr, dynamic_ncols=True)

    def tick(self, value: float) -> None:
        self.done += 1
        self.history.append(value)
        self.bar.set_postfix(loss=f"{value:.4g}", refresh=False)
        self.bar.update(1)
        if self.callback is not None:
            self.callback(self.done, self.steps, value)

    def close(self) -> None:
        self.bar.close()


class _BudgetSpent(Exception):
    pass


def _lbfgs(params: list[torch.Tensor], loss_fn: Callable[[], torch.Tensor], evals: int, budget: _Budget
           ) -> list[torch.Tensor]:
    """Minimise ``loss_fn`` over ``params`` with L-BFGS (strong Wolfe) in ``evals`` evaluations; returns the
    best parameters seen (a line search can end on a worse point)."""
    best = [float("inf"), [p.detach().clone() for p in params]]
    if evals <= 0:
        return best[1]
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=evals, max_eval=evals, history_size=50,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-16)
    used = [0]

    def closure() -> torch.Tensor:
        if used[0] >= evals:  # the line search may ask for more evaluations than the budget has left
            raise _BudgetSpent
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        value = float(loss.detach())
        used[0] += 1
        if math.isfinite(value) and value < best[0]:
            best[0], best[1] = value, [p.detach().clone() for p in params]
        budget.tick(value)
        return loss

    while used[0] < evals:  # L-BFGS may stop early on a flat stretch: restart it with the rest of the budget
        before = used[0]
        opt.param_groups[0]["max_iter"] = opt.param_groups[0]["max_eval"] = evals - used[0]
        try:
            opt.step(closure)
        except _BudgetSpent:
            break
        if used[0] == before or not math.isfinite(best[0]):
            break
        if used[0] < evals:
            with torch.no_grad():
                for p, b in zip(params, best[1]):
                    p.copy_(b)
            opt = torch.optim.LBFGS(params, lr=1.0, max_iter=evals, max_eval=evals, history_size=50,
                                    line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-16)
    with torch.no_grad():
        for p, b in zip(params, best[1]):
            p.copy_(b)
    return best[1]


def _invert_w(G: Any, target: torch.Tensor, c: torch.Tensor | None, space: str, steps: int, sched: Schedule,
              lpips_fn: Callable | None, target_vgg: torch.Tensor | None, gen: torch.Generator,
              optimize_noise: bool, callback: Callable | None, quiet: bool, start: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], list[float]]:
    device = target.device
    w_avg, w_std, spread = w_statistics(G, c, sched.w_avg_samples)
    if sched.latent_units == "w_std":
        unit = w_std
    elif sched.latent_units == "raw":
        unit = torch.ones_like(w_std)
    else:
        raise ValueError(f"unknown latent_units {sched.latent_units!r}")
    layers = G.num_ws if space == "w+" else 1
    u = torch.zeros(1, layers, G.w_dim, device=device)
    if start is not None:
        u = (start - w_avg) / unit
    u.requires_grad_(True)
    noises = {}
    for name, buf in noise_buffers(G).items():
        n = buf.detach().clone() if sched.noise_init == "const" else torch.randn(buf.shape, generator=gen).to(device)
        noises[name] = n
    tune_noise = optimize_noise and bool(noises)

    def ws_of(uu: torch.Tensor) -> torch.Tensor:
        w = w_avg + uu * unit
        return w.expand(-1, G.num_ws, -1) if layers == 1 else w

    budget = _Budget(steps, quiet, f"inverting ({space})", callback)
    try:
        with use_noise(G, noises):
            # Phase 1 (ganzoo schedule): L-BFGS on the latent alone; the pixel loss is smooth and badly
            # conditioned in W, where quasi-Newton steps gain far more per evaluation than Adam.
            n_lbfgs = 0
            if sched.optimizer == "lbfgs":
                n_lbfgs = steps - (round(steps * sched.refine) if tune_noise else 0)
                _lbfgs([u], lambda: _image_loss(G.synthesis(ws_of(u), noise_mode="const"), target, sched, lpips_fn,
                                                target_vgg).sum(), n_lbfgs, budget)
            # Phase 2: Adam on latent + noise maps, warm-up + cosine ramp-down, autocorrelation penalty and
            # re-normalised noise (the whole run for the NVlabs-style schedule).
            n_adam = steps - budget.done
            if n_adam > 0:
                for n in noises.values():
                    n.requires_grad_(tune_noise)
                groups = [{"params": [u], "lr_mult": sched.refine_latent_lr if n_lbfgs else 1.0}]
                if tune_noise:
                    groups.append({"params": list(noises.values()), "lr_mult": sched.noise_lr_mult})
                opt = torch.optim.Adam(groups, lr=sched.lr, betas=sched.betas)
                best = (float("inf"), u.detach().clone(), {k: v.detach().clone() for k, v in noises.items()})
                for step in range(n_adam):
                    t = step / n_adam
                    lr = sched.lr * lr_at(t, sched)
                    for g in opt.param_groups:
                        g["lr"] = lr * g["lr_mult"]
                    ws = ws_of(u)
                    if sched.w_noise > 0:
                        scale = spread * sched.w_noise * max(0.0, 1.0 - t / sched.w_noise_ramp) ** 2
                        ws = ws + torch.randn(ws.shape, generator=gen).to(device) * scale
                    img_loss = _image_loss(G.synthesis(ws, noise_mode="const"), target, sched, lpips_fn,
                                           target_vgg).sum()
                    loss = img_loss
                    if tune_noise and sched.noise_reg > 0:
                        loss = loss + sched.noise_reg * noise_regularisation(list(noises.values()))
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    value = float(img_loss.detach())
                    if n_lbfgs and value < best[0]:  # a refinement must not end worse than it started
                        best = (value, u.detach().clone(), {k: v.detach().clone() for k, v in noises.items()})
                    opt.step()
                    if tune_noise:
                        with torch.no_grad():
                            for n in noises.values():
                                n -= n.mean()
                                n *= n.square().mean().rsqrt()
                    budget.tick(value)
                with torch.no_grad():
                    for n in noises.values():
                        n.requires_grad_(False)
                    if n_lbfgs:
                        final = _image_loss(G.synthesis(ws_of(u), noise_mode="const"), target, sched, lpips_fn,
                                            target_vgg).sum()
                        if float(final) > best[0]:
                            u.copy_(best[1])
                            for k, v in best[2].items():
                                noises[k].copy_(v)
            with torch.no_grad():
                ws_final = ws_of(u.detach())
                recon = G.synthesis(ws_final, noise_mode="const").float()
    finally:
        budget.close()
    latent = ws_final[:, 0] if space == "w" else ws_final
    return latent.detach().cpu(), recon.cpu(), {k: v.detach().cpu().clone() for k, v in noises.items()}, \
        budget.history


def _invert_z(G: Any, target: torch.Tensor, c: torch.Tensor | None, steps: int, sched: Schedule,
              lpips_fn: Callable | None, target_vgg: torch.Tensor | None, gen: torch.Generator, starts: int,
              optimize_c: bool, callback: Callable | None, quiet: bool, start: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, list[float]]:
    device = target.device
    z = torch.randn(starts, G.z_dim, generator=gen).to(device)
    if start is not None:
        z[0] = start[0]  # the given start, plus random ones when starts > 1
    z.requires_grad_(True)
    c_param = None
    if optimize_c and G.c_dim > 0:
        init = c if c is not None else torch.full((1, G.c_dim), 1.0 / G.c_dim, device=device)
        c_param = init.expand(starts, -1).clone().requires_grad_(True)

    def c_of(n: int) -> torch.Tensor | None:
        if c_param is not None:
            return c_param
        return None if c is None else c.expand(n, -1)

    budget = _Budget(steps, quiet, "inverting (z)", callback)
    try:
        # Phase 1: all starts together (their losses are independent, so L-BFGS on the sum optimises each).
        n_explore = max(1, int(steps * 0.4)) if starts > 1 else 0
        params = [z] + ([c_param] if c_param is not None else [])
        _lbfgs(params, lambda: _image_loss(G(z, c_of(z.shape[0]), noise_mode="const"), target, sched, lpips_fn,
                                           target_vgg).sum(), n_explore, budget)
        if starts > 1:
            with torch.no_grad():
                per_sample = _image_loss(G(z, c_of(z.shape[0]), noise_mode="const"), target, sched, lpips_fn,
                                         target_vgg)
            best = int(per_sample.argmin())
            z = z.detach()[best:best + 1].clone().requires_grad_(True)
            if c_param is not None:
                c_param = c_param.detach()[best:best + 1].clone().requires_grad_(True)
        # Phase 2: L-BFGS on the best start.
        params = [z] + ([c_param] if c_param is not None else [])
        _lbfgs(params, lambda: _image_loss(G(z, c_of(1), noise_mode="const"), target, sched, lpips_fn,
                                           target_vgg).sum(), steps - budget.done, budget)
        with torch.no_grad():
            recon = G(z, c_of(1), noise_mode="const").float()
    finally:
        budget.close()
    c_out = c_param.detach() if c_param is not None else c
    return z.detach().cpu(), recon.cpu(), c_out, budget.history
