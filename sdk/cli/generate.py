"""``ganzoo generate``: a sharded, resumable dataset (PNG folders, WebDataset tars or .npz), locally or on Ray."""

from __future__ import annotations

import click

from .common import emit_json, friendly_errors
from .sample import DEFAULT_MODEL


@click.command("generate")
@click.argument("model", default=DEFAULT_MODEL)
@click.option("--num", type=click.IntRange(min=1), default=None, help="Seeds 0..NUM-1.")
@click.option("--seeds", default=None, help="Seed ranges instead of --num, e.g. 0-49999 or 100000-199999,7.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Dataset folder (resumed if present).")
@click.option("--format", "fmt", type=click.Choice(["png", "webdataset", "npz"]), default="png", show_default=True)
@click.option("--shard-size", type=click.IntRange(min=1), default=1000, show_default=True, help="Seeds per shard.")
@click.option("--trunc", "truncation_psi", type=float, default=1.0, show_default=True, help="Truncation psi.")
@click.option("--trunc-cutoff", type=click.IntRange(min=0), default=None, help="Truncate only the first N ws.")
@click.option("--class", "class_idx", default=None,
              help="Conditional models: a class index or name, 'all' (every class per seed) or 'uniform' "
                   "(seed k -> class k mod classes).")
@click.option("--noise-mode", type=click.Choice(["const", "none"]), default="const", show_default=True,
              help="Per-layer noise (random noise is not reproducible per seed, so not offered).")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Images per forward pass (1 matches `ganzoo sample` bit for bit on every model).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--num-workers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--address", default=None, help="Ray cluster address (ray://host:10001 or auto); default: start one.")
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True,
              help="onnx: MODEL is an exported .onnx file run by onnxruntime.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto (per worker).")
@click.option("--no-verify", is_flag=True, help="On resume, check finished shards by size only (no sha256).")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@friendly_errors
def generate_cmd(model: str, num: int | None, seeds: str | None, out: str, fmt: str, shard_size: int,
                 truncation_psi: float, trunc_cutoff: int | None, class_idx: str | None, noise_mode: str,
                 batch_size: int, engine: str, num_workers: int, address: str | None, backend: str, device: str,
                 no_verify: bool, as_json: bool, quiet: bool) -> None:
    """Generate a dataset from MODEL: image k is `ganzoo sample MODEL --seeds k`; rerun to resume."""
    from sdk.dataset import generate_dataset

    if (num is None) == (seeds is None):
        raise click.UsageError("give exactly one of --num N or --seeds A-B")
    if address and engine != "ray":
        raise click.UsageError("--address is a Ray cluster address: add --engine ray")
    cls: int | str | None = class_idx
    if class_idx is not None and class_idx.strip().isdigit():
        cls = int(class_idx)
    report = generate_dataset(model, out, seeds=num if num is not None else seeds, truncation_psi=truncation_psi,
                              truncation_cutoff=trunc_cutoff, class_idx=cls, noise_mode=noise_mode,
                              batch_size=batch_size, format=fmt, shard_size=shard_size, engine=engine,
                              num_workers=num_workers, address=address, backend=backend, device=device,
                              verify=not no_verify, quiet=quiet or as_json)
    if as_json:
        emit_json(report.to_dict())
    elif not quiet:
        regen = f", {len(report.shards_regenerated)} regenerated" if report.shards_regenerated else ""
        click.echo(f"{report.out}: {report.images_total} images in {report.shards_total} shards "
                   f"({len(report.shards_written)} written{regen}, {report.shards_kept} already done; "
                   f"{report.images_per_s:.1f} img/s)", err=True)
