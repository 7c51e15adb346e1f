"""ganzoo model zoo: registry, architectures and ``zoo.load``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Family modules register their architectures and published checkpoints on import.
from . import models  # noqa: F401
from .base import GanGenerator
from .errors import (ConversionError, ModelFormatError, OfflineError, UnknownModelError, UnsafePickleError,
                     ZooError)
from .loading import cache_dir, load
from .registry import ModelEntry, all_entries, get_entry, list_architectures

__all__ = ["load", "list_models", "info", "GanGenerator", "ModelEntry", "cache_dir", "list_architectures",
           "ZooError", "UnknownModelError", "ConversionError", "UnsafePickleError", "ModelFormatError",
           "OfflineError"]


def list_models(family: str | None = None) -> list[str]:
    """Registered model names (optionally of one family), sorted."""
    return [e.name for e in all_entries() if family is None or e.family == family]


def info(name: str) -> dict[str, Any]:
    """Registry facts and card data for ``name``, plus whether it is available locally; for a converted model
    folder (what ``ganzoo sample FOLDER`` takes), the facts its ``config.json`` holds."""
    from .cards import card_data
    from .loading import load_embedded_or_cached

    try:
        entry = get_entry(name)
    except UnknownModelError:
        folder = Path(name).expanduser()
        if folder.is_file():
            raise UnknownModelError(f"{name} is a checkpoint file, not a model: convert it first (ganzoo convert "
                                    f"{name} OUT_DIR) and give OUT_DIR, or give a registry name") from None
        if not folder.is_dir():
            if "/" in name or name.startswith(("~", ".")):
                raise FileNotFoundError(f"no such model folder: {name}; check the path, or give a registry name "
                                        "(ganzoo list)") from None
            raise
        return _folder_info(folder)
    d = entry.to_dict()
    d["card"] = card_data(name)
    local = load_embedded_or_cached(entry)
    d["local_path"] = str(local) if local else None
    return d


def _folder_info(folder: Path) -> dict[str, Any]:
    from .format import read_config

    config = read_config(folder)  # a clear error for a folder that is not a converted model
    provenance = config.get("provenance") or {}
    c_dim = int(config.get("c_dim") or 0)
    return {"name": folder.resolve().name, "family": None, "architecture": config["architecture"],
            "resolution": config.get("img_resolution"), "conditional": c_dim > 0, "num_classes": c_dim,
            "class_names": list(config.get("class_names") or []), "source_format": provenance.get("source_format"),
            "provenance": provenance, "local_path": str(folder.resolve()), "card": {}}
