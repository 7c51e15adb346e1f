"""``ganzoo list`` and ``ganzoo info``."""

from __future__ import annotations

from pathlib import Path

import click

import zoo
from zoo.registry import all_entries

from .common import emit_json, friendly_errors


@click.command("list")
@click.option("--family", default=None, help="Only this family (stylegan2, dcgan, ...).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@friendly_errors
def list_cmd(family: str | None, as_json: bool) -> None:
    """List registered models with family, resolution, conditioning and licence."""
    entries = [e for e in all_entries() if family is None or e.family == family]
    if family and not entries:
        families = sorted({e.family for e in all_entries()})
        raise click.ClickException(f"no models in family {family!r}; families: {', '.join(families)}")
    if as_json:
        emit_json([e.to_dict() for e in entries])
        return
    rows = [("NAME", "FAMILY", "RES", "CLASSES", "LICENCE", "LOCAL")]
    from zoo.loading import load_embedded_or_cached

    for e in entries:
        rows.append((e.name, e.family, str(e.resolution), str(e.num_classes) if e.conditional else "-",
                     e.license + (" (non-commercial)" if e.non_commercial else ""),
                     "yes" if load_embedded_or_cached(e) else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(col.ljust(w) for col, w in zip(r, widths)).rstrip())


@click.command("info")
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--card", is_flag=True, help="Print the rendered model card.")
@friendly_errors
def info_cmd(model: str, as_json: bool, card: bool) -> None:
    """Show registry facts and card data for MODEL (a registry name or a converted model folder)."""
    d = zoo.info(model)
    if card:
        from zoo.cards import render_card
        from zoo.format import read_config

        config = read_config(Path(d["local_path"])) if d["local_path"] else None
        click.echo(render_card(config, model_name=model))
        return
    d["backend"] = _backend_choice(d.get("local_path"))
    if as_json:
        emit_json(d)
        return
    for key in ("name", "family", "architecture", "dataset", "resolution", "conditional", "num_classes", "license",
                "license_note", "paper", "fid", "url", "sha256", "source_format", "local_path", "notes", "backend"):
        value = d.get(key)
        if key == "num_classes" and d.get("class_names"):
            value = f"{value} ({', '.join(d['class_names'])})"
        if value in (None, "", 0, False) and key not in ("conditional",):
            continue
        if key == "backend" and isinstance(value, dict):
            value = f"{value['backend']} at batch {value['batch_size']} ({value['reason']})" + _kernels_text(value)
        click.echo(f"{key:>14}: {value}")


def _backend_choice(local_path: str | None) -> dict | str:
    """What ``ganzoo sample`` would run this model with on this machine (CPU), from the tuning cache."""
    if not local_path:
        return "not measured: the model is not converted locally yet"
    from sdk.backends import cached_choice
    from zoo.format import WEIGHTS_NAME, sha256_file

    choice = cached_choice(None, weights_sha256=sha256_file(Path(local_path) / WEIGHTS_NAME))
    if choice is None:
        return "not measured on this machine yet: `ganzoo sample` measures batch sizes, `ganzoo tune` every backend"
    return {"backend": choice.backend, "batch_size": choice.batch_size, "reason": choice.reason,
            "timings_ms_per_image": choice.timings, "layouts": choice.layouts, "kernels": choice.kernels}


def _kernels_text(choice: dict) -> str:
    """The CPU kernel settings of a cached choice, as one clause."""
    parts = []
    kernels = choice.get("kernels") or {}
    if kernels.get("allocator"):
        parts.append(f"allocator {kernels['allocator']}")
    layouts = choice.get("layouts") or {}
    if layouts:
        parts.append("channels-last " + (", ".join(k for k, v in layouts.items() if v) or "off"))
    wino = kernels.get("winograd") or {}
    if wino.get("tile"):
        native = ", compiled transforms" if wino.get("native_transforms") else ""
        parts.append(f"Winograd F({wino['tile']}x{wino['tile']}) for >= {wino['min_channels']} input channels{native}")
    elif wino:
        parts.append("direct 3x3 convolutions")
    if kernels.get("fused_modconv_batch1"):
        parts.append("styles folded into the weights at batch 1")
    if kernels.get("separable_fir"):
        parts.append("separable FIR")
    if kernels.get("polyphase_upconv"):
        parts.append("polyphase transposed convs for " + ", ".join(kernels["polyphase_upconv"]))
    if kernels.get("winograd_rows"):
        parts.append("Winograd tiles as rows for " + ", ".join(kernels["winograd_rows"]))
    if kernels.get("winograd_upconv"):
        parts.append("Winograd transposed convs for " + ", ".join(kernels["winograd_upconv"]))
    return f"; kernels: {'; '.join(parts)}" if parts else ""
