"""``ganzoo convert SRC OUT_DIR``."""

from __future__ import annotations

import click

from .common import emit_json, friendly_errors, progress_printer, quiet_option


def _list_formats(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    import converters

    for fmt in converters.list_formats():
        click.echo(f"{fmt.name:24s} {fmt.description}")
    ctx.exit(0)


@click.command("convert")
@click.argument("src", type=click.Path(exists=True))
@click.argument("out_dir", type=click.Path())
@click.option("--format", "fmt", default=None, help="Force a source format (see --list-formats).")
@click.option("--list-formats", is_flag=True, expose_value=False, is_eager=True, callback=_list_formats,
              help="List the source formats and exit.")
@click.option("--name", "model_name", default=None, help="Registry name to record in config and card.")
@click.option("--classes", default=None, metavar="NAMES|N",
              help="Class names in index order, comma-separated (or a class count) for a conditional checkpoint "
                   "that does not store them.")
@click.option("--config", "run_config", default=None, type=click.Path(exists=True, dir_okay=False),
              help="The run's config file, for formats whose checkpoint does not describe its architecture "
                   "(a StudioGAN G/G_ema .pth with its training YAML).")
@click.option("--fp16", is_flag=True, help="Store float tensors as float16 (loads as float32).")
@click.option("--force", is_flag=True, help="Replace OUT_DIR if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the written config as JSON.")
@quiet_option
@friendly_errors
def convert_cmd(src: str, out_dir: str, fmt: str | None, model_name: str | None, classes: str | None,
                run_config: str | None, fp16: bool, force: bool, as_json: bool, quiet: bool) -> None:
    """Convert an upstream checkpoint SRC into a ganzoo model folder OUT_DIR (never executes the file)."""
    import json

    import torch

    import converters

    options = class_options(classes)
    if run_config is not None:
        options["config"] = run_config
    out = converters.convert(src, out_dir, format=fmt, model_name=model_name,
                             dtype=torch.float16 if fp16 else None, overwrite=force,
                             progress=progress_printer(quiet), options=options)
    config = json.loads((out / "config.json").read_text())
    if as_json:
        emit_json({"out_dir": str(out), **config})
    else:
        click.echo(f"wrote {out} ({config['architecture']}, {config['img_resolution']}px, "
                   f"from {config['provenance']['source_format']})")


def class_options(classes: str | None) -> dict[str, object]:
    """``--classes amber,blue`` -> ``{"class_names": [...]}``; ``--classes 8`` -> ``{"num_classes": 8}``."""
    if classes is None:
        return {}
    text = classes.strip()
    if text.isdigit():
        return {"num_classes": int(text)}
    return {"class_names": [c.strip() for c in text.split(",")]}
