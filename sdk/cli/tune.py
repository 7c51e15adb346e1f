"""``ganzoo tune``: measure every backend and batch size for a model on this machine; cache the fastest."""

from __future__ import annotations

import click

from .common import emit_json, friendly_errors, progress_printer, resolve_device


def _int_list(spec: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{spec!r}: give comma-separated integers, e.g. 1,2,4,8", param_hint=what) from None
    if not values or min(values) < 1:
        raise click.BadParameter(f"{spec!r}: give positive integers, e.g. 1,2,4,8", param_hint=what)
    return values


@click.command("tune")
@click.argument("model")
@click.option("--backends", default="torch,compiled,onnx", show_default=True,
              help="Backends to measure (compiled and onnx build a cached artifact on first use).")
@click.option("--batches", default="1,2,4,8,16", show_default=True, help="Batch sizes to measure (memory permitting).")
@click.option("--noise-mode", type=click.Choice(["const", "none"]), default="const", show_default=True)
@click.option("--precision", "precisions", multiple=True, type=click.Choice(["bf16", "fp16"]),
              help="Also time this opt-in reduced precision on eager torch and report its PSNR vs fp32 (repeatable).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--json", "as_json", is_flag=True, help="Print the measurements and the choice as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@friendly_errors
def tune_cmd(model: str, backends: str, batches: str, noise_mode: str, precisions: tuple[str, ...], device: str,
             as_json: bool, quiet: bool) -> None:
    """Find the fastest backend and batch size for MODEL here; `ganzoo sample` then uses it."""
    import zoo
    from sdk.backends import BACKENDS, tune

    names = [b.strip() for b in backends.split(",") if b.strip()]
    bad = [b for b in names if b not in BACKENDS]
    if bad or not names:
        raise click.BadParameter(f"unknown backend(s) {', '.join(bad) or '(none)'}; choose from {', '.join(BACKENDS)}",
                                 param_hint="--backends")
    G = zoo.load(model, device=resolve_device(device), quiet=quiet)
    choice = tune(G, names, _int_list(batches, "--batches"), noise_mode=noise_mode, precisions=precisions,
                  progress=progress_printer(quiet))
    if as_json:
        emit_json(choice.to_dict())
        return
    sizes = sorted({int(b) for t in choice.timings.values() for b in t})
    click.echo("ms/image    " + "  ".join(f"b{b:>6}" for b in sizes))
    for name, t in choice.timings.items():
        click.echo(f"{name:<11} " + "  ".join(f"{t[str(b)]:>7.1f}" if str(b) in t else "      -" for b in sizes))
    click.echo(f"chosen: {choice.backend} at batch {choice.batch_size} ({choice.reason})")
