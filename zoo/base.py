"""The common generator interface every architecture family implements."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn


class GanGenerator(nn.Module):
    """Base class: a generator built from a JSON-able config, with the zoo's sampling surface.

    Subclasses set ``z_dim``, ``c_dim``, ``w_dim``, ``num_ws``, ``img_resolution``, ``img_channels``
    and implement ``forward(z, c=None, truncation_psi=1.0, truncation_cutoff=None, noise_mode="const")``.
    Style-based families also implement ``mapping`` and ``synthesis``.
    """

    architecture: ClassVar[str] = ""
    #: "stylegan" generators have a W space (mapping/synthesis); others take z directly.
    style_based: ClassVar[bool] = False
    #: How ``sdk.sample`` turns a seed into z: "nvidia" (RandomState randn), "biggan" (truncated normal).
    z_convention: ClassVar[str] = "nvidia"
    #: dtype of the exported graph's scalar ``truncation_psi`` input; ``None`` when the family has no truncation
    #: (the input is then left out of the graph rather than accepted and ignored).
    psi_dtype: ClassVar[torch.dtype | None] = torch.float32
    #: ``(low, high)``: valid psi are ``low < psi <= high``; ``None``: any value.
    psi_range: ClassVar[tuple[float, float] | None] = None

    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int
    img_resolution: int
    img_channels: int

    def __init__(self) -> None:
        super().__init__()
        self.class_names: list[str] | None = None
        self.model_info: dict[str, Any] = {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "GanGenerator":
        return cls(**config["init_kwargs"])

    def init_kwargs(self) -> dict[str, Any]:
        """The constructor arguments, as stored in ``config.json`` (subclasses keep them in ``_kwargs``)."""
        return dict(self._kwargs)

    def prepare_z(self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float | torch.Tensor) -> torch.Tensor:
        """For z-space generators: accept ``[N, z_dim, 1, 1]``, check shapes, apply z-space truncation.

        Truncation shrinks z towards its prior mean 0, the analogue of lerping towards ``w_avg``; a tensor
        psi (ONNX export) always stays in the graph.
        """
        if z.ndim == 4:
            z = z.flatten(1)
        self.check_inputs(z, c)
        if isinstance(truncation_psi, torch.Tensor) or truncation_psi != 1:
            z = z * truncation_psi
        return z

    def make_c(self, class_idx: int | list[int] | None, batch: int, device: torch.device | str = "cpu") -> torch.Tensor | None:
        """One-hot labels for ``class_idx`` (broadcast to ``batch``); ``None`` for unconditional models."""
        if self.c_dim == 0:
            if class_idx is not None:
                raise ValueError("this model is unconditional: drop the class argument")
            return None
        if class_idx is None:
            raise ValueError(f"this model is conditional ({self.c_dim} classes): pass a class index 0..{self.c_dim - 1}")
        idx = [class_idx] * batch if isinstance(class_idx, int) else list(class_idx)
        for i in idx:
            if not 0 <= int(i) < self.c_dim:
                raise ValueError(f"class index {i} out of range: this model has classes 0..{self.c_dim - 1}")
        c = torch.zeros(len(idx), self.c_dim, device=device)
        c[torch.arange(len(idx)), torch.as_tensor(idx, dtype=torch.long)] = 1
        return c

    def check_inputs(self, z: torch.Tensor, c: torch.Tensor | None) -> None:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {list(z.shape)}")
        if self.c_dim > 0:
            if c is None or c.shape != (z.shape[0], self.c_dim):
                got = None if c is None else list(c.shape)
                raise ValueError(f"c must be a one-hot tensor of shape [{z.shape[0]}, {self.c_dim}], got {got}")


class StyleGenerator(GanGenerator):
    """A style-based generator: ``G(z, c) = synthesis(mapping(z, c))`` with a W space and ``w_avg``.

    Subclasses build ``self.mapping`` / ``self.synthesis`` and keep their constructor arguments in ``self._kwargs``.
    """

    style_based = True

    @property
    def w_avg(self) -> torch.Tensor:
        return self.mapping.w_avg

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "const", *,
                truncation_latent: torch.Tensor | None = None,
                noise: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        """``truncation_latent`` ([1, w_dim] or [N, w_dim]) replaces the stored ``w_avg`` as truncation centre;
        ``noise`` gives the synthesis network explicit per-layer noise tensors (see each family's ``synthesis``).
        Both are passed on only when given, so the plain call stays the upstream one."""
        self.check_inputs(z, c)
        extra_m = {} if truncation_latent is None else {"truncation_latent": truncation_latent}
        extra_s = {} if noise is None else {"noise": noise}
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, **extra_m)
        return self.synthesis(ws, noise_mode=noise_mode, **extra_s)
