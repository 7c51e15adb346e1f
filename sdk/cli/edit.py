"""``ganzoo edit`` / ``mix`` / ``interpolate``: latent directions, style mixing and interpolation videos."""

from __future__ import annotations

from typing import Any

import click

from .common import emit_json, friendly_errors, resolve_device
from .sample import resolve_class


def parse_indices(spec: str, what: str) -> list[int]:
    """``"0-3,6"`` -> ``[0, 1, 2, 3, 6]`` (non-negative integers), as a click parameter error when bad."""
    from sdk.sampling import parse_indices as parse

    try:
        return parse(spec)
    except ValueError as e:
        raise click.BadParameter(f"bad {what} {e}", param_hint=what) from None


def parse_strengths(spec: str, frames: int) -> list[float]:
    """``"-3:3"`` -> ``frames`` evenly spaced values; ``"1.5"`` or ``"0,1,2"`` -> those values."""
    try:
        if ":" in spec:
            a, b = (float(x) for x in spec.split(":", 1))
            if frames < 1:
                raise ValueError
            if frames == 1:
                return [b]
            return [a + (b - a) * i / (frames - 1) for i in range(frames)]
        vals = [float(x) for x in spec.split(",") if x.strip()]
        if not vals:
            raise ValueError
        return vals
    except ValueError:
        raise click.BadParameter(f"bad strength {spec!r}: use a range like -3:3 (with --frames) or values like 0,1,2",
                                 param_hint="--strength") from None


def _split_kind(spec: str) -> tuple[str, str]:
    kind, sep, arg = spec.partition(":")
    if sep and kind.lower() in ("sefa", "ganspace", "text"):
        return kind.lower(), arg
    if spec.lower() in ("sefa", "ganspace"):
        return spec.lower(), ""
    return "file", spec


def resolve_direction(G: Any, spec: str, *, layers: list[int] | None, component: str | None, samples: int,
                      text_options: dict[str, Any], source: Any, source_space: str, class_idx: int | None,
                      truncation_psi: float, quiet: bool) -> tuple[Any, int | str]:
    """``(Direction, component)`` for a ``--direction`` spec."""
    from sdk.latent import directions

    kind, arg = _split_kind(spec)
    if kind in ("sefa", "ganspace"):
        if arg and component is not None:
            raise click.UsageError(f"give the component once: {kind}:K or --component K")
        k_text = arg or component or "0"
        try:
            k = int(k_text)
        except ValueError:
            raise click.BadParameter(f"bad component {k_text!r}: use {kind}:K with an integer K",
                                     param_hint="--direction") from None
        if k < 0:
            raise click.BadParameter("component must be >= 0", param_hint="--direction")
        if kind == "sefa":
            return directions.sefa(G, layers=layers if getattr(G, "style_based", False) else None), k
        return directions.ganspace(G, n_samples=samples, components=max(k + 1, 8), quiet=quiet), k
    if kind == "text":
        if not arg.strip():
            raise click.BadParameter("text: needs a prompt, e.g. text:\"a smiling face\"", param_hint="--direction")
        d = directions.text(G, arg, source, space=source_space, class_idx=class_idx,
                            truncation_psi=truncation_psi, quiet=quiet, **text_options)
        return d, 0
    d = directions.load(arg)
    return d, component if component is not None else 0


@click.command("edit")
@click.argument("model")
@click.option("--seed", type=click.IntRange(0, 2 ** 32 - 1), default=None, help="Start from this seed's latent.")
@click.option("--latent", "latent_file", type=click.Path(dir_okay=False), default=None,
              help="Start from a saved latent (safetensors from ganzoo invert / save_latent).")
@click.option("--index", type=click.IntRange(min=0), default=0, show_default=True,
              help="Which latent of a batch in --latent.")
@click.option("--direction", "direction_spec", required=True,
              help="sefa[:K], ganspace[:K], text:\"PROMPT\", or a direction file (.safetensors, InterFaceGAN .npy, "
                   "e4e .pt, GANSpace .pkl/.npz).")
@click.option("--component", default=None, help="Component index (or name) of a multi-vector direction file.")
@click.option("--strength", default="-3:3", show_default=True, help="Range A:B (spread over --frames) or values.")
@click.option("--frames", type=click.IntRange(min=1), default=9, show_default=True)
@click.option("--layers", default=None, help="W+ layers to edit, e.g. 0-5 (style-based models).")
@click.option("--samples", type=click.IntRange(min=2), default=20000, show_default=True,
              help="Samples for ganspace.")
@click.option("--neutral", default=None, help="text: neutral prompt (the edit goes from it towards the prompt).")
@click.option("--clip-model", default="ViT-B-32", show_default=True, help="text: open_clip model name.")
@click.option("--clip-pretrained", default="laion2b_s34b_b79k", show_default=True,
              help="text: open_clip tag, checkpoint file, or open_clip folder.")
@click.option("--steps", type=click.IntRange(min=0), default=100, show_default=True, help="text: optimisation steps.")
@click.option("--l2", type=click.FloatRange(min=0), default=0.008, show_default=True, help="text: L2 weight.")
@click.option("--trunc", "truncation_psi", type=float, default=1.0, show_default=True, help="Truncation psi (seeds).")
@click.option("--class", "class_idx", default=None, help="Class index or name (conditional models).")
@click.option("--fps", type=click.FloatRange(min=0.1), default=10.0, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help=".webp/.gif: animation; .png/.jpg: a strip of the frames.")
@click.option("--save-direction", type=click.Path(dir_okay=False), default=None,
              help="Also save the direction used (.safetensors).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--json", "as_json", is_flag=True, help="Print a summary as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@friendly_errors
def edit_cmd(model: str, seed: int | None, latent_file: str | None, index: int, direction_spec: str,
             component: str | None, strength: str, frames: int, layers: str | None, samples: int,
             neutral: str | None, clip_model: str, clip_pretrained: str, steps: int, l2: float,
             truncation_psi: float, class_idx: str | None, fps: float, out: str, save_direction: str | None,
             device: str, as_json: bool, quiet: bool) -> None:
    """Move a latent of MODEL along a direction and write the frames as an animation or a strip."""
    import torch

    import zoo
    from sdk.latent.edit import check_output_path, edit, result_space, save_frames, synthesize
    from sdk.images import to_pil
    from sdk.latent.latents import load_latent
    from sdk.sampling import seeds_to_z

    check_output_path(out)
    if (seed is None) == (latent_file is None):
        raise click.UsageError("give exactly one of --seed N or --latent FILE")
    strengths = parse_strengths(strength, frames)
    layer_list = parse_indices(layers, "--layers") if layers else None
    G = zoo.load(model, device=resolve_device(device), quiet=quiet)
    cls = resolve_class(G, class_idx)
    style = bool(getattr(G, "style_based", False))
    if latent_file is not None:
        loaded = load_latent(latent_file, G)
        lat, space = loaded.latent, loaded.space
        if (space == "w+" and lat.ndim == 2) or (space != "w+" and lat.ndim == 1):
            lat = lat.unsqueeze(0)
        if index >= lat.shape[0]:
            raise click.BadParameter(f"{latent_file} holds {lat.shape[0]} latent(s); --index must be < {lat.shape[0]}",
                                     param_hint="--index")
        lat = lat[index:index + 1]
        psi = 1.0
    else:
        lat, space, psi = seeds_to_z(G, [seed]), "z", truncation_psi
    dev = next(G.parameters()).device
    lat = lat.to(dev)
    kind, _ = _split_kind(direction_spec)
    if style and space == "z" and kind != "file":
        # Computed directions live in W/W+: start from the (truncated) w of the seed.
        with torch.no_grad():
            lat = G.mapping(lat, G.make_c(cls, 1, device=dev), truncation_psi=truncation_psi)[:, 0]
        space, psi = "w", 1.0
    text_options = dict(neutral=neutral, clip_model=clip_model, pretrained=clip_pretrained, steps=steps, l2=l2)
    direction, comp = resolve_direction(G, direction_spec, layers=layer_list, component=component, samples=samples,
                                        text_options=text_options, source=lat, source_space=space, class_idx=cls,
                                        truncation_psi=truncation_psi, quiet=quiet)
    direction.check(G)
    if direction.space != "z" and space == "z":
        with torch.no_grad():
            lat = G.mapping(lat, G.make_c(cls, 1, device=dev), truncation_psi=truncation_psi)[:, 0]
        space, psi = "w", 1.0
    edited = [edit(G, lat, direction, s, layer_list, component=comp, space=space, class_idx=cls) for s in strengths]
    out_space = result_space(direction, space, layer_list)
    images = []
    for i in range(0, len(edited), 8):
        batch = torch.cat(edited[i:i + 8])
        images.extend(to_pil(synthesize(G, batch, out_space, class_idx=cls, truncation_psi=psi)))
    if save_direction:
        direction.save(save_direction)
    path = save_frames(images, out, fps=fps)
    k = direction.index(comp)
    summary = {"model": model, "direction": {"method": direction.method, "space": direction.space, "component": k,
                                             "name": direction.names[k] if direction.names else None},
               "strengths": strengths, "frames": len(images), "out": str(path)}
    if direction.method == "text":
        summary["text"] = {k: direction.params[k] for k in ("clip_loss_start", "clip_loss_end", "distance")}
    if as_json:
        emit_json(summary)
    elif not quiet:
        click.echo(f"wrote {path} ({len(images)} frames)", err=True)


@click.command("mix")
@click.argument("model")
@click.option("--rows", default="0-3", show_default=True, help="Row seeds (their coarse styles are kept).")
@click.option("--cols", default="4-7", show_default=True, help="Column seeds (styles copied into the rows).")
@click.option("--layers", default="0-3", show_default=True, help="W+ layers taken from the column seeds.")
@click.option("--trunc", "truncation_psi", type=float, default=1.0, show_default=True)
@click.option("--class", "class_idx", default=None, help="Class index or name (conditional models).")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Grid image (.png, .jpg, .webp).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", "-q", is_flag=True)
@friendly_errors
def mix_cmd(model: str, rows: str, cols: str, layers: str, truncation_psi: float, class_idx: str | None,
            noise_mode: str, out: str, device: str, as_json: bool, quiet: bool) -> None:
    """Style-mixing grid: column seeds on top, row seeds on the left, mixes inside."""
    import zoo
    from sdk.latent.edit import check_output_path, style_mix_grid
    from sdk.images import save_image
    from sdk.sampling import parse_seeds

    check_output_path(out)
    row_seeds, col_seeds = parse_seeds(rows), parse_seeds(cols)
    layer_list = parse_indices(layers, "--layers")
    G = zoo.load(model, device=resolve_device(device), quiet=quiet)
    grid = style_mix_grid(G, row_seeds, col_seeds, layer_list, truncation_psi=truncation_psi,
                          class_idx=resolve_class(G, class_idx), noise_mode=noise_mode, quiet=quiet)
    path = save_image(grid, out)
    if as_json:
        emit_json({"model": model, "rows": row_seeds, "cols": col_seeds, "layers": layer_list, "out": str(path)})
    elif not quiet:
        click.echo(f"wrote {path}", err=True)


@click.command("interpolate")
@click.argument("model")
@click.option("--seeds", default="0,1", show_default=True, help="Key seeds, visited in order.")
@click.option("--frames", type=click.IntRange(min=2), default=16, show_default=True, help="Total frames.")
@click.option("--method", type=click.Choice(["lerp", "slerp"]), default="lerp", show_default=True)
@click.option("--space", type=click.Choice(["z", "w"]), default=None, help="Default: w if the model has it, else z.")
@click.option("--trunc", "truncation_psi", type=float, default=1.0, show_default=True)
@click.option("--class", "class_idx", default=None, help="Class index or name (conditional models).")
@click.option("--fps", type=click.FloatRange(min=0.1), default=10.0, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help=".webp/.gif: animation; .png/.jpg: a strip of the frames.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", "-q", is_flag=True)
@friendly_errors
def interpolate_cmd(model: str, seeds: str, frames: int, method: str, space: str | None, truncation_psi: float,
                    class_idx: str | None, fps: float, out: str, device: str, as_json: bool, quiet: bool) -> None:
    """Interpolation video through SEEDS in z or w space."""
    import zoo
    from sdk.latent.edit import check_output_path, interpolate, save_frames
    from sdk.sampling import parse_seeds

    check_output_path(out)
    seed_list = parse_seeds(seeds)
    G = zoo.load(model, device=resolve_device(device), quiet=quiet)
    images = interpolate(G, seed_list, frames, space=space, method=method, truncation_psi=truncation_psi,
                         class_idx=resolve_class(G, class_idx), quiet=quiet)
    path = save_frames(images, out, fps=fps)
    if as_json:
        emit_json({"model": model, "seeds": seed_list, "frames": len(images), "method": method, "out": str(path)})
    elif not quiet:
        click.echo(f"wrote {path} ({len(images)} frames)", err=True)
