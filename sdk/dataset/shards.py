"""Seed blocks, shard naming, the dataset manifest and its per-shard sha256 records.

A dataset is a sequence of seeds cut into shards of ``shard_size`` consecutive seeds (positions in the
seed list, so the cut never depends on the number of workers). A shard is named by its first and last
seed and holds every image of its seeds (one per seed, or one per seed and class with ``class_idx="all"``).
``manifest.json`` at the top of the dataset folder records the settings and, per finished shard, its
seed range, image count, size and sha256; a shard on disk without a matching record is regenerated.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from zoo.errors import ZooError
from zoo.fileio import write_text_atomic

MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".ganzoo-dataset.lock"
DATASET_FORMAT_VERSION = 1
SEED_DIGITS = 6
MAX_SEED = 2 ** 32


class DatasetError(ZooError, ValueError):
    """A dataset request or folder is inconsistent (bad seeds, other settings already in the folder, ...)."""


class DatasetSettingsError(DatasetError):
    """The output folder holds a dataset made with other settings."""


# --- seeds ---------------------------------------------------------------------------------------------------

def parse_seed_ranges(seeds: str | int | range | Iterable[int]) -> list[tuple[int, int]]:
    """Seeds as sorted, disjoint, inclusive ``(lo, hi)`` ranges, without expanding them.

    Accepts ``"0-49999,60000"``, a ``range``, an int ``N`` (seeds ``0..N-1``) or any iterable of ints.
    """
    pairs: list[tuple[int, int]] = []
    if isinstance(seeds, bool):
        raise DatasetError(f"bad seeds {seeds!r}: give a count, a range or a list like 0-49999")
    if isinstance(seeds, int):
        if seeds < 1:
            raise DatasetError(f"--num must be >= 1, got {seeds}")
        pairs = [(0, seeds - 1)]
    elif isinstance(seeds, range):
        if seeds.step != 1:
            pairs = [(s, s) for s in seeds]
        elif len(seeds):
            pairs = [(seeds.start, seeds.stop - 1)]
    elif isinstance(seeds, str):
        for part in seeds.split(","):
            part = part.strip()
            if not part:
                continue
            m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
            if not m:
                raise DatasetError(f"bad seed list {seeds!r}: use numbers and ranges like 0-49999,60000")
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) is not None else lo
            if hi < lo:
                raise DatasetError(f"bad seed range {part!r}: the end is before the start")
            pairs.append((lo, hi))
    else:
        pairs = [(int(s), int(s)) for s in seeds]
    if not pairs:
        raise DatasetError(f"no seeds in {seeds!r}")
    pairs.sort()
    merged: list[tuple[int, int]] = []
    for lo, hi in pairs:
        if lo < 0 or hi >= MAX_SEED:
            raise DatasetError(f"seed range {lo}-{hi} is outside [0, 2**32)")
        if merged and lo <= merged[-1][1]:
            raise DatasetError(f"seed {lo} is given twice: every seed appears once in a dataset")
        if merged and lo == merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def count_seeds(ranges: Sequence[tuple[int, int]]) -> int:
    return sum(hi - lo + 1 for lo, hi in ranges)


def format_ranges(ranges: Sequence[tuple[int, int]]) -> str:
    """``[(0, 9), (12, 12)]`` -> ``"0-9,12"`` (the CLI's spelling)."""
    return ",".join(f"{lo}-{hi}" if hi > lo else str(lo) for lo, hi in ranges)


# --- shards --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ShardSpec:
    """One block of consecutive seeds: ``ranges`` (inclusive) in seed order."""

    index: int
    ranges: tuple[tuple[int, int], ...]

    @property
    def first(self) -> int:
        return self.ranges[0][0]

    @property
    def last(self) -> int:
        return self.ranges[-1][1]

    @property
    def name(self) -> str:
        return shard_name(self.first, self.last)

    def seeds(self) -> list[int]:
        return [s for lo, hi in self.ranges for s in range(lo, hi + 1)]

    def __len__(self) -> int:
        return count_seeds(self.ranges)


def shard_name(first: int, last: int) -> str:
    return f"seeds{first:0{SEED_DIGITS}d}-{last:0{SEED_DIGITS}d}"


def seed_key(seed: int, cls: int | None = None, class_key: bool = False) -> str:
    """``seed000042`` (or ``seed000042-c0007`` when every class of a seed is in the dataset)."""
    key = f"seed{seed:0{SEED_DIGITS}d}"
    return f"{key}-c{cls:04d}" if class_key and cls is not None else key


def plan_shards(ranges: Sequence[tuple[int, int]], shard_size: int) -> Iterator[ShardSpec]:
    """Cut the seed list into shards of ``shard_size`` seeds (the last one may be shorter)."""
    if shard_size < 1:
        raise DatasetError(f"shard_size must be >= 1, got {shard_size}")
    index = 0
    current: list[tuple[int, int]] = []
    room = shard_size
    for lo, hi in ranges:
        while lo <= hi:
            take = min(room, hi - lo + 1)
            current.append((lo, lo + take - 1))
            lo += take
            room -= take
            if room == 0:
                yield ShardSpec(index, tuple(current))
                index += 1
                current, room = [], shard_size
    if current:
        yield ShardSpec(index, tuple(current))


# --- hashing -------------------------------------------------------------------------------------------------

def sha256_path(path: Path) -> tuple[str, int]:
    """(sha256, size) of a shard: a file's own digest, or for a folder a digest over its sorted
    ``name\\0sha256(file)\\n`` lines (any changed, missing or extra file changes it)."""
    if path.is_dir():
        h = hashlib.sha256()
        size = 0
        for f in sorted(path.iterdir()):
            d, n = _sha256_file(f)
            h.update(f"{f.name}\0{d}\n".encode())
            size += n
        return h.hexdigest(), size
    return _sha256_file(path)


def _sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            n += len(block)
    return h.hexdigest(), n


def path_size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.iterdir())
    return path.stat().st_size


# --- manifest ------------------------------------------------------------------------------------------------

@dataclass
class Manifest:
    """``manifest.json``: what the dataset is (``settings``) and which shards are done (``shards``)."""

    settings: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)
    shards: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> str:
        head = {"ganzoo_dataset": DATASET_FORMAT_VERSION, **self.info, "settings": self.settings}
        text = json.dumps(head, indent=1)[:-2]  # without the closing brace: the shards follow, one per line
        rows = [f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in sorted(self.shards.items())]
        return text + ',\n "shards": {' + ("\n" + ",\n".join(rows) + "\n " if rows else "") + "}\n}\n"

    def save(self, folder: Path) -> None:
        write_text_atomic(folder / MANIFEST_NAME, self.to_json())

    @classmethod
    def load(cls, folder: Path) -> Manifest | None:
        p = folder / MANIFEST_NAME
        if not p.is_file():
            return None
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            settings = data.pop("settings")
            shards = data.pop("shards")
            data.pop("ganzoo_dataset")
        except (ValueError, KeyError, TypeError):
            raise DatasetError(f"{p} is not a ganzoo dataset manifest; pick another --out folder") from None
        return cls(settings=settings, info=data, shards=shards)


def check_settings(old: dict[str, Any], new: dict[str, Any], folder: Path) -> None:
    """Refuse to mix two datasets in one folder."""
    diff = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    if diff:
        k = diff[0]
        raise DatasetSettingsError(
            f"{folder} holds a dataset made with other settings ({k}: {old.get(k)!r} there, {new.get(k)!r} now"
            f"{f'; also {len(diff) - 1} more' if len(diff) > 1 else ''}); use another --out folder or the same "
            "settings to resume")


def shard_is_valid(path: Path, record: dict[str, Any] | None, full: bool = True) -> bool:
    """A shard counts as done only when its record exists and its size (and sha256) match."""
    if record is None or not path.exists():
        return False
    try:
        if path_size(path) != record.get("size"):
            return False
        return not full or sha256_path(path)[0] == record.get("sha256")
    except OSError:
        return False


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def clean_stale_temporaries(folder: Path) -> int:
    """Remove temporary shard files a killed writer left behind (the caller holds the folder lock)."""
    n = 0
    for p in folder.iterdir():
        if p.name.startswith(".seeds") and (".tmp" in p.name or ".old-" in p.name):
            remove_path(p)
            n += 1
    return n


def env_for_workers() -> dict[str, str]:
    """The ganzoo settings (cache folder, offline mode, ...) a worker process must see like the driver."""
    return {k: v for k, v in os.environ.items() if k.startswith("GANZOO_")}
