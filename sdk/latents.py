"""Latents on disk: one safetensors file with the latent and string metadata (space, generator hash)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from zoo.errors import ZooError

LATENT_SPACES = ("z", "w", "w+")
_KEY = "latent"


class LatentFileError(ZooError, ValueError):
    """A latent file is unreadable or belongs to another generator / space."""


def save_latent(path: str | os.PathLike[str], latent: torch.Tensor, *, space: str, G: Any = None,
                **meta: Any) -> Path:
    """Write ``latent`` with ``space`` and the generator's weights sha256 as metadata (atomic)."""
    if space not in LATENT_SPACES:
        raise ValueError(f"unknown latent space {space!r}: use one of {', '.join(LATENT_SPACES)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = getattr(G, "model_info", None) or {}
    metadata = {str(k): str(v) for k, v in meta.items()}
    metadata.update(format="ganzoo-latent", space=space, weights_sha256=str(info.get("weights_sha256") or ""))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file({_KEY: latent.detach().to("cpu", torch.float32).contiguous()}, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_latent(path: str | os.PathLike[str], G: Any = None) -> tuple[torch.Tensor, dict[str, str]]:
    """``(latent, metadata)``; with ``G``, a latent saved for other weights is an error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such latent file: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            if _KEY not in f.keys():
                raise LatentFileError(f"{path} holds no '{_KEY}' tensor; save latents with sdk.latents.save_latent")
            latent = f.get_tensor(_KEY)
    except (SafetensorError, OSError) as e:
        raise LatentFileError(f"{path} is not a readable latent file ({e}); save it with save_latent") from None
    if metadata.get("space") not in LATENT_SPACES:
        raise LatentFileError(f"{path}: metadata 'space' must be one of {', '.join(LATENT_SPACES)}, "
                              f"got {metadata.get('space')!r}")
    metadata.setdefault("weights_sha256", "")
    if G is not None:
        mine = (getattr(G, "model_info", None) or {}).get("weights_sha256")
        theirs = metadata["weights_sha256"]
        if mine and theirs and mine != theirs:
            raise LatentFileError(f"{path} was made for another generator (weights sha256 {theirs[:12]}..., "
                                  f"this one is {mine[:12]}...); invert the image again with this model")
    return latent, metadata
