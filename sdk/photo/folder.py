"""Edit every photo of a folder: :func:`edit_photo` per photo through :func:`sdk.dataset.map_folder`.

Each photo gets ``out/<name>/edit.<fmt>`` (the frames) and ``out/<name>/edit.json`` (the report one photo's
``--json`` prints); ``out/report.json`` lists every photo (failures with their error). A rerun with the same
settings skips the finished photos and retries the failed ones; other settings into the same folder refuse.

The driver resolves the direction once and ships it; every worker (a local process or a Ray actor) loads
the model and encoder once from their names / folders (:class:`FolderEditor` is plain data, so it pickles).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from .edit import PhotoEditError, edit_photo

#: What ``fmt`` may be: animated (webp, gif) or a still strip of the frames (png, jpg).
EDIT_FORMATS = ("webp", "gif", "png", "jpg")


def load_photo_models(model: str | None, encoder: str | None, *, device: Any = "cpu",
                      quiet: bool = True) -> tuple[Any, Any, str]:
    """``(encoder or None, style-based generator, label)`` for a model and / or encoder name or folder.

    No model: the encoder's generator. A model folder that holds an encoder: its generator, and that encoder
    unless another one is given."""
    import zoo

    if model is None and encoder is None:
        raise PhotoEditError("give a style-based model or an encoder (its generator is then used)")
    dev = _device(device)
    enc = zoo.load(encoder, device=dev, quiet=quiet) if encoder else None
    if enc is not None and not getattr(enc, "is_encoder", False):
        raise PhotoEditError(f"{encoder} is a generator, not an encoder; pass it as the model (--model)")
    if model is None:
        return enc, enc.generator, f"{encoder} (the encoder's generator)"
    G = zoo.load(model, device=dev, quiet=quiet)
    if getattr(G, "is_encoder", False):
        return (enc or G), G.generator, f"{model} (the encoder's generator)"
    return enc, G, model


def _device(device: Any) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _ident(name: str | None) -> str | None:
    """A model as the resume settings record it: a registry name, or a file / folder by its absolute path."""
    return str(Path(name).resolve()) if name and Path(name).exists() else name


def direction_key(direction: Any) -> str:
    """A stable name for a direction in the folder's settings: sha256 of its vectors, space and layers."""
    h = hashlib.sha256()
    h.update(f"{direction.method}|{direction.space}|{direction.layers}".encode())
    h.update(direction.vectors.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return f"{direction.method}:{h.hexdigest()[:16]}"


def edit_into_folder(photo: Path, result_dir: Path, *, G: Any, encoder: Any, label: str, direction: Any,
                     strengths: Sequence[float], fmt: str, fps: float, options: dict[str, Any]) -> dict[str, Any]:
    """One photo of a folder: :func:`edit_photo`, then ``edit.<fmt>`` and ``edit.json`` into ``result_dir``;
    returns the short record ``report.json`` keeps for it."""
    from zoo.fileio import write_text_atomic

    from ..latent.edit import save_frames

    result = edit_photo(photo, G, direction, strengths, encoder=encoder, quiet=True, **options)
    name = f"edit.{fmt}"
    save_frames(result.frames, result_dir / name, fps=fps)
    report = {"photo": Path(photo).name, "model": label, "out": name, "frames": len(result.frames), **result.report}
    write_text_atomic(result_dir / "edit.json", json.dumps(report, indent=2, default=str) + "\n")
    return {"files": [name, "edit.json"], "frames": len(result.frames),
            "reconstruction_psnr": report["reconstruction_psnr"], "inversion": report["inversion"]["method"],
            "seconds": round(sum(report["timings"].values()), 3)}


class FolderEditor:
    """``map_folder`` factory: ``editor()`` loads the models once (in the worker) and returns the per-photo
    function, a :func:`functools.partial` of :func:`edit_into_folder`.

    Only names / folders and the (small) direction travel to the workers; models already loaded in the
    driver (``preloaded``) are reused when the photos run in this process and never pickled."""

    def __init__(self, model: str | None, encoder: str | None, direction: Any, strengths: Sequence[float], *,
                 fmt: str = "webp", fps: float = 10.0, device: str = "cpu", options: dict[str, Any] | None = None,
                 preloaded: tuple[Any, Any, str] | None = None) -> None:
        self.model, self.encoder, self.direction = model, encoder, direction
        self.strengths = [float(s) for s in strengths]
        self.fmt, self.fps, self.device, self.options = fmt, float(fps), str(device), dict(options or {})
        self.preloaded = preloaded

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "preloaded": None}

    def __call__(self) -> Callable[[Path, Path], dict[str, Any]]:
        enc, G, label = self.preloaded or load_photo_models(self.model, self.encoder, device=self.device)
        self.preloaded = None
        return functools.partial(edit_into_folder, G=G, encoder=enc, label=label, direction=self.direction,
                                 strengths=self.strengths, fmt=self.fmt, fps=self.fps, options=self.options)


def edit_photo_folder(photos: str | os.PathLike[str], out: str | os.PathLike[str], direction: Any,
                      strengths: Sequence[float], *, model: str | None = None, encoder: str | None = None,
                      direction_id: str | None = None, component: int | str = 0, layers: Sequence[int] | None = None,
                      steps: int | None = None, n_iters: int | None = None, pti: bool = False, pti_steps: int = 350,
                      paste_back: bool = False, aligned_input: bool = False, face_index: int | None = None,
                      loss: str = "auto", fmt: str = "webp", fps: float = 10.0, device: str = "cpu",
                      engine: str = "local", num_workers: int = 1, address: str | None = None, quiet: bool = True,
                      models: tuple[Any, Any, str] | None = None) -> Any:
    """Edit every photo in the folder ``photos`` like :func:`edit_photo`; results under ``out/<name>/``.

    ``model`` / ``encoder``: registry names or folders (workers load them). ``direction``: a Direction, or a
    callable ``G -> Direction`` run once here. ``direction_id`` names it in the resume settings (default: a
    hash of its vectors). ``models``: ``(encoder, G, label)`` already loaded from ``model`` / ``encoder``
    (saves loading them again here). Returns the :class:`~sdk.dataset.FolderReport`; failed photos are in
    it with their error and the others are done."""
    from ..dataset import map_folder
    from ..latent.latents import generator_sha256

    fmt = fmt.lower().lstrip(".")
    if fmt not in EDIT_FORMATS:
        raise PhotoEditError(f"unknown edit format {fmt!r}; use one of {', '.join(EDIT_FORMATS)}")
    if not strengths:
        raise PhotoEditError("no strengths given")
    src = Path(photos)
    if not src.is_dir():
        raise FileNotFoundError(f"no such folder: {src}")
    dest = Path(out)
    if dest.exists() and not dest.is_dir():
        raise PhotoEditError(f"{dest} is a file; a folder of photos needs an output folder")
    enc, G, label = models or load_photo_models(model, encoder, device="cpu", quiet=quiet)
    if not getattr(G, "style_based", False):
        raise PhotoEditError(f"{label} has no W space; photo editing needs a style-based model")
    d = direction(G) if callable(direction) else direction
    d.check(G)
    options = {"component": component, "layers": list(layers) if layers is not None else None, "steps": steps,
               "n_iters": n_iters, "pti": bool(pti), "pti_steps": int(pti_steps), "paste_back": bool(paste_back),
               "aligned_input": bool(aligned_input), "face_index": face_index, "loss": loss}
    settings = {"command": "edit-photo", "model": _ident(model), "weights_sha256": generator_sha256(G),
                "encoder": _ident(encoder), "encoder_sha256": generator_sha256(enc) if enc is not None else None,
                "direction": direction_id or direction_key(d), "strengths": [float(s) for s in strengths],
                "format": fmt, "fps": float(fps), **options}
    in_process = engine == "local" and num_workers <= 1 and _device(device) == next(G.parameters()).device
    editor = FolderEditor(model, encoder, d, strengths, fmt=fmt, fps=fps, device=device, options=options,
                          preloaded=(enc, G, label) if in_process else None)
    return map_folder(editor, src, dest, engine=engine, num_workers=num_workers, address=address,
                      use_gpu=str(device) != "cpu", settings=settings, quiet=quiet)
