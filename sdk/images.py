"""Tensor <-> PIL conversion, grids and saving (the upstream pixel convention)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from zoo.fileio import atomic_write


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` in nominal [-1, 1] -> uint8 ``[N, H, W, C]``: ``(x * 127.5 + 128).clamp(0, 255)``."""
    return (img.detach().to(torch.float32) * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu()


def to_pil(img: torch.Tensor) -> list[Image.Image]:
    """Batch of generator outputs -> PIL images (mode ``L`` for 1 channel, ``RGB`` for 3, ``RGBA`` for 4)."""
    arr = to_uint8(img).numpy()
    out = []
    for a in arr:
        if a.shape[-1] == 1:
            out.append(Image.fromarray(a[..., 0], mode="L"))
        elif a.shape[-1] in (3, 4):
            out.append(Image.fromarray(a, mode="RGB" if a.shape[-1] == 3 else "RGBA"))
        else:
            raise ValueError(f"cannot make an image from {a.shape[-1]} channels")
    return out


def make_grid(images: Sequence[Image.Image], cols: int | None = None, pad: int = 0) -> Image.Image:
    """Tile images row-major into one picture (``cols`` defaults to a near-square layout)."""
    if not images:
        raise ValueError("no images to put in a grid")
    cols = cols or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    w, h = images[0].size
    mode = "RGB" if any(im.mode != "L" for im in images) else "L"
    grid = Image.new(mode, (cols * w + (cols - 1) * pad, rows * h + (rows - 1) * pad))
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        grid.paste(im.convert(mode), (c * (w + pad), r * (h + pad)))
    return grid


def save_image(image: Image.Image, path: str | os.PathLike[str], **kwargs: object) -> Path:
    """Save atomically (temporary name in the same folder, then rename); format from the extension."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"unknown image extension {path.suffix!r}; use .png, .jpg, .webp or .gif")
    with atomic_write(path) as tmp:
        image.save(tmp, format=fmt, **kwargs)
    return path


def save_images(items: Sequence[tuple[Image.Image, str | os.PathLike[str]]], workers: int | None = None) -> list[Path]:
    """:func:`save_image` for many ``(image, path)`` pairs on ``workers`` threads (default: one per CPU core);
    PNG / JPEG encoding releases the GIL, so the files are encoded in parallel. Returns the paths in order."""
    items = list(items)
    workers = max(1, min(len(items), workers or os.cpu_count() or 1))
    if workers == 1:
        return [save_image(im, p) for im, p in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda item: save_image(*item), items))


def pil_to_tensor(image: Image.Image, channels: int = 3) -> torch.Tensor:
    """PIL image -> ``[1, C, H, W]`` float in [-1, 1] (inverse of the pixel convention)."""
    image = image.convert("L" if channels == 1 else "RGB")
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    t = torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0)
    return (t - 128) / 127.5
