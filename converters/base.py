"""Converter plumbing: the source-format registry, strict key mapping, and the convert() driver."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch

from zoo.errors import ConversionError

CONVERTER_VERSION = "1"


@dataclass
class Converted:
    """What a converter returns: the architecture, its constructor arguments and the tensors."""

    architecture: str
    init_kwargs: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    class_names: list[str] | None = None
    extra_config: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SourceFormat:
    """An upstream checkpoint format: how to recognise it and how to convert it."""

    name: str
    description: str
    #: ``sniff(path, head)`` -> True when the file is in this format (``head``: the first 64 KiB).
    sniff: Callable[[Path, bytes], bool]
    convert: Callable[[Path], Converted]
    #: Lower runs first during detection (more specific formats first).
    priority: int = 50
    #: Keyword options ``convert`` accepts beyond the path (e.g. ``class_names`` for files without names).
    options: tuple[str, ...] = ()


_FORMATS: dict[str, SourceFormat] = {}


def register_format(fmt: SourceFormat) -> SourceFormat:
    if fmt.name in _FORMATS:
        raise ValueError(f"source format {fmt.name!r} registered twice")
    _FORMATS[fmt.name] = fmt
    return fmt


def list_formats() -> list[SourceFormat]:
    return sorted(_FORMATS.values(), key=lambda f: (f.priority, f.name))


def get_format(name: str) -> SourceFormat:
    try:
        return _FORMATS[name]
    except KeyError:
        raise ConversionError(f"unknown format {name!r}; known formats: "
                              f"{', '.join(f.name for f in list_formats())}") from None


def detect_format(path: str | Path) -> SourceFormat:
    """The format of ``path`` (a file, or a folder such as BigGAN's ``pytorch_model.bin`` + ``config.json``)."""
    path = Path(path)
    if not path.exists():
        raise ConversionError(f"{path} does not exist")
    head = b""
    if path.is_file():
        if path.stat().st_size == 0:
            raise ConversionError(f"{path} is empty (truncated download?)")
        with open(path, "rb") as f:
            head = f.read(65536)
    for fmt in list_formats():
        try:
            if fmt.sniff(path, head):
                return fmt
        except (OSError, ValueError):
            continue
    known = "; ".join(f"{f.name} ({f.description})" for f in list_formats())
    raise ConversionError(f"cannot recognise {path.name} as a GAN checkpoint; known formats: {known}. "
                          "Pass --format to force one.")


def strict_map(source: Mapping[str, torch.Tensor], table: Sequence[tuple[str, str]],
               ignore: Iterable[str] = (), where: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Rename ``source`` keys through regex ``table`` rows ``(source_pattern, target_template)``.

    Every source key must match exactly one row (or an ``ignore`` pattern); an unmatched key is an
    error, so a converter can never silently drop a tensor.
    """
    compiled = [(re.compile(f"^{pat}$"), tmpl) for pat, tmpl in table]
    ignored = [re.compile(f"^{pat}$") for pat in ignore]
    out: dict[str, torch.Tensor] = {}
    unmatched = []
    for key, value in source.items():
        hits = [(rx, tmpl) for rx, tmpl in compiled if rx.match(key)]
        if not hits:
            if any(rx.match(key) for rx in ignored):
                continue
            unmatched.append(key)
            continue
        if len(hits) > 1:
            raise ConversionError(f"{where}: key {key} matches several mapping rows")
        rx, tmpl = hits[0]
        target = rx.sub(tmpl, key)
        if target in out:
            raise ConversionError(f"{where}: two source tensors map to {target}")
        out[target] = value
    if unmatched:
        raise ConversionError(f"{where}: {len(unmatched)} tensor(s) have no mapping: {', '.join(unmatched[:8])}"
                              f"{' ...' if len(unmatched) > 8 else ''}")
    return out
