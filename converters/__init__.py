"""Upstream checkpoint -> ganzoo common format.

``convert(src, out_dir)`` detects the source format, reads it without executing anything from the
file, maps every tensor onto a zoo architecture and writes the folder atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from zoo.errors import ConversionError
from zoo.format import build_config, check_output_folder, sha256_file, write_model_folder
from zoo.plugins import register_converter
from zoo.registry import entry_for_sha256

# Importing a format module registers it; one a line (keep sorted).
from . import biggan  # noqa: F401
from . import dcgan  # noqa: F401
from . import fastgan  # noqa: F401
from . import mlpgan  # noqa: F401
from . import mobilestylegan  # noqa: F401
from . import nvidia  # noqa: F401
from . import progan  # noqa: F401
from . import projected_gan  # noqa: F401
from . import psp  # noqa: F401
from . import r3gan  # noqa: F401
from . import rosinality  # noqa: F401
from . import studiogan  # noqa: F401
from . import stylegan3  # noqa: F401
from . import stylegan_xl  # noqa: F401
from . import styleswin  # noqa: F401
from . import tf_stylegan1  # noqa: F401
from . import tf_stylegan2  # noqa: F401
from .base import CONVERTER_VERSION, Converted, SourceFormat, detect_format, get_format, list_formats

__all__ = ["convert", "convert_to_config", "detect_format", "list_formats", "Converted", "SourceFormat"]


def convert_to_config(src: str | os.PathLike[str], format: str | None = None, model_name: str | None = None,
                      options: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read ``src`` and return ``(config, tensors)`` in the common format, without writing anything.

    ``options`` are format-specific (``SourceFormat.options``), e.g. ``class_names``. A file whose sha256
    matches a registry entry gets that entry's name and class names unless given explicitly.
    """
    path = Path(src)
    fmt = get_format(format) if format else detect_format(path)
    digest = sha256_file(path) if path.is_file() else None
    options = _with_registry_hints(fmt, digest, dict(options or {}))
    known = entry_for_sha256(digest) if digest else None
    if known is not None and model_name is None:
        model_name = known.name
    converted: Converted = fmt.convert(path, **options)
    source_files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    provenance = {
        "source_format": fmt.name,
        "source_file": path.name,
        "source_sha256": digest if digest else {p.name: sha256_file(p) for p in source_files},
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
            progress: Callable[[str], None] | None = None, options: Mapping[str, Any] | None = None) -> Path:
    """Convert an upstream checkpoint into a common-format folder at ``out_dir``; returns the folder."""
    from zoo.cards import render_card

    say = progress or (lambda msg: None)
    check_output_folder(out_dir, overwrite)  # before reading: a bad path fails at once, not after the conversion
    say(f"reading {Path(src).name}")
    config, tensors = convert_to_config(src, format=format, model_name=model_name, options=options)
    for note in config["provenance"].get("notes", []):
        say(f"note: {note}")
    say(f"writing {len(tensors)} tensors ({config['architecture']}, {config['img_resolution']}px)")
    card = render_card(config, model_name=config.get("model_name"))
    return write_model_folder(out_dir, config, tensors, card, dtype=dtype, overwrite=overwrite)


def _with_registry_hints(fmt: SourceFormat, digest: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """Check ``options`` against the format; fill ``class_names`` from the file's registry entry."""
    unknown = sorted(set(options) - set(fmt.options))
    if unknown:
        raise ConversionError(f"format {fmt.name!r} takes no option(s) {', '.join(unknown)}"
                              f"{'; it takes ' + ', '.join(fmt.options) if fmt.options else ''}")
    known = entry_for_sha256(digest) if digest else None
    if known is not None and ("class_names" in options or "num_classes" in options):
        given = len(options["class_names"]) if "class_names" in options else int(options["num_classes"])
        if given != known.num_classes:
            has = f"{known.num_classes} classes" if known.conditional else "no classes (it is unconditional)"
            raise ConversionError(f"this file is the registered {known.name}, which has {has}, not {given}: drop "
                                  "--classes (class_names / num_classes), or give "
                                  f"{known.num_classes} names in index order")
    if known is not None and known.class_names and "class_names" in fmt.options \
            and "class_names" not in options and "num_classes" not in options:
        options["class_names"] = list(known.class_names)
    return options


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("ganzoo")
    except Exception:  # noqa: BLE001 - running from a source tree
        return "0+unknown"


register_converter(convert)
