"""The studio's Gradio app: Models, Sample, Mix, Edit and Invert tabs, each a thin layer over the SDK.

Handlers are plain functions of the shared :class:`~sdk.studio.state.StudioState`; every one runs its
generator work inside that model's queue turn, so two browser tabs never use one generator at once.
User errors reach the page as one readable line (``gr.Error``), never as a traceback.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import os
import queue as queue_mod
import shutil
import sys
import tempfile
import threading
import time
import traceback
import weakref
from pathlib import Path
from typing import Any, Callable, Iterator

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before Gradio is imported: it reads the switch then

import gradio as gr  # noqa: E402
import torch
from PIL import Image

import sdk
from sdk.cli.common import USER_ERRORS, os_error_text

from .state import (Cancelled, LoadedModel, StudioInputError, StudioState, parse_class_text, parse_layer_text,
                    parse_seed_text, sample_command)

DEFAULT_MODEL = "dcgan-digiface-64"
DIRECTION_METHODS = ["SeFa", "GANSpace", "direction file", "CLIP text"]
EDIT_SOURCES = ["seed", "uploaded latent", "inverted latent"]


# --- errors -----------------------------------------------------------------------------------------------

def _one_line(e: BaseException) -> str:
    msg = os_error_text(e) if isinstance(e, OSError) else str(e.args[0]) if isinstance(e, KeyError) and e.args \
        else str(e)
    msg = msg.strip().splitlines()[0] if msg.strip() else type(e).__name__
    return msg


def _as_gr_error(e: BaseException) -> gr.Error:
    if isinstance(e, gr.Error):
        return e
    if isinstance(e, Cancelled):
        return gr.Error("cancelled", print_exception=False)
    if isinstance(e, USER_ERRORS):  # the user's input: the message is the whole story
        return gr.Error(_one_line(e), print_exception=False)
    # A bug, not bad input: one line in the page, the traceback on the server's stderr.
    traceback.print_exc(file=sys.stderr)
    return gr.Error(f"internal error ({type(e).__name__}): {_one_line(e)}")


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Show exceptions as one readable line in the page (works for plain and generator handlers)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except (GeneratorExit, KeyboardInterrupt):
                raise
            except Exception as e:
                raise _as_gr_error(e) from None

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            raise _as_gr_error(e) from None

    return wrapper


# --- helpers ----------------------------------------------------------------------------------------------

class _Files:
    """Results offered for download, written under one private folder of this app."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ganzoo-studio-"))
        weakref.finalize(self, shutil.rmtree, self.root, ignore_errors=True)
        self._n = 0
        self._lock = threading.Lock()

    def path(self, name: str) -> Path:
        with self._lock:
            self._n += 1
            d = self.root / f"{self._n:06d}"
        d.mkdir()
        return d / name


def _style(lm: LoadedModel, what: str) -> None:
    if not lm.style_based:
        raise StudioInputError(f"{what} needs a style-based generator (one with a W space); "
                               f"{lm.spec} takes z only - try a StyleGAN model")


def _class_arg(lm: LoadedModel, text: str | None) -> int | None:
    from sdk.classes import resolve_class

    cls = parse_class_text(text)
    c_dim = int(getattr(lm.G, "c_dim", 0) or 0)
    if c_dim == 0:
        if cls is not None:
            raise StudioInputError(f"{lm.spec} is unconditional: clear the class field")
        return None
    if cls is None:
        raise StudioInputError(f"{lm.spec} is conditional ({c_dim} classes): pick a class")
    idx = resolve_class(lm.G, cls)
    if not 0 <= int(idx) < c_dim:
        raise StudioInputError(f"class {idx} out of range: this model has classes 0..{c_dim - 1}")
    return int(idx)


def _cutoff(value: float | None) -> int | None:
    if value is None or value == "" or int(value) <= 0:
        return None
    return int(value)


def _upload_path(f: Any) -> str | None:
    if f is None:
        return None
    return f if isinstance(f, str) else getattr(f, "name", None) or str(f)


def _result_image(label: str, elem_id: str | None = None, height: int = 320) -> gr.Image:
    """A PNG result view (lossless, so what the page shows is exactly what the SDK made)."""
    return gr.Image(label=label, type="pil", format="png", interactive=False, height=height,
                    buttons=["download", "fullscreen"], elem_id=elem_id, elem_classes=["studio-result"])


def _class_choices(lm: LoadedModel) -> list[str]:
    names = lm.class_names
    c_dim = int(getattr(lm.G, "c_dim", 0) or 0)
    if names:
        return [f"{i}: {n}" for i, n in enumerate(names)]
    return [str(i) for i in range(c_dim)]


# --- Models tab -------------------------------------------------------------------------------------------

def registry_rows(query: str = "") -> list[list[Any]]:
    """The registry as table rows, filtered by a case-insensitive search over every column."""
    from zoo.loading import load_embedded_or_cached
    from zoo.registry import all_entries

    q = (query or "").strip().lower()
    rows = []
    for e in all_entries():
        row = [e.name, e.family, e.resolution, e.num_classes if e.conditional else "-",
               e.license + (" (non-commercial)" if e.non_commercial else ""),
               "yes" if load_embedded_or_cached(e) else "-"]
        if not q or any(q in str(v).lower() for v in row + [e.dataset]):
            rows.append(row)
    return rows


REGISTRY_HEADERS = ["name", "family", "resolution", "classes", "licence", "local"]


def model_summary(lm: LoadedModel) -> str:
    """A short Markdown description of a loaded generator (with its licence note when it has one)."""
    from zoo.registry import get_entry, is_registered

    G = lm.G
    name = G.model_info.get("model_name", lm.spec) if hasattr(G, "model_info") else lm.spec
    lines = [f"**{name}** ({type(G).__name__}, {lm.backend})",
             f"- resolution {G.img_resolution}, {G.img_channels} channel(s), z_dim {G.z_dim}"]
    if lm.style_based:
        lines.append(f"- style-based: W+ layers 0..{G.num_ws - 1}, w_dim {G.w_dim}")
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    lines.append(f"- {c_dim} classes" if c_dim else "- unconditional")
    lines.append(f"- weights sha256 `{lm.sha256[:16]}...`")
    if is_registered(lm.spec):
        e = get_entry(lm.spec)
        lines.append(f"- licence: {e.license}")
        if e.license_text:
            lines.append(f"\n> **Licence note:** {e.license_text}")
    return "\n".join(lines)


def model_card(lm: LoadedModel) -> str:
    from zoo.registry import is_registered

    folder = getattr(lm.G, "model_info", {}).get("folder")
    readme = Path(folder) / "README.md" if folder else None
    if is_registered(lm.spec):
        from zoo.cards import render_card
        from zoo.format import read_config

        return render_card(read_config(Path(folder)) if folder else None, model_name=lm.spec)
    if readme is not None and readme.is_file():
        return readme.read_text(encoding="utf-8")
    return "_no model card for this model_"


# --- the app --------------------------------------------------------------------------------------------

class Studio:
    """The handlers; :meth:`blocks` wires them into a ``gr.Blocks``."""

    def __init__(self, state: StudioState, default_model: str = DEFAULT_MODEL) -> None:
        self.state = state
        self.default_model = default_model
        self.files = _Files()
        self._stops: dict[tuple[str, str], threading.Event] = {}
        self._stops_lock = threading.Lock()

    # Stop buttons: Gradio's own cancel does not reach work already running in a thread, so each
    # long job also polls an event that its Stop button sets.
    def _stop_event(self, request: gr.Request | None, job: str) -> threading.Event:
        ev = threading.Event()
        with self._stops_lock:
            self._stops[(getattr(request, "session_hash", None) or "", job)] = ev
        return ev

    def _drop_stop(self, request: gr.Request | None, job: str, ev: threading.Event) -> None:
        key = (getattr(request, "session_hash", None) or "", job)
        with self._stops_lock:
            if self._stops.get(key) is ev:
                del self._stops[key]

    def stop(self, job: str) -> Callable[..., None]:
        def handler(request: gr.Request) -> None:
            with self._stops_lock:
                ev = self._stops.get((getattr(request, "session_hash", None) or "", job))
            if ev is not None:
                ev.set()

        return handler

    # Models
    def load(self, spec: str) -> tuple[Any, ...]:
        spec = (spec or "").strip()
        lm = self.state.model(spec)
        choices = _class_choices(lm)
        cls_update = gr.update(choices=choices, value=choices[0] if choices else None,
                               interactive=bool(choices))
        return (spec, model_summary(lm), model_card(lm), f"Model: **{spec}**", cls_update, cls_update, cls_update,
                cls_update)

    def load_upload(self, upload: Any) -> tuple[Any, ...]:
        path = _upload_path(upload)
        if not path:
            raise StudioInputError("upload a checkpoint (.pkl, .pt, .pth, .bin) or an exported .onnx file")
        return self.load(path)

    def pick_row(self, rows: Any, evt: gr.SelectData) -> str:
        r = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        try:
            return str(rows.iloc[r, 0]) if hasattr(rows, "iloc") else str(rows[r][0])
        except (IndexError, KeyError, TypeError):
            return ""

    # Sample
    def sample(self, spec: str, seeds_text: str, psi: float, cutoff: float | None, class_text: str | None,
               noise_mode: str, tx: float, ty: float, rot: float, cols: float | None
               ) -> tuple[Image.Image, str, str, str]:
        seeds = parse_seed_text(seeds_text)
        lm = self.state.model(spec)
        cls = _class_arg(lm, class_text)
        translate = (float(tx), float(ty)) if (tx or ty) else None
        rotate = float(rot) if rot else None
        ncols = int(cols) if cols else None
        t0 = time.perf_counter()
        with self.state.queue.turn(lm.spec):
            if translate is not None or rotate is not None:
                sdk.transform.transform_buffer(lm.G)  # a clear error on non-StyleGAN3 models
            images = sdk.sample(lm.G, seeds, truncation_psi=float(psi), truncation_cutoff=_cutoff(cutoff),
                                class_idx=cls, noise_mode=noise_mode, translate=translate, rotate=rotate)
        grid = sdk.make_grid(images, cols=ncols)
        ms = (time.perf_counter() - t0) * 1000
        out = sdk.save_image(grid, self.files.path("grid.png"))
        cmd = sample_command(lm.spec, seeds, truncation_psi=float(psi), truncation_cutoff=_cutoff(cutoff),
                             class_idx=cls, noise_mode=noise_mode, translate=translate, rotate=rotate,
                             cols=ncols, backend=lm.backend)
        return grid, str(out), cmd, f"{len(seeds)} image(s) in {ms:.0f} ms"

    # Mix
    def mix(self, spec: str, rows_text: str, cols_text: str, layers_text: str, psi: float, noise_mode: str,
            class_text: str | None) -> tuple[Image.Image, str]:
        from sdk.latent.edit import style_mix_grid

        rows = parse_seed_text(rows_text, "row seeds", limit=8)
        cols = parse_seed_text(cols_text, "column seeds", limit=8)
        lm = self.state.model(spec)
        if lm.backend == "onnx":
            raise StudioInputError("style mixing needs the torch backend (an ONNX file has no mapping network)")
        _style(lm, "style mixing")
        layers = parse_layer_text(layers_text, lm.G.num_ws)
        if layers is None:
            raise StudioInputError(f"layers: pick the W+ layers to take from the columns, e.g. 0-3 "
                                   f"(0..{lm.G.num_ws - 1})")
        cls = _class_arg(lm, class_text)
        with self.state.queue.turn(lm.spec):
            grid = style_mix_grid(lm.G, rows, cols, layers, truncation_psi=float(psi), class_idx=cls,
                                  noise_mode=noise_mode)
        return grid, str(sdk.save_image(grid, self.files.path("mix.png")))

    # Edit
    def _direction(self, lm: LoadedModel, method: str, direction_file: Any, layers: list[int] | None,
                   prompt: str = "", latent: torch.Tensor | None = None, space: str = "z",
                   cls: int | None = None) -> tuple[Any, str]:
        from sdk.latent import directions

        if method == "SeFa":
            lay = layers if lm.style_based else None
            d, hit = self.state.direction(lm, "sefa", {"layers": lay}, lambda: directions.sefa(lm.G, layers=lay))
        elif method == "GANSpace":
            n = 2000

            def compute() -> Any:
                with self.state.queue.turn(lm.spec):
                    return directions.ganspace(lm.G, n_samples=n, components=16, quiet=False)

            d, hit = self.state.direction(lm, "ganspace", {"n_samples": n}, compute)
        elif method == "direction file":
            path = _upload_path(direction_file)
            if not path:
                raise StudioInputError("direction file: upload an InterFaceGAN .npy, e4e .pt, GANSpace .pkl/.npz "
                                       "or ganzoo .safetensors direction")
            d, hit = directions.load(path), False
        elif method == "CLIP text":
            if not clip_available():
                raise StudioInputError("CLIP text directions need the clip extra: pip install 'ganzoo[clip]'")
            text = (prompt or "").strip()
            if not text:
                raise StudioInputError("CLIP text: type a prompt such as 'a smiling face'")
            import hashlib

            src = hashlib.sha256(latent.detach().cpu().numpy().tobytes()).hexdigest() if latent is not None else ""

            def compute_text() -> Any:
                with self.state.queue.turn(lm.spec):
                    return directions.text(lm.G, text, latent, space=space, class_idx=cls, steps=50, quiet=True)

            d, hit = self.state.direction(lm, "text", {"prompt": text, "source": src, "space": space},
                                          compute_text)
        else:
            raise StudioInputError(f"unknown direction method {method!r}; pick one of {DIRECTION_METHODS}")
        note = f"{d.method} direction in {d.space}, {len(d)} component(s)" + (" (cached)" if hit else "")
        return d, note

    def _source_latent(self, lm: LoadedModel, source: str, seed: float | None, latent_file: Any,
                       inverted: dict[str, Any] | None, psi: float, cls: int | None
                       ) -> tuple[torch.Tensor, str, dict[str, torch.Tensor]]:
        G = lm.G
        if source == "seed":
            if seed is None:
                raise StudioInputError("seed: type a seed number")
            z = sdk.seeds_to_z(G, [int(seed)])
            if lm.style_based and float(psi) != 1.0:
                with torch.no_grad():
                    w = G.mapping(z, G.make_c(cls, 1), truncation_psi=float(psi))[:, 0]
                return w, "w", {}
            return z, "z", {}
        if source == "uploaded latent":
            path = _upload_path(latent_file)
            if not path:
                raise StudioInputError("latent: upload a latent.safetensors (from Invert or ganzoo invert)")
            lat = sdk.load_latent(path, G)
            return lat.latent[:1], lat.space, dict(lat.noise)
        if source == "inverted latent":
            if not inverted or inverted.get("spec") != lm.spec:
                raise StudioInputError("no inverted latent for this model yet: run Invert first, then 'Send to Edit'")
            return inverted["latent"], inverted["space"], dict(inverted.get("noise") or {})
        raise StudioInputError(f"unknown latent source {source!r}")

    def _render_edit(self, lm: LoadedModel, latent: torch.Tensor, space: str, noise: dict[str, torch.Tensor],
                     direction: Any, strength: float, layers: list[int] | None, component: int, psi: float,
                     cls: int | None) -> torch.Tensor:
        from sdk.latent.edit import result_space, synthesize
        from sdk.latent.latents import use_noise

        edited = sdk.edit(lm.G, latent, direction, float(strength), layers, component=component, space=space,
                          class_idx=cls)
        out_space = result_space(direction, space, layers)
        with use_noise(lm.G, noise):
            return synthesize(lm.G, edited, out_space, class_idx=cls,
                              truncation_psi=float(psi) if out_space == "z" else 1.0)

    def _edit_inputs(self, spec: str, source: str, seed: float | None, latent_file: Any, method: str,
                     direction_file: Any, prompt: str, component: float | None, layers_text: str, psi: float,
                     class_text: str | None, inverted: dict[str, Any] | None) -> tuple[Any, ...]:
        lm = self.state.model(spec)
        if lm.backend == "onnx":
            raise StudioInputError("editing needs the torch backend (an ONNX file has no latent directions)")
        cls = _class_arg(lm, class_text)
        layers = parse_layer_text(layers_text, getattr(lm.G, "num_ws", None)) if lm.style_based else None
        if (layers_text or "").strip() and not lm.style_based:
            raise StudioInputError(f"layers: {lm.spec} has no W+ layers; clear the layers field")
        latent, space, noise = self._source_latent(lm, source, seed, latent_file, inverted, psi, cls)
        d, note = self._direction(lm, method, direction_file, layers, prompt, latent, space, cls)
        k = int(component or 0)
        if not 0 <= k < len(d):
            raise StudioInputError(f"component {k} out of range: this direction has 0..{len(d) - 1}")
        return lm, cls, layers, latent, space, noise, d, note, k

    def edit(self, spec: str, source: str, seed: float | None, latent_file: Any, method: str, direction_file: Any,
             prompt: str, component: float | None, strength: float, layers_text: str, psi: float,
             class_text: str | None, inverted: dict[str, Any] | None,
             progress: Any = gr.Progress(track_tqdm=True)) -> tuple[Image.Image, str]:
        t0 = time.perf_counter()
        lm, cls, layers, latent, space, noise, d, note, k = self._edit_inputs(
            spec, source, seed, latent_file, method, direction_file, prompt, component, layers_text, psi,
            class_text, inverted)
        with self.state.queue.turn(lm.spec):
            img = self._render_edit(lm, latent, space, noise, d, strength, layers, k, psi, cls)
        ms = (time.perf_counter() - t0) * 1000
        return sdk.to_pil(img)[0], f"{note}; component {k}, strength {float(strength):g}: {ms:.0f} ms"

    def export_animation(self, spec: str, source: str, seed: float | None, latent_file: Any, method: str,
                         direction_file: Any, prompt: str, component: float | None, strength: float,
                         layers_text: str,
                         psi: float, class_text: str | None, inverted: dict[str, Any] | None, frames: float,
                         fmt: str, request: gr.Request = None, progress: Any = gr.Progress()) -> str:
        from sdk.latent.edit import save_frames

        lm, cls, layers, latent, space, noise, d, _, k = self._edit_inputs(
            spec, source, seed, latent_file, method, direction_file, prompt, component, layers_text, psi,
            class_text, inverted)
        n = max(2, min(int(frames or 9), 60))
        amp = abs(float(strength)) or 3.0
        values = [-amp + 2 * amp * i / (n - 1) for i in range(n)]
        images = []
        stop = self._stop_event(request, "animation")
        try:
            with self.state.queue.turn(lm.spec, cancelled=stop.is_set):
                for i, s in enumerate(values):
                    if stop.is_set():
                        raise Cancelled("export cancelled")
                    progress((i, n), desc="rendering frames")
                    images.append(sdk.to_pil(self._render_edit(lm, latent, space, noise, d, s, layers, k, psi,
                                                               cls))[0])
        finally:
            self._drop_stop(request, "animation", stop)
        ext = ".gif" if fmt == "GIF" else ".webp"
        return str(save_frames(images, self.files.path(f"edit{ext}"), fps=8, boomerang=True))

    # Invert
    def invert(self, spec: str, upload: Any, steps: float, space: str, loss: str, align: bool, seed: float | None,
               class_text: str | None = None, request: gr.Request = None,
               progress: Any = gr.Progress()) -> Iterator[tuple[Any, ...]]:
        from sdk.latent.invert import ImageInputError, open_image, prepare_image

        path = _upload_path(upload)
        if not path:
            raise StudioInputError("upload a photo to invert (PNG or JPEG)")
        lm = self.state.model(spec)
        if lm.backend == "onnx":
            raise StudioInputError("inversion needs the torch backend (gradients through the generator)")
        G = lm.G
        cls = _class_arg(lm, class_text)
        try:
            image: Any = open_image(path)
        except ImageInputError as e:  # name the upload, not the server's temporary path
            raise StudioInputError(str(e).replace(str(path), Path(path).name)) from None
        if align:
            if not hasattr(sdk, "align_face"):
                raise StudioInputError("face alignment is not available in this ganzoo version")
            aligned = sdk.align_face(path, output_size=int(G.img_resolution))  # FFHQ-style crop
            image = getattr(aligned, "image", aligned)
        target = sdk.to_pil(prepare_image(image, int(G.img_resolution), int(G.img_channels)))[0]
        steps = max(1, int(steps))
        space_arg = None if space == "auto" else space
        events: queue_mod.Queue[tuple[str, Any]] = queue_mod.Queue()
        cancel = self._stop_event(request, "invert")
        latest: dict[str, torch.Tensor] = {}

        def capture(_m: Any, _a: Any, out: torch.Tensor) -> None:
            latest["img"] = out[:1].detach()

        def callback(step: int, total: int, value: float) -> None:
            if cancel.is_set():
                raise Cancelled("inversion cancelled")
            events.put(("step", (step, total, value)))

        def work() -> None:
            try:
                with self.state.queue.turn(lm.spec, cancelled=cancel.is_set):
                    # The preview hook lives only inside this model's turn: no other request sees it.
                    hooked = G.synthesis if lm.style_based else G
                    handle = hooked.register_forward_hook(capture)
                    try:
                        inv = sdk.invert(G, image, space=space_arg, steps=steps, loss=loss, seed=int(seed or 0),
                                         class_idx=cls, callback=callback, quiet=True)
                    finally:
                        handle.remove()
                events.put(("done", inv))
            except BaseException as e:  # handed to the page
                events.put(("error", e))

        worker = threading.Thread(target=work, name="ganzoo-studio-invert", daemon=True)
        worker.start()
        status = "waiting for the model..."
        last_preview = 0.0
        try:
            yield target, None, status, None, gr.update()
            while True:
                try:
                    kind, payload = events.get(timeout=0.25)
                except queue_mod.Empty:
                    continue
                if kind == "error":
                    raise payload
                if kind == "done":
                    break
                step, total, value = payload
                progress((step, total), desc="inverting")
                now = time.monotonic()
                if now - last_preview > 0.5 and "img" in latest:
                    last_preview = now
                    status = f"step {step}/{total}, loss {value:.4g}"
                    yield target, sdk.to_pil(latest["img"].float().cpu())[0], status, None, gr.update()
        finally:
            cancel.set()  # also when the page cancels this request
            self._drop_stop(request, "invert", cancel)
        inv = payload
        out = inv.save(self.files.path("latent.safetensors"), G)
        m = inv.metrics
        metrics = (f"PSNR **{m['psnr']:.2f} dB**, SSIM {m['ssim']:.4f}"
                   + (f", LPIPS {m['lpips']:.4f}" if "lpips" in m else "")
                   + f" ({inv.space} space, {steps} steps, loss {inv.loss})")
        handoff = {"spec": lm.spec, "latent": inv.latent.detach().cpu(), "space": inv.space,
                   "noise": {k: v.detach().cpu() for k, v in inv.noise.items()}}
        yield target, inv.image, metrics, str(out), handoff

    # --- wiring ------------------------------------------------------------------------------------------

    def blocks(self) -> gr.Blocks:
        can_align = hasattr(sdk, "align_face")
        with gr.Blocks(title="ganzoo studio", analytics_enabled=False) as demo:
            model_state = gr.State(self.default_model)
            inverted_state = gr.State(None)
            gr.Markdown("# ganzoo studio")
            current = gr.Markdown(f"Model: **{self.default_model}**", elem_id="current-model")
            with gr.Tabs() as tabs:
                with gr.Tab("Models", id="models", elem_id="tab-models"):
                    with gr.Row():
                        spec_box = gr.Textbox(self.default_model, label="Model",
                                              info="registry name, converted folder, upstream checkpoint file "
                                                   "(converted safely) or hf-hub:ID", elem_id="model-spec", scale=4)
                        load_btn = gr.Button("Load", variant="primary", elem_id="model-load", scale=1)
                    upload_ckpt = gr.File(label="...or upload a checkpoint / exported file", elem_id="model-upload",
                                          type="filepath")
                    info_md = gr.Markdown(elem_id="model-info")
                    search = gr.Textbox(label="Search the registry", placeholder="stylegan2, ffhq, 256, ...",
                                        elem_id="registry-search")
                    table = gr.Dataframe(registry_rows(), headers=REGISTRY_HEADERS, interactive=False,
                                         elem_id="registry-table", wrap=True)
                    with gr.Accordion("Model card", open=False):
                        card_md = gr.Markdown(elem_id="model-card")

                with gr.Tab("Sample", id="sample", elem_id="tab-sample"):
                    with gr.Row():
                        with gr.Column(scale=1):
                            seeds_box = gr.Textbox("0-3", label="Seeds", info="e.g. 0-7,12", elem_id="sample-seeds")
                            psi = gr.Slider(0.0, 1.5, value=1.0, step=0.05, label="Truncation psi",
                                            elem_id="sample-psi")
                            cutoff = gr.Number(None, label="Truncation cutoff (0: all layers)", precision=0,
                                               elem_id="sample-cutoff")
                            cls_sample = gr.Dropdown([], label="Class (index or name)", allow_custom_value=True,
                                                     filterable=True, elem_id="sample-class")
                            noise = gr.Radio(["const", "random", "none"], value="const", label="Noise mode")
                            with gr.Accordion("StyleGAN3 translate / rotate", open=False):
                                tx = gr.Slider(-1, 1, value=0, step=0.05, label="translate x")
                                ty = gr.Slider(-1, 1, value=0, step=0.05, label="translate y")
                                rot = gr.Slider(-180, 180, value=0, step=1, label="rotate (degrees)")
                            ncols = gr.Number(None, label="Grid columns (0: square)", precision=0)
                            sample_btn = gr.Button("Sample", variant="primary", elem_id="sample-run")
                        with gr.Column(scale=2):
                            grid_img = _result_image("Grid", "sample-grid", height=420)
                            sample_info = gr.Markdown(elem_id="sample-info")
                            command = gr.Textbox(label="Reproduce with", elem_id="sample-command",
                                                 buttons=["copy"])
                            grid_file = gr.File(label="Download PNG", elem_id="sample-file")

                with gr.Tab("Mix", id="mix", elem_id="tab-mix"):
                    with gr.Row():
                        with gr.Column(scale=1):
                            mix_rows = gr.Textbox("0-2", label="Row seeds", elem_id="mix-rows")
                            mix_cols = gr.Textbox("3-5", label="Column seeds", elem_id="mix-cols")
                            mix_layers = gr.Textbox("0-3", label="Layers taken from the columns (W+ indices)",
                                                    elem_id="mix-layers")
                            mix_psi = gr.Slider(0.0, 1.5, value=1.0, step=0.05, label="Truncation psi")
                            mix_noise = gr.Radio(["const", "random", "none"], value="const", label="Noise mode")
                            cls_mix = gr.Dropdown([], label="Class", allow_custom_value=True)
                            mix_btn = gr.Button("Mix", variant="primary", elem_id="mix-run")
                        with gr.Column(scale=2):
                            mix_img = _result_image("Style mixing", "mix-grid", height=420)
                            mix_file = gr.File(label="Download PNG")

                with gr.Tab("Edit", id="edit", elem_id="tab-edit"):
                    with gr.Row():
                        with gr.Column(scale=1):
                            source = gr.Radio(EDIT_SOURCES, value="seed", label="Start from", elem_id="edit-source")
                            edit_seed = gr.Number(0, label="Seed", precision=0, elem_id="edit-seed")
                            latent_file = gr.File(label="Latent (.safetensors)", type="filepath", visible=False,
                                                  elem_id="edit-latent")
                            method = gr.Dropdown(DIRECTION_METHODS if clip_available() else DIRECTION_METHODS[:3],
                                                 value="SeFa", label="Direction",
                                                 elem_id="edit-method")
                            dir_file = gr.File(label="Direction file (InterFaceGAN / e4e / GANSpace / ganzoo)",
                                               type="filepath", visible=False, elem_id="edit-direction-file")
                            prompt = gr.Textbox("", label="CLIP prompt", visible=False, elem_id="edit-prompt")
                            component = gr.Number(0, label="Component", precision=0, elem_id="edit-component")
                            strength = gr.Slider(-10, 10, value=0, step=0.1, label="Strength", elem_id="edit-strength")
                            edit_layers = gr.Textbox("", label="Layers (W+ indices, empty: the direction's own)",
                                                     elem_id="edit-layers")
                            edit_psi = gr.Slider(0.0, 1.5, value=1.0, step=0.05, label="Truncation psi")
                            cls_edit = gr.Dropdown([], label="Class", allow_custom_value=True)
                            edit_btn = gr.Button("Edit", variant="primary", elem_id="edit-run")
                        with gr.Column(scale=2):
                            edit_img = _result_image("Edited", "edit-image")
                            edit_info = gr.Markdown(elem_id="edit-info")
                            with gr.Row():
                                frames = gr.Number(9, label="Frames", precision=0)
                                fmt = gr.Radio(["WebP", "GIF"], value="WebP", label="Animation")
                                anim_btn = gr.Button("Export animation", elem_id="edit-export")
                                anim_stop = gr.Button("Stop", variant="stop")
                            anim_file = gr.File(label="Animation", elem_id="edit-animation")

                with gr.Tab("Invert", id="invert", elem_id="tab-invert"):
                    with gr.Row():
                        with gr.Column(scale=1):
                            photo = gr.File(label="Photo (PNG / JPEG)", type="filepath", elem_id="invert-upload")
                            align = gr.Checkbox(False, label="Align face first", visible=can_align)
                            inv_steps = gr.Slider(1, 2000, value=100, step=1, label="Steps", elem_id="invert-steps")
                            inv_space = gr.Radio(["auto", "w", "w+", "z"], value="auto", label="Latent space")
                            inv_loss = gr.Radio(["auto", "pixel", "lpips"], value="auto", label="Loss",
                                                elem_id="invert-loss")
                            inv_seed = gr.Number(0, label="Seed", precision=0)
                            cls_inv = gr.Dropdown([], label="Class (conditional models)", allow_custom_value=True)
                            with gr.Row():
                                inv_btn = gr.Button("Invert", variant="primary", elem_id="invert-run")
                                inv_stop = gr.Button("Stop", variant="stop", elem_id="invert-stop")
                        with gr.Column(scale=2):
                            with gr.Row():
                                inv_target = _result_image("Target", "invert-target", height=256)
                                inv_recon = _result_image("Reconstruction", "invert-recon", height=256)
                            inv_metrics = gr.Markdown(elem_id="invert-metrics")
                            inv_file = gr.File(label="latent.safetensors", elem_id="invert-latent")
                            to_edit = gr.Button("Send to Edit", elem_id="invert-to-edit")

            load_outputs = [model_state, info_md, card_md, current, cls_sample, cls_mix, cls_edit, cls_inv]
            demo.load(friendly(self.load), spec_box, load_outputs)  # the start model, as soon as the page opens
            load_btn.click(friendly(self.load), spec_box, load_outputs)
            spec_box.submit(friendly(self.load), spec_box, load_outputs)
            upload_ckpt.upload(friendly(self.load_upload), upload_ckpt, load_outputs)
            search.change(registry_rows, search, table)
            table.select(self.pick_row, table, spec_box)

            sample_inputs = [model_state, seeds_box, psi, cutoff, cls_sample, noise, tx, ty, rot, ncols]
            sample_outputs = [grid_img, grid_file, command, sample_info]
            sample_btn.click(friendly(self.sample), sample_inputs, sample_outputs)
            seeds_box.submit(friendly(self.sample), sample_inputs, sample_outputs)
            psi.release(friendly(self.sample), sample_inputs, sample_outputs, trigger_mode="always_last")
            psi.input(friendly(self.sample), sample_inputs, sample_outputs, trigger_mode="always_last")

            mix_btn.click(friendly(self.mix), [model_state, mix_rows, mix_cols, mix_layers, mix_psi, mix_noise,
                                               cls_mix], [mix_img, mix_file])

            edit_inputs = [model_state, source, edit_seed, latent_file, method, dir_file, prompt, component,
                           strength, edit_layers, edit_psi, cls_edit, inverted_state]
            source.change(lambda v: (gr.update(visible=v == "seed"), gr.update(visible=v == "uploaded latent")),
                          source, [edit_seed, latent_file])
            method.change(lambda v: (gr.update(visible=v == "direction file"), gr.update(visible=v == "CLIP text")),
                          method, [dir_file, prompt])
            edit_btn.click(friendly(self.edit), edit_inputs, [edit_img, edit_info])
            strength.input(friendly(self.edit), edit_inputs, [edit_img, edit_info], trigger_mode="always_last",
                           show_progress="hidden")
            strength.release(friendly(self.edit), edit_inputs, [edit_img, edit_info], trigger_mode="always_last",
                             show_progress="hidden")
            anim_ev = anim_btn.click(friendly(self.export_animation), edit_inputs + [frames, fmt], anim_file)
            anim_stop.click(self.stop("animation"), None, None, cancels=[anim_ev])

            inv_ev = inv_btn.click(friendly(self.invert),
                                   [model_state, photo, inv_steps, inv_space, inv_loss, align, inv_seed, cls_inv],
                                   [inv_target, inv_recon, inv_metrics, inv_file, inverted_state])
            inv_stop.click(self.stop("invert"), None, None, cancels=[inv_ev])
            to_edit.click(lambda: (gr.update(value="inverted latent"), gr.Tabs(selected="edit")), None,
                          [source, tabs])
        demo.queue(default_concurrency_limit=4)
        return demo


#: Small generators (64 px) are scaled up in the page without smoothing; the file behind them is untouched.
CSS = ".studio-result img { width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; }"


def clip_available() -> bool:
    return importlib.util.find_spec("open_clip") is not None


def build_app(model: str = DEFAULT_MODEL, *, backend: str = "torch", device: str = "cpu",
              state: StudioState | None = None) -> gr.Blocks:
    """The studio as a ``gr.Blocks`` (not started); ``model`` is what the page starts with."""
    st = state or StudioState(backend=backend, device=device)
    return Studio(st, default_model=model).blocks()
