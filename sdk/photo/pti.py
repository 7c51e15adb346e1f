"""Pivotal tuning (PTI): fine-tune a generator's weights around one photo's pivot latent.

As Roich et al. describe it (danielroich/PTI, "Pivotal Tuning for Latent-based Editing of Real Images",
ACM TOG 2022): keep the pivot ``w_p`` (from an encoder or an inversion) fixed and tune the synthesis weights
so that ``G(w_p)`` matches the photo (LPIPS + L2), while a locality regulariser keeps the tuned generator equal
to the original away from the pivot: ``w_r = w_p + alpha * (w_z - w_p) / |w_z - w_p|`` for a fresh mapped
``w_z`` each step, penalising LPIPS + L2 between the tuned and the original ``G(w_r)``. The defaults are the
paper's (350 steps, Adam lr 3e-4, alpha 30, regulariser weights 0.1, truncation 0.5 for ``w_z``).

Without LPIPS weights on the machine the perceptual term becomes MS-SSIM (as in ``sdk.invert``); the report
says which loss ran. The tuned generator saves as a normal common-format folder (:func:`save_tuned`).
"""

from __future__ import annotations

import copy
import hashlib
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from ..latent.invert import PerceptualFallbackWarning, open_image, prepare_image, resolve_loss
from ..latent.latents import generator_sha256, model_id
from ..latent.perceptual import downscale_for_vgg, ms_ssim, psnr


@dataclass
class PTIReport:
    """What :func:`pivotal_tuning` did: PSNR of ``G(pivot)`` against the photo before and after, and settings."""

    steps: int
    psnr_before: float
    psnr_after: float
    loss: str
    seconds: float
    photo_sha256: str
    base_weights_sha256: str
    base_model: str
    settings: dict[str, Any]
    history: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["history"] = [round(v, 6) for v in self.history]
        return d


def photo_sha256(image: Any) -> str:
    """sha256 of the photo file's bytes (a path), else of its RGB pixels (an in-memory image)."""
    if isinstance(image, (str, os.PathLike)):
        h = hashlib.sha256()
        with open(image, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    if isinstance(image, torch.Tensor):
        return hashlib.sha256(image.detach().cpu().float().contiguous().numpy().tobytes()).hexdigest()
    return hashlib.sha256(open_image(image).convert("RGB").tobytes()).hexdigest()


def _pivot(G: Any, pivot_ws: torch.Tensor) -> torch.Tensor:
    ws = torch.as_tensor(pivot_ws).detach().to(torch.float32)
    if ws.ndim == 2 and ws.shape[-1] == G.w_dim:
        ws = ws.reshape(1, -1, G.w_dim)
    if ws.ndim != 3 or ws.shape[0] != 1 or ws.shape[2] != G.w_dim or ws.shape[1] not in (1, G.num_ws):
        raise ValueError(f"pivot_ws must be [1, {G.num_ws}, {G.w_dim}] (or one w [1, {G.w_dim}]), "
                         f"got {list(ws.shape)}")
    return ws.expand(1, G.num_ws, G.w_dim).clone()


def pivotal_tuning(G: Any, image: Any, pivot_ws: torch.Tensor, steps: int = 350, *, lr: float = 3e-4,
                   loss: str = "auto", l2_weight: float = 1.0, lpips_weight: float = 1.0,
                   locality_weight: float = 1.0, locality_alpha: float = 30.0, locality_l2: float = 0.1,
                   locality_lpips: float = 0.1, locality_psi: float = 0.5, seed: int = 0, fit: str = "crop",
                   quiet: bool = False, callback: Callable[[int, int, float], Any] | None = None
                   ) -> tuple[Any, PTIReport]:
    """Tune a copy of style-based ``G`` so ``G(pivot_ws)`` reproduces ``image``; returns ``(G_tuned, report)``.

    ``G`` itself is left unchanged. ``locality_weight=0`` turns the regulariser off. The returned weights are
    those of the step with the lowest pivot error (``report.settings["kept_step"]``; ``steps`` = the last).
    """
    if not getattr(G, "style_based", False):
        raise ValueError(f"pivotal tuning needs a style-based generator (W space); {type(G).__name__} has none")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    from ..backends.allocator import configure_allocator

    configure_allocator()  # see sdk.backends.allocator: every step reuses the last one's freed memory
    device = next(G.parameters()).device
    target = prepare_image(image, int(G.img_resolution), int(G.img_channels), fit=fit).to(device)
    ws = _pivot(G, pivot_ws).to(device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PerceptualFallbackWarning)
        loss_name, lpips_fn, detail = resolve_loss(loss, device)

    def perceptual(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if lpips_fn is not None:
            return lpips_fn(downscale_for_vgg(a), downscale_for_vgg(b)).mean()
        return (1 - ms_ssim(a, b)).mean()

    base = G.eval()
    tuned = copy.deepcopy(G).train(False)
    tuned.requires_grad_(False)
    params = [p for p in tuned.synthesis.parameters() if p.is_floating_point()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(int(seed))
    c = None
    if getattr(G, "c_dim", 0):
        raise ValueError("pivotal tuning of conditional generators is not supported")
    with torch.no_grad():
        before = float(psnr(base.synthesis(ws, noise_mode="const").clamp(-1, 1), target)[0])
    history: list[float] = []
    start = time.perf_counter()
    bar = tqdm(total=steps, desc="pivotal tuning", disable=quiet, leave=False)
    # Adam keeps taking lr-sized steps near the optimum, so the weights at the last step can reconstruct worse than
    # earlier ones (the paper stops early on an LPIPS threshold): keep the weights with the best pivot error.
    best_err, best_step, best_state = float("inf"), 0, None
    for step in range(steps):
        img = tuned.synthesis(ws, noise_mode="const")
        err = float((img.detach().clamp(-1, 1) - target).square().mean())
        if err < best_err:
            best_err, best_step = err, step
            best_state = [p.detach().clone() for p in params]
        total = l2_weight * (img - target).square().mean() + lpips_weight * perceptual(img, target)
        if locality_weight > 0:
            z = torch.randn(1, G.z_dim, generator=gen).to(device)
            with torch.no_grad():
                w_z = base.mapping(z, c, truncation_psi=locality_psi)
                d = w_z - ws
                w_r = ws + locality_alpha * d / d.norm().clamp_min(1e-8)
                ref = base.synthesis(w_r, noise_mode="const")
            out = tuned.synthesis(w_r, noise_mode="const")
            reg = locality_l2 * (out - ref).square().mean() + locality_lpips * perceptual(out, ref)
            total = total + locality_weight * reg
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        value = float(total.detach())
        history.append(value)
        bar.update(1)
        bar.set_postfix(loss=f"{value:.4f}")
        if callback is not None:
            callback(step + 1, steps, value)
    bar.close()
    tuned.requires_grad_(False).eval()
    with torch.no_grad():
        final = tuned.synthesis(ws, noise_mode="const").clamp(-1, 1)
        if best_state is not None and float((final - target).square().mean()) > best_err:
            for p, v in zip(params, best_state):
                p.copy_(v)
        else:
            best_step = steps
        after = float(psnr(tuned.synthesis(ws, noise_mode="const").clamp(-1, 1), target)[0])
    settings = dict(steps=steps, lr=lr, loss=loss_name, loss_detail=detail, l2_weight=l2_weight,
                    lpips_weight=lpips_weight, locality_weight=locality_weight, locality_alpha=locality_alpha,
                    locality_l2=locality_l2, locality_lpips=locality_lpips, locality_psi=locality_psi, seed=seed,
                    fit=fit, noise_mode="const", kept_step=best_step)
    report = PTIReport(steps=steps, psnr_before=before, psnr_after=after, loss=loss_name,
                       seconds=time.perf_counter() - start, photo_sha256=photo_sha256(image),
                       base_weights_sha256=generator_sha256(G), base_model=model_id(G), settings=settings,
                       history=history)
    tuned.model_info = {"model_name": "", "provenance": {"pti": report.to_dict()}}
    return tuned, report


def save_tuned(G_tuned: Any, folder: str | os.PathLike[str], report: PTIReport, *, overwrite: bool = False,
               pivot_ws: torch.Tensor | None = None) -> Path:
    """Write the tuned generator as a common-format folder; provenance names the base model and the photo.

    With ``pivot_ws`` the pivot is saved beside it as ``pivot.safetensors`` (``sdk.load_latent`` reads it).
    """
    from zoo.cards import render_card
    from zoo.format import build_config, write_model_folder

    provenance = {
        "source_format": "pivotal-tuning",
        "base_model": report.base_model,
        "base_weights_sha256": report.base_weights_sha256,
        "photo_sha256": report.photo_sha256,
        "psnr_before": round(report.psnr_before, 3),
        "psnr_after": round(report.psnr_after, 3),
        "settings": report.settings,
        "notes": ["synthesis weights fine-tuned around one photo's pivot latent (pivotal tuning, Roich et al. "
                  "2022); use it only for that photo's edits"],
    }
    config = build_config(G_tuned.architecture, G_tuned.init_kwargs(), provenance=provenance,
                          extra={"model_name": f"pti-{report.photo_sha256[:12]}"})
    tensors = {k: v.detach() for k, v in G_tuned.state_dict().items()}
    out = write_model_folder(folder, config, tensors, render_card(config), overwrite=overwrite)
    if pivot_ws is not None:
        from ..latent.latents import save_latent
        from zoo.format import load_folder

        save_latent(out / "pivot.safetensors", _pivot(G_tuned, pivot_ws), space="w+", G=load_folder(out))
    return out
