"""``ganzoo export``: a zoo model -> a verified ONNX file (+ ORT / int8 / fp16 variants and a report)."""

from __future__ import annotations

import click

from .common import emit_json, friendly_errors, progress_printer


@click.command("export")
@click.argument("model")
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="Output .onnx file.")
@click.option("--parts", type=click.Choice(["full", "mapping", "synthesis"]), default="full", show_default=True,
              help="Whole generator, or the mapping / synthesis network of a style-based one.")
@click.option("--precision", type=click.Choice(["fp32", "fp16"]), default="fp32", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["onnx", "ort"]), default="onnx", show_default=True,
              help="ort: also write the ORT-format file(s) that onnxruntime mobile loads.")
@click.option("--int8", is_flag=True, help="Also write an int8 (dynamic weight quantization) variant.")
@click.option("--opset", type=click.IntRange(min=18), default=18, show_default=True)
@click.option("--static-batch", is_flag=True, help="Fix the batch size to 1 instead of a dynamic batch axis.")
@click.option("--noise", type=click.Choice(["const", "none"]), default="const", show_default=True,
              help="Noise inputs baked into the graph.")
@click.option("--no-mobile-check", is_flag=True, help="Skip the NNAPI / CoreML / XNNPACK usability analysis.")
@click.option("--web", "web", type=click.Path(file_okay=False), default=None,
              help="Folder holding node_modules/onnxruntime-web: also score every variant in its WASM backend "
                   "(default: $GANZOO_ORT_WEB when set).")
@click.option("--json", "as_json", is_flag=True, help="Print the export report as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@friendly_errors
def export_cmd(model: str, out: str, parts: str, precision: str, fmt: str, int8: bool, opset: int,
               static_batch: bool, noise: str, no_mobile_check: bool, web: str | None, as_json: bool,
               quiet: bool) -> None:
    """Export MODEL (registry name, folder or checkpoint) to ONNX, verified against PyTorch."""
    import zoo
    from sdk.export.mobile import export_bundle

    G = zoo.load(model, device="cpu", quiet=quiet)
    report = export_bundle(G, out, parts=parts, precision=precision, fmt=fmt, int8=int8, opset=opset,
                           dynamic_batch=not static_batch, noise=noise, mobile_check=not no_mobile_check,
                           web=web, progress=progress_printer(quiet))
    if as_json:
        emit_json(report)
    elif not quiet:
        m = report["model"]
        worst = max(m["max_abs_error"].values())
        click.echo(f"wrote {m['path']} ({m['size_bytes'] / 1e6:.1f} MB, max-abs vs torch {worst:.2g} "
                   f"<= {m['tolerance']:g})", err=True)
        for v in report["variants"]:
            if v["kind"] != "main":
                quality = "identical to fp32" if v["psnr_db"] is None else f"PSNR {v['psnr_db']} dB vs fp32"
                if "web" in v:
                    w = v["web"]
                    quality += f"; in onnxruntime-web {w['psnr_db']} dB, {w['max_abs_vs_python']:.2g} from onnxruntime"
                click.echo(f"wrote {v['path']} ({v['size_bytes'] / 1e6:.1f} MB, {quality})", err=True)
        click.echo(f"report: {report['report_path']}", err=True)
