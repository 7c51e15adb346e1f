"""One call from a photo to its edit: align -> encode (or invert) -> optional PTI -> edit -> paste back.

``interfacegan:NAME`` directions are not shipped with the package: NAME resolves through
:data:`INTERFACEGAN` to a published direction file (the InterFaceGAN boundaries encoder4editing publishes for
the official StyleGAN2 FFHQ generator), downloaded once, checked against its sha256 and cached like models.
They only fit that generator's W space (512-d, 18 layers); other models are refused with the alternatives.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from PIL import Image

from zoo.errors import ZooError

_E4E_RAW = ("https://raw.githubusercontent.com/omertov/encoder4editing/99ea50578695d2e8a1cf7259d8ee89b23eea942b/"
            "editings/interfacegan_directions/{}.pt")


@dataclass(frozen=True)
class PublishedDirection:
    name: str
    url: str
    sha256: str
    generator: str
    w_dim: int
    num_ws: int
    source: str


#: InterFaceGAN directions published by omertov/encoder4editing (MIT) at commit 99ea505, for the official
#: StyleGAN2 FFHQ 1024 generator's W space; sha256 of the files at that commit.
INTERFACEGAN = {
    name: PublishedDirection(name, _E4E_RAW.format(name), sha, "stylegan2-ffhq", 512, 18,
                             "omertov/encoder4editing editings/interfacegan_directions (MIT)")
    for name, sha in (
        ("age", "50074516b1629707d89b5e43d6b8abd1792212fa3b961a87a11323d6a5222ae0"),
        ("pose", "736e0eacc8488fa0b020a2e7bd256b957284c364191dfea693705e5d06d43e7d"),
        ("smile", "817a7e732b59dee9eba862bec8bd7e8373568443bc9f9731a21cf9b0356f0653"),
    )
}


class PhotoEditError(ZooError, ValueError):
    """A photo edit that cannot run as asked (direction for another model, no W space, ...)."""


def interfacegan_path(name: str, G: Any, *, quiet: bool = False) -> Path:
    """The cached file of the published InterFaceGAN direction ``name`` for ``G``, downloaded on first use."""
    from zoo.download import download
    from zoo.loading import cache_dir

    if name not in INTERFACEGAN:
        raise PhotoEditError(f"unknown InterFaceGAN direction {name!r}; published: {', '.join(sorted(INTERFACEGAN))}"
                             " (or pass a direction file)")
    d = INTERFACEGAN[name]
    if (int(G.w_dim), int(G.num_ws)) != (d.w_dim, d.num_ws):
        raise PhotoEditError(f"interfacegan:{name} is a direction in the W space of {d.generator} ({d.num_ws} x "
                             f"{d.w_dim}); this model's is {G.num_ws} x {G.w_dim}. Use a direction file made for it, "
                             "sefa:K or text:\"...\"")
    dest = cache_dir() / "directions" / f"interfacegan-{name}.pt"
    if not dest.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        download(d.url, dest, expected_sha256=d.sha256, quiet=quiet, desc=f"interfacegan:{name}")
    return dest


@dataclass
class PhotoEdit:
    """The result of :func:`edit_photo`: frames (pasted back when asked), the aligned face and a report."""

    frames: list[Image.Image]
    aligned: Any
    latent: torch.Tensor
    generator: Any
    report: dict[str, Any] = field(default_factory=dict)


def _stage(report: dict[str, Any], progress: Callable[[str], None] | None, name: str, i: int, n: int,
           start: float, detail: str = "") -> None:
    secs = time.perf_counter() - start
    report.setdefault("timings", {})[name] = round(secs, 3)
    if progress is not None:
        progress(f"[{i}/{n}] {name}: {secs:.2f} s{(' - ' + detail) if detail else ''}")


def pick_encoder(G: Any, encoder: Any) -> tuple[Any, str]:
    """``(encoder or None, why)``: the given one, else the one registered for ``G`` when it is on this machine."""
    from ..latent.invert import encoder_for, resolve_encoder

    if encoder is not None:
        return resolve_encoder(G, encoder), "given"
    name = encoder_for(G)
    if name is None:
        return None, "no encoder is registered for this model: inverted by optimisation"
    from zoo.loading import load_embedded_or_cached
    from zoo.registry import get_entry

    if load_embedded_or_cached(get_entry(name)) is None:
        return None, (f"the registered encoder {name} is not on this machine (download it, see `ganzoo info "
                      f"{name}`): inverted by optimisation")
    return resolve_encoder(G, name), f"registered encoder {name}"


def edit_photo(photo: Any, G: Any, direction: Any, strengths: Sequence[float], *, encoder: Any = None,
               component: int | str = 0, layers: Sequence[int] | None = None, steps: int | None = None,
               n_iters: int | None = None, pti: bool = False, pti_steps: int = 350, paste_back: bool = False,
               aligned_input: bool = False, landmarks: Any = None, face_index: int | None = None,
               loss: str = "auto", quiet: bool = True, progress: Callable[[str], None] | None = None) -> PhotoEdit:
    """Edit the face in ``photo`` with style-based ``G`` along ``direction`` (a :class:`~sdk.latent.direction.Direction`
    or a callable ``G -> Direction``) at each of ``strengths``.

    ``steps``: optimisation steps after the encoder (default 0 with an encoder, 100 without). ``pti`` tunes the
    generator around the latent first. ``paste_back`` returns whole photos instead of aligned crops.
    """
    from ..images import to_pil
    from ..latent.edit import edit, result_space
    from ..latent.invert import invert, open_image, prepare_image
    from ..latent.latents import use_noise
    from ..latent.perceptual import psnr
    from .align import align_face
    from .align import paste_back as paste
    from .pti import pivotal_tuning

    if not getattr(G, "style_based", False):
        raise PhotoEditError(f"{type(G).__name__} has no W space; photo editing needs a style-based model")
    if not strengths:
        raise PhotoEditError("no strengths given")
    original = open_image(photo).convert("RGB")
    report: dict[str, Any] = {}
    n = 3 + int(paste_back) + int(pti)  # align, encode/invert, [pti], edit, [paste back]
    i = 1
    t = time.perf_counter()
    size = max(256, int(G.img_resolution))
    if aligned_input:
        if paste_back:
            raise PhotoEditError("paste-back needs the alignment of the original photo; drop --aligned")
        face = None
        crop = original.resize((size, size), Image.LANCZOS)
        detail = "photo used as aligned"
    else:
        face = align_face(original, output_size=size, landmarks=landmarks, face_index=face_index)
        crop = face.image
        detail = f"{face.detector} landmarks, face {face.face_index + 1} of {face.faces_found}"
    _stage(report, progress, "align", i, n, t, detail)
    report["align"] = face.to_json() if face is not None else {"aligned_input": True}

    i += 1
    t = time.perf_counter()
    enc, why = pick_encoder(G, encoder)
    if enc is not None:
        opt_steps = 0 if steps is None else int(steps)
        method = "encoder+optimize" if opt_steps > 0 else "encoder"
        inv = invert(G, crop, method=method, encoder=enc, n_iters=n_iters, steps=max(opt_steps, 1), loss=loss,
                     quiet=quiet)
        detail = f"{why}: {enc.family} {enc.encoder_type}" + (f" + {opt_steps} optimisation steps" if opt_steps else "")
    else:
        opt_steps = 100 if steps is None else int(steps)
        if opt_steps < 1:
            raise PhotoEditError("no encoder fits this model, so inversion needs --steps >= 1")
        inv = invert(G, crop, method="optimize", space="w+", steps=opt_steps, loss=loss, quiet=quiet)
        detail = why
    ws = inv.ws.to(next(G.parameters()).device)
    report["inversion"] = {"method": inv.method, "encoder": inv.encoder or None, "steps": opt_steps if inv.steps else 0,
                           "loss": inv.loss, "loss_detail": inv.loss_detail, "note": why,
                           "psnr": round(inv.metrics["psnr"], 3)}
    _stage(report, progress, "encode" if enc is not None else "invert", i, n, t,
           f"{detail}; reconstruction PSNR {inv.metrics['psnr']:.2f} dB")

    render = G
    noise = inv.noise or None
    if pti:
        i += 1
        t = time.perf_counter()
        with use_noise(G, noise):
            render, rep = pivotal_tuning(G, crop, ws, steps=pti_steps, loss=loss, quiet=quiet)
        report["pti"] = {k: v for k, v in rep.to_dict().items() if k != "history"}
        _stage(report, progress, "pti", i, n, t, f"PSNR {rep.psnr_before:.2f} -> {rep.psnr_after:.2f} dB")

    i += 1
    t = time.perf_counter()
    d = direction(G) if callable(direction) else direction
    d.check(G)
    frames_t = []
    with torch.no_grad(), use_noise(render, noise):
        for s in strengths:
            lat = edit(G, ws, d, float(s), layers, component=component, space="w+")
            if result_space(d, "w+", layers) == "w":
                lat = lat.unsqueeze(1).expand(-1, G.num_ws, -1)
            frames_t.append(render.synthesis(lat, noise_mode="const"))
        target = prepare_image(crop, int(G.img_resolution), int(G.img_channels)).to(ws.device)
        recon = render.synthesis(ws, noise_mode="const")
        report["reconstruction_psnr"] = round(float(psnr(recon.clamp(-1, 1), target)[0]), 3)
    frames = [to_pil(f)[0] for f in frames_t]
    k = d.index(component)
    report["direction"] = {"method": d.method, "space": d.space, "component": k,
                           "name": d.names[k] if d.names else None}
    report["strengths"] = [float(s) for s in strengths]
    _stage(report, progress, "edit", i, n, t, f"{len(frames)} frames")

    if paste_back and face is not None:
        i += 1
        t = time.perf_counter()
        frames = [paste(original, f.resize((size, size), Image.LANCZOS), face) for f in frames]
        _stage(report, progress, "paste back", i, n, t, f"{original.size[0]}x{original.size[1]}")
    return PhotoEdit(frames=frames, aligned=face, latent=ws.cpu(), generator=render, report=report)
