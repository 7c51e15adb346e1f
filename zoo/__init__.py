"""ganzoo model zoo: registry, architectures and ``zoo.load``."""

from __future__ import annotations

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
    """Registry facts and card data for ``name``, plus whether it is available locally."""
    from .cards import card_data
    from .loading import load_embedded_or_cached

    entry = get_entry(name)
    d = entry.to_dict()
    d["card"] = card_data(name)
    local = load_embedded_or_cached(entry)
    d["local_path"] = str(local) if local else None
    return d
