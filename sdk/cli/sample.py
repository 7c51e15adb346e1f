"""``ganzoo sample``: seeds -> image files or a grid."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import emit_json, friendly_errors, resolve_device

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_MODEL = "dcgan-digiface-64"


@click.command("sample")
@click.argument("model", default=DEFAULT_MODEL)
@click.option("--seeds", default="0-7", show_default=True, help="Seeds, e.g. 0-7,12.")
@click.option("--trunc", "truncation_psi", type=float, default=1.0, show_default=True, help="Truncation psi.")
@click.option("--trunc-cutoff", type=click.IntRange(min=0), default=None, help="Truncate only the first N ws.")
@click.option("--class", "class_idx", default=None,
              help='Class index or name, e.g. 207 or "golden retriever" (conditional models).')
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default=None,
              help="Noise inputs [default: the model's: const, or none for families that store no noise].")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Images per forward pass (default: the fastest measured for this model and machine).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--backend", type=click.Choice(["auto", "torch", "compiled", "onnx"]), default="auto", show_default=True,
              help="auto: the fastest measured here (see `ganzoo tune`); compiled / onnx: a cached AOTInductor "
                   "package / ONNX export of MODEL, built on first use. An .onnx/.ort MODEL runs in onnxruntime.")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", show_default=True,
              help="Opt-in reduced precision on the torch backend: bf16 on CPUs with AVX512-BF16 / AMX, fp16 on CUDA "
                   "(lossy: `ganzoo tune MODEL --precision bf16` reports its PSNR vs fp32).")
@click.option("--provider", type=click.Choice(["auto", "cpu", "cuda", "mobile"]), default="auto", show_default=True,
              help="onnxruntime execution provider list (--backend onnx).")
@click.option("--outdir", type=click.Path(file_okay=False), default=None, help="Write seedNNNN.png files here.")
@click.option("--grid", type=click.Path(dir_okay=False), default=None, help="Write one grid image here.")
@click.option("--cols", type=click.IntRange(min=1), default=None, help="Grid columns.")
@click.option("--translate", default=None, metavar="TX,TY",
              help="StyleGAN3 only: translate the output, e.g. 0.2,-0.1.")
@click.option("--rotate", type=float, default=None, metavar="DEG", help="StyleGAN3 only: rotate the output (degrees).")
@click.option("--json", "as_json", is_flag=True, help="Print written paths as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@friendly_errors
def sample_cmd(model: str, seeds: str, truncation_psi: float, trunc_cutoff: int | None, class_idx: str | None,
               noise_mode: str | None, batch_size: int | None, device: str, backend: str, precision: str,
               provider: str, outdir: str | None, grid: str | None, cols: int | None, translate: str | None,
               rotate: float | None, as_json: bool, quiet: bool) -> None:
    """Generate images for SEEDS from MODEL (default: the embedded dcgan-digiface-64)."""
    import sdk
    import zoo
    from sdk.images import save_images
    from sdk.sampling import resolve_backend, sample_batches

    if not outdir and not grid:
        raise click.UsageError("give --outdir DIR or --grid FILE.png")
    seed_list = sdk.parse_seeds(seeds)
    shift = parse_translate(translate)
    exported = model.endswith((".onnx", ".ort"))
    if exported:
        if backend not in ("auto", "onnx"):
            raise click.BadParameter(f"{Path(model).name} is an exported file: it runs with --backend onnx (or auto)",
                                     param_hint="--backend")
        G = sdk.OnnxGenerator(model, provider=provider, quiet=quiet)
    else:
        G = zoo.load(model, device=resolve_device(device), quiet=quiet)
    cls = resolve_class(G, class_idx)
    if shift is not None or rotate is not None:
        sdk.transform.transform_buffer(G)  # fail before sampling when the model is not StyleGAN3
    if noise_mode is None:
        noise_mode = sdk.sampling.default_noise_mode(G)
    choice = None
    if exported or (shift is None and rotate is None):  # an exported StyleGAN3 takes the transform as an input
        _, choice = resolve_backend(G, backend, batch_size, noise_mode=noise_mode, truncation_cutoff=trunc_cutoff,
                                    quiet=quiet, precision=precision)
        if not quiet:
            size = "measured while sampling" if choice.batch_size is None else f"batch {choice.batch_size}"
            click.echo(f"ganzoo: backend {choice.backend}, {size} ({choice.source}: {choice.reason})", err=True)
    batches = sample_batches(G, seed_list, truncation_psi=truncation_psi, truncation_cutoff=trunc_cutoff,
                             class_idx=cls, noise_mode=noise_mode, batch_size=batch_size, quiet=quiet,
                             translate=shift, rotate=rotate, backend=choice if choice is not None else backend,
                             precision=precision)
    written: list[str] = []
    images: list[Image.Image] = []  # kept for --grid only: per-seed files are written as their batch comes
    with contextlib.closing(batches):  # an interrupted job keeps the files of every finished batch
        for chunk, ims in batches:
            if outdir:
                written += [str(p) for p in save_images([(im, Path(outdir) / f"seed{s:04d}.png")
                                                         for s, im in zip(chunk, ims)])]
            if grid:
                images += ims
    if grid:
        written.append(str(sdk.save_image(sdk.make_grid(images, cols=cols), grid)))
    if as_json:
        emit_json({"model": model, "seeds": seed_list, "files": written,
                   "backend": choice.to_dict() if choice is not None else {"backend": backend}})
    elif not quiet:
        click.echo(f"wrote {len(written)} file(s): {written[0]}{' ...' if len(written) > 1 else ''}", err=True)


def parse_translate(spec: str | None) -> tuple[float, float] | None:
    """``"0.2,-0.1"`` -> ``(0.2, -0.1)``."""
    if spec is None:
        return None
    parts = [p.strip() for p in spec.split(",")]
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise click.BadParameter(f"{spec!r} is not TX,TY: give two numbers such as 0.2,-0.1",
                                 param_hint="--translate") from None


def resolve_class(G: object, class_arg: str | None) -> int | None:
    """``--class`` as an index, or a class name when the model has names."""
    if class_arg is None:
        return None
    try:
        return int(class_arg)
    except ValueError:
        pass
    from sdk.classes import class_index

    return class_index(G, class_arg)
