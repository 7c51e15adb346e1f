"""Convert-on-first-use: download a registry entry's original file, verify it, convert it, cache it.

Crash safety: bytes go to ``<file>.part`` (resumed with an HTTP Range request next time), which is renamed to
its final name only after the size / sha256 / content checks pass; the converted folder appears in the cache
only through ``write_model_folder``'s atomic rename. A per-model file lock makes concurrent loads download
and convert once.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

from filelock import FileLock
from tqdm.auto import tqdm

from .errors import ConversionError, OfflineError
from .fileio import chmod_like_new_file
from .format import CONFIG_NAME, sha256_file
from .loading import has_upstream_weights, cache_dir, converted_dir, converted_file_dir
from .registry import ModelEntry

CONNECT_TIMEOUT_S = float(os.environ.get("GANZOO_CONNECT_TIMEOUT", "1.5"))
CHUNK = 1 << 20
#: Leading bytes of web pages served instead of a file (login walls, error pages, CDN interstitials).
_HTML_PREFIXES = (b"<!doctype", b"<html", b"<head", b"<?xml", b"{\"error")


class DownloadError(ConversionError):
    """A download finished but its bytes are not the expected file (size, sha256 or content)."""


def is_offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
               for v in ("GANZOO_OFFLINE", "HF_HUB_OFFLINE"))


def downloads_dir() -> Path:
    return cache_dir() / "downloads"


def _offline_message(entry: ModelEntry, tried: str) -> str:
    return (f"{entry.name} is not cached and cannot be downloaded ({tried}). Download {entry.url} yourself "
            f"and load it with zoo.load('path/to/{entry.source_file or 'checkpoint'}') or "
            f"`ganzoo convert FILE {converted_dir(entry.name)}`")


def _looks_like_html(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    return head.startswith(_HTML_PREFIXES)


def _fetch(url: str, part: Path, offset: int, expected_size: int | None, quiet: bool, desc: str) -> int | None:
    """Append the bytes from ``offset`` on to ``part``; returns the expected total (-1: range refused)."""
    req = urllib.request.Request(url, headers={"User-Agent": "ganzoo", "Accept-Encoding": "identity"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    try:
        resp = urllib.request.urlopen(req, timeout=CONNECT_TIMEOUT_S * 20)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            return -1
        raise
    with resp:
        ctype = resp.headers.get("Content-Type", "")
        if "text/html" in ctype:
            raise DownloadError(f"{url} returned an HTML page, not a checkpoint (a login or error page?); "
                                "nothing was saved")
        if offset and resp.status != 206:
            offset = 0  # the server ignored the range: start over
        length = resp.headers.get("Content-Length")
        total = int(length) + offset if length is not None and length.isdigit() else expected_size
        with open(part, "ab" if offset else "wb") as f, \
                tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=desc, disable=quiet, file=sys.stderr, leave=False) as bar:
            try:
                while True:
                    block = resp.read(CHUNK)
                    if not block:
                        break
                    f.write(block)
                    bar.update(len(block))
            except (http.client.IncompleteRead, ConnectionError, socket.timeout) as e:
                f.flush()
                raise OfflineError(f"download of {url} was interrupted after {f.tell()} bytes "
                                   f"({type(e).__name__}); run the same command again to resume") from None
    return total


def download(url: str, dest: Path, *, expected_sha256: str | None = None, expected_size: int | None = None,
             quiet: bool = False, desc: str | None = None) -> Path:
    """Download ``url`` to ``dest`` via ``dest.part`` (resumed when the server allows), then verify.

    ``dest`` exists only once every check passed. A connection that ends early keeps the ``.part`` file
    for the next attempt and raises; a file that fails a check is deleted and raises :class:`DownloadError`.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    if expected_size is not None and offset > expected_size:
        part.unlink()
        offset = 0
    if expected_size is not None and offset == expected_size:
        total: int | None = expected_size  # a previous attempt got every byte; only the checks remain
    else:
        total = _fetch(url, part, offset, expected_size, quiet, desc or dest.name)
        if total == -1:  # the server refused our range: start over
            part.unlink(missing_ok=True)
            total = _fetch(url, part, 0, expected_size, quiet, desc or dest.name)
    size = part.stat().st_size
    if total is not None and size < total:
        raise OfflineError(f"download of {url} ended early: got {size} of {total} bytes; the partial file is kept "
                           "as .part and the next attempt resumes it")
    problem = None
    if expected_size is not None and size != expected_size:
        problem = f"is {size} bytes, expected {expected_size}"
    elif size == 0:
        problem = "is empty"
    elif _looks_like_html(part):
        problem = "is a web page (HTML), not a checkpoint (a login or error page?)"
    elif expected_sha256:
        digest = sha256_file(part)
        if digest != expected_sha256.lower():
            problem = (f"has sha256 {digest[:16]}..., expected {expected_sha256[:16]}... (corrupt, or changed "
                       "upstream)")
    if problem:
        part.unlink(missing_ok=True)
        raise DownloadError(f"download of {url} {problem}; it was deleted and nothing was cached - try again")
    chmod_like_new_file(part)
    os.replace(part, dest)
    return dest


def source_path(entry: ModelEntry) -> Path:
    """Where ``entry``'s original file is downloaded to (kept only until it is converted)."""
    fname = (entry.source_file or entry.url.rsplit("/", 1)[-1] or "checkpoint").replace("/", "_")
    return downloads_dir() / f"{entry.name}--{fname}"


def ensure_converted(entry: ModelEntry, quiet: bool = False) -> Path:
    """The converted folder for ``entry``: from the cache, else downloaded and converted (once, under a lock)."""
    out = converted_dir(entry.name)
    if (out / CONFIG_NAME).is_file():
        return out
    if is_offline():
        raise OfflineError(_offline_message(entry, "offline mode is on: GANZOO_OFFLINE / HF_HUB_OFFLINE"))
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if (out / CONFIG_NAME).is_file():  # another process finished while we waited
            return out
        src = source_path(entry)
        reuse = src.is_file() and entry.sha256 is not None and sha256_file(src) == entry.sha256
        # Companion files (e.g. BigGAN's config.json) are saved with the same prefix so the converter pairs them.
        companions = [(u, src.with_name(f"{entry.name}--{u.rsplit('/', 1)[-1]}")) for u in entry.companion_urls]
        for url, dest in ([] if reuse else [(entry.url, src)]) + companions:
            main = url == entry.url
            try:
                download(url, dest, expected_sha256=entry.sha256 if main else None,
                         expected_size=entry.size_bytes if main else None, quiet=quiet, desc=entry.name)
            except (OfflineError, DownloadError):
                raise
            except urllib.error.HTTPError as e:
                raise OfflineError(_offline_message(entry, f"{url} answered HTTP {e.code} {e.reason}")) from None
            except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException) as e:
                if isinstance(e, (FileExistsError, PermissionError)):
                    raise
                raise OfflineError(_offline_message(entry, f"tried {url}: {getattr(e, 'reason', e)}")) from None
        from .plugins import converter

        convert = converter()
        progress = None if quiet else (lambda msg: print(f"ganzoo: {msg}", file=sys.stderr))
        try:
            convert(src, out, format=entry.source_format, model_name=entry.name, overwrite=True, progress=progress)
        except ConversionError as e:
            for f in [src] + [d for _, d in companions]:  # files we cannot convert are not worth keeping
                f.unlink(missing_ok=True)
            raise ConversionError(f"{entry.name}: the downloaded file could not be converted ({e}); it was "
                                  "deleted - try again, or report the URL as changed") from None
        for f in [src] + [d for _, d in companions]:
            f.unlink(missing_ok=True)
    return out


def cached_models() -> list[dict[str, object]]:
    """Converted models in the cache: name, folder, size in bytes (for ``ganzoo cache list``)."""
    out = []
    for root, kind in ((cache_dir() / "models", "registry"), (cache_dir() / "converted-files", "file")):
        if not root.is_dir():
            continue
        for d in sorted(root.iterdir()):
            if d.is_dir() and not d.name.startswith(".") and (d / CONFIG_NAME).is_file():
                size = sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
                out.append({"name": d.name, "kind": kind, "path": str(d), "size_bytes": size})
    return out


def partial_downloads() -> list[Path]:
    d = downloads_dir()
    return sorted(p for p in d.iterdir() if p.is_file()) if d.is_dir() else []


def cache_targets(name: str) -> list[Path]:
    """What ``clear_cache(name)`` removes; empty when ``name`` matches nothing in the cache.

    ``name`` is a name ``ganzoo cache list`` shows (a registry model, or the key of a converted file, with
    its partial downloads), a path it shows (a cached folder or partial download), or an upstream file or
    checkpoint folder whose conversion is cached.
    """
    roots = (cache_dir() / "models", cache_dir() / "converted-files")
    if name and not name.startswith(".") and not any(s and s in name for s in ("/", os.sep, os.altsep)):
        targets = [r / name for r in roots if (r / name).is_dir()]
        targets += [p for p in partial_downloads() if p.name.startswith(f"{name}--")]
        if targets:
            return targets
    path = Path(name).expanduser()
    if not name or not path.exists():
        return []
    resolved = path.resolve()
    listed = [Path(str(m["path"])) for m in cached_models()] + partial_downloads()
    for p in listed:
        if p.resolve() == resolved:
            return [p]
    if resolved.is_relative_to(cache_dir().resolve()):  # the cache's own folders, locks, temporaries
        return []
    if path.is_dir() and not has_upstream_weights(path):  # not something zoo.load converts
        return []
    out = converted_file_dir(path) if path.is_file() or path.is_dir() else None  # never hash a pipe or device
    return [out] if out is not None and out.is_dir() else []


def clear_cache(name: str | None = None) -> list[str]:
    """Delete the cache entry ``name`` (see :func:`cache_targets`), or everything ganzoo cached; returns what was
    removed (empty when ``name`` matches nothing)."""
    removed: list[str] = []
    if name is not None:
        targets = cache_targets(name)
    else:
        targets = [cache_dir() / "models", cache_dir() / "converted-files", downloads_dir()]
    for t in targets:
        if t.is_dir():
            shutil.rmtree(t)
            removed.append(str(t))
        elif t.exists():
            t.unlink()
            removed.append(str(t))
    return removed
