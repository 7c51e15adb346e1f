"""Latent spaces of a generator: which space a latent is in, and how to take any of them to W+ or pixels."""

from __future__ import annotations

from typing import Any

import torch

from .direction import DirectionError


def _device(G: Any) -> torch.device:
    try:
        return next(G.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _require_style(G: Any, what: str) -> None:
    if not getattr(G, "style_based", False):
        raise DirectionError(f"{what} needs a style-based generator (one with a W space); this one takes z only")


def infer_space(G: Any, latent: torch.Tensor, space: str | None = None) -> str:
    """The space of ``latent``: ``space`` if given, ``w+`` for 3-D tensors, else z (z-only models) or w."""
    if space is not None:
        if space not in ("z", "w", "w+"):
            raise DirectionError(f"unknown latent space {space!r}: use z, w or w+")
        return space
    if latent.ndim == 3:
        return "w+"
    return "w" if getattr(G, "style_based", False) else "z"


def _check_latent(G: Any, latent: torch.Tensor, space: str) -> None:
    if space == "z":
        ok, want = latent.ndim == 2 and latent.shape[1] == G.z_dim, f"[N, {G.z_dim}]"
    elif space == "w":
        _require_style(G, "a w latent")
        ok, want = latent.ndim == 2 and latent.shape[1] == G.w_dim, f"[N, {G.w_dim}]"
    else:
        _require_style(G, "a w+ latent")
        ok, want = latent.ndim == 3 and tuple(latent.shape[1:]) == (G.num_ws, G.w_dim), f"[N, {G.num_ws}, {G.w_dim}]"
    if not ok:
        raise DirectionError(f"a {space} latent for this model has shape {want}, got {list(latent.shape)}")


def to_ws(G: Any, latent: torch.Tensor, space: str | None = None, *, class_idx: int | None = None,
          truncation_psi: float = 1.0, truncation_cutoff: int | None = None) -> torch.Tensor:
    """Any latent of a style-based ``G`` as W+ ``[N, num_ws, w_dim]`` (z goes through the mapping)."""
    _require_style(G, "converting to w+")
    space = infer_space(G, latent, space)
    _check_latent(G, latent, space)
    if space == "z":
        c = G.make_c(class_idx, latent.shape[0], device=latent.device)
        return G.mapping(latent, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
    if space == "w":
        return latent.unsqueeze(1).repeat(1, G.num_ws, 1)
    return latent


def synthesize(G: Any, latent: torch.Tensor, space: str | None = None, *, class_idx: int | None = None,
               noise_mode: str = "const", truncation_psi: float = 1.0) -> torch.Tensor:
    """Images ``[N, C, H, W]`` for a z, w or w+ latent (truncation applies to z only)."""
    space = infer_space(G, latent, space)
    _check_latent(G, latent, space)
    latent = latent.to(_device(G))
    with torch.no_grad():
        if space == "z":
            c = G.make_c(class_idx, latent.shape[0], device=latent.device)
            return G(latent, c, truncation_psi=truncation_psi, noise_mode=noise_mode).to(torch.float32).cpu()
        return G.synthesis(to_ws(G, latent, space), noise_mode=noise_mode).to(torch.float32).cpu()
