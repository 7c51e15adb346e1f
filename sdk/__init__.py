"""ganzoo SDK: sampling, truncation, (later) inversion, editing and export on any zoo generator."""

from __future__ import annotations

from .images import make_grid, save_image, save_images, to_pil, to_uint8
from .latent import directions
from .latent.edit import edit, interpolate, style_mix
from .sampling import generate, parse_indices, parse_seeds, sample, seed_to_z, seeds_to_z, truncate
from .export import ExportReport, OnnxExportError, export_onnx
from .export.onnx_generator import OnnxGenerator
from .transform import input_transform, make_transform, set_input_transform
from .truncated_noise import truncated_noise

__all__ = ["seed_to_z", "seeds_to_z", "sample", "generate", "truncate", "parse_seeds", "parse_indices", "to_pil",
           "to_uint8", "make_grid", "save_image", "save_images", "truncated_noise", "make_transform", "input_transform",
           "set_input_transform"]
__all__ += ["directions", "edit", "style_mix", "interpolate"]
__all__ += ["export_onnx", "ExportReport", "OnnxExportError", "OnnxGenerator"]
from .latent.invert import Inversion, invert, prepare_image  # noqa: E402
from .latent.latents import check_latent, load_latent, save_latent  # noqa: E402

__all__ += ["invert", "Inversion", "prepare_image", "save_latent", "load_latent", "check_latent"]
from .dataset import DatasetReport, generate_dataset, map_folder  # noqa: E402

__all__ += ["generate_dataset", "DatasetReport", "map_folder"]
from .photo.align import AlignedFace, align_face, paste_back  # noqa: E402

__all__ += ["align_face", "AlignedFace", "paste_back"]
from .photo.pti import PTIReport, pivotal_tuning, save_tuned  # noqa: E402

__all__ += ["pivotal_tuning", "PTIReport", "save_tuned"]
from .photo.edit import PhotoEdit, edit_photo  # noqa: E402
from .photo.folder import edit_photo_folder  # noqa: E402

__all__ += ["edit_photo", "PhotoEdit", "edit_photo_folder"]
from . import studio  # noqa: E402  (sdk.studio.launch; Gradio is imported only when the app is built)

__all__ += ["studio"]
