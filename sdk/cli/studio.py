"""``ganzoo studio``: serve the local web app (needs the ``studio`` extra)."""

from __future__ import annotations

import click

from .common import friendly_errors, resolve_device
from .sample import DEFAULT_MODEL


@click.command("studio")
@click.argument("model", default=DEFAULT_MODEL)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; 0.0.0.0 exposes the studio to your network.")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True,
              help="Port (0: any free port).")
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True,
              help="onnx: MODEL is an exported .onnx/.ort file run by onnxruntime (Sample tab only).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--share", type=bool, default=False, show_default=True, metavar="true|false",
              help="Open a public Gradio share link (off unless asked for).")
@click.option("--quiet", "-q", is_flag=True, help="No startup output.")
@friendly_errors
def studio_cmd(model: str, host: str, port: int, backend: str, device: str, share: bool, quiet: bool) -> None:
    """Browse, sample, mix, edit and invert MODEL in a local web app (default: the embedded DCGAN)."""
    from sdk.studio import launch

    if backend == "onnx" and not model.endswith((".onnx", ".ort")):
        raise click.BadParameter("with --backend onnx, MODEL is an .onnx/.ort file (make one with ganzoo export)",
                                 param_hint="MODEL")
    if not quiet:
        click.echo(f"ganzoo: starting the studio on http://{host}:{port} (Ctrl+C stops it)", err=True)
    launch(model, host=host, port=port or None, backend=backend, device=str(resolve_device(device)),
           share=share, quiet=quiet)
