"""``ganzoo invert``: a picture -> latent.safetensors + reconstruction + side-by-side, with metrics."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from .common import emit_json, friendly_errors, resolve_device


@click.command("invert")
@click.argument("model")
@click.argument("image", type=click.Path(dir_okay=False))
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
@click.option("--json", "as_json", is_flag=True, help="Print metrics and paths as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@friendly_errors
def invert_cmd(model: str, image: str, steps: int, space: str, loss: str, noise_reg: float | None,
               class_idx: int | None, fit: str, seed: int, outdir: str, device: str, as_json: bool,
               quiet: bool) -> None:
    """Find MODEL's latent for IMAGE; write latent.safetensors, reconstruction.png and side_by_side.png."""
    import warnings

    import sdk
    import zoo
    from sdk.latent.invert import PerceptualFallbackWarning, open_image, prepare_image
    from sdk.latent.latents import save_latent

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
        mask = os.umask(0)
        os.umask(mask)
        files = {}
        for name in ("latent.safetensors", "reconstruction.png", "side_by_side.png"):
            (staging / name).chmod(0o666 & ~mask)  # temporary files are private; results get normal permissions
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
