"""Moving latents: apply directions, mix styles between seeds, interpolate between seeds."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from PIL import Image
from tqdm.auto import tqdm

from .direction import Direction, DirectionError
from .space import _check_latent, _device, _require_style, infer_space, synthesize, to_ws  # noqa: F401  (public here)
from ..images import make_grid, save_image, to_pil
from ..sampling import seeds_to_z


def result_space(direction: Direction, latent_space: str, layers: Sequence[int] | None = None) -> str:
    """The space :func:`edit` returns for this direction, input space and layer choice."""
    if direction.space == "z":
        return "z"
    if direction.space == "w+" or latent_space == "w+" or layers is not None or direction.layers is not None:
        return "w+"
    return "w"


def edit(G: Any, latent: torch.Tensor, direction: Direction, strength: float, layers: Sequence[int] | None = None,
         *, component: int | str = 0, space: str | None = None, class_idx: int | None = None) -> torch.Tensor:
    """``latent + strength * scale * direction[component]`` (``scale``: the direction's ``std``, else 1).

    ``space`` names the latent's space (default: w+ for 3-D, else w on style-based models, z
    otherwise). A z latent meets a W/W+ direction through the mapping (no truncation); a W
    direction applied with ``layers`` (default: the direction's own layers) or to a W+ latent
    moves only those W+ rows and returns W+. See :func:`result_space`. Strength 0 is the identity.
    """
    direction.check(G)
    space = infer_space(G, latent, space)
    _check_latent(G, latent, space)
    layers = direction.layers if layers is None else sorted({int(i) for i in layers})
    step = float(strength) * direction.scale(component)
    vec = direction.vector(component).to(latent.device, latent.dtype)
    if direction.space == "z":
        if space != "z":
            raise DirectionError(f"a z-space direction cannot move a {space} latent (the mapping is not invertible); "
                                 "start from a seed or a z latent")
        if layers is not None:
            raise DirectionError("z-space directions have no per-layer form: drop layers")
        return latent + step * vec
    out_space = result_space(direction, space, layers)
    if space == "z":
        with torch.no_grad():
            latent = G.mapping(latent.to(_device(G)), G.make_c(class_idx, latent.shape[0], device=_device(G)))[:, 0]
            latent = latent.to(vec.device)
        space = "w"
    if out_space == "w":
        return latent + step * vec
    ws = latent.unsqueeze(1).repeat(1, G.num_ws, 1) if space == "w" else latent.clone()
    if layers is not None:
        bad = [i for i in layers if not 0 <= i < G.num_ws]
        if bad:
            raise DirectionError(f"layers {bad} out of range: this model has W+ layers 0..{G.num_ws - 1}")
    rows = list(range(G.num_ws)) if layers is None else list(layers)
    delta = vec if vec.ndim == 2 else vec.unsqueeze(0).expand(G.num_ws, -1)
    ws[:, rows] = ws[:, rows] + step * delta[rows]
    return ws


def style_mix(G: Any, row_seeds: Sequence[int], col_seeds: Sequence[int], layers: Sequence[int], *,
              truncation_psi: float = 1.0, class_idx: int | None = None, noise_mode: str = "const",
              quiet: bool = True) -> torch.Tensor:
    """Style mixing: image ``[r, c]`` uses row seed ``r``'s W with W+ ``layers`` taken from column seed ``c``.

    Returns ``[len(row_seeds), len(col_seeds), C, H, W]``.
    """
    _require_style(G, "style mixing")
    layers = sorted({int(i) for i in layers})
    if not layers or not all(0 <= i < G.num_ws for i in layers):
        raise DirectionError(f"mixing layers must be W+ indices in 0..{G.num_ws - 1}, got {layers}")
    if not row_seeds or not col_seeds:
        raise ValueError("style_mix needs at least one row seed and one column seed")
    seeds = list(dict.fromkeys([int(s) for s in row_seeds] + [int(s) for s in col_seeds]))
    dev = _device(G)
    with torch.no_grad():
        z = seeds_to_z(G, seeds).to(dev)
        ws = G.mapping(z, G.make_c(class_idx, len(seeds), device=dev), truncation_psi=truncation_psi)
    by_seed = {s: ws[i] for i, s in enumerate(seeds)}
    rows = []
    with torch.no_grad(), tqdm(total=len(row_seeds) * len(col_seeds), desc="mixing", unit="img",
                               disable=quiet) as bar:
        for r in row_seeds:
            batch = by_seed[int(r)].unsqueeze(0).repeat(len(col_seeds), 1, 1)
            cols = torch.stack([by_seed[int(c)] for c in col_seeds])
            batch[:, layers] = cols[:, layers]
            rows.append(G.synthesis(batch, noise_mode=noise_mode).to(torch.float32).cpu())
            bar.update(len(col_seeds))
    return torch.stack(rows)


def style_mix_grid(G: Any, row_seeds: Sequence[int], col_seeds: Sequence[int], layers: Sequence[int],
                   **kwargs: Any) -> Image.Image:
    """The style-mixing figure: column seeds along the top, row seeds down the left, mixes inside."""
    mixed = style_mix(G, row_seeds, col_seeds, layers, **kwargs)
    kw = {k: v for k, v in kwargs.items() if k in ("truncation_psi", "class_idx", "noise_mode")}
    rows_img = to_pil(synthesize(G, seeds_to_z(G, row_seeds), "z", class_idx=kw.get("class_idx"),
                                 noise_mode=kw.get("noise_mode", "const"), truncation_psi=kw.get("truncation_psi", 1.0)))
    cols_img = to_pil(synthesize(G, seeds_to_z(G, col_seeds), "z", class_idx=kw.get("class_idx"),
                                 noise_mode=kw.get("noise_mode", "const"), truncation_psi=kw.get("truncation_psi", 1.0)))
    blank = Image.new(cols_img[0].mode, cols_img[0].size)
    tiles = [blank] + cols_img
    for r, row in enumerate(mixed):
        tiles.append(rows_img[r])
        tiles.extend(to_pil(row))
    return make_grid(tiles, cols=len(col_seeds) + 1)


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Linear interpolation; exact at ``t`` = 0 and 1."""
    if t == 0:
        return a.clone()
    if t == 1:
        return b.clone()
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation along the last dimension (falls back to lerp for near-parallel vectors)."""
    if t == 0:
        return a.clone()
    if t == 1:
        return b.clone()
    an = a / a.norm(dim=-1, keepdim=True).clamp_min(eps)
    bn = b / b.norm(dim=-1, keepdim=True).clamp_min(eps)
    cos = (an * bn).sum(-1, keepdim=True).clamp(-1, 1)
    omega = torch.acos(cos)
    so = torch.sin(omega)
    near = so.abs() < 1e-6
    wa = torch.where(near, torch.full_like(so, 1 - t), torch.sin((1 - t) * omega) / torch.where(near, 1, so))
    wb = torch.where(near, torch.full_like(so, t), torch.sin(t * omega) / torch.where(near, 1, so))
    return wa * a + wb * b


def interpolation_latents(G: Any, seeds: Sequence[int], frames: int, space: str | None = None,
                          method: str = "lerp", *, truncation_psi: float = 1.0,
                          class_idx: int | None = None) -> tuple[torch.Tensor, str]:
    """``(latents [frames, ...], space)`` along the path through ``seeds`` (frame 0 = first seed, last = last)."""
    seeds = [int(s) for s in seeds]
    if len(seeds) < 2:
        raise ValueError("interpolation needs at least two seeds, e.g. --seeds 0,1")
    if frames < 2:
        raise ValueError("interpolation needs at least 2 frames")
    if method not in ("lerp", "slerp"):
        raise ValueError(f"unknown interpolation method {method!r}: use lerp or slerp")
    style = bool(getattr(G, "style_based", False))
    space = space or ("w" if style else "z")
    if space not in ("z", "w"):
        raise ValueError(f"interpolate in z or w, not {space!r}")
    if space == "w":
        _require_style(G, "interpolating in w")
    dev = _device(G)
    z = seeds_to_z(G, seeds).to(dev)
    if space == "w":
        with torch.no_grad():
            keys = G.mapping(z, G.make_c(class_idx, len(seeds), device=dev), truncation_psi=truncation_psi)[:, 0]
    else:
        keys = z
    fn = slerp if method == "slerp" else lerp
    segs = len(seeds) - 1
    out = []
    for f in range(frames):
        pos = f * segs / (frames - 1)
        i = min(int(math.floor(pos)), segs - 1)
        out.append(fn(keys[i:i + 1], keys[i + 1:i + 2], pos - i))
    return torch.cat(out), space


def interpolate(G: Any, seeds: Sequence[int], frames: int, space: str | None = None, method: str = "lerp", *,
                truncation_psi: float = 1.0, class_idx: int | None = None, noise_mode: str = "const",
                batch_size: int = 8, quiet: bool = True) -> list[Image.Image]:
    """``frames`` images along the path through ``seeds`` in z or w (default w when the model has one).

    Truncation in w space is applied to the seeds' latents before interpolating; in z space it is
    the model's own truncation of each frame.
    """
    lat, space = interpolation_latents(G, seeds, frames, space, method, truncation_psi=truncation_psi,
                                       class_idx=class_idx)
    imgs = []
    with tqdm(total=len(lat), desc="interpolating", unit="frame", disable=quiet) as bar:
        for i in range(0, len(lat), batch_size):
            chunk = lat[i:i + batch_size]
            imgs.append(synthesize(G, chunk, space, class_idx=class_idx, noise_mode=noise_mode,
                                   truncation_psi=truncation_psi if space == "z" else 1.0))
            bar.update(len(chunk))
    return to_pil(torch.cat(imgs))


ANIMATED = (".webp", ".gif")


def check_output_path(path: str | os.PathLike[str]) -> None:
    """Fail early (before any work) on an output extension Pillow cannot write."""
    suffix = Path(path).suffix.lower()
    if Image.registered_extensions().get(suffix) is None:
        raise ValueError(f"unknown image extension {suffix!r} for {path}; use .webp or .gif (animation), "
                         ".png or .jpg (still)")


def save_frames(frames: Sequence[Image.Image], path: str | os.PathLike[str], *, fps: float = 10.0,
                cols: int | None = None, boomerang: bool = False) -> Path:
    """Animated ``.webp`` / ``.gif`` (looping), or a still grid for other extensions; written atomically."""
    if not frames:
        raise ValueError("no frames to save")
    if fps <= 0:
        raise ValueError("fps must be > 0")
    path = Path(path)
    frames = list(frames)
    if path.suffix.lower() in ANIMATED:
        if boomerang and len(frames) > 2:
            frames = frames + frames[-2:0:-1]
        kw: dict[str, Any] = dict(save_all=True, append_images=frames[1:], duration=int(round(1000 / fps)), loop=0)
        if path.suffix.lower() == ".webp":
            kw["lossless"] = True
        return save_image(frames[0], path, **kw)
    return save_image(make_grid(frames, cols=cols or len(frames)), path)
