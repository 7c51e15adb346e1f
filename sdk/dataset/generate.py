"""``generate_dataset``: seeds -> sharded dataset folder, resumable and exactly once per seed."""

from __future__ import annotations

import functools
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from .engines import ShardWorker, load_generator, run_local, run_ray
from .shards import (LOCK_NAME, MANIFEST_NAME, DatasetError, Manifest, check_settings, clean_stale_temporaries,
                     count_seeds, env_for_workers, format_ranges, parse_seed_ranges, plan_shards, remove_path,
                     shard_is_valid)
from .writers import FORMATS, shard_path

ENGINES = ("local", "ray")


@dataclass
class DatasetReport:
    """What a ``generate_dataset`` run found and did."""

    out: str
    manifest: str
    format: str
    engine: str
    num_workers: int
    shards_total: int
    shards_written: list[str] = field(default_factory=list)
    shards_kept: int = 0
    shards_regenerated: list[str] = field(default_factory=list)
    images_total: int = 0
    images_written: int = 0
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return self.shards_kept + len(self.shards_written) == self.shards_total

    @property
    def images_per_s(self) -> float:
        return self.images_written / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "complete": self.complete, "images_per_s": round(self.images_per_s, 3)}


def _class_mode(G: Any, class_idx: int | str | None) -> int | str | None:
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    if c_dim == 0:
        if class_idx is not None:
            raise DatasetError("this model is unconditional: drop class_idx / --class")
        return None
    if class_idx is None:
        raise DatasetError(f"this model is conditional ({c_dim} classes): give a class (--class N or a class "
                           "name; class_idx in Python), 'all' (every class of every seed) or 'uniform' (seed k gets "
                           f"class k mod {c_dim})")
    if class_idx in ("all", "uniform"):
        return class_idx
    from sdk.classes import resolve_class

    idx = resolve_class(G, class_idx)
    if not isinstance(idx, int) or not 0 <= idx < c_dim:
        raise DatasetError(f"class index {class_idx} out of range: this model has classes 0..{c_dim - 1}")
    return idx


def _worker_model_spec(model: str | os.PathLike[str], backend: str) -> str:
    """A registry name stays a name (each node resolves it from its own cache); a path becomes absolute."""
    spec = os.fspath(model)
    p = Path(spec).expanduser()
    if backend == "onnx" or p.exists():
        return str(p.resolve())
    return spec


def generate_dataset(model: str | os.PathLike[str], out: str | os.PathLike[str], *,
                     seeds: str | int | range | Iterable[int] = range(1000), truncation_psi: float = 1.0,
                     truncation_cutoff: int | None = None, class_idx: int | str | None = None,
                     noise_mode: str = "const", batch_size: int = 1, format: str = "png", shard_size: int = 1000,
                     engine: str = "local", num_workers: int = 1, address: str | None = None,
                     backend: str = "torch", device: str = "cpu", verify: bool = True, quiet: bool = True,
                     on_shard: Callable[[dict[str, Any]], None] | None = None) -> DatasetReport:
    """Generate images for ``seeds`` from ``model`` into sharded files under ``out``.

    Image ``k`` equals ``sdk.sample(G, [k])`` / ``ganzoo sample MODEL --seeds k`` bit for bit whatever the
    engine or number of workers (``batch_size > 1`` is faster on GPUs; on models whose kernels round
    differently at other batch sizes it is then equal up to float rounding, so it is part of the settings).
    Rerunning the same call writes only the missing shards; a shard whose size or sha256 no longer matches
    its record (``verify=False``: size only) is regenerated; other settings into the same folder refuse.
    ``class_idx``: an index or name, ``"all"`` (every class per seed) or ``"uniform"`` (seed k -> class
    k mod c_dim). ``on_shard(record)`` is called in this process as each shard lands.
    """
    if format not in FORMATS:
        raise DatasetError(f"unknown dataset format {format!r}; use one of {', '.join(FORMATS)}")
    if engine not in ENGINES:
        raise DatasetError(f"unknown engine {engine!r}; use local or ray")
    if backend not in ("torch", "onnx"):
        raise DatasetError(f"unknown backend {backend!r}; use torch or onnx")
    if noise_mode not in ("const", "none"):
        raise DatasetError(f"noise_mode {noise_mode!r} cannot be reproduced per seed; a dataset uses 'const' "
                           "(the default) or 'none'")
    if batch_size < 1 or num_workers < 1 or shard_size < 1:
        raise DatasetError("batch_size, num_workers and shard_size must be >= 1")
    if engine == "local" and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise DatasetError("CUDA is not available on this machine; use --device cpu")
    ranges = parse_seed_ranges(seeds)
    t0 = time.perf_counter()
    G = load_generator(os.fspath(model), backend, "cpu", quiet=quiet)  # licence notice, conversion: once, here
    from sdk.export.exporter import ganzoo_version
    from sdk.latent.latents import generator_sha256, model_id

    mode = _class_mode(G, class_idx)
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    name = model_id(G) or Path(os.fspath(model)).name
    settings = {"model": name, "weights_sha256": generator_sha256(G), "backend": backend, "format": format,
                "shard_size": shard_size, "seeds": format_ranges(ranges), "truncation_psi": float(truncation_psi),
                "truncation_cutoff": truncation_cutoff, "class_idx": mode, "noise_mode": noise_mode,
                "batch_size": batch_size}
    info = {"model": name, "weights_sha256": settings["weights_sha256"], "ganzoo_version": ganzoo_version(),
            "img_resolution": int(G.img_resolution), "img_channels": int(G.img_channels), "c_dim": c_dim,
            "num_images": count_seeds(ranges) * (c_dim if mode == "all" else 1)}
    del G
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise DatasetError(f"another ganzoo run is writing into {folder}; wait for it or pick another --out") \
            from None
    try:
        manifest = Manifest.load(folder)
        if manifest is None:
            if any(p.name not in (LOCK_NAME,) for p in folder.iterdir()):
                raise DatasetError(f"{folder} is not empty and has no {MANIFEST_NAME}; pick an empty or new --out "
                                   "folder")
            manifest = Manifest(settings=settings, info=info)
            manifest.save(folder)
        else:
            check_settings(manifest.settings, settings, folder)
            manifest.info.update(info)
        clean_stale_temporaries(folder)
        per_image = c_dim if mode == "all" else 1
        report = DatasetReport(out=str(folder), manifest=str(folder / MANIFEST_NAME), format=format, engine=engine,
                               num_workers=num_workers, shards_total=0, images_total=info["num_images"])
        todo = []
        for spec in plan_shards(ranges, shard_size):
            report.shards_total += 1
            path = shard_path(folder, spec.name, format)
            record = manifest.shards.get(spec.name)
            if shard_is_valid(path, record, full=verify) and record and record.get("count") == len(spec) * per_image:
                report.shards_kept += 1
                continue
            if record is not None or path.exists():
                report.shards_regenerated.append(spec.name)
                manifest.shards.pop(spec.name, None)
                remove_path(path)
            todo.append(spec)
        if report.shards_regenerated:
            manifest.save(folder)
        job = {"model": _worker_model_spec(model, backend), "backend": backend, "device": device, "out": str(folder),
               "format": format, "batch_size": batch_size, "truncation_psi": float(truncation_psi),
               "truncation_cutoff": truncation_cutoff, "noise_mode": noise_mode, "class_mode": mode, "c_dim": c_dim,
               "meta": {"model": name}}
        done_images = report.images_total - sum(len(s) * per_image for s in todo)
        with tqdm(total=report.images_total, initial=done_images, unit="img", desc=f"generate ({engine})",
                  disable=quiet, smoothing=0.1) as bar:
            def landed(record: dict[str, Any]) -> None:
                manifest.shards[record["name"]] = {k: v for k, v in record.items() if k not in ("pid", "seconds")}
                manifest.save(folder)
                report.shards_written.append(record["name"])
                report.images_written += int(record["count"])
                bar.update(int(record["count"]))
                if on_shard is not None:
                    on_shard(record)

            if todo:
                make_worker = functools.partial(ShardWorker, job)
                if engine == "ray":
                    run_ray(make_worker, todo, num_workers, landed, address=address, env=env_for_workers(),
                            use_gpu=device != "cpu", require_gpu=device.startswith("cuda"))
                else:
                    run_local(make_worker, todo, num_workers, landed)
        report.seconds = round(time.perf_counter() - t0, 3)
        return report
    finally:
        lock.release()
        Path(lock.lock_file).unlink(missing_ok=True)
