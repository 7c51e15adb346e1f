"""The studio's non-UI glue: loaded models, the per-model request queue, the direction cache, input parsing.

Nothing here imports Gradio, so it is testable (and usable) without the ``studio`` extra.
"""

from __future__ import annotations

import os
import shlex
import threading
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from zoo.errors import ZooError

#: The studio refuses larger grids: a browser page is not a batch job (use ``ganzoo sample`` for those).
MAX_STUDIO_SEEDS = 64


class StudioInputError(ZooError, ValueError):
    """A value typed into the studio that cannot be used; the message says what to type instead."""


class Cancelled(Exception):
    """Raised inside long work when the user pressed Stop."""


# --- parsing -------------------------------------------------------------------------------------------

def parse_seed_text(text: str | None, what: str = "seeds", limit: int = MAX_STUDIO_SEEDS) -> list[int]:
    """The CLI's seed syntax (``0-7,12``) with a studio-sized limit; errors name the field."""
    import sdk

    spec = (text or "").strip()
    if not spec:
        raise StudioInputError(f"{what}: empty; type seeds such as 0-3 or 1,5,9")
    try:
        seeds = sdk.parse_seeds(spec)
    except ValueError as e:
        raise StudioInputError(f"{what}: {e}") from None
    if len(seeds) > limit:
        raise StudioInputError(f"{what}: {len(seeds)} seeds is too many for the studio (at most {limit}); "
                               "use `ganzoo sample` for large grids")
    return seeds


def parse_layer_text(text: str | None, num_ws: int | None, what: str = "layers") -> list[int] | None:
    """``"0-3,6"`` -> W+ indices checked against ``num_ws``; empty -> ``None`` (all layers)."""
    spec = (text or "").strip()
    if not spec:
        return None
    from sdk.sampling import parse_indices

    try:
        out = parse_indices(spec)
    except ValueError as e:
        raise StudioInputError(f"{what}: bad list {e} (W+ layer indices)") from None
    if num_ws is not None:
        bad = [i for i in out if i >= num_ws]
        if bad:
            raise StudioInputError(f"{what}: {bad} out of range; this model has W+ layers 0..{num_ws - 1}")
    return sorted(set(out)) or None


def parse_class_text(text: str | None) -> int | str | None:
    """A class picker value: ``""`` -> None, ``"207"`` or ``"207: golden retriever"`` -> 207, else the name."""
    s = (text or "").strip()
    if not s:
        return None
    head = s.split(":", 1)[0].strip()
    if head.isdigit():
        return int(head)
    return s


def seeds_to_text(seeds: Sequence[int]) -> str:
    """``[0, 1, 2, 3, 7]`` -> ``"0-3,7"`` (the inverse of the seed syntax, for the command line)."""
    parts: list[str] = []
    seeds = [int(s) for s in seeds]
    i = 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        parts.append(str(seeds[i]) if j == i else f"{seeds[i]}-{seeds[j]}")
        i = j + 1
    return ",".join(parts)


def _num(x: float) -> str:
    return f"{float(x):g}"


def sample_command(model: str, seeds: Sequence[int], *, truncation_psi: float = 1.0,
                   truncation_cutoff: int | None = None, class_idx: int | str | None = None,
                   noise_mode: str = "const", translate: tuple[float, float] | None = None,
                   rotate: float | None = None, cols: int | None = None, backend: str = "torch",
                   grid: str = "grid.png") -> str:
    """The ``ganzoo sample`` command line that writes the same grid (defaults left out)."""
    args = ["ganzoo", "sample", model, "--seeds", seeds_to_text(seeds)]
    if float(truncation_psi) != 1.0:
        args += ["--trunc", _num(truncation_psi)]
    if truncation_cutoff is not None:
        args += ["--trunc-cutoff", str(int(truncation_cutoff))]
    if class_idx is not None:
        args += ["--class", str(class_idx)]
    if noise_mode != "const":
        args += ["--noise-mode", noise_mode]
    if translate is not None:
        args += ["--translate", f"{_num(translate[0])},{_num(translate[1])}"]
    if rotate is not None:
        args += ["--rotate", _num(rotate)]
    if backend != "torch":
        args += ["--backend", backend]
    args += ["--grid", grid]
    if cols is not None:
        args += ["--cols", str(int(cols))]
    return " ".join(shlex.quote(a) for a in args)


# --- one request at a time per model -----------------------------------------------------------------------

class ModelQueue:
    """First-come-first-served exclusive access per model key.

    Two browser tabs working on the same generator run one after the other, in arrival order, so
    hooks, noise buffers or a temporarily changed transform of one request never leak into another.
    Different models do not wait for each other.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: dict[str, deque[object]] = {}
        self._busy: dict[str, object] = {}

    def waiting(self, key: str) -> int:
        """Requests queued (not yet running) for ``key``."""
        with self._cond:
            return len(self._waiting.get(key, ()))

    def busy(self, key: str) -> bool:
        with self._cond:
            return key in self._busy

    @contextmanager
    def turn(self, key: str, on_wait: Callable[[int], Any] | None = None,
             cancelled: Callable[[], bool] | None = None) -> Iterator[None]:
        """Wait for ``key``'s turn, hold it for the ``with`` body. ``on_wait(position)`` reports the queue
        position while waiting; ``cancelled()`` returning true abandons the wait with :class:`Cancelled`."""
        ticket = object()
        with self._cond:
            q = self._waiting.setdefault(key, deque())
            q.append(ticket)
            try:
                while key in self._busy or q[0] is not ticket:
                    if cancelled is not None and cancelled():
                        raise Cancelled("cancelled while waiting for the model")
                    if on_wait is not None:
                        on_wait(list(q).index(ticket) + 1)
                    self._cond.wait(timeout=0.2)
            except BaseException:
                q.remove(ticket)
                self._cond.notify_all()
                raise
            q.popleft()
            self._busy[key] = ticket
        try:
            yield
        finally:
            with self._cond:
                del self._busy[key]
                if not q:
                    self._waiting.pop(key, None)
                self._cond.notify_all()


# --- loaded models and cached directions ----------------------------------------------------------------

@dataclass
class LoadedModel:
    """A generator the studio holds, with the identity used for queueing and caching."""

    spec: str
    G: Any
    sha256: str
    backend: str = "torch"

    @property
    def style_based(self) -> bool:
        return bool(getattr(self.G, "style_based", False))

    @property
    def class_names(self) -> list[str]:
        return list(getattr(self.G, "class_names", None) or [])


def _generator_sha(G: Any, spec: str) -> str:
    from sdk.latent.latents import generator_sha256

    try:
        return generator_sha256(G)
    except Exception:  # an ONNX session has no state dict: key it by its file instead
        import hashlib

        return "file:" + hashlib.sha256(os.fsencode(os.path.abspath(spec))).hexdigest()


@dataclass
class StudioState:
    """Everything the app shares between browser sessions: loaded models, their queue, cached directions."""

    backend: str = "torch"
    device: str = "cpu"
    queue: ModelQueue = field(default_factory=ModelQueue)
    _models: dict[str, LoadedModel] = field(default_factory=dict)
    _directions: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _dir_locks: dict[tuple[Any, ...], threading.Lock] = field(default_factory=dict)

    def model(self, spec: str, *, quiet: bool = True) -> LoadedModel:
        """The generator for ``spec`` (registry name, folder, checkpoint, ``hf-hub:`` id, or .onnx), loaded once."""
        spec = (spec or "").strip()
        if not spec:
            raise StudioInputError("no model given: type a registry name, a folder, a checkpoint or hf-hub:ID")
        with self._lock:
            hit = self._models.get(spec)
        if hit is not None:
            return hit
        with self.queue.turn("load:" + spec):
            with self._lock:
                hit = self._models.get(spec)
            if hit is not None:
                return hit
            if self.backend == "onnx" or spec.endswith((".onnx", ".ort")):
                import sdk

                if not spec.endswith((".onnx", ".ort")):
                    raise StudioInputError(f"{spec}: with the onnx backend a model is an .onnx/.ort file "
                                           "(make one with ganzoo export)")
                G, backend = sdk.OnnxGenerator(spec, quiet=quiet), "onnx"
            else:
                import zoo

                G, backend = zoo.load(spec, device=self.device, quiet=quiet), "torch"
            loaded = LoadedModel(spec=spec, G=G, sha256=_generator_sha(G, spec), backend=backend)
            with self._lock:
                self._models[spec] = loaded
            return loaded

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def direction(self, lm: LoadedModel, method: str, params: dict[str, Any],
                  compute: Callable[[], Any]) -> tuple[Any, bool]:
        """``(direction, was_cached)``: computed once per generator hash, method and parameters."""
        key = (lm.sha256, method, tuple(sorted((k, repr(v)) for k, v in params.items())))
        with self._lock:
            if key in self._directions:
                return self._directions[key], True
            lock = self._dir_locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._directions:
                    return self._directions[key], True
            d = compute()
            with self._lock:
                self._directions[key] = d
            return d, False

    def cached_directions(self) -> int:
        with self._lock:
            return len(self._directions)
