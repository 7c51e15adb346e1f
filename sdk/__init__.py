"""ganzoo SDK: sampling, truncation, (later) inversion, editing and export on any zoo generator."""

from __future__ import annotations

from .images import make_grid, save_image, to_pil, to_uint8
from .sampling import generate, parse_seeds, sample, seed_to_z, seeds_to_z, truncate
from .export import ExportReport, OnnxExportError, export_onnx
from .onnx_generator import OnnxGenerator

__all__ = ["seed_to_z", "seeds_to_z", "sample", "generate", "truncate", "parse_seeds", "to_pil", "to_uint8",
           "make_grid", "save_image"]
__all__ += ["export_onnx", "ExportReport", "OnnxExportError", "OnnxGenerator"]
