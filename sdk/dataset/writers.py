"""Shard writers: a folder of PNGs, a WebDataset ``.tar``, or an ADM-evaluator ``.npz``.

Each writer produces identical bytes for identical images (fixed timestamps, owners and ordering in the
archives), so a shard's sha256 depends only on its content, not on which worker wrote it or when.
Every shard is written under a temporary name and renamed into place.
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image

from zoo.fileio import atomic_dir, atomic_write

FORMATS = ("png", "webdataset", "npz")
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


@dataclass(frozen=True)
class Sample:
    """One generated image: its file key (``seed000042``), seed, class (or None) and uint8 HWC pixels."""

    key: str
    seed: int
    cls: int | None
    pixels: np.ndarray


def shard_path(out: Path, name: str, fmt: str) -> Path:
    """Where shard ``name`` lives: ``out/name/`` (png), ``out/name.tar`` (webdataset), ``out/name.npz``."""
    if fmt == "png":
        return out / name
    if fmt == "webdataset":
        return out / f"{name}.tar"
    if fmt == "npz":
        return out / f"{name}.npz"
    raise ValueError(f"unknown dataset format {fmt!r}; use one of {', '.join(FORMATS)}")


def png_bytes(pixels: np.ndarray) -> bytes:
    """PNG encoding with PIL's defaults, the same bytes ``ganzoo sample`` writes for the same pixels."""
    img = Image.fromarray(pixels[..., 0], mode="L") if pixels.shape[-1] == 1 else Image.fromarray(pixels)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def write_png_shard(path: Path, samples: Sequence[Sample], meta: dict[str, Any]) -> Path:
    with atomic_dir(path) as tmp:
        for s in samples:
            (tmp / f"{s.key}.png").write_bytes(png_bytes(s.pixels))
    return path


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def write_webdataset_shard(path: Path, samples: Sequence[Sample], meta: dict[str, Any]) -> Path:
    """WebDataset layout: ``<key>.png`` + ``<key>.json`` (+ ``<key>.cls`` for conditional models) per sample."""
    with atomic_write(path) as tmp:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for s in samples:
                _tar_add(tar, f"{s.key}.png", png_bytes(s.pixels))
                info = {"seed": s.seed, "class": s.cls, **meta}
                _tar_add(tar, f"{s.key}.json", json.dumps(info, sort_keys=True).encode())
                if s.cls is not None:
                    _tar_add(tar, f"{s.key}.cls", str(s.cls).encode())
    return path


def _npz_add(zf: zipfile.ZipFile, name: str, arr: np.ndarray) -> None:
    info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
    info.external_attr = 0o644 << 16
    with zf.open(info, "w", force_zip64=True) as f:
        np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)


def write_npz_shard(path: Path, samples: Sequence[Sample], meta: dict[str, Any]) -> Path:
    """The guided-diffusion / ADM evaluator layout: ``arr_0`` uint8 NHWC, ``arr_1`` int64 labels (conditional
    models), plus ``seeds``; ``np.load`` reads it, ``np.savez`` writes the same keys."""
    with atomic_write(path, suffix=".tmp.npz") as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            _npz_add(zf, "arr_0", np.stack([s.pixels for s in samples]).astype(np.uint8))
            if any(s.cls is not None for s in samples):
                _npz_add(zf, "arr_1", np.array([s.cls for s in samples], dtype=np.int64))
            _npz_add(zf, "seeds", np.array([s.seed for s in samples], dtype=np.int64))
    return path


WRITERS: dict[str, Callable[[Path, Sequence[Sample], dict[str, Any]], Path]] = {
    "png": write_png_shard, "webdataset": write_webdataset_shard, "npz": write_npz_shard}
