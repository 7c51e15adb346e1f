"""ganzoo SDK: sampling, truncation, (later) inversion, editing and export on any zoo generator."""

from __future__ import annotations

from .images import make_grid, save_image, to_pil, to_uint8
from . import directions
from .edit import edit, interpolate, style_mix
from .sampling import generate, parse_seeds, sample, seed_to_z, seeds_to_z, truncate

__all__ = ["seed_to_z", "seeds_to_z", "sample", "generate", "truncate", "parse_seeds", "to_pil", "to_uint8",
           "make_grid", "save_image"]
__all__ += ["directions", "edit", "style_mix", "interpolate"]
