"""ganzoo SDK: sampling, truncation, (later) inversion, editing and export on any zoo generator."""

from __future__ import annotations

from .images import make_grid, save_image, to_pil, to_uint8
from .sampling import generate, parse_seeds, sample, seed_to_z, seeds_to_z, truncate

__all__ = ["seed_to_z", "seeds_to_z", "sample", "generate", "truncate", "parse_seeds", "to_pil", "to_uint8",
           "make_grid", "save_image"]

from .invert import Inversion, invert, prepare_image  # noqa: E402
from .latents import check_latent, load_latent, save_latent  # noqa: E402

__all__ += ["invert", "Inversion", "prepare_image", "save_latent", "load_latent", "check_latent"]
