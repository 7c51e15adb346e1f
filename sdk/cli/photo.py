"""``ganzoo align`` / ``ganzoo edit-photo``: FFHQ-style alignment, and photo -> edit in one command."""

from __future__ import annotations

from typing import Any

import click

from .common import emit_json, friendly_errors, progress_printer, resolve_device


@click.command("align")
@click.argument("photo", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Aligned crop (.png, .jpg, .webp).")
@click.option("--size", type=click.IntRange(8, 4096), default=1024, show_default=True, help="Output size in pixels.")
@click.option("--landmarks", "landmarks_file", type=click.Path(dir_okay=False), default=None,
              help="JSON with 68 [x, y] landmarks (or 4: eye centres, mouth corners) instead of detecting them.")
@click.option("--face-index", type=click.IntRange(min=0), default=None, help="Which face (0 = largest) when several.")
@click.option("--json", "as_json", is_flag=True, help="Print landmarks, crop quad and paths as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@friendly_errors
def align_cmd(photo: str, out: str, size: int, landmarks_file: str | None, face_index: int | None,
              as_json: bool, quiet: bool) -> None:
    """Crop, rotate and scale the face in PHOTO the way FFHQ was aligned."""
    from sdk.images import save_image
    from sdk.latent.edit import check_output_path
    from sdk.latent.invert import open_image
    from sdk.photo.align import align_face, read_landmarks

    check_output_path(out)
    image = open_image(photo)
    lm = read_landmarks(landmarks_file) if landmarks_file else None
    face = align_face(image, output_size=size, landmarks=lm, face_index=face_index)
    path = save_image(face.image, out)
    if as_json:
        emit_json({"photo": photo, "out": str(path), **face.to_json()})
    elif not quiet:
        click.echo(f"wrote {path} ({size}x{size}, {face.detector} landmarks)", err=True)


def _load_models(model: str | None, encoder: str | None, device: Any, quiet: bool) -> tuple[Any, Any, str]:
    import zoo

    enc = zoo.load(encoder, device=device, quiet=quiet) if encoder else None
    if enc is not None and not getattr(enc, "is_encoder", False):
        raise click.BadParameter(f"{encoder} is a generator, not an encoder; pass it as --model",
                                 param_hint="--encoder")
    if model is None:
        if enc is None:
            raise click.UsageError("give --model (a style-based model) or --encoder (its generator is then used)")
        return enc, enc.generator, f"{encoder} (the encoder's generator)"
    G = zoo.load(model, device=device, quiet=quiet)
    if getattr(G, "is_encoder", False):  # a model folder that is an encoder: use its generator, and the encoder
        return (enc or G), G.generator, f"{model} (the encoder's generator)"
    return enc, G, model


def _direction(G: Any, spec: str, layers: list[int] | None, component: str | None, quiet: bool,
               text_options: dict[str, Any]) -> tuple[Any, int | str]:
    from sdk.latent import directions
    from sdk.photo.edit import interfacegan_path

    from .edit import resolve_direction

    kind, _, arg = spec.partition(":")
    if kind.lower() == "interfacegan":
        if not arg:
            raise click.BadParameter("interfacegan: needs a name, e.g. interfacegan:smile", param_hint="--direction")
        return directions.load(interfacegan_path(arg, G, quiet=quiet)), component or 0
    if kind.lower() == "text":
        import torch

        with torch.no_grad():  # text directions start from the mean w (the photo's latent comes later)
            src = G.mapping.w_avg.reshape(1, -1)
        return resolve_direction(G, spec, layers=layers, component=component, samples=0, text_options=text_options,
                                 source=src, source_space="w", class_idx=None, truncation_psi=1.0, quiet=quiet)
    return resolve_direction(G, spec, layers=layers, component=component, samples=20000, text_options=text_options,
                             source=None, source_space="w", class_idx=None, truncation_psi=1.0, quiet=quiet)


@click.command("edit-photo")
@click.argument("photo", type=click.Path(dir_okay=False))
@click.option("--model", default=None, help="Style-based model (default: the encoder's generator).")
@click.option("--encoder", default=None, help="Encoder name or folder/file (pSp, e4e, ReStyle); default: the one "
                                               "registered for --model when it is on this machine.")
@click.option("--direction", "direction_spec", required=True,
              help="interfacegan:NAME (age, pose, smile; for stylegan2-ffhq), sefa[:K], text:\"PROMPT\", or a "
                   "direction file.")
@click.option("--component", default=None, help="Component of a multi-vector direction.")
@click.option("--strength", default="-3:3", show_default=True, help="Range A:B (spread over --frames) or values.")
@click.option("--frames", type=click.IntRange(min=1), default=9, show_default=True)
@click.option("--layers", default=None, help="W+ layers to edit, e.g. 0-5.")
@click.option("--steps", type=click.IntRange(min=0), default=None,
              help="Optimisation steps (default: 0 after an encoder, 100 without one).")
@click.option("--n-iters", type=click.IntRange(min=1), default=None, help="ReStyle iterations.")
@click.option("--pti", is_flag=True, help="Pivotal tuning of the generator around the photo's latent.")
@click.option("--pti-steps", type=click.IntRange(min=0), default=350, show_default=True)
@click.option("--loss", type=click.Choice(["auto", "lpips", "pixel"]), default="auto", show_default=True)
@click.option("--paste-back", is_flag=True, help="Put the edited face back into the whole photo.")
@click.option("--aligned", "aligned_input", is_flag=True, help="PHOTO is already an aligned face crop.")
@click.option("--landmarks", "landmarks_file", type=click.Path(dir_okay=False), default=None,
              help="JSON landmarks instead of detecting them.")
@click.option("--face-index", type=click.IntRange(min=0), default=None, help="Which face (0 = largest).")
@click.option("--clip-model", default="ViT-B-32", show_default=True, help="text: open_clip model name.")
@click.option("--clip-pretrained", default="laion2b_s34b_b79k", show_default=True, help="text: open_clip weights.")
@click.option("--fps", type=click.FloatRange(min=0.1), default=10.0, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help=".webp/.gif: animation; .png/.jpg: a strip of the frames.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--json", "as_json", is_flag=True, help="Print the report (timings, PSNR, encoder, loss) as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@friendly_errors
def edit_photo_cmd(photo: str, model: str | None, encoder: str | None, direction_spec: str, component: str | None,
                   strength: str, frames: int, layers: str | None, steps: int | None, n_iters: int | None, pti: bool,
                   pti_steps: int, loss: str, paste_back: bool, aligned_input: bool, landmarks_file: str | None,
                   face_index: int | None, clip_model: str, clip_pretrained: str, fps: float, out: str, device: str,
                   as_json: bool, quiet: bool) -> None:
    """Align the face in PHOTO, encode (or invert) it, optionally tune, edit it and write the frames."""
    from sdk.latent.edit import check_output_path, save_frames
    from sdk.latent.invert import open_image
    from sdk.photo.align import read_landmarks
    from sdk.photo.edit import edit_photo

    from .edit import parse_indices, parse_strengths

    check_output_path(out)
    strengths = parse_strengths(strength, frames)
    layer_list = parse_indices(layers, "--layers") if layers else None
    image = open_image(photo)  # an unreadable photo fails before any model loads
    lm = read_landmarks(landmarks_file) if landmarks_file else None
    say = progress_printer(quiet or as_json)
    enc, G, model_label = _load_models(model, encoder, resolve_device(device), quiet or as_json)
    if not getattr(G, "style_based", False):
        raise click.BadParameter(f"{model} has no W space; edit-photo needs a style-based model",
                                 param_hint="--model")
    text_options = dict(clip_model=clip_model, pretrained=clip_pretrained)
    direction, comp = _direction(G, direction_spec, layer_list, component, quiet or as_json, text_options)
    result = edit_photo(image, G, direction, strengths, encoder=enc, component=comp, layers=layer_list, steps=steps,
                        n_iters=n_iters, pti=pti, pti_steps=pti_steps, paste_back=paste_back,
                        aligned_input=aligned_input, landmarks=lm, face_index=face_index, loss=loss,
                        quiet=quiet or as_json, progress=say)
    path = save_frames(result.frames, out, fps=fps)
    report = {"photo": photo, "model": model_label, "out": str(path), "frames": len(result.frames), **result.report}
    if as_json:
        emit_json(report)
    elif not quiet:
        click.echo(f"wrote {path} ({len(result.frames)} frames; reconstruction PSNR "
                   f"{report['reconstruction_psnr']:.2f} dB)", err=True)
