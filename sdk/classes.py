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
    key = name.strip().lower()
    if key in lowered:
        return lowered.index(key)
    close = difflib.get_close_matches(key, lowered, n=5, cutoff=0.5)
    hint = f"; close: {', '.join(names[lowered.index(c)] for c in close)}" if close else ""
    raise ValueError(f"unknown class name {name!r}{hint}")
