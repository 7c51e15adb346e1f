"""``zoo.load``: registry name, converted folder, upstream file, or ``hf-hub:org/name`` -> generator."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import torch

from .errors import ConversionError, UnknownModelError
from .format import CONFIG_NAME, WEIGHTS_NAME, load_folder, sha256_file
from .registry import ModelEntry, get_entry, is_registered

EMBEDDED_DIR = Path(__file__).parent / "weights"
_NOTICED: set[str] = set()


def cache_dir() -> Path:
    """Root of ganzoo's cache (``GANZOO_CACHE``, else the user cache dir)."""
    env = os.environ.get("GANZOO_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ganzoo"


def converted_dir(name: str) -> Path:
    return cache_dir() / "models" / name


def _licence_notice(entry: ModelEntry, quiet: bool) -> None:
    if not entry.non_commercial or quiet or os.environ.get("GANZOO_NO_LICENSE_NOTICE"):
        return
    if entry.name in _NOTICED:
        return
    _NOTICED.add(entry.name)
    note = entry.license_text or entry.license
    print(f"ganzoo: {entry.name}: {note} (silence with GANZOO_NO_LICENSE_NOTICE=1)", file=sys.stderr)


def converted_file_dir(path: Path) -> Path:
    """Where the conversion of upstream file (or checkpoint folder) ``path`` is cached: keyed by its sha256."""
    digest = sha256_file(path) if path.is_file() else _folder_digest(path)
    return cache_dir() / "converted-files" / digest[:32]


def _convert_file_cached(path: Path, quiet: bool) -> Path:
    """Convert an upstream file once; the cache key is the file's sha256."""
    from .plugins import converter

    convert = converter()
    out = converted_file_dir(path)
    if not (out / CONFIG_NAME).is_file():
        progress = None if quiet else (lambda msg: print(f"ganzoo: {msg}", file=sys.stderr))
        convert(path, out, overwrite=True, progress=progress)
    return out


def has_upstream_weights(folder: Path) -> bool:
    """Whether ``folder`` holds an upstream checkpoint file (what ``zoo.load`` converts from a folder)."""
    return any(p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt") for p in folder.iterdir())


def _folder_digest(folder: Path) -> str:
    """A cache key for an upstream checkpoint folder (e.g. BigGAN's pytorch_model.bin + config.json)."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(q for q in folder.iterdir() if q.is_file()):
        h.update(f"{p.name}\0{sha256_file(p)}\0".encode())
    return h.hexdigest()


def load(name_or_path: str | os.PathLike[str], device: str | torch.device = "cpu", *, quiet: bool = False,
         **kwargs: Any) -> torch.nn.Module:
    """Load a generator by registry name, converted folder, upstream checkpoint file, or ``hf-hub:`` id.

    Registry names resolve in order: embedded in the package -> local converted cache -> Hub (when the
    entry names a repo) -> the original URL, downloaded, verified and converted on first use.
    """
    spec = os.fspath(name_or_path)
    if not spec.strip():  # Path("") is the current directory: never load whatever happens to be there
        raise UnknownModelError("empty model name: pass a registry name (`ganzoo list`), a converted model "
                                "folder or a checkpoint file")
    if spec.startswith("hf-hub:"):
        from .hub import load_from_hub

        return load_from_hub(spec[len("hf-hub:"):], device=device, quiet=quiet, **kwargs)
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir() and not path.is_file():
            raise ConversionError(f"{spec} is not a regular file or folder (a device, socket or pipe?): pass a "
                                  "checkpoint file or a converted model folder")
        if path.is_dir():
            # An upstream folder may have a config.json of its own (BigGAN): no model.safetensors there.
            if (path / CONFIG_NAME).is_file() and ((path / WEIGHTS_NAME).is_file() or not has_upstream_weights(path)):
                return load_folder(path, device)
            try:
                return load_folder(_convert_file_cached(path, quiet), device)
            except ConversionError as e:
                raise ConversionError(f"{path} is neither a ganzoo model folder nor a known checkpoint folder: {e}") \
                    from None
        return load_folder(_convert_file_cached(path, quiet), device)
    if not is_registered(spec) and (os.sep in spec or spec.endswith((".pkl", ".pt", ".pth", ".bin", ".ckpt", ".tar"))):
        raise FileNotFoundError(f"no such file or folder: {spec}")
    entry = get_entry(spec)
    _licence_notice(entry, quiet)
    if entry.embedded:
        model = load_folder(EMBEDDED_DIR / entry.name, device)
    elif entry.hub_repo and not (converted_dir(entry.name) / CONFIG_NAME).is_file():
        model = _load_via_hub(entry, device, quiet)
    else:
        from .download import ensure_converted

        model = load_folder(ensure_converted(entry, quiet=quiet), device)
    model.model_info["model_name"] = entry.name
    return model


def _load_via_hub(entry: ModelEntry, device: str | torch.device, quiet: bool) -> torch.nn.Module:
    """The entry's converted Hub repo; when that is unavailable, convert the original file instead."""
    from .download import ensure_converted
    from .errors import OfflineError
    from .hub import HubError, load_from_hub

    try:
        return load_from_hub(entry.hub_repo or "", device=device, quiet=quiet)
    except (HubError, OfflineError) as e:
        if not quiet:
            print(f"ganzoo: {entry.name}: Hub copy unavailable ({e}); converting the original file", file=sys.stderr)
        return load_folder(ensure_converted(entry, quiet=quiet), device)


def load_embedded_or_cached(entry: ModelEntry) -> Path | None:
    """The local converted folder for ``entry`` if present (embedded or cache), else ``None``."""
    if entry.embedded:
        return EMBEDDED_DIR / entry.name
    d = converted_dir(entry.name)
    return d if (d / CONFIG_NAME).is_file() else None
