"""``ganzoo invert``: a picture -> latent.safetensors + reconstruction + side-by-side, with metrics.

Given a folder, every photo in it is inverted (one result folder per photo, resumable, failures listed
in ``report.json``), on local processes or Ray actors (``sdk.dataset.map_folder``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import click

from .common import emit_json, friendly_errors, resolve_device


@click.command("invert")
@click.argument("model")
@click.argument("image", type=click.Path())
@click.option("--steps", type=click.IntRange(min=1), default=100, show_default=True, help="Optimisation steps.")
@click.option("--space", type=click.Choice(["auto", "w", "w+", "z"]), default="auto", show_default=True,
              help="Latent space (auto: w for style-based models, z otherwise).")
@click.option("--loss", type=click.Choice(["auto", "lpips", "pixel"]), default="auto", show_default=True,
              help="auto: LPIPS-VGG when its weights are available, else pixel + MS-SSIM.")
@click.option("--noise-reg", type=float, default=None, help="Noise-map regularisation weight.")
@click.option("--class", "class_idx", type=int, default=None, help="Class index (conditional models).")
@click.option("--fit", type=click.Choice(["crop", "pad"]), default="crop", show_default=True,
              help="Make non-square images square by centre-cropping or padding.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--outdir", type=click.Path(file_okay=False), required=True, help="Folder for the outputs.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="IMAGE a folder: where the photos are processed.")
@click.option("--num-workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="IMAGE a folder: parallel workers (processes or Ray actors).")
@click.option("--address", default=None, help="Ray cluster address (ray://host:10001 or auto); default: start one.")
@click.option("--json", "as_json", is_flag=True, help="Print metrics and paths as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@friendly_errors
def invert_cmd(model: str, image: str, steps: int, space: str, loss: str, noise_reg: float | None,
               class_idx: int | None, fit: str, seed: int, outdir: str, device: str, engine: str, num_workers: int,
               address: str | None, as_json: bool, quiet: bool) -> None:
    """Find MODEL's latent for IMAGE; write latent.safetensors, reconstruction.png and side_by_side.png.

    IMAGE may be a folder: each photo gets OUTDIR/<name>/ with those files; rerun to resume."""
    import warnings

    import sdk
    import zoo
    from sdk.latent.invert import PerceptualFallbackWarning, open_image, prepare_image
    from sdk.latent.latents import save_latent
    from zoo.fileio import chmod_like_new_file

    if Path(image).is_dir():
        opts = {"steps": steps, "space": space, "loss": loss, "noise_reg": noise_reg, "class_idx": class_idx,
                "fit": fit, "seed": seed}
        _invert_folder(model, image, outdir, opts, device, engine, num_workers, address, as_json, quiet)
        return
    open_image(image)  # an unreadable image fails before the model loads
    dev = resolve_device(device)
    G = zoo.load(model, device=dev, quiet=quiet)
    prepare_image(image, G.img_resolution, G.img_channels, fit=fit)  # fail on a bad image before the work
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PerceptualFallbackWarning)
        inv = sdk.invert(G, image, space=None if space == "auto" else space, steps=steps, loss=loss,
                         noise_reg=noise_reg, seed=seed, quiet=quiet, class_idx=class_idx, fit=fit)
    for w in caught:
        if not quiet and not as_json:
            click.echo(f"ganzoo: notice: {w.message}", err=True)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    target = sdk.to_pil(inv.target)[0]
    side = sdk.make_grid([target, inv.image], cols=2)
    # Write everything under temporary names first, then rename, so a failure leaves no partial set.
    staging = Path(tempfile.mkdtemp(prefix=".invert-", dir=out))
    try:
        save_latent(staging / "latent.safetensors", inv.latent, space=inv.space, G=G, noise=inv.noise or None,
                    c=inv.c, model=model, steps=str(steps), loss=inv.loss, seed=str(seed), metrics=inv.metrics)
        sdk.save_image(inv.image, staging / "reconstruction.png")
        sdk.save_image(side, staging / "side_by_side.png")
        files = {}
        for name in ("latent.safetensors", "reconstruction.png", "side_by_side.png"):
            chmod_like_new_file(staging / name)
            os.replace(staging / name, out / name)
            files[name] = str(out / name)
    finally:
        for f in staging.iterdir():
            f.unlink(missing_ok=True)
        staging.rmdir()
    result = {"model": model, "image": image, "space": inv.space, "steps": steps, "loss": inv.loss,
              "loss_detail": inv.loss_detail, "weights_sha256": inv.weights_sha256, "metrics": inv.metrics,
              "files": files}
    if as_json:
        emit_json(result)
    else:
        m = inv.metrics
        parts = [f"PSNR {m['psnr']:.2f} dB", f"SSIM {m['ssim']:.4f}"] + \
            ([f"LPIPS {m['lpips']:.4f}"] if "lpips" in m else [])
        click.echo(f"{', '.join(parts)} ({inv.space} space, {steps} steps, loss {inv.loss})")
        click.echo(f"wrote {files['latent.safetensors']}, reconstruction.png, side_by_side.png")


class PhotoInverter:
    """``map_folder`` factory: loads MODEL once per worker, then inverts one photo into a result folder."""

    def __init__(self, model: str, device: str, opts: dict[str, Any]) -> None:
        self.model, self.device, self.opts = model, device, opts

    def __call__(self) -> Any:
        import zoo

        G = zoo.load(self.model, device=resolve_device(self.device), quiet=True)

        def run(photo: Path, result_dir: Path) -> dict[str, Any]:
            import sdk
            from sdk.latent.latents import save_latent

            o = self.opts
            inv = sdk.invert(G, photo, space=None if o["space"] == "auto" else o["space"], steps=o["steps"],
                             loss=o["loss"], noise_reg=o["noise_reg"], seed=o["seed"], quiet=True,
                             class_idx=o["class_idx"], fit=o["fit"])
            save_latent(result_dir / "latent.safetensors", inv.latent, space=inv.space, G=G,
                        noise=inv.noise or None, c=inv.c, model=self.model, steps=str(o["steps"]), loss=inv.loss,
                        seed=str(o["seed"]), metrics=inv.metrics, photo=photo.name)
            sdk.save_image(inv.image, result_dir / "reconstruction.png")
            sdk.save_image(sdk.make_grid([sdk.to_pil(inv.target)[0], inv.image], cols=2),
                           result_dir / "side_by_side.png")
            return {"space": inv.space, "loss": inv.loss, "metrics": inv.metrics}

        return run


def _invert_folder(model: str, folder: str, outdir: str, opts: dict[str, Any], device: str, engine: str,
                   num_workers: int, address: str | None, as_json: bool, quiet: bool) -> None:
    import zoo
    from sdk.dataset import map_folder
    from sdk.latent.latents import generator_sha256

    G = zoo.load(model, device="cpu", quiet=quiet)  # fail on a bad model name before any worker starts
    settings = {"model": model, "weights_sha256": generator_sha256(G), **opts}
    del G
    report = map_folder(PhotoInverter(model, device, opts), folder, outdir, engine=engine, num_workers=num_workers,
                        address=address, use_gpu=device != "cpu", settings=settings, quiet=quiet or as_json)
    failed = {k: r for k, r in report.photos.items() if r.get("status") == "failed"}
    if as_json:
        emit_json(report.to_dict())
    else:
        for name, r in failed.items():
            click.echo(f"ganzoo: {name}: {r['error']}", err=True)
        click.echo(f"{report.ok} of {len(report.photos)} photos inverted ({report.processed} now, {report.kept} "
                   f"already done, {len(failed)} failed); report: {report.report}")
    if failed:  # scripts see it; the others are done and a rerun retries only these
        raise SystemExit(1)
