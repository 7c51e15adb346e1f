"""Process every photo of a folder with any per-photo function: one result folder per photo, resumable,
failures recorded in ``report.json`` while the other photos continue; local processes or Ray actors.

``map_folder(make_fn, photos, out)``: ``make_fn()`` runs once per worker and returns the per-photo
function ``fn(photo_path, result_dir) -> dict`` (it loads its model there, once); ``fn`` writes its files
into ``result_dir`` (a temporary folder, renamed to ``out/<photo stem>/`` when ``fn`` returns) and returns
what goes into the report for that photo. ``ganzoo invert`` over a folder is built on it; any other
per-photo command (e.g. editing) plugs in the same way.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock, Timeout
from PIL import Image
from tqdm.auto import tqdm

from zoo.fileio import atomic_dir, write_text_atomic

from .engines import run_local, run_ray
from .shards import DatasetError, env_for_workers

REPORT_NAME = "report.json"
PhotoFn = Callable[[Path, Path], dict[str, Any]]


@dataclass
class FolderReport:
    """Per photo: ``{"status": "ok" | "failed", "error": ..., "result": ...}``, plus run totals."""

    out: str
    report: str
    photos: dict[str, dict[str, Any]] = field(default_factory=dict)
    processed: int = 0
    kept: int = 0
    failed: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> int:
        return sum(1 for r in self.photos.values() if r.get("status") == "ok")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def list_photos(folder: Path) -> list[Path]:
    """Image files in ``folder`` (not recursive), by name; the extensions PIL can open."""
    exts = {e.lower() for e in Image.registered_extensions()}
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in exts
                  and not p.name.startswith("."))


def result_names(photos: list[Path]) -> dict[str, Path]:
    """Result folder name per photo: its stem, or ``stem_ext`` when two photos share a stem."""
    stems: dict[str, int] = {}
    for p in photos:
        stems[p.stem] = stems.get(p.stem, 0) + 1
    return {(p.stem if stems[p.stem] == 1 else f"{p.stem}_{p.suffix.lstrip('.').lower()}"): p for p in photos}


class PhotoWorker:
    """Runs the per-photo function; never raises for one bad photo (the error goes into its record)."""

    def __init__(self, make_fn: Callable[[], PhotoFn], out: str) -> None:
        self.fn = make_fn()
        self.out = Path(out)

    def run(self, task: tuple[str, str]) -> dict[str, Any]:
        name, photo = task
        t0 = time.perf_counter()
        try:
            with atomic_dir(self.out / name) as tmp:
                result = self.fn(Path(photo), tmp)
                (tmp / ".done").write_text(json.dumps(result, default=str) + "\n")
            status: dict[str, Any] = {"status": "ok", "result": result}
        except Exception as e:  # noqa: BLE001 - one bad photo must not stop the others; it is reported
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            status = {"status": "failed", "error": f"{type(e).__name__}: {msg}",
                      "where": traceback.format_exc(limit=-1).strip().splitlines()[-1]}
        return {"name": name, "photo": photo, "seconds": round(time.perf_counter() - t0, 3), **status}


def map_folder(make_fn: Callable[[], PhotoFn], photos: str | os.PathLike[str], out: str | os.PathLike[str], *,
               engine: str = "local", num_workers: int = 1, address: str | None = None, use_gpu: bool = False,
               settings: dict[str, Any] | None = None, quiet: bool = True,
               on_photo: Callable[[dict[str, Any]], None] | None = None) -> FolderReport:
    """Apply ``make_fn()`` to every photo in ``photos``; results under ``out/<stem>/``, summary in
    ``out/report.json``. Rerunning skips photos already done with the same ``settings`` and retries the
    failed ones; other settings into the same folder refuse. ``make_fn`` must pickle for more than one
    worker (a module-level function or ``functools.partial``)."""
    src = Path(photos)
    if not src.is_dir():
        raise FileNotFoundError(f"no such folder: {src}")
    items = result_names(list_photos(src))
    if not items:
        raise DatasetError(f"{src} has no image files (.png, .jpg, .webp, ...)")
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(dest / ".ganzoo-folder.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise DatasetError(f"another ganzoo run is writing into {dest}; wait for it or pick another --outdir") \
            from None
    t0 = time.perf_counter()
    try:
        report_path = dest / REPORT_NAME
        old: dict[str, Any] = {}
        if report_path.is_file():
            old = json.loads(report_path.read_text(encoding="utf-8"))
            if old.get("settings") != (settings or {}):
                raise DatasetError(f"{dest} holds results made with other settings ({old.get('settings')}); use "
                                   "another --outdir or the same settings to resume")
        # the report describes the photos in the folder now (a photo removed since keeps its results on disk)
        report = FolderReport(out=str(dest), report=str(report_path),
                              photos={k: v for k, v in old.get("photos", {}).items() if k in items})
        for p in dest.iterdir():  # temporaries of a killed worker
            if p.name.startswith(".") and ".tmp-" in p.name:
                import shutil

                shutil.rmtree(p, ignore_errors=True)
        todo = []
        for name, photo in items.items():
            rec = report.photos.get(name)
            if rec and rec.get("status") == "ok" and (dest / name / ".done").is_file():
                report.kept += 1
                continue
            todo.append((name, str(photo)))

        def save() -> None:
            write_text_atomic(report_path, json.dumps({"settings": settings or {}, "photos": report.photos},
                                                      indent=1, default=str) + "\n")

        with tqdm(total=len(items), initial=report.kept, unit="photo", disable=quiet) as bar:
            def landed(record: dict[str, Any]) -> None:
                report.photos[record.pop("name")] = record
                report.processed += 1
                report.failed += record["status"] == "failed"
                save()
                bar.update(1)
                if on_photo is not None:
                    on_photo(record)

            make_worker = _PhotoWorkerFactory(make_fn, str(dest))
            if todo:
                if engine == "ray":
                    run_ray(make_worker, todo, num_workers, landed, address=address, env=env_for_workers(),
                            use_gpu=use_gpu)
                elif engine == "local":
                    run_local(make_worker, todo, num_workers, landed)
                else:
                    raise DatasetError(f"unknown engine {engine!r}; use local or ray")
            save()
        report.seconds = round(time.perf_counter() - t0, 3)
        return report
    finally:
        lock.release()
        Path(lock.lock_file).unlink(missing_ok=True)


class _PhotoWorkerFactory:
    def __init__(self, make_fn: Callable[[], PhotoFn], out: str) -> None:
        self.make_fn, self.out = make_fn, out

    def __call__(self) -> PhotoWorker:
        return PhotoWorker(self.make_fn, self.out)
