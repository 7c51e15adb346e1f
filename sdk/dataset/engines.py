"""Where shards are made: in this process, a local process pool, or Ray actors, all through ``ShardWorker``.

A ``ShardWorker`` loads the generator once (from the converted cache or a folder, never shipped through
a task queue) and turns one ``ShardSpec`` into one finished shard file plus its record. The engines only
schedule: a bounded number of shards in flight per worker (backpressure, so memory stays flat however
many shards a job has) and a callback per finished shard, so the driver can update the manifest.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

from .shards import DatasetError, ShardSpec, seed_key, sha256_path
from .writers import WRITERS, Sample, shard_path

#: Shards queued per worker beyond the one it is working on: enough to hide the scheduling latency.
IN_FLIGHT_PER_WORKER = 2
#: How often one shard may be retried after its worker died before the run gives up.
MAX_SHARD_RETRIES = 3

OnDone = Callable[[dict[str, Any]], None]


class ShardWorker:
    """Holds one loaded generator; ``run(spec)`` writes shard ``spec`` and returns its record.

    ``job`` is a plain dict (it crosses process boundaries): ``model`` (registry name, folder or .onnx
    path), ``backend``, ``device``, ``out``, ``format``, ``batch_size``, ``truncation_psi``,
    ``truncation_cutoff``, ``noise_mode``, ``class_mode`` (None, an int, "all" or "uniform"), ``c_dim``,
    and ``meta`` (stored with every WebDataset sample).
    """

    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        self.G = load_generator(job["model"], job["backend"], job["device"])
        self.out = Path(job["out"])

    def pid(self) -> int:
        return os.getpid()

    def items(self, spec: ShardSpec) -> list[tuple[int, int | None]]:
        mode, c_dim = self.job["class_mode"], int(self.job["c_dim"])
        if mode == "all":
            return [(s, c) for s in spec.seeds() for c in range(c_dim)]
        if mode == "uniform":
            return [(s, s % c_dim) for s in spec.seeds()]
        return [(s, mode) for s in spec.seeds()]

    def run(self, spec: ShardSpec) -> dict[str, Any]:
        from sdk.images import to_uint8
        from sdk.sampling import generate

        t0 = time.perf_counter()
        job = self.job
        items = self.items(spec)
        class_key = job["class_mode"] == "all"
        samples: list[Sample] = []
        bs = int(job["batch_size"])
        for i in range(0, len(items), bs):
            chunk = items[i:i + bs]
            classes = None if chunk[0][1] is None else [c for _, c in chunk]
            img = generate(self.G, [s for s, _ in chunk], truncation_psi=job["truncation_psi"],
                           truncation_cutoff=job["truncation_cutoff"], class_idx=classes,
                           noise_mode=job["noise_mode"], batch_size=len(chunk),
                           backend="torch")  # G itself (a torch or onnxruntime generator), never a cached choice
            for (s, c), px in zip(chunk, to_uint8(img).numpy()):
                samples.append(Sample(seed_key(s, c, class_key), s, c, px))
        path = shard_path(self.out, spec.name, job["format"])
        WRITERS[job["format"]](path, samples, job.get("meta") or {})
        digest, size = sha256_path(path)
        record = {"name": spec.name, "file": path.name, "seeds": [spec.first, spec.last], "count": len(samples),
                  "size": size, "sha256": digest, "pid": os.getpid(), "seconds": round(time.perf_counter() - t0, 4)}
        if len(spec.ranges) > 1:  # a gap in the seed list inside this shard
            record["ranges"] = [list(r) for r in spec.ranges]
        return record


def load_generator(model: str, backend: str, device: str, quiet: bool = True) -> Any:
    """The generator a worker runs: ``zoo.load`` (torch) or ``sdk.OnnxGenerator`` (onnx)."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if backend == "onnx":
        from sdk.export.onnx_generator import OnnxGenerator

        return OnnxGenerator(model, provider="cuda" if str(device).startswith("cuda") else "cpu", quiet=quiet)
    import zoo

    return zoo.load(model, device=device, quiet=quiet)


# --- local ---------------------------------------------------------------------------------------------------

class Worker(Protocol):
    def run(self, task: Any) -> dict[str, Any]: ...


_POOL_WORKER: Worker | None = None


def _pool_init(make_worker: Callable[[], Worker], threads: int) -> None:
    global _POOL_WORKER
    import torch

    torch.set_num_threads(threads)
    _POOL_WORKER = make_worker()


def _pool_run(task: Any) -> dict[str, Any]:
    assert _POOL_WORKER is not None
    return _POOL_WORKER.run(task)


def run_local(make_worker: Callable[[], Worker], tasks: Iterable[Any], num_workers: int, on_done: OnDone) -> None:
    """One worker: in this process. More: a pool of spawned processes, each holding one ``make_worker()``.

    ``make_worker`` must pickle (a module-level class or ``functools.partial`` of one): it is sent once
    per process, and each process builds its worker (loads its model) once.
    """
    if num_workers <= 1:
        worker = make_worker()
        for task in tasks:
            on_done(worker.run(task))
        return
    threads = max(1, (os.cpu_count() or 1) // num_workers)
    ctx = multiprocessing.get_context("spawn")  # fork after torch has started threads can deadlock
    todo = deque(tasks)
    with cf.ProcessPoolExecutor(num_workers, mp_context=ctx, initializer=_pool_init,
                                initargs=(make_worker, threads)) as pool:
        running: set[cf.Future[dict[str, Any]]] = set()
        try:
            while todo or running:
                while todo and len(running) < num_workers * IN_FLIGHT_PER_WORKER:
                    running.add(pool.submit(_pool_run, todo.popleft()))
                done, running = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    on_done(fut.result())
        except cf.process.BrokenProcessPool:
            raise DatasetError("a worker process died (out of memory, or killed); rerun the same command to "
                               "resume: finished work is kept") from None
        finally:
            for fut in running:
                fut.cancel()


# --- Ray -----------------------------------------------------------------------------------------------------

def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise DatasetError("engine='ray' needs Ray: pip install 'ganzoo[ray]'") from None
    return ray


class RayHost:
    """The Ray actor: builds its worker (loads the generator) once in ``__init__``, then runs tasks."""

    def __init__(self, make_worker: Callable[[], Worker], env: dict[str, str]) -> None:
        os.environ.update(env)
        self.worker = make_worker()

    def pid(self) -> int:
        return os.getpid()

    def run(self, task: Any) -> dict[str, Any]:
        return self.worker.run(task)


def actor_options(ray: Any, use_gpu: bool, num_workers: int, env: dict[str, str],
                  require_gpu: bool = False) -> dict[str, Any]:
    """Resources per actor: one CPU, and a GPU share when the job runs on CUDA and the cluster has GPUs."""
    opts: dict[str, Any] = {"num_cpus": 1, "max_restarts": 0}
    gpus = float(ray.cluster_resources().get("GPU", 0))
    if require_gpu and gpus == 0:
        raise DatasetError("the Ray cluster has no GPUs; use --device cpu (or auto)")
    if gpus > 0 and use_gpu:
        opts["num_gpus"] = 1 if gpus >= num_workers else gpus / num_workers
    env = dict(env)
    if os.environ.get("PYTHONPATH"):  # a source checkout: workers must import the same code
        env.setdefault("PYTHONPATH", os.environ["PYTHONPATH"])
    if env:
        opts["runtime_env"] = {"env_vars": env}
    return opts


def run_ray(make_worker: Callable[[], Worker], tasks: Iterable[Any], num_workers: int, on_done: OnDone, *,
            address: str | None = None, env: dict[str, str] | None = None, use_gpu: bool = False,
            require_gpu: bool = False) -> None:
    """``num_workers`` Ray actors, each holding one ``make_worker()``; an actor that dies is replaced and its
    unfinished tasks are run again (tasks are idempotent: each writes its result under a temporary name)."""
    ray = _ray()
    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        started = True
    try:
        _ray_loop(ray, make_worker, deque(tasks), max(1, num_workers), on_done,
                  actor_options(ray, use_gpu, num_workers, env or {}, require_gpu), env or {})
    finally:
        if started:
            ray.shutdown()


def _task_name(task: Any) -> str:
    return str(getattr(task, "name", task))


def _ray_loop(ray: Any, make_worker: Callable[[], Worker], todo: deque[Any], n: int, on_done: OnDone,
              opts: dict[str, Any], env: dict[str, str]) -> None:
    from ray.exceptions import RayActorError, RayTaskError

    Actor = ray.remote(RayHost)
    actors = [Actor.options(**opts).remote(make_worker, env) for _ in range(n)]
    load = [0] * n
    running: dict[Any, tuple[int, Any]] = {}
    retries: dict[str, int] = {}
    try:
        while todo or running:
            for i in sorted(range(n), key=lambda j: load[j]):
                while todo and load[i] < IN_FLIGHT_PER_WORKER:
                    task = todo.popleft()
                    running[actors[i].run.remote(task)] = (i, task)
                    load[i] += 1
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                i, task = running.pop(ref)
                load[i] -= 1
                try:
                    record = ray.get(ref)
                except RayActorError as e:  # the worker process died (killed, out of memory): redo its task
                    name = _task_name(task)
                    retries[name] = retries.get(name, 0) + 1
                    if retries[name] > MAX_SHARD_RETRIES:
                        why = next((ln.strip() for ln in str(e).splitlines() if "Error" in ln), "")
                        raise DatasetError(f"{name}: its worker died {MAX_SHARD_RETRIES + 1} times (out of memory, "
                                           f"or it cannot load the model{': ' + why[:300] if why else ''}); "
                                           "rerun to resume, finished work is kept") from None
                    todo.appendleft(task)
                    if not _alive(ray, actors[i]):
                        ray.kill(actors[i])
                        actors[i] = Actor.options(**opts).remote(make_worker, env)
                    continue
                except RayTaskError as e:
                    cause = getattr(e, "cause", None)
                    if isinstance(cause, (DatasetError, ValueError, OSError)):
                        raise cause from None
                    raise
                on_done(record)
    finally:
        for a in actors:
            ray.kill(a)


def _alive(ray: Any, actor: Any) -> bool:
    try:
        ray.get(actor.pid.remote(), timeout=60)
        return True
    except Exception:  # noqa: BLE001 - any failure means: make a new one
        return False
