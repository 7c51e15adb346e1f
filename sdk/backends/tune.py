"""Which backend and batch size run a model fastest on this machine: measured once, cached, reused.

``auto`` (the default of ``sdk.sample`` and ``ganzoo sample``) uses the cached answer for this model and
machine when there is one. Without one it runs eager torch and measures batch sizes 1, 2, 4, 8, ... on the
job's own images as they are generated (every image is still one of the requested seeds, so nothing is
wasted), keeps the fastest for the rest of the job and caches it. :func:`tune` (``ganzoo tune MODEL``)
measures every backend, compiling / exporting the model once, and caches the winner for later calls.
The cache lives in ``<cache>/autotune/``, keyed by the weights sha256 and :func:`machine.fingerprint`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from .allocator import configure_allocator, release_memory
from .machine import fingerprint, fingerprint_key
from .runners import BACKENDS, BackendError, Runner, _device, make_runner, supports_graph, weights_key

PROBE_BATCHES = (1, 2, 4, 8, 16)
#: A batch size must run at least 3 % faster per image than the best smaller one for the next to be tried: with
#: freed memory reused (sdk.backends.allocator) batch sizes 1-16 of StyleGAN2 256 px ran within 8 % of each other
#: on a 2-core AMD EPYC, while batch 16 took 4.8 GiB of memory against batch 1's 0.8 GiB.
MIN_BATCH_GAIN = 0.97
PROBE_REPEATS = 2  # each batch size is timed twice on the job's images; the faster counts
# the doubling stops after this many sizes in a row without a clear gain: per-image time need not fall steadily
# (AMD Zen 5, config-f 256 px: batch 1 188, batch 2 197, batch 4 ~180 ms/image; batch 1 has a fused form of its own)
MAX_BATCH_MISSES = 2
#: Winograd is chosen only when its probe total is at least 5 % below direct convolution's: it changes the
#: float rounding and caches transformed weights (4x a layer's size), which a gain within noise does not pay for.
WINOGRAD_MIN_GAIN = 0.95
#: ... and a tile more than this much slower than another choice on every layer after two rounds is not timed
#: further (F(2x2) at 256 ch @ 128 px took 152 ms a run on the AMD EPYC, twice F(4x4))
WINOGRAD_PRUNE = 1.25
DEFAULT_BATCH = 8  # a forced backend without a batch size and no measurement
CACHE_VERSION = 1
MEMORY_ENV = "GANZOO_MEMORY_BUDGET"


@dataclass
class BackendChoice:
    """What runs a model: ``backend`` at ``batch_size`` (None: batch measured while sampling), and why."""

    backend: str
    batch_size: int | None
    source: str  # forced | cached | tuned | adaptive | fallback
    reason: str
    timings: dict[str, dict[str, float]] = field(default_factory=dict)  # backend -> {batch: ms per image}
    layouts: dict[str, bool] | None = None
    max_batch: int | None = None
    fingerprint: dict[str, Any] = field(default_factory=dict)
    precision: str = "fp32"
    quality: dict[str, Any] = field(default_factory=dict)  # opt-in precisions measured by tune(): PSNR vs fp32
    kernels: dict[str, Any] = field(default_factory=dict)  # CPU: allocator, Winograd, forms (kernel_settings)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- cache ---------------------------------------------------------------------------------------------------

def _autotune_dir() -> Path:
    from zoo.loading import cache_dir

    return cache_dir() / "autotune"


def choice_path(G: Any) -> Path:
    return _choice_file(weights_key(G), _device(G))


def _choice_file(weights: str, device: torch.device | str) -> Path:
    return _autotune_dir() / f"{weights[:16]}-{fingerprint_key(fingerprint(device))}.json"


def _precision_file(G: Any, precision: str) -> Path:
    """Where the batch sizes measured for an opt-in precision are kept, apart from the fp32 choice."""
    path = choice_path(G)
    return path.with_name(f"{path.stem}-{precision}.json")


def _precision_batch(G: Any, precision: str) -> tuple[int, dict[str, float]] | None:
    """The best measured batch size of eager torch under ``precision`` here (sampling or ``ganzoo tune``)."""
    key = f"torch-{precision}"
    data = _read_json(_precision_file(G, precision))
    timings = (data or {}).get("timings", {}).get(key)
    if not timings:
        cached = cached_choice(G)
        timings = cached.timings.get(key) if cached else None
    if not timings:
        return None
    return int(min(timings, key=timings.__getitem__)), timings


def _write_json(path: Path, data: dict[str, Any]) -> None:
    from zoo.fileio import write_text_atomic

    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("version") == CACHE_VERSION else None


def cached_choice(G: Any, *, weights_sha256: str | None = None, device: str = "cpu") -> BackendChoice | None:
    """The cached choice for ``G`` (or for the weights with ``weights_sha256`` on ``device``) here, or None."""
    if weights_sha256 is not None:
        data = _read_json(_choice_file(weights_sha256, device))
    elif isinstance(G, torch.nn.Module):
        data = _read_json(choice_path(G))
    else:
        return None
    if data is None:
        return None
    c = data["choice"]
    return BackendChoice(backend=c["backend"], batch_size=c["batch_size"], source="cached", reason=c["reason"],
                         timings=data.get("timings", {}), layouts=data.get("layouts"), max_batch=data.get("max_batch"),
                         fingerprint=data.get("fingerprint", {}), quality=data.get("quality") or {},
                         kernels=data.get("kernels") or {})


def _save_choice(G: Any, choice: BackendChoice, how: str) -> None:
    _write_json(choice_path(G), {"version": CACHE_VERSION, "weights": weights_key(G), "fingerprint": choice.fingerprint,
                                 "measured_by": how, "timings": choice.timings, "layouts": choice.layouts,
                                 "max_batch": choice.max_batch, "quality": choice.quality,
                                 "kernels": choice.kernels,
                                 "choice": {"backend": choice.backend, "batch_size": choice.batch_size,
                                            "reason": choice.reason}})


# --- memory ----------------------------------------------------------------------------------------------------

def _parse_bytes(text: str) -> int:
    units = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    num, unit = (t[:-1], t[-1]) if t and t[-1] in units else (t, "")
    try:
        return int(float(num) * units[unit])
    except ValueError:
        raise BackendError(f"{MEMORY_ENV}={text!r} is not a size: use e.g. 4GiB or 512MiB") from None


def memory_budget(device: torch.device) -> int:
    """Bytes a batch's activations may take: ``$GANZOO_MEMORY_BUDGET``, else a quarter of what is free (<= 8 GiB)."""
    env = os.environ.get(MEMORY_ENV)
    if env:
        return _parse_bytes(env)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.5)
    avail = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    return min(8 << 30, (avail or (8 << 30)) // 4)


def per_image_bytes(G: Any, noise_mode: str = "const") -> int:
    """An upper bound of one image's activation memory: every module output of a batch-1 forward, summed.

    The forward runs on a copy of ``G`` on the meta device (shapes only, no arithmetic); a family whose ops
    the meta device cannot run falls back to a real batch-1 forward.
    """
    import copy

    def run(model: Any, dev: torch.device | str) -> int:
        with torch.no_grad(), output_bytes(model) as total:
            z = torch.zeros(1, model.z_dim, device=dev)
            c = torch.zeros(1, model.c_dim, device=dev) if model.c_dim else None
            if c is not None:
                c[:, 0] = 1
            model(z, c, noise_mode=noise_mode)
        return total[0]

    try:
        total = run(copy.deepcopy(G).to("meta"), "meta")
    except Exception:  # noqa: BLE001 - an op without a meta kernel: measure on the real model
        total = run(G, _device(G))
    return max(total, 1)


@contextlib.contextmanager
def output_bytes(model: torch.nn.Module) -> Iterator[list[int]]:
    """``[bytes]``: the size of every tensor that ``model`` or one of its modules returns inside the block."""
    total = [0]

    def hook(_m: Any, _i: Any, out: Any) -> None:
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                total[0] += t.numel() * t.element_size()

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        yield total
    finally:
        for h in handles:
            h.remove()


#: With freed memory kept for reuse (sdk.backends.allocator) a CPU process's peak RSS per image was 1.5-3x the
#: activation sum of :func:`per_image_bytes` (StyleGAN2 256 px, batches 16 / 8 / 4 on an AMD EPYC; with glibc's
#: defaults 0.9x): blocks of many sizes fragment the heap. Batches are sized for the worst of that.
REUSE_HEAP_FACTOR = 3


def max_batch(G: Any, noise_mode: str = "const") -> int:
    if not isinstance(G, torch.nn.Module):
        return max(PROBE_BATCHES)
    return batch_cap(G, per_image_bytes(G, noise_mode))


def batch_cap(G: torch.nn.Module, per_image: int) -> int:
    """The largest batch the memory budget allows for ``per_image`` bytes of activations per image."""
    device = _device(G)
    if device.type == "cpu" and configure_allocator() == "reuse":
        per_image *= REUSE_HEAP_FACTOR
    return max(1, min(max(PROBE_BATCHES) * 4, memory_budget(device) // max(per_image, 1)))


# --- per-machine kernel layouts ----------------------------------------------------------------------------------

def _time(fn: Callable[[], Any], repeats: int = 3) -> float:
    fn()
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _once(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _race(a: Callable[[], Any], b: Callable[[], Any], rounds: int = 3) -> tuple[float, float]:
    """Best seconds of ``a`` and of ``b``: one warm-up call each (oneDNN primitive creation), then up to ``rounds``
    interleaved rounds, stopping after the second when one is still more than :data:`WINOGRAD_PRUNE` slower. Never
    after the first: one round disturbed by other work on the machine once cached a 2.2x slower form for good
    (AMD Zen 4: 116 against 52 ms, where undisturbed rounds give 42 against 56)."""
    a(), b()
    t_a, t_b = math.inf, math.inf
    for r in range(max(rounds, 2)):
        t_a, t_b = min(t_a, _once(a)), min(t_b, _once(b))
        if r >= 1 and max(t_a, t_b) > WINOGRAD_PRUNE * min(t_a, t_b):
            break
    return t_a, t_b


_LAYOUTS_MEMO: dict[str, dict[str, bool]] = {}  # per process: the machine does not change under it


_SWITCH_FILES = {"layouts": "kernels", "forms": "forms"}  # record field -> cache file prefix


def _known_switches(field_name: str, memo: dict[str, dict[str, bool]],
                    refresh: bool) -> tuple[str, Path, dict[str, bool] | None]:
    """(machine key, cache file, the on/off switches already known for this machine or None to measure)."""
    key = fingerprint_key(fingerprint("cpu"))
    path = _autotune_dir() / f"{_SWITCH_FILES[field_name]}-{key}.json"
    if not refresh and key in memo:
        if not path.is_file():  # the cache was cleared under a running process: write back what it knows
            _write_json(path, {"version": CACHE_VERSION, "fingerprint": fingerprint("cpu"),
                               field_name: memo[key], "ms": None})
        return key, path, dict(memo[key])
    data = None if refresh else _read_json(path)
    if data is not None:
        memo[key] = {k: bool(v) for k, v in data[field_name].items()}
        return key, path, dict(memo[key])
    return key, path, None


def kernel_layouts(refresh: bool = False) -> dict[str, bool]:
    """Channels-last or NCHW for the CPU ops in ``zoo.models.ops.CPU_CHANNELS_LAST``, measured on this machine.

    Each op is timed both ways on one StyleGAN2-like high-resolution layer (64 channels at 64 -> 128 px, where
    the layouts were seen to flip between CPUs), about a quarter of a second in all, then cached per machine.
    """
    import torch.nn.functional as F

    key, path, known = _known_switches("layouts", _LAYOUTS_MEMO, refresh)
    if known is not None:
        return known
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 64, 64, 64, generator=gen)
    w = torch.randn(64, 64, 3, 3, generator=gen)
    y = torch.randn(1, 64, 131, 131, generator=gen)
    f = torch.randn(64, 1, 4, 4, generator=gen)
    ops = {"conv_transpose": (x, lambda t: F.conv_transpose2d(t, w, stride=2)),
           "fir": (y, lambda t: F.conv2d(t, f, groups=64))}
    layouts, ms = {}, {}
    with torch.no_grad():
        for name, (inp, fn) in ops.items():
            cl = inp.contiguous(memory_format=torch.channels_last)
            t_nchw, t_cl = _time(lambda: fn(inp)), _time(lambda: fn(cl))
            layouts[name] = t_cl < t_nchw
            ms[name] = {"nchw_ms": round(t_nchw * 1e3, 3), "channels_last_ms": round(t_cl * 1e3, 3)}
    _LAYOUTS_MEMO[key] = dict(layouts)
    _write_json(path, {"version": CACHE_VERSION, "fingerprint": fingerprint("cpu"), "layouts": layouts, "ms": ms})
    return layouts


_WINOGRAD_MEMO: dict[str, tuple[int, int]] = {}
WINOGRAD_ENV = "GANZOO_WINOGRAD"


# (channels, px), batch 1: config-f's 3x3 widths at the resolutions they run at. The tile count matters: on AMD
# Zen 5, F(4x4) won for 256 channels at 64 px and lost at 128 px, so the probe must not judge by the smaller one.
WINOGRAD_LAYERS = ((512, 32), (256, 128), (128, 128))


def kernel_winograd(refresh: bool = False) -> tuple[int, int]:
    """(tile, min_channels) for the stride-1 3x3 convolutions on this CPU: tile 0 (direct convolution), 2 or 4,
    used for layers with at least ``min_channels`` input channels.

    Times three StyleGAN2 3x3 layers (:data:`WINOGRAD_LAYERS`, eager) with each tile, interleaved, best of 3,
    about a second in all; the choice with the smallest summed time wins and is cached per machine like
    :func:`kernel_layouts`. ``$GANZOO_WINOGRAD`` (0, 2, 4 or 6, optionally ``:MIN_CHANNELS``) overrides it; 6,
    F(6x6) where it needs fewer products than F(4x4) (``ops.winograd_tile``), is only taken from there: this probe
    picked it on an AMD Zen 4 (36.9 against 41.5 ms for 256 ch at 128 px, batch 1), but whole 256 px generators ran
    12 % slower with it at batch 4 (294 against 267 ms per image, interleaved processes), its transformed weights
    being 1.8x those of F(4x4).
    """
    import torch.nn.functional as F

    from zoo.models.ops import conv3x3_winograd

    env = os.environ.get(WINOGRAD_ENV)
    if env:
        tile, _, min_c = env.partition(":")
        if tile not in ("0", "2", "4", "6") or not (min_c or "0").isdigit():
            raise BackendError(f"{WINOGRAD_ENV}={env!r}: use 0 (direct convolution), 2, 4 or 6, optionally "
                               "followed by :MIN_CHANNELS (e.g. 4:256)")
        return int(tile), int(min_c or 0)
    key = fingerprint_key(fingerprint("cpu"))
    path = _autotune_dir() / f"winograd-{key}.json"
    if not refresh and key in _WINOGRAD_MEMO:
        return _WINOGRAD_MEMO[key]
    data = None if refresh else _read_json(path)
    if data is not None:
        _WINOGRAD_MEMO[key] = (int(data["tile"]), int(data["min_channels"]))
        return _WINOGRAD_MEMO[key]
    gen = torch.Generator().manual_seed(0)
    layers = [(torch.randn(1, c, r, r, generator=gen), torch.randn(c, c, 3, 3, generator=gen) / (3 * c ** 0.5))
              for c, r in WINOGRAD_LAYERS]
    ops = {0: lambda x, w: F.conv2d(x, w, padding=1), 2: lambda x, w: conv3x3_winograd(x, w, 2),
           4: lambda x, w: conv3x3_winograd(x, w, 4)}
    best = {t: [math.inf] * len(layers) for t in ops}
    with torch.no_grad():
        for op in ops.values():  # warm-up: oneDNN primitives, weight transforms
            for x, w in layers:
                op(x, w)
        live = dict(ops)
        for r in range(3):
            for t, op in live.items():
                for i, (x, w) in enumerate(layers):
                    start = time.perf_counter()
                    op(x, w)
                    best[t][i] = min(best[t][i], time.perf_counter() - start)
            if r == 1:  # a tile far behind on every layer after two rounds cannot win: stop timing it
                for t in (2, 4):
                    if all(best[t][i] > WINOGRAD_PRUNE * min(best[u][i] for u in ops if u != t)
                           for i in range(len(layers))):
                        live.pop(t)
    chans = [c for c, _ in WINOGRAD_LAYERS]
    totals = {(0, 0): sum(best[0])}
    for t in (2, 4):
        for min_c in chans:
            totals[(t, min_c)] = sum(best[t][i] if c >= min_c else best[0][i] for i, c in enumerate(chans))
    tile, min_c = min(totals, key=totals.__getitem__)
    if totals[(tile, min_c)] > totals[(0, 0)] * WINOGRAD_MIN_GAIN:  # within noise of direct: keep direct
        tile, min_c = 0, 0
    _WINOGRAD_MEMO[key] = (tile, min_c)
    _write_json(path, {"version": CACHE_VERSION, "fingerprint": fingerprint("cpu"), "tile": tile,
                       "min_channels": min_c, "layers": [f"{c} ch @ {r} px" for c, r in WINOGRAD_LAYERS],
                       "ms": {str(t): [round(b * 1e3, 3) for b in v] for t, v in best.items()}})
    return tile, min_c


_FORMS_MEMO: dict[str, dict[str, bool]] = {}
#: One of two equivalent forms is switched on only when it is at least this much faster in the probe.
FORM_MIN_GAIN = 0.97


def kernel_forms(refresh: bool = False) -> dict[str, bool]:
    """Which of two equivalent forms of a StyleGAN2 op runs faster on this CPU, measured once and cached:

    - ``separable_fir``: the 4x4 resampling FIR as two 1-D passes instead of one 2-D pass
      (``zoo.models.stylegan2.SEPARABLE_FIR``), timed on a 128-channel 259 px FIR;
    - ``fused_modconv``: styles and demodulation folded into the weight at batch 1 instead of scaling the
      activations (``zoo.models.ops.CPU_FUSED_MODCONV``), timed on config-f's two largest batch-1 layers.

    Run after :func:`kernel_layouts` is applied (the forms are timed in the chosen layouts); each is switched on
    only when :data:`FORM_MIN_GAIN` faster (timed by :func:`_race`). About half a second in all.
    """
    from zoo.models import ops

    key, path, known = _known_switches("forms", _FORMS_MEMO, refresh)
    if known is not None:
        return known
    gen = torch.Generator().manual_seed(0)
    f2 = ops.make_filter([1, 3, 3, 1])
    f1 = f2.sum(dim=0) / f2.sum().sqrt()
    y = torch.randn(1, 128, 259, 259, generator=gen)
    # (channels in, out, input px, up): conv1 of the 256 px block and conv0 (upsampling) of the 128 px block
    layers = [(torch.randn(1, ci, r, r, generator=gen), torch.randn(co, ci, 3, 3, generator=gen),
               torch.rand(1, ci, generator=gen) + 0.5, up) for ci, co, r, up in ((128, 128, 256, 1), (512, 256, 64, 2))]

    def modconvs(fused: bool) -> None:
        saved = ops.CPU_FUSED_MODCONV
        ops.CPU_FUSED_MODCONV = fused
        try:
            for x, w, st, up in layers:
                ops.modulated_conv2d(x, w, st, up=up, padding=1, resample_filter=f2, flip_weight=up == 1,
                                     bias=w[:, 0, 0, 0], out_scale=2 ** 0.5)
        finally:
            ops.CPU_FUSED_MODCONV = saved

    pairs = {"separable_fir": (lambda: ops.upfirdn2d(y, f2, padding=(0, 0, 0, 0)),
                               lambda: ops.upfirdn2d(y, f1, padding=(0, 0, 0, 0))),
             "fused_modconv": (lambda: modconvs(False), lambda: modconvs(True))}
    forms, ms = {}, {}
    with torch.no_grad():
        for name, (plain, other) in pairs.items():
            t_plain, t_other = _race(plain, other)
            forms[name] = t_other <= t_plain * FORM_MIN_GAIN
            ms[name] = {"off_ms": round(t_plain * 1e3, 3), "on_ms": round(t_other * 1e3, 3)}
    _FORMS_MEMO[key] = dict(forms)
    _write_json(path, {"version": CACHE_VERSION, "fingerprint": fingerprint("cpu"), "forms": forms, "ms": ms})
    return forms


_SHAPE_MEMO: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}  # (choice, machine key) -> shape records
POLYPHASE_ENV = "GANZOO_POLYPHASE"
WINOGRAD_ROWS_ENV = "GANZOO_WINOGRAD_ROWS"
WINOGRAD_UP_ENV = "GANZOO_WINOGRAD_UP"


def _shape_file(choice: str) -> tuple[str, Path]:
    key = fingerprint_key(fingerprint("cpu"))
    return key, _autotune_dir() / f"{choice}-{key}.json"


def _known_shapes(choice: str, refresh: bool) -> dict[tuple[int, ...], bool]:
    """The layer shapes already timed on this machine for a per-shape choice, each with whether the form won."""
    key, path = _shape_file(choice)
    if refresh:
        _SHAPE_MEMO.pop((choice, key), None)
    if (choice, key) not in _SHAPE_MEMO:
        data = None if refresh else _read_json(path)
        _SHAPE_MEMO[(choice, key)] = dict(data["shapes"]) if data is not None else {}
    return {tuple(int(v) for v in text.split(",")): bool(rec["on"])
            for text, rec in _SHAPE_MEMO[(choice, key)].items()}


def _record_shape(choice: str, shape: tuple[int, ...], record: dict[str, Any]) -> None:
    key, path = _shape_file(choice)
    known = _read_json(path)  # another process may have added shapes since this one read the file
    shapes = {**(known["shapes"] if known is not None else {}), **_SHAPE_MEMO.get((choice, key), {})}
    shapes[",".join(str(int(v)) for v in shape)] = record
    _SHAPE_MEMO[(choice, key)] = shapes
    _write_json(path, {"version": CACHE_VERSION, "fingerprint": fingerprint("cpu"), "shapes": shapes})


def _shape_text(shape: tuple[int, int, int, int, bool]) -> str:
    i, o, h, w, cl = shape
    return f"{i}->{o} ch @ {h}x{w}{' channels-last' if cl else ''}"


def _winograd_shape_text(shape: tuple[int, int, int, int, int]) -> str:
    tile, i, o, h, w = shape
    return f"F({tile}x{tile}) {i}->{o} ch @ {h}x{w}"


def kernel_polyphase(refresh: bool = False) -> dict[tuple[int, int, int, int, bool], bool]:
    """The transposed-convolution layer shapes already timed on this machine, each with whether the polyphase form
    (``zoo.models.ops.CPU_POLYPHASE``) won; new shapes are timed as they come by :func:`probe_polyphase`."""
    return {(i, o, h, w, bool(cl)): on for (i, o, h, w, cl), on in _known_shapes("polyphase", refresh).items()}


def kernel_winograd_rows(refresh: bool = False) -> dict[tuple[int, int, int, int, int], bool]:
    """The Winograd layer shapes already timed on this machine, each with whether the tiles-as-rows form
    (``zoo.models.ops.CPU_WINOGRAD_ROWS``) won; new shapes are timed as they come by :func:`probe_winograd_rows`."""
    return {(t, i, o, h, w): on for (t, i, o, h, w), on in _known_shapes("winograd-rows", refresh).items()}


def probe_polyphase(shape: tuple[int, int, int, int, bool]) -> bool:
    """Time one stride-2 3x3 transposed convolution of ``shape`` (in, out, H, W, channels-last) at batch 1 as one
    oneDNN op and in the polyphase form, interleaved, best of 3 (one round when one form is more than
    :data:`WINOGRAD_PRUNE` slower; a few ms to a third of a second); the polyphase form is used when
    :data:`FORM_MIN_GAIN` faster. Kept per machine with the other kernel choices."""
    import torch.nn.functional as F

    from zoo.models.ops import conv_transpose3x3_polyphase, phase_kernels

    i, o, h, w, cl = shape
    layout = torch.channels_last if cl else torch.contiguous_format
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, i, h, w, generator=gen).contiguous(memory_format=layout)
    wt = torch.randn(i, o, 3, 3, generator=gen).contiguous(memory_format=layout)
    phases = phase_kernels(wt)
    plain = lambda: F.conv_transpose2d(x, wt, stride=2)  # noqa: E731
    poly = lambda: conv_transpose3x3_polyphase(x, phases)  # noqa: E731
    with torch.no_grad():
        t_plain, t_poly = _race(plain, poly)
    on = t_poly <= t_plain * FORM_MIN_GAIN
    _record_shape("polyphase", shape, {"on": on, "layer": _shape_text(shape), "transposed_conv_ms":
                                       round(t_plain * 1e3, 3), "polyphase_ms": round(t_poly * 1e3, 3)})
    return on


def probe_winograd_rows(shape: tuple[int, int, int, int, int]) -> bool:
    """Time one modulated Winograd 3x3 layer of ``shape`` (tile, in, out, H, W) at batch 1 on channels-last input,
    as StyleGAN2 runs it, in both eager forms (``zoo.models.ops.CPU_WINOGRAD_ROWS``): by point with the styles and
    demodulation as passes of their own, and tiles as rows with them inside; interleaved, best of 3 as
    :func:`probe_polyphase`. Rows are used when :data:`FORM_MIN_GAIN` faster. Kept per machine."""
    from zoo.models import ops
    from zoo.models.ops import conv3x3_winograd

    tile, i, o, h, w = shape
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, i, h, w, generator=gen).contiguous(memory_format=torch.channels_last)
    wt = torch.randn(o, i, 3, 3, generator=gen) / (3 * i ** 0.5)
    s, d = torch.rand(1, i, generator=gen) + 0.5, torch.rand(1, o, generator=gen) + 0.5
    b = torch.randn(o, generator=gen)
    if ops.CPU_WINOGRAD_NATIVE is not None:  # modulated_conv2d then scales inside the transforms in both forms
        points = lambda: conv3x3_winograd(x, wt, tile, in_scale=s, out_scale=d, bias=b)  # noqa: E731
    else:
        points = lambda: torch.addcmul(b.reshape(1, -1, 1, 1),  # noqa: E731
                                       conv3x3_winograd(x * s.reshape(1, -1, 1, 1), wt, tile), d.reshape(1, -1, 1, 1))
    rows = lambda: conv3x3_winograd(x, wt, tile, in_scale=s, out_scale=d, bias=b, form="rows")  # noqa: E731
    with torch.no_grad():
        t_points, t_rows = _race(points, rows)
    on = t_rows <= t_points * FORM_MIN_GAIN
    _record_shape("winograd-rows", shape, {"on": on, "layer": _winograd_shape_text(shape),
                                           "points_ms": round(t_points * 1e3, 3), "rows_ms": round(t_rows * 1e3, 3)})
    return on


def kernel_winograd_up(refresh: bool = False) -> dict[tuple[int, int, int, int], bool]:
    """The transposed-convolution layer shapes already timed on this machine, each with whether the compiled nested
    Winograd form (``zoo.models.ops.CPU_WINOGRAD_UP``) won; new shapes are timed by :func:`probe_winograd_up`."""
    return {(i, o, h, w): on for (i, o, h, w), on in _known_shapes("winograd-up", refresh).items()}


def probe_winograd_up(shape: tuple[int, int, int, int]) -> bool:
    """Time one modulated stride-2 3x3 transposed convolution of ``shape`` (in, out, H, W) at batch 1 on
    channels-last input: in the form it runs otherwise (polyphase or one op, as ``CPU_POLYPHASE`` decides, with the
    styles and demodulation as passes of their own) and as the compiled nested Winograd F(2, 2) with them inside;
    interleaved, best of 3 as :func:`probe_polyphase`. Winograd is used when :data:`FORM_MIN_GAIN` faster."""
    import torch.nn.functional as F

    from zoo.models import ops

    i, o, h, w = shape
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, i, h, w, generator=gen).contiguous(memory_format=torch.channels_last)
    wt = torch.randn(i, o, 3, 3, generator=gen).contiguous(memory_format=torch.channels_last) / (3 * i ** 0.5)
    s, d = torch.rand(1, i, generator=gen) + 0.5, torch.rand(1, o, generator=gen) + 0.5
    poly = ops._polyphase(x, wt, 2)
    phases = ops.phase_kernels(wt)

    def other() -> torch.Tensor:
        xs = x * s.reshape(1, -1, 1, 1)
        y = ops.conv_transpose3x3_polyphase(xs, phases) if poly else F.conv_transpose2d(xs, wt, stride=2)
        return y * d.reshape(1, -1, 1, 1)

    winograd = lambda: ops.conv_transpose3x3_winograd(x, wt, s, d)  # noqa: E731
    with torch.no_grad():
        t_other, t_wino = _race(other, winograd)
    on = t_wino <= t_other * FORM_MIN_GAIN
    _record_shape("winograd-up", shape, {"on": on, "layer": _shape_text((*shape, False)),
                                         "polyphase_ms" if poly else "transposed_conv_ms": round(t_other * 1e3, 3),
                                         "winograd_ms": round(t_wino * 1e3, 3)})
    return on


def _apply_shape_choice(env_name: str, table: dict, known: Callable[[], dict], probe: Callable[[Any], bool],
                        what: tuple[str, str]) -> Callable[[Any], bool]:
    """Fill ``table`` for a per-shape choice and return its probe: ``$env_name`` 0 / 1 forces the form, auto (the
    default) takes the shapes known on this machine and measures new ones. ``what``: the off and on forms."""
    env = os.environ.get(env_name)
    if env not in (None, "", "0", "1", "auto"):
        raise BackendError(f"{env_name}={env!r}: use 0 (always {what[0]}), 1 (always {what[1]}) or auto "
                           "(measured per layer shape, the default)")
    table.clear()
    if env in ("0", "1"):
        return (lambda _shape: True) if env == "1" else (lambda _shape: False)
    table.update(known())
    return probe


def _apply_shape_choices() -> None:
    from zoo.models import ops

    ops.CPU_POLYPHASE_PROBE = _apply_shape_choice(POLYPHASE_ENV, ops.CPU_POLYPHASE, kernel_polyphase, probe_polyphase,
                                                  ("one transposed convolution", "the polyphase form"))
    ops.CPU_WINOGRAD_ROWS_PROBE = _apply_shape_choice(WINOGRAD_ROWS_ENV, ops.CPU_WINOGRAD_ROWS, kernel_winograd_rows,
                                                      probe_winograd_rows,
                                                      ("Winograd GEMMs by point", "Winograd tiles as rows"))
    ops.CPU_WINOGRAD_UP_PROBE = _apply_shape_choice(WINOGRAD_UP_ENV, ops.CPU_WINOGRAD_UP, kernel_winograd_up,
                                                    probe_winograd_up, ("their other form", "the compiled Winograd"))


def apply_kernel_layouts(device: torch.device) -> dict[str, bool] | None:
    """This machine's CPU settings for eager generation: the heap allocator, then the measured kernel choices."""
    if device.type != "cpu":
        return None
    from zoo.models.ops import set_cpu_layouts, set_cpu_winograd

    configure_allocator()  # before the probes: they time the kernels as sampling will run them
    import zoo.models.stylegan2 as sg2
    from zoo.models import ops

    from zoo.models import native

    ops.CPU_WINOGRAD_NATIVE = native.winograd()  # before the Winograd probes: they time what sampling will run
    layouts = kernel_layouts()
    set_cpu_layouts(layouts)
    set_cpu_winograd(*kernel_winograd())
    if ops.CPU_WINOGRAD == 6 and ops.CPU_WINOGRAD_NATIVE is not None:  # F(6x6) is a build of its own
        ops.CPU_WINOGRAD_NATIVE = native.winograd(f6=True) or ops.CPU_WINOGRAD_NATIVE
    forms = kernel_forms()
    sg2.SEPARABLE_FIR, ops.CPU_FUSED_MODCONV = forms["separable_fir"], forms["fused_modconv"]
    _apply_shape_choices()
    return layouts


def kernel_settings(device: torch.device) -> dict[str, Any]:
    """What eager generation on ``device`` runs with besides the layouts: the allocator mode, the Winograd choice
    and the kernel forms (CPU; empty elsewhere). Reports the settings :func:`apply_kernel_layouts` made."""
    if device.type != "cpu":
        return {}
    import zoo.models.stylegan2 as sg2
    from zoo.models import ops

    return {"allocator": configure_allocator(),
            "winograd": {"tile": ops.CPU_WINOGRAD, "min_channels": ops.CPU_WINOGRAD_MIN_CHANNELS,
                         "native_transforms": ops.CPU_WINOGRAD_NATIVE is not None},
            "separable_fir": sg2.SEPARABLE_FIR, "fused_modconv_batch1": ops.CPU_FUSED_MODCONV,
            "polyphase_upconv": sorted(_shape_text(k) for k, on in ops.CPU_POLYPHASE.items() if on),
            "winograd_rows": sorted(_winograd_shape_text(k) for k, on in ops.CPU_WINOGRAD_ROWS.items() if on),
            "winograd_upconv": sorted(_shape_text((*k, False)) for k, on in ops.CPU_WINOGRAD_UP.items() if on)}


# --- measuring -------------------------------------------------------------------------------------------------

def _probe_inputs(G: Any, batch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    gen = torch.Generator().manual_seed(batch)
    dev = _device(G)
    z = torch.randn(batch, G.z_dim, generator=gen).to(dev)
    c = None
    if G.c_dim:
        c = torch.nn.functional.one_hot(torch.arange(batch) % G.c_dim, G.c_dim).to(torch.float32).to(dev)
    return z, c


def ms_per_image(runner: Runner, G: Any, batch: int, repeats: int = 2, psi: float = 1.0) -> float:
    z, c = _probe_inputs(G, batch)
    with torch.no_grad():
        return _time(lambda: runner(z, c, psi), repeats) * 1e3 / batch


def tune(G: Any, backends: Sequence[str] = BACKENDS, batches: Sequence[int] = PROBE_BATCHES, *,
         noise_mode: str = "const", truncation_cutoff: int | None = None, repeats: int = 2,
         precisions: Sequence[str] = (), progress: Callable[[str], None] | None = None) -> BackendChoice:
    """Measure ``backends`` at ``batches`` (capped by the memory budget) and cache the fastest; returns it.

    ``precisions`` (e.g. ``["bf16"]``) are also timed on eager torch, with their PSNR against fp32, and
    reported (``timings["torch-bf16"]``, ``quality``) but never chosen: reduced precision stays opt-in.
    """
    say = progress or (lambda m: None)
    device = _device(G)
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise BackendError(f"unknown backend(s) {', '.join(unknown)}: choose from {', '.join(BACKENDS)}")
    layouts = apply_kernel_layouts(device)
    cap = max_batch(G, noise_mode)
    sizes = sorted({b for b in batches if b <= cap} or {1})
    timings: dict[str, dict[str, float]] = {}
    skipped: dict[str, str] = {}
    for name in backends:
        try:
            runner = make_runner(G, name, noise_mode, truncation_cutoff, progress=say)
        except Exception as e:  # noqa: BLE001 - a backend that cannot build this model is skipped, with the reason
            skipped[name] = str(e).splitlines()[0] if str(e) else type(e).__name__
            say(f"{name}: skipped ({skipped[name]})")
            continue
        timings[name] = {}
        for b in sizes:
            say(f"timing {name} at batch {b}")
            timings[name][str(b)] = round(ms_per_image(runner, G, b, repeats), 3)
    if not timings:
        raise BackendError(f"no backend could run this model: {skipped}")
    quality: dict[str, Any] = {}
    for prec in precisions:
        runner = make_runner(G, "torch", noise_mode, truncation_cutoff, precision=prec)
        key = f"torch-{prec}"
        timings[key] = {}
        for b in sizes:
            say(f"timing torch ({prec}) at batch {b}")
            timings[key][str(b)] = round(ms_per_image(runner, G, b, repeats), 3)
        quality[prec] = precision_quality(G, prec)
    reduced = {k for k in timings if k.startswith("torch-")}
    best_backend, best_batch = min(((n, int(b)) for n, t in timings.items() if n not in reduced for b in t),
                                   key=lambda nb: timings[nb[0]][str(nb[1])])
    best = timings[best_backend][str(best_batch)]
    eager = timings.get("torch", {})
    ref = f"; eager torch at batch {DEFAULT_BATCH}: {eager[str(DEFAULT_BATCH)]:.1f} ms" if str(DEFAULT_BATCH) in eager else ""
    reason = f"fastest measured: {best_backend} at batch {best_batch}, {best:.1f} ms/image{ref}"
    if skipped:
        reason += "; skipped " + ", ".join(f"{k} ({v})" for k, v in skipped.items())
    for prec, q in quality.items():
        t = timings[f"torch-{prec}"]
        fastest = min(t.values())
        reason += (f"; opt-in {prec}: {best / fastest:.2f}x the chosen path's speed at {q['psnr_db']} dB PSNR vs fp32 "
                   f"(precision='{prec}')")
    choice = BackendChoice(best_backend, best_batch, "tuned", reason, timings, layouts, cap, fingerprint(device),
                           quality=quality, kernels=kernel_settings(device))
    _save_choice(G, choice, "tune")
    return choice


class BatchPlan:
    """The batch sizes of one job: fixed, or measured on the job's own images (1 to warm up, then 1, 2, 4, 8 ...
    each :data:`PROBE_REPEATS` times, best of those), doubling until :data:`MAX_BATCH_MISSES` sizes in a row fail
    to beat the best before them by :data:`MIN_BATCH_GAIN`."""

    def __init__(self, choice: BackendChoice, n_images: int) -> None:
        self.choice, self.n = choice, n_images
        self.adaptive = choice.batch_size is None
        cap = choice.max_batch or max(PROBE_BATCHES)
        # the first call warms kernels up (oneDNN primitive creation): batch 1 runs again before it counts
        self.schedule = ([1] + [b for b in PROBE_BATCHES if b <= cap for _ in range(PROBE_REPEATS)]
                         if self.adaptive else [])
        self._warming = self.adaptive
        self.measured: dict[int, float] = {}
        self._runs: dict[int, int] = {}
        self._misses = 0

    @contextlib.contextmanager
    def measuring(self, G: Any, size: int) -> Iterator[None]:
        """Wraps each call of the job. An adaptive plan given no memory cap (``choice.max_batch`` None) takes it
        from its warm-up call: the module outputs of that real call, summed as :func:`per_image_bytes` sums a
        meta-device forward, without that forward's cost (its meta arithmetic imports ``torch._dynamo``)."""
        if not (self._warming and self.choice.max_batch is None and isinstance(G, torch.nn.Module)):
            yield
            return
        with output_bytes(G) as total:
            yield
        cap = batch_cap(G, total[0] // max(size, 1))
        self.choice.max_batch = cap
        self.schedule = self.schedule[:1] + [b for b in self.schedule[1:] if b <= cap]

    def next_size(self, remaining: int) -> int:
        if not self.adaptive:
            return min(int(self.choice.batch_size or DEFAULT_BATCH), remaining)
        return min(self.schedule[0] if self.schedule else self.best(), remaining)

    def record(self, size: int, seconds: float) -> None:
        if not self.adaptive or not self.schedule or size != self.schedule[0]:
            return
        self.schedule.pop(0)
        if self._warming:
            self._warming = False
            return
        ms = seconds * 1e3 / size
        best_before = min((t for b, t in self.measured.items() if b != size), default=math.inf)
        self.measured[size] = min(ms, self.measured.get(size, math.inf))
        self._runs[size] = self._runs.get(size, 0) + 1
        if self._runs[size] == PROBE_REPEATS:
            self._misses = self._misses + 1 if self.measured[size] > best_before * MIN_BATCH_GAIN else 0
            if self._misses >= MAX_BATCH_MISSES:
                # no clear gain from the larger batches: stop before even larger ones take memory for nothing
                self.schedule.clear()
        if not self.schedule and self.best() < max(self.measured):
            # the heap kept the largest batch's memory (sdk.backends.allocator); the rest of the job needs less
            release_memory()

    def best(self) -> int:
        return min(self.measured, key=self.measured.__getitem__) if self.measured else DEFAULT_BATCH

    def finish(self, G: Any) -> None:
        """Cache what an adaptive job measured (eager torch only), when it measured at least two sizes; an opt-in
        precision's sizes go to a file of their own."""
        done = self.measured
        if not self.adaptive or len(done) < 2 or not isinstance(G, torch.nn.Module):
            return
        best = self.best()
        c = self.choice
        measured = {str(b): round(t, 3) for b, t in sorted(done.items())}
        c.batch_size, c.source = best, "adaptive"
        c.kernels = kernel_settings(_device(G))  # with the choices made on first use while sampling (polyphase)
        if c.precision != "fp32":  # kept apart: the fp32 choice is not touched by an opt-in precision
            c.timings = {f"torch-{c.precision}": measured}
            c.reason = (f"eager torch under {c.precision} autocast at batch {best} ({done[best]:.1f} ms/image), "
                        "measured while sampling")
            _write_json(_precision_file(G, c.precision), {"version": CACHE_VERSION, "weights": weights_key(G),
                                                          "fingerprint": c.fingerprint, "timings": c.timings})
            return
        c.timings = {"torch": measured}
        c.reason = (f"eager torch at batch {best} ({done[best]:.1f} ms/image), measured while sampling; "
                    "`ganzoo tune` also measures the compiled and onnx backends")
        _save_choice(G, c, "sampling")


def _best_cached_batch(G: Any, backend: str) -> int | None:
    cached = cached_choice(G)
    t = cached.timings.get(backend) if cached else None
    return int(min(t, key=t.__getitem__)) if t else None


def resolve(G: Any, backend: str = "auto", batch_size: int | None = None, *, noise_mode: str = "const",
            truncation_cutoff: int | None = None, quiet: bool = True, precision: str = "fp32",
            **forward_kwargs: Any) -> tuple[Runner, BackendChoice]:
    """The runner and choice for one sampling call (see the module docstring for ``auto``).

    ``precision`` other than fp32 (opt-in: bf16 on CPUs with AVX512-BF16 / AMX, fp16 on CUDA) runs eager torch
    under autocast; :func:`precision_quality` says what it costs in PSNR.
    """
    say = None if quiet else (lambda m: print(f"ganzoo: {m}", file=sys.stderr, flush=True))
    is_module = isinstance(G, torch.nn.Module)
    device = _device(G)
    layouts = apply_kernel_layouts(device) if is_module else None
    fp = fingerprint(device) if is_module else {}
    kernels = kernel_settings(device) if is_module else {}
    runner, choice = _resolve(G, backend, batch_size, noise_mode, truncation_cutoff, precision, say, is_module, layouts,
                              fp, forward_kwargs)
    choice.kernels = kernels
    return runner, choice


def _resolve(G: Any, backend: str, batch_size: int | None, noise_mode: str, truncation_cutoff: int | None,
             precision: str, say: Callable[[str], None] | None, is_module: bool, layouts: dict[str, bool] | None,
             fp: dict[str, Any], forward_kwargs: dict[str, Any]) -> tuple[Runner, BackendChoice]:
    if precision != "fp32":
        if backend not in ("auto", "torch"):
            raise BackendError(f"precision={precision} runs on the torch backend, not {backend}")
        runner = make_runner(G, "torch", noise_mode, truncation_cutoff, precision=precision, **forward_kwargs)
        what = f"eager torch under {precision} autocast (opt-in reduced precision)"
        if batch_size is not None or not is_module:
            return runner, BackendChoice("torch", batch_size or DEFAULT_BATCH, "forced", what, {}, layouts, None, fp,
                                         precision)
        known = _precision_batch(G, precision)
        if known is not None:
            best, timings = known
            return runner, BackendChoice("torch", best, "cached", f"{what} at batch {best}, measured before",
                                         {f"torch-{precision}": timings}, layouts, None, fp, precision)
        # its best batch differs from fp32's (AMD Zen 5, 256 px: bf16 fastest at batch 8, fp32 at 1-2): measure it
        return runner, BackendChoice("torch", None, "adaptive", f"{what}; batch size measured while sampling", {},
                                     layouts, None, fp, precision)  # max_batch: from the warm-up call
    if backend != "auto":
        if batch_size is None:
            batch_size = _best_cached_batch(G, backend) or DEFAULT_BATCH
        runner = make_runner(G, backend, noise_mode, truncation_cutoff, progress=say, **forward_kwargs)
        return runner, BackendChoice(backend, batch_size, "forced", f"{backend} asked for", {},
                                     layouts, None, fp)
    why = supports_graph(G, noise_mode) if not forward_kwargs else "the call passes " + ", ".join(forward_kwargs)
    cached = cached_choice(G) if is_module else None
    if cached is not None:
        chosen = cached.backend if why is None or cached.backend == "torch" else "torch"
        try:
            runner = make_runner(G, chosen, noise_mode, truncation_cutoff, build=False, **forward_kwargs)
        except BackendError:  # artifact gone (cache cleared) or another variant: eager until re-tuned
            chosen, runner = "torch", make_runner(G, "torch", noise_mode, truncation_cutoff, **forward_kwargs)
        if chosen != cached.backend:
            return runner, BackendChoice("torch", batch_size or _best_cached_batch(G, "torch"), "fallback",
                                         f"cached choice {cached.backend} cannot run this call"
                                         f"{': ' + why if why else ''}; eager torch", cached.timings, layouts,
                                         cached.max_batch, fp)
        if batch_size is not None:
            cached.batch_size = batch_size
        cached.layouts = layouts
        return runner, cached
    runner = make_runner(G, "torch", noise_mode, truncation_cutoff, **forward_kwargs)
    # an adaptive plan takes its memory cap from its warm-up call (BatchPlan.measuring)
    cap = None if is_module and batch_size is None else max_batch(G, noise_mode)
    reason = "eager torch; batch size measured while sampling (no cached choice for this model and machine)"
    if batch_size is not None:
        reason = f"eager torch at the given batch size {batch_size} (no cached choice)"
    return runner, BackendChoice("torch", batch_size, "adaptive" if batch_size is None else "forced", reason, {},
                                 layouts, cap, fp)


def precision_quality(G: Any, precision: str, seeds: Sequence[int] = tuple(range(8)), *,
                      truncation_psi: float = 1.0, class_idx: int | None = None) -> dict[str, Any]:
    """PSNR (dB, images mapped to [0, 1]) and max-abs of ``precision`` against fp32 on ``seeds``."""
    from ..sampling import generate

    kw = dict(truncation_psi=truncation_psi, class_idx=class_idx, backend="torch", batch_size=len(seeds))
    ref = generate(G, seeds, **kw).to(torch.float64)
    out = generate(G, seeds, precision=precision, **kw).to(torch.float64)
    mse = float((((ref.clamp(-1, 1) - out.clamp(-1, 1)) / 2) ** 2).mean())
    return {"precision": precision, "psnr_db": None if mse == 0 else round(10 * math.log10(1 / mse), 2),
            "max_abs": float((ref - out).abs().max()), "seeds": list(seeds)}
