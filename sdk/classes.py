"""Class names for conditional generators: index lookup with close-match suggestions."""

from __future__ import annotations

import difflib
from typing import Any


def class_index(G: Any, name: str) -> int:
    """Index of class ``name`` (case-insensitive) in ``G.class_names``; a clear error lists close names."""
    names = list(getattr(G, "class_names", None) or [])
    if not names:
        raise ValueError(f"this model has no class names; pass a class index 0..{max(G.c_dim - 1, 0)}")
    lowered = [n.lower() for n in names]
    key = " ".join(name.strip().lower().replace("_", " ").split())
    if key in lowered:
        return lowered.index(key)
    close = difflib.get_close_matches(key, lowered, n=5, cutoff=0.5)
    # Names that contain the query as a word ("retriever" -> "golden retriever", ...) are good hints too.
    containing = [n for n in lowered if (key and key in n.split()) or (len(key) > 3 and key in n)]
    hints = list(dict.fromkeys(close + containing))[:8]
    hint = f"; close: {', '.join(names[lowered.index(c)] for c in hints)}" if hints else ""
    raise ValueError(f"unknown class name {name!r}{hint} (or pass a class index 0..{len(names) - 1})")


def resolve_class(G: Any, cls: int | str | list[int | str] | None) -> int | list[int] | None:
    """Class index(es) from indices and/or names (a numeric string counts as an index)."""
    if cls is None:
        return None
    if isinstance(cls, (list, tuple)):
        return [_one(G, c) for c in cls]
    return _one(G, cls)


def _one(G: Any, c: int | str) -> int:
    if isinstance(c, str):
        s = c.strip()
        return int(s) if s.lstrip("-").isdigit() else class_index(G, s)
    return int(c)


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet class names (index order) shipped with ganzoo."""
    from zoo.imagenet import imagenet_class_names as names

    return names()
