"""Registries: architectures (code) and model entries (published weights), kept separate as in timm."""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, TypeVar

from .errors import UnknownModelError

_ARCHITECTURES: dict[str, type] = {}
_MODELS: dict[str, "ModelEntry"] = {}

T = TypeVar("T", bound=type)


def register_architecture(cls: T) -> T:
    """Class decorator: make an architecture constructible from ``config.json``'s ``architecture``."""
    name = getattr(cls, "architecture", "")
    if not name:
        raise ValueError(f"{cls.__name__} has no 'architecture' name")
    if name in _ARCHITECTURES and _ARCHITECTURES[name] is not cls:
        raise ValueError(f"architecture {name!r} registered twice")
    _ARCHITECTURES[name] = cls
    return cls


def get_architecture(name: str) -> type:
    try:
        return _ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(sorted(_ARCHITECTURES))}") from None


def list_architectures() -> list[str]:
    return sorted(_ARCHITECTURES)


NON_COMMERCIAL_LICENSES = {"nvidia-source-code-license": (
    "NVIDIA's StyleGAN source-code licence: non-commercial use only (research and evaluation)."
)}


@dataclass(frozen=True)
class ModelEntry:
    """A published checkpoint: where it comes from and what it is (the architecture lives in code)."""

    name: str
    family: str
    architecture: str
    source_format: str
    url: str
    dataset: str
    resolution: int
    license: str
    conditional: bool = False
    num_classes: int = 0
    paper: str = ""
    fid: float | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    source_file: str | None = None
    #: ``zoo/weights/<name>`` ships inside the package.
    embedded: bool = False
    #: Hub repo id (``org/name``) with the converted folder, when one is published.
    hub_repo: str | None = None
    license_note: str = ""
    notes: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
    #: Extra upstream files the source format needs (e.g. BigGAN's config), saved beside the main download.
    companion_urls: tuple[str, ...] = field(default_factory=tuple)
    #: Class names in index order, for conditional checkpoints whose file does not store them.
    class_names: tuple[str, ...] = ()

    @property
    def non_commercial(self) -> bool:
        return self.license in NON_COMMERCIAL_LICENSES or "non-commercial" in self.license_note.lower()

    @property
    def license_text(self) -> str:
        """The plain-language licence note (the registry default for known non-commercial licences)."""
        return self.license_note or NON_COMMERCIAL_LICENSES.get(self.license, "")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["license_note"] = self.license_text
        d["tags"] = list(self.tags)
        d["companion_urls"] = list(self.companion_urls)
        d["class_names"] = list(self.class_names)
        d["non_commercial"] = self.non_commercial
        return d


def register_model(entry: ModelEntry) -> ModelEntry:
    if entry.name in _MODELS:
        raise ValueError(f"model {entry.name!r} registered twice")
    _MODELS[entry.name] = entry
    return entry


def register_models(*entries: ModelEntry) -> None:
    for e in entries:
        register_model(e)


def close_names(name: str, n: int = 5) -> list[str]:
    names = sorted(_MODELS)
    close = difflib.get_close_matches(name, names, n=n, cutoff=0.4)
    if not close:
        close = [m for m in names if name.lower() in m or m.split("-")[0] in name.lower()][:n]
    return close


def get_entry(name: str) -> ModelEntry:
    try:
        return _MODELS[name]
    except KeyError:
        close = close_names(name)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"unknown model {name!r}.{hint} Run `ganzoo list` for all names.") from None


def entry_for_sha256(digest: str) -> "ModelEntry | None":
    """The registered model whose upstream file has sha256 ``digest``, if any."""
    return next((e for e in _MODELS.values() if e.sha256 and e.sha256 == digest.lower()), None)


def is_registered(name: str) -> bool:
    return name in _MODELS


def all_entries() -> list[ModelEntry]:
    return [_MODELS[k] for k in sorted(_MODELS)]


def entries_where(pred: Callable[[ModelEntry], bool]) -> list[ModelEntry]:
    return [e for e in all_entries() if pred(e)]
