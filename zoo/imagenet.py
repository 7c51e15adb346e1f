"""The 1000 ImageNet (ILSVRC-2012) class names shipped with the package (``zoo/data/imagenet_classes.json``)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

DATA_FILE = Path(__file__).parent / "data" / "imagenet_classes.json"


@functools.lru_cache(maxsize=1)
def _names() -> tuple[str, ...]:
    doc = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    names = tuple(doc["names"])
    if len(names) != 1000:  # pragma: no cover - guards a damaged install
        raise RuntimeError(f"{DATA_FILE} holds {len(names)} class names, expected 1000; reinstall ganzoo")
    return names


def imagenet_class_names() -> list[str]:
    """Class names by ImageNet class index (0 = "tench", 207 = "golden retriever", ...)."""
    return list(_names())
