"""The converter that turns upstream checkpoints into common-format folders, handed to ``zoo`` at run time.

``zoo`` sits below ``converters`` and never imports it: the converter registers itself here
(:func:`register_converter`) when its package is imported, and :func:`converter` finds it through the
``ganzoo.converters`` entry point group (or, in a source tree without installed metadata, the
``converters`` module named by that entry point's default) the first time a conversion is needed.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, Callable

from .errors import ConversionError

ENTRY_POINT_GROUP = "ganzoo.converters"
DEFAULT_MODULE = "converters"  # what pyproject.toml's entry point names; used when no metadata is installed

ConvertFn = Callable[..., Any]
_CONVERTER: ConvertFn | None = None


def register_converter(fn: ConvertFn) -> None:
    """Install ``fn(src, out_dir, *, format=None, model_name=None, overwrite=False, progress=None)``."""
    global _CONVERTER
    _CONVERTER = fn


def converter() -> ConvertFn:
    """The registered converter, loading the installed plugin on first use."""
    if _CONVERTER is None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            ep.load()  # importing the plugin registers it
            if _CONVERTER is not None:
                break
    if _CONVERTER is None:
        try:
            importlib.import_module(DEFAULT_MODULE)
        except ImportError:
            pass
    if _CONVERTER is None:
        raise ConversionError("no checkpoint converter is installed: reinstall ganzoo "
                              "(pip install -c constraints.txt ganzoo) to convert upstream files")
    return _CONVERTER
