"""Dataset generation throughput on this machine (not a test).

    OMP_NUM_THREADS=1 python benchmarks/bench_dataset.py [--small 96] [--large 8] [--no-ray]

For the embedded default (dcgan-digiface-64) and a StyleGAN2 config-f generator at 256 px with random
weights (the widths of ``bench_generate.py``), prints images/s of

* a plain loop: ``sdk.sample(G, [k])`` + ``sdk.save_image`` per seed, one thread;
* ``generate_dataset(engine="local")`` with 1 worker (in this process) and 2 worker processes;
* ``generate_dataset(engine="ray")`` with 1 and 2 actors on a local Ray cluster (2 CPUs);

each as wall time of the whole call (start-up and model loading included) and as steady state (from the
first to the last finished shard, so start-up is excluded). Every worker runs one thread, so 2 workers
on 2 cores is the scaling test. The Ray overhead per shard is the driver-side time per shard in steady
state minus the time the actor spent inside ``ShardWorker.run``, measured with 1-image shards of the
small model, where it is not hidden behind the work.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sdk  # noqa: E402
import zoo  # noqa: E402
from sdk.dataset import generate_dataset  # noqa: E402
from zoo.format import build_config, write_model_folder  # noqa: E402

SG2_F_256 = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
                 mapping_kwargs={"num_layers": 8}, channel_base=32768, channel_max=512)


def sg2_folder(root: Path) -> Path:
    """A converted-format folder holding a config-f 256 px StyleGAN2 with random weights."""
    import zoo.models.stylegan2 as sg2

    torch.manual_seed(0)
    G = sg2.StyleGAN2Generator(**SG2_F_256)
    cfg = build_config("stylegan2", SG2_F_256, provenance={"source": "random weights (benchmark)"})
    return write_model_folder(root / "sg2-f-256", cfg, G.state_dict())


def plain_loop(model: str, n: int, out: Path) -> float:
    G = zoo.load(model, quiet=True)
    out.mkdir()
    t0 = time.perf_counter()
    for k in range(n):
        sdk.save_image(sdk.sample(G, [k])[0], out / f"seed{k:06d}.png")
    return n / (time.perf_counter() - t0)


def dataset_run(model: str, n: int, shard: int, out: Path, **kw: Any) -> dict[str, float]:
    marks: list[tuple[float, int, int, float]] = []

    def landed(rec: dict[str, Any]) -> None:
        marks.append((time.perf_counter(), rec["pid"], rec["count"], rec["seconds"]))

    t0 = time.perf_counter()
    r = generate_dataset(model, out, seeds=range(n), shard_size=shard, on_shard=landed, **kw)
    wall = time.perf_counter() - t0
    assert r.complete
    # steady state starts once every worker has delivered its first shard (all are loaded and running)
    first: dict[int, float] = {}
    for t, pid, _, _ in marks:
        first.setdefault(pid, t)
    start = max(first.values())
    after = [(t, c, s) for t, _, c, s in marks if t > start]
    steady = (after[-1][0] - start) if after else float("nan")
    return {"wall_ips": n / wall, "steady_ips": sum(c for _, c, _ in after) / steady if after else float("nan"),
            "per_shard_s": steady / len(after) if after else float("nan"),
            "work_per_shard_s": sum(s for _, _, s in after) / len(after) if after else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=96, help="images from the embedded 64 px model")
    ap.add_argument("--large", type=int, default=8, help="images from the 256 px StyleGAN2")
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench-dataset-"))
    models = [("dcgan-digiface-64 (64 px)", "dcgan-digiface-64", args.small, 8),
              ("StyleGAN2 config-f 256 px", str(sg2_folder(work)), args.large, 2)]
    if not args.no_ray:
        import ray

        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = []
    for label, model, n, shard in models:
        ips = plain_loop(model, n, work / f"plain-{len(rows)}")
        rows.append((label, "plain sdk.sample loop", 1, ips, ips))
        runs = [("local", 1), ("local", 2)] + ([] if args.no_ray else [("ray", 1), ("ray", 2)])
        for engine, workers in runs:
            res = dataset_run(model, n, shard, work / f"{engine}{workers}-{len(rows)}", engine=engine,
                              num_workers=workers)
            rows.append((label, f"generate_dataset {engine}", workers, res["wall_ips"], res["steady_ips"]))
            print(f"  {label:28s} {engine:5s} x{workers}: {res['wall_ips']:7.2f} img/s wall, "
                  f"{res['steady_ips']:7.2f} steady", flush=True)
    print(f"\n{args.small} images (64 px, shards of 8) / {args.large} images (256 px, shards of 2); "
          f"{torch.get_num_threads()} thread per worker\n")
    print("| model | run | workers | img/s (wall, with start-up) | img/s (steady) |")
    print("|---|---|---:|---:|---:|")
    for label, run, w, a, b in rows:
        print(f"| {label} | {run} | {w} | {a:.2f} | {b:.2f} |")
    if not args.no_ray:
        n = 48
        res = dataset_run("dcgan-digiface-64", n, 1, work / "overhead-ray", engine="ray", num_workers=1)
        loc = dataset_run("dcgan-digiface-64", n, 1, work / "overhead-local", engine="local", num_workers=1)
        print(f"\nRay overhead per shard (1-image shards, 1 actor): {1000 * res['per_shard_s']:.1f} ms driver-side "
              f"per shard, {1000 * res['work_per_shard_s']:.1f} ms of it inside the actor -> "
              f"{1000 * (res['per_shard_s'] - res['work_per_shard_s']):.1f} ms overhead "
              f"(in-process: {1000 * (loc['per_shard_s'] - loc['work_per_shard_s']):.1f} ms, the manifest update)")


if __name__ == "__main__":
    main()
