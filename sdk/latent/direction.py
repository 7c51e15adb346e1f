"""The :class:`Direction` record: unit vectors in one latent space of one generator, saved as safetensors."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from zoo.errors import ZooError
from zoo.fileio import atomic_write

SPACES = ("z", "w", "w+")
FORMAT = "ganzoo-direction"


class DirectionError(ZooError, ValueError):
    """A direction does not fit the generator or latent it is applied to, or its file is unreadable."""


def _json_safe(value: Any) -> Any:
    """numpy scalars / tuples -> plain JSON values (for params read from foreign files)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return value


@dataclass
class Direction:
    """``vectors``: ``[K, width]`` (z/w/w+) or ``[K, num_layers, width]`` (w+ only, one row per layer).

    ``extra`` holds per-component tensors such as ``std`` (one unit of strength = ``std[k]``, the
    GANSpace convention), ``mean`` or ``eigenvalues``. ``layers`` are the W+ layer indices an edit
    touches by default (``None``: all).
    """

    vectors: torch.Tensor
    space: str
    method: str = "custom"
    layers: list[int] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str | None = None
    names: list[str] | None = None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise DirectionError(f"unknown latent space {self.space!r}: use one of {', '.join(SPACES)}")
        v = torch.as_tensor(self.vectors).detach().to("cpu", torch.float32)
        if v.ndim == 1:
            v = v.unsqueeze(0)
        if v.ndim not in (2, 3) or v.shape[0] == 0:
            raise DirectionError(f"direction vectors must be [K, width] or [K, layers, width], got {list(v.shape)}")
        if v.ndim == 3 and self.space != "w+":
            raise DirectionError(f"per-layer vectors {list(v.shape)} only make sense in w+, not {self.space}")
        if not torch.isfinite(v).all():
            raise DirectionError("direction vectors contain NaN or infinity")
        self.vectors = v.contiguous()
        self.params = _json_safe(dict(self.params))
        if self.layers is not None:
            self.layers = sorted({int(i) for i in self.layers})
        if self.names is not None:
            self.names = [str(n) for n in self.names]
            if len(self.names) != len(self):
                raise DirectionError(f"{len(self.names)} names for {len(self)} direction vectors")
        self.extra = {k: torch.as_tensor(t).detach().to("cpu", torch.float32).contiguous()
                      for k, t in self.extra.items()}
        std = self.extra.get("std")
        if std is not None and std.numel() != len(self):
            raise DirectionError(f"std has {std.numel()} entries for {len(self)} components")

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def width(self) -> int:
        return int(self.vectors.shape[-1])

    @property
    def num_layers(self) -> int | None:
        """Rows per vector for per-layer (3-D) W+ directions, else ``None``."""
        return int(self.vectors.shape[1]) if self.vectors.ndim == 3 else None

    def index(self, component: int | str) -> int:
        """Component number from an index or a name."""
        if isinstance(component, str) and not component.lstrip("-").isdigit():
            if not self.names or component not in self.names:
                known = ", ".join(self.names or []) or "none"
                raise DirectionError(f"no component named {component!r} (names: {known})")
            return self.names.index(component)
        k = int(component)
        if not -len(self) <= k < len(self):
            raise DirectionError(f"component {k} out of range: this direction has {len(self)} (0..{len(self) - 1})")
        return k % len(self)

    def vector(self, component: int | str = 0) -> torch.Tensor:
        """Unit vector ``k``: ``[width]`` or ``[num_layers, width]``."""
        return self.vectors[self.index(component)]

    def scale(self, component: int | str = 0) -> float:
        """Latent distance of one unit of strength (``std[k]`` when known, else 1)."""
        std = self.extra.get("std")
        return 1.0 if std is None else float(std[self.index(component)])

    def check(self, G: Any) -> None:
        """Raise :class:`DirectionError` unless this direction fits generator ``G``."""
        mine = (getattr(G, "model_info", None) or {}).get("weights_sha256")
        if self.weights_sha256 and mine and mine != self.weights_sha256:
            raise DirectionError(f"this {self.method} direction was computed for another generator (weights sha256 "
                                 f"{self.weights_sha256[:12]}..., this one is {mine[:12]}...); recompute it with "
                                 "this model")
        if self.space in ("w", "w+") and not getattr(G, "style_based", False):
            raise DirectionError(f"this is a {self.space.upper()}-space direction but {_model_name(G)} has no W space; "
                                 "use a z-space direction (e.g. sefa or ganspace computed on this model)")
        want = int(G.z_dim) if self.space == "z" else int(G.w_dim)
        if self.width != want:
            raise DirectionError(f"direction width {self.width} does not match {_model_name(G)}'s {self.space} width "
                                 f"{want}; it was made for another model")
        if self.num_layers is not None and self.num_layers != int(G.num_ws):
            raise DirectionError(f"per-layer direction has {self.num_layers} W+ rows but {_model_name(G)} has "
                                 f"{G.num_ws}; it was made for another model")
        if self.layers and max(self.layers) >= int(getattr(G, "num_ws", 0) or 0):
            raise DirectionError(f"direction edits layers {self.layers} but {_model_name(G)} has only "
                                 f"{getattr(G, 'num_ws', 0)} W+ layers (0..{int(getattr(G, 'num_ws', 1)) - 1})")

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write as ``.safetensors`` with the description as string metadata (atomic)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {"vectors": self.vectors}
        tensors.update({f"extra.{k}": v for k, v in self.extra.items()})
        metadata = {"format": FORMAT, "space": self.space, "method": self.method,
                    "layers": json.dumps(self.layers), "params": json.dumps(self.params),
                    "weights_sha256": self.weights_sha256 or "", "names": json.dumps(self.names)}
        with atomic_write(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
        return path


def _model_name(G: Any) -> str:
    return str((getattr(G, "model_info", None) or {}).get("model_name") or "this generator")


def weights_sha(G: Any) -> str | None:
    return (getattr(G, "model_info", None) or {}).get("weights_sha256") or None
