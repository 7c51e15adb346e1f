"""Translating and rotating StyleGAN3 output through the Fourier-feature input's ``transform`` buffer.

Convention (NVlabs/stylegan3 ``gen_images.py``): ``make_transform(translate, angle)`` is the 3x3 affine
matrix of the desired image transform (angle in degrees); the generator expects its *inverse* in
``G.synthesis.input.transform``.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator, Sequence

import numpy as np
import torch


def make_transform(translate: Sequence[float] = (0.0, 0.0), angle: float = 0.0) -> np.ndarray:
    """The float64 ``[3, 3]`` image transform for ``translate=(tx, ty)`` and a rotation of ``angle`` degrees."""
    tx, ty = (float(v) for v in translate)
    rad = float(angle) / 360.0 * 2 * math.pi
    s, c = math.sin(rad), math.cos(rad)
    return np.array([[c, s, tx], [-s, c, ty], [0.0, 0.0, 1.0]], dtype=np.float64)


def transform_buffer(G: Any) -> torch.Tensor:
    """``G.synthesis.input.transform``, or a ValueError naming the model family when there is none."""
    buf = getattr(getattr(getattr(G, "synthesis", None), "input", None), "transform", None)
    if not isinstance(buf, torch.Tensor) or buf.shape != (3, 3):
        arch = getattr(G, "architecture", "") or type(G).__name__
        raise ValueError(f"translate/rotate need a StyleGAN3 model (Fourier-feature input); this model is "
                         f"{arch!r}: drop --translate/--rotate or pick a stylegan3-* model")
    return buf


def inverse_transform(translate: Sequence[float] | None = None, rotate: float | None = None) -> np.ndarray:
    """``inv(make_transform(translate, rotate))``: what the generator's input layer takes."""
    if translate is not None and len(translate) != 2:
        raise ValueError(f"translate must be two numbers (tx, ty), got {translate!r}")
    return np.linalg.inv(make_transform(translate if translate is not None else (0.0, 0.0), rotate or 0.0))


def set_input_transform(G: Any, translate: Sequence[float] = (0.0, 0.0), rotate: float = 0.0) -> None:
    """Write ``inv(make_transform(translate, rotate))`` into the model (persists until changed)."""
    buf = transform_buffer(G)
    m = inverse_transform(translate, rotate)
    with torch.no_grad():
        buf.copy_(torch.from_numpy(m))


@contextlib.contextmanager
def input_transform(G: Any, translate: Sequence[float] | None = None, rotate: float | None = None) -> Iterator[None]:
    """Apply a translate/rotate inside the ``with`` block; the model's previous transform is restored after."""
    inverse_transform(translate, rotate)  # argument checks before anything changes
    buf = transform_buffer(G)
    saved = buf.detach().clone()
    set_input_transform(G, translate if translate is not None else (0.0, 0.0), rotate or 0.0)
    try:
        yield
    finally:
        with torch.no_grad():
            buf.copy_(saved)
