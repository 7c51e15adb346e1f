"""Latent files: a latent tensor plus the generator it belongs to, as ``.safetensors``.

File layout: tensor ``latent`` (``[N, z_dim]`` for z, ``[N, w_dim]`` for w, ``[N, num_ws, w_dim]`` for w+),
optional ``c`` (class vector) and ``noise.<buffer name>`` (optimised noise maps), and string metadata:
``ganzoo_latent`` (format version), ``space``, ``model``, ``weights_sha256`` and whatever else the writer
adds (steps, loss, ...).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch

from zoo.errors import ZooError
from zoo.fileio import atomic_write

LATENT_FORMAT_VERSION = "1"
SPACES = ("z", "w", "w+")


class LatentMismatchError(ZooError, ValueError):
    """A latent file belongs to another generator, or is in another latent space than the caller needs."""


class LatentFileError(ZooError, ValueError):
    """A file is not a readable ganzoo latent file."""


def generator_sha256(G: Any) -> str:
    """The generator's weights sha256: the loaded ``model.safetensors`` file's, else a hash of its tensors.

    The second form (for generators built in memory) is cached in ``G.model_info`` so it stays stable.
    """
    info = getattr(G, "model_info", None)
    if isinstance(info, dict) and info.get("weights_sha256"):
        return str(info["weights_sha256"])
    h = hashlib.sha256()
    for name, t in sorted(G.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    digest = "mem-" + h.hexdigest()
    if isinstance(info, dict):
        info["weights_sha256"] = digest
    return digest


def model_id(G: Any) -> str:
    info = getattr(G, "model_info", None) or {}
    return str(info.get("model_name") or info.get("folder") or getattr(G, "architecture", "") or "")


def expected_shape(G: Any, space: str) -> tuple[int, ...]:
    """Per-sample latent shape of ``space`` for ``G`` (without the batch dimension)."""
    if space not in SPACES:
        raise ValueError(f"unknown latent space {space!r}: use z, w or w+")
    if space == "z":
        return (int(G.z_dim),)
    if not getattr(G, "style_based", False):
        raise ValueError(f"{type(G).__name__} has no W space; use space='z'")
    return (int(G.w_dim),) if space == "w" else (int(G.num_ws), int(G.w_dim))


@dataclass
class Latent:
    """A latent read from disk: ``latent`` in ``space``, plus optional ``c`` and ``noise`` maps."""

    latent: torch.Tensor
    space: str
    metadata: dict[str, str]
    noise: dict[str, torch.Tensor] = field(default_factory=dict)
    c: torch.Tensor | None = None

    @property
    def weights_sha256(self) -> str:
        return self.metadata.get("weights_sha256", "")

    def check(self, G: Any, space: str | None = None) -> "Latent":
        """Raise :class:`LatentMismatchError` unless this latent fits ``G`` (and ``space``, when given)."""
        check_latent(self, G, space)
        return self


def check_latent(lat: Latent, G: Any, space: str | None = None) -> None:
    """Raise a one-line :class:`LatentMismatchError` if ``lat`` was made for another generator or space."""
    want = generator_sha256(G)
    have = lat.weights_sha256
    if have and have != want:
        raise LatentMismatchError(
            f"this latent belongs to another generator ({lat.metadata.get('model') or 'unknown model'}, weights "
            f"sha256 {have[:12]}...) but the loaded one is {model_id(G) or 'unnamed'} ({want[:12]}...); "
            "invert the image again with this model")
    if space is not None and lat.space != space:
        raise LatentMismatchError(f"this latent is in {lat.space!r} space but {space!r} is needed; "
                                  f"re-invert with --space {space}")
    shape = tuple(lat.latent.shape[1:])
    if shape != expected_shape(G, lat.space):
        raise LatentMismatchError(f"latent shape {list(shape)} does not fit {lat.space!r} space of this generator "
                                  f"(expected {list(expected_shape(G, lat.space))})")


def save_latent(path: str | os.PathLike[str], latent: torch.Tensor, *, space: str, G: Any,
                **meta: Any) -> Path:
    """Write ``latent`` (+ ``noise=`` dict / ``c=`` tensor in ``meta``) atomically with the generator's identity."""
    from safetensors.torch import save_file

    if space not in SPACES:
        raise ValueError(f"unknown latent space {space!r}: use z, w or w+")
    latent = latent.detach().to("cpu", torch.float32)
    if latent.ndim == len(expected_shape(G, space)):
        latent = latent.unsqueeze(0)
    if tuple(latent.shape[1:]) != expected_shape(G, space):
        raise ValueError(f"latent shape {list(latent.shape)} does not fit {space!r} space "
                         f"(expected [N, {', '.join(map(str, expected_shape(G, space)))}])")
    tensors: dict[str, torch.Tensor] = {"latent": latent.contiguous()}
    noise = meta.pop("noise", None) or {}
    for name, t in noise.items():
        tensors[f"noise.{name}"] = t.detach().to("cpu", torch.float32).contiguous()
    c = meta.pop("c", None)
    if c is not None:
        tensors["c"] = c.detach().to("cpu", torch.float32).contiguous()
    metadata = {"ganzoo_latent": LATENT_FORMAT_VERSION, "space": space, "model": model_id(G),
                "weights_sha256": generator_sha256(G)}
    for k, v in meta.items():
        if v is None:
            continue
        metadata[k] = v if isinstance(v, str) else json.dumps(v, default=str)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def load_latent(path: str | os.PathLike[str], G: Any = None, *, space: str | None = None) -> Latent:
    """Read a latent file; with ``G`` (and optionally ``space``) also check that it belongs to that generator."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such latent file: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for non-safetensors input
        raise LatentFileError(f"{path} is not a safetensors latent file ({type(e).__name__}); "
                              "use a latent.safetensors written by ganzoo invert") from None
    if "latent" not in tensors or metadata.get("space") not in SPACES:
        raise LatentFileError(f"{path} is a safetensors file but not a ganzoo latent (no 'latent' tensor or "
                              "'space' metadata); use a latent.safetensors written by ganzoo invert")
    noise = {k[len("noise."):]: v for k, v in tensors.items() if k.startswith("noise.")}
    lat = Latent(latent=tensors["latent"], space=metadata["space"], metadata=metadata, noise=noise,
                 c=tensors.get("c"))
    if G is not None:
        check_latent(lat, G, space)
    return lat


def noise_buffers(G: Any) -> dict[str, torch.Tensor]:
    """The constant noise maps of a style-based generator's synthesis network, by buffer name."""
    synth = getattr(G, "synthesis", None)
    if synth is None:
        return {}
    return {name: buf for name, buf in synth.named_buffers() if name.endswith("noise_const")}


@contextlib.contextmanager
def use_noise(G: Any, noise: Mapping[str, torch.Tensor] | None) -> Iterator[Any]:
    """Temporarily swap ``G.synthesis``'s constant noise maps for ``noise`` (e.g. from an inversion)."""
    if not noise:
        yield G
        return
    synth = G.synthesis
    saved: dict[str, tuple[torch.nn.Module, str, torch.Tensor]] = {}
    try:
        for name, value in noise.items():
            mod_name, _, buf = name.rpartition(".")
            mod = synth.get_submodule(mod_name) if mod_name else synth
            old = mod._buffers.get(buf)
            if old is None:
                raise LatentMismatchError(f"noise map {name} does not exist in this generator")
            if tuple(old.shape) != tuple(value.shape):
                raise LatentMismatchError(f"noise map {name} has shape {list(value.shape)}, the generator's is "
                                          f"{list(old.shape)}")
            saved[name] = (mod, buf, old)
            mod._buffers[buf] = value.to(old.device, old.dtype)
        yield G
    finally:
        for mod, buf, old in saved.values():
            mod._buffers[buf] = old
