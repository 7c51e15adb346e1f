"""Atomic file writing with ordinary permissions.

Everything ganzoo writes goes to a temporary name in the destination folder first and is renamed into
place, so a crash never leaves a half-written file under the real name. ``tempfile.mkstemp`` and
``mkdtemp`` create their files 0600 / folders 0700; renaming keeps that mode, so without a chmod the
results would be unreadable to other users and web servers whatever the umask. The helpers here give
the result the mode a plain ``open()`` (0666 & ~umask) or ``mkdir()`` (0777 & ~umask) would.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Iterator

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask (read by setting and restoring it, under a lock)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def chmod_like_new_file(path: str | os.PathLike[str]) -> None:
    """Give ``path`` the mode a plain ``open(path, "w")`` would have created it with."""
    os.chmod(path, 0o666 & ~current_umask())


def chmod_like_new_dir(path: str | os.PathLike[str], *, recursive: bool = True) -> None:
    """Give folder ``path`` the mode ``mkdir`` would (and its files/sub-folders theirs when ``recursive``)."""
    mask = current_umask()
    os.chmod(path, 0o777 & ~mask)
    if recursive:
        for root, dirs, files in os.walk(path):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o777 & ~mask)
            for f in files:
                os.chmod(os.path.join(root, f), 0o666 & ~mask)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it gets normal permissions and replaces ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was. ``suffix`` lets tools
    that pick a format from the extension (onnxruntime, PIL) see the right one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        chmod_like_new_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it (and its content) replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        chmod_like_new_dir(tmp)
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """``path.write_bytes(data)``, atomically and with normal permissions."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """``path.write_text(text)``, atomically and with normal permissions."""
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)
