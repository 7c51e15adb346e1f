"""Upstream checkpoint -> ganzoo common format.

``convert(src, out_dir)`` detects the source format, reads it without executing anything from the
file, maps every tensor onto a zoo architecture and writes the folder atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import torch

from zoo.format import build_config, sha256_file, write_model_folder

from . import dcgan, nvidia  # noqa: F401  (register formats)
from . import stylegan3  # noqa: F401  (StyleGAN3 handler for NVIDIA pickles)
from .base import CONVERTER_VERSION, Converted, SourceFormat, detect_format, get_format, list_formats

__all__ = ["convert", "convert_to_config", "detect_format", "list_formats", "Converted", "SourceFormat"]


def convert_to_config(src: str | os.PathLike[str], format: str | None = None,
                      model_name: str | None = None) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read ``src`` and return ``(config, tensors)`` in the common format, without writing anything."""
    path = Path(src)
    fmt = get_format(format) if format else detect_format(path)
    converted: Converted = fmt.convert(path)
    source_files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    provenance = {
        "source_format": fmt.name,
        "source_file": path.name,
        "source_sha256": sha256_file(path) if path.is_file() else
        {p.name: sha256_file(p) for p in source_files},
        "converter": f"ganzoo.converters.{fmt.name}",
        "converter_version": CONVERTER_VERSION,
        "ganzoo_version": _version(),
    }
    if converted.notes:
        provenance["notes"] = converted.notes
    extra = dict(converted.extra_config)
    if model_name:
        extra["model_name"] = model_name
    config = build_config(converted.architecture, converted.init_kwargs, class_names=converted.class_names,
                          provenance=provenance, extra=extra)
    return config, converted.tensors


def convert(src: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, format: str | None = None,
            model_name: str | None = None, dtype: torch.dtype | None = None, overwrite: bool = False,
            progress: Callable[[str], None] | None = None) -> Path:
    """Convert an upstream checkpoint into a common-format folder at ``out_dir``; returns the folder."""
    from zoo.cards import render_card

    say = progress or (lambda msg: None)
    say(f"reading {Path(src).name}")
    config, tensors = convert_to_config(src, format=format, model_name=model_name)
    say(f"writing {len(tensors)} tensors ({config['architecture']}, {config['img_resolution']}px)")
    card = render_card(config, model_name=model_name)
    return write_model_folder(out_dir, config, tensors, card, dtype=dtype, overwrite=overwrite)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("ganzoo")
    except Exception:  # noqa: BLE001 - running from a source tree
        return "0+unknown"
