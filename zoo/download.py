"""Convert-on-first-use: download a registry entry's original file, verify it, convert it, cache it."""

from __future__ import annotations

import os
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

from filelock import FileLock
from tqdm.auto import tqdm

from .errors import ConversionError, OfflineError
from .format import CONFIG_NAME, sha256_file
from .loading import cache_dir, converted_dir
from .registry import ModelEntry

CONNECT_TIMEOUT_S = float(os.environ.get("GANZOO_CONNECT_TIMEOUT", "1.5"))
CHUNK = 1 << 20


def is_offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
               for v in ("GANZOO_OFFLINE", "HF_HUB_OFFLINE"))


def _offline_message(entry: ModelEntry, tried: str) -> str:
    return (f"{entry.name} is not cached and cannot be downloaded ({tried}). Download {entry.url} yourself "
            f"and load it with zoo.load('path/to/{entry.source_file or 'checkpoint'}') or "
            f"`ganzoo convert FILE {converted_dir(entry.name)}`")


def download(url: str, dest: Path, *, expected_sha256: str | None = None, expected_size: int | None = None,
             quiet: bool = False, desc: str | None = None) -> Path:
    """Download ``url`` to ``dest`` via a ``.part`` file (resumed when the server allows), then verify."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "ganzoo"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    with urllib.request.urlopen(req, timeout=CONNECT_TIMEOUT_S * 20) as resp:
        ctype = resp.headers.get("Content-Type", "")
        if "text/html" in ctype:
            raise ConversionError(f"{url} returned an HTML page, not a checkpoint (a login or error page?)")
        if offset and resp.status != 206:
            offset = 0  # server ignored the range: start over
        total = resp.headers.get("Content-Length")
        total = int(total) + offset if total is not None else expected_size
        mode = "ab" if offset else "wb"
        with open(part, mode) as f, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                         desc=desc or dest.name, disable=quiet, file=sys.stderr) as bar:
            while True:
                block = resp.read(CHUNK)
                if not block:
                    break
                f.write(block)
                bar.update(len(block))
    size = part.stat().st_size
    if expected_size is not None and size != expected_size:
        part.unlink(missing_ok=True)
        raise ConversionError(f"download of {url} is {size} bytes, expected {expected_size}; try again")
    if expected_sha256:
        digest = sha256_file(part)
        if digest != expected_sha256:
            part.unlink(missing_ok=True)
            raise ConversionError(f"download of {url} has sha256 {digest[:16]}..., expected {expected_sha256[:16]}...;"
                                  " the file is corrupt or changed upstream")
    os.replace(part, dest)
    return dest


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
        downloads = cache_dir() / "downloads"
        src = downloads / (entry.source_file or entry.url.rsplit("/", 1)[-1]).replace("/", "_")
        try:
            download(entry.url, src, expected_sha256=entry.sha256, expected_size=entry.size_bytes, quiet=quiet,
                     desc=entry.name)
            companions = [download(u, downloads / u.rsplit("/", 1)[-1], quiet=quiet) for u in entry.companion_urls]
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            if isinstance(e, FileExistsError):
                raise
            raise OfflineError(_offline_message(entry, f"tried {entry.url}: {getattr(e, 'reason', e)}")) from None
        from converters import convert

        progress = None if quiet else (lambda msg: print(f"ganzoo: {msg}", file=sys.stderr))
        try:
            convert(src, out, format=entry.source_format, model_name=entry.name, overwrite=True, progress=progress)
        except BaseException:
            shutil.rmtree(out, ignore_errors=True)
            raise
        src.unlink(missing_ok=True)
        for c in companions:
            c.unlink(missing_ok=True)
    return out
