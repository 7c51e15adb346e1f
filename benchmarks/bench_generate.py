"""Generation speed of a StyleGAN2 config-f generator at 256 px on this machine's CPU (not a test).

    python benchmarks/bench_generate.py [--rounds N] [--no-compile] [--upstream PATH/TO/stylegan2-ada-pytorch]
    python benchmarks/bench_generate.py --allocator [--res 1024] [--batches 1,4] [--upstream ...]
    python benchmarks/bench_generate.py --native [--res 1024] [--batches 1,4] [--upstream ...]
    python benchmarks/bench_generate.py --device cuda [--res 1024] [--batches 1,8,32] [--upstream ...]

Random weights of the real size: z = w = 512, 8 mapping layers, channel_base 32768 / channel_max 512
(config-f widths: 512 channels up to 64 px, 256 at 128 px, 128 at 256 px). Prints ms/image for torch
eager (NCHW and channels-last), torch.compile (one dynamic-batch graph, one static graph per batch
size, and the static graph with inductor's weight freezing) and onnxruntime (CPU) at batch 1 and 8, GFLOP/image from ``torch.utils.flop_counter.FlopCounterMode``
(the model's nominal conv/matmul FLOPs, the same for every path), and the achieved fraction of this CPU's
fp32 peak. The peak is measured, not looked up: ``fma_peak.c`` (built with gcc -fopenmp) runs independent
FMA chains on the same number of threads, before and after the timed rounds; the nominal
cores x base clock x FLOP/cycle figure is printed beside it (it ignores turbo). Also printed: the top ops
of a profile, single-op timings of where the upsampling layers spend their time, eager timings with
the FIR resampling filter run as one 2-D pass vs two 1-D passes, and the convolution ceiling: every
convolution of the model timed alone as one oneDNN op, which bounds any direct-convolution path.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import zoo.models.stylegan2 as sg2  # noqa: E402

CONFIG = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
              mapping_kwargs={"num_layers": 8}, channel_base=32768, channel_max=512)


def build(res: int = 256) -> sg2.StyleGAN2Generator:
    torch.manual_seed(0)
    G = sg2.StyleGAN2Generator(**{**CONFIG, "img_resolution": res})
    with torch.no_grad():  # non-trivial biases / noise strengths so no op is skipped or constant
        for name, t in list(G.named_parameters()) + list(G.named_buffers()):
            if name.endswith(("bias", "noise_strength", "w_avg")):
                t.add_(0.1 * torch.randn_like(t))
    return G.eval().requires_grad_(False)


def cpu_peak() -> tuple[float, str]:
    """Estimated fp32 peak GFLOP/s = cores x GHz x FLOP/cycle, and how it was derived."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = set()
    mhz = 0.0
    vendor, family, model_name = "", 0, platform.processor()
    for line in info.splitlines():
        key, _, val = line.partition(":")
        key, val = key.strip(), val.strip()
        if key == "flags" and not flags:
            flags = set(val.split())
        elif key == "cpu MHz" and not mhz:
            mhz = float(val)
        elif key == "vendor_id" and not vendor:
            vendor = val
        elif key == "cpu family" and not family:
            family = int(val)
        elif key == "model name":
            model_name = val
    cores = torch.get_num_threads()
    if "avx512f" in flags and not (vendor == "AuthenticAMD" and family < 0x1A):
        # Intel server cores and AMD Zen 5 (family 0x1A): two 512-bit FMA pipes = 2 x 16 lanes x 2 FLOP
        per_cycle, why = 64, "AVX-512, 2 x 512-bit FMA pipes (Intel server / AMD Zen 5)"
    elif "avx512f" in flags or ("avx2" in flags and "fma" in flags):
        # Zen 4 runs AVX-512 on 256-bit pipes; AVX2 parts: two 256-bit FMA pipes = 2 x 8 x 2
        per_cycle, why = 32, "2 x 256-bit FMA pipes (AVX2 / Zen 4 AVX-512)"
    else:
        per_cycle, why = 8, "SSE, no FMA"
    ghz = mhz / 1000 if mhz else 2.0
    peak = cores * ghz * per_cycle
    text = (f"{model_name} ({vendor} family {family:#x}): {cores} threads x {ghz:.2f} GHz (/proc/cpuinfo, nominal; "
            f"turbo not counted) x {per_cycle} FLOP/cycle [{why}] = {peak:.0f} GFLOP/s fp32")
    return peak, text


def measured_peak(threads: int) -> tuple[float | None, str]:
    """GFLOP/s of ``fma_peak.c`` on ``threads`` threads (best of 5), or None when it cannot be built."""
    import shutil
    import subprocess

    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").exists() else []
    isa = "avx512" if "avx512f" in flags else "avx2"
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return None, "no C compiler: measured peak unavailable"
    exe = Path(tempfile.gettempdir()) / f"ganzoo_fma_peak_{os.getpid()}"
    try:
        subprocess.run([cc, "-O2", "-fopenmp", str(ROOT / "benchmarks" / "fma_peak.c"), "-o", str(exe)],
                       check=True, capture_output=True)
        out = subprocess.run([str(exe), str(threads), "200000000", isa], check=True, capture_output=True, text=True)
        return float(out.stdout.strip()), f"{isa} FMA chains on {threads} threads"
    except (subprocess.CalledProcessError, ValueError) as e:
        return None, f"fma_peak failed: {e}"
    finally:
        exe.unlink(missing_ok=True)


def upsample_op_ms(batch: int = 8, rounds: int = 3) -> list[tuple[str, float, float, float, float, float]]:
    """Where an upsampling layer's time goes, per layer shape: ms for the stride-2 transposed conv in NCHW
    and channels-last, a plain 3x3 conv of the same FLOPs, and the 4x4 FIR after it in NCHW and channels-last."""
    import torch.nn.functional as F

    def best(fn: Callable[[], Any]) -> float:
        fn()
        t_best = math.inf
        for _ in range(rounds):
            t = time.perf_counter()
            fn()
            t_best = min(t_best, time.perf_counter() - t)
        return t_best * 1000

    out = []
    for cin, cout, res in ((512, 512, 32), (512, 256, 64), (256, 128, 128)):
        x = torch.randn(batch, cin, res, res)
        w = torch.randn(cin, cout, 3, 3)
        y = torch.randn(batch, cout, 2 * res + 3, 2 * res + 3)
        f = torch.ones(cout, 1, 4, 4) / 16
        yc = y.contiguous(memory_format=torch.channels_last)
        xc = x.contiguous(memory_format=torch.channels_last)
        out.append((f"{cin}->{cout} @{res}->{2 * res}",
                    best(lambda: F.conv_transpose2d(x, w, stride=2)),
                    best(lambda: F.conv_transpose2d(xc, w, stride=2)),
                    best(lambda: F.conv2d(x, w.transpose(0, 1), padding=1)),
                    best(lambda: F.conv2d(y, f, groups=cout)),
                    best(lambda: F.conv2d(yc, f, groups=cout))))
    return out


def conv_ceiling(G: torch.nn.Module, batch: int, rounds: int = 3) -> tuple[float, float]:
    """(ms/image, GFLOP/image) of the generator's convolutions alone, each run as one oneDNN op on
    channels-last input (best of ``rounds``): the time a direct-convolution path needs even with nothing
    else in the graph, so ``GFLOP / ms`` bounds what any such path can reach on this CPU."""
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    shapes: list[tuple[tuple[int, ...], torch.Tensor, int]] = []

    def hook(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        shapes.append((tuple(args[0].shape), module.weight.detach(), getattr(module, "up", 1)))

    handles = [m.register_forward_pre_hook(hook) for m in G.modules()
               if isinstance(m, (sg2.SynthesisLayer, sg2.ToRGBLayer))]
    try:
        with torch.no_grad():
            G(torch.randn(1, 512))
    finally:
        for h in handles:
            h.remove()
    total_ms, flops = 0.0, 0.0
    for shape, w, up in shapes:
        x = torch.randn(batch, *shape[1:]).contiguous(memory_format=torch.channels_last)
        pad = w.shape[-1] // 2
        if up == 1:
            op = lambda: F.conv2d(x, w, padding=pad)  # noqa: E731
        else:
            op = lambda: F.conv_transpose2d(x, w.transpose(0, 1), stride=up)  # noqa: E731
        with FlopCounterMode(display=False) as counter:
            op()
        flops += counter.get_total_flops()
        best = math.inf
        for _ in range(rounds):
            t = time.perf_counter()
            op()
            best = min(best, time.perf_counter() - t)
        total_ms += best * 1000
    return total_ms / batch, flops / batch / 1e9


def gflop_per_image(G: torch.nn.Module) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    z = torch.randn(1, 512)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        G(z)
    return counter.get_total_flops() / 1e9


def round_robin(backends: dict[str, Callable[[torch.Tensor], Any]], batch: int, rounds: int) -> dict[str, float]:
    """Best ms/image per backend, the backends interleaved round by round after one warm-up call each.

    Interleaving and taking the minimum keep the comparison fair on a shared machine, where other load
    comes and goes and only ever adds time.
    """
    z = torch.randn(batch, 512)
    for fn in backends.values():
        fn(z)
    best = {name: math.inf for name in backends}
    for _ in range(rounds):
        for name, fn in backends.items():
            t = time.perf_counter()
            fn(z)
            best[name] = min(best[name], time.perf_counter() - t)
    return {name: sec * 1000 / batch for name, sec in best.items()}


def fir_op_ms(rounds: int = 3) -> list[tuple[str, float, float]]:
    """The FIR filter alone at each block's upsampled size: (shape, ms 2-D, ms separable), interleaved."""
    from zoo.models.ops import make_filter, upfirdn2d

    f2 = make_filter([1, 3, 3, 1])
    f1 = f2.sum(dim=0) / f2.sum().sqrt()
    out = []
    for c, res in ((512, 64), (256, 128), (128, 256)):
        x = torch.randn(1, c, res + 3, res + 3)  # transposed-conv output before the filter
        best = {"2d": math.inf, "sep": math.inf}
        for _ in range(rounds):
            for key, f in (("2d", f2), ("sep", f1)):
                t = time.perf_counter()
                upfirdn2d(x, f, gain=4)
                best[key] = min(best[key], time.perf_counter() - t)
        out.append((f"[1, {c}, {res + 3}, {res + 3}]", best["2d"] * 1000, best["sep"] * 1000))
    return out


def profile_top(G: torch.nn.Module, n: int = 8) -> str:
    from torch.profiler import ProfilerActivity, profile

    z = torch.randn(1, 512)
    with torch.no_grad():
        G(z)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            G(z)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=n)


def upstream_generator(path: str, res: int = 256) -> torch.nn.Module:
    """The reference Generator from a stylegan2-ada-pytorch checkout, same config, random weights."""
    sys.path.insert(0, path)
    import types

    sys.modules.setdefault("requests", types.ModuleType("requests"))  # dnnlib.util imports it for downloads only
    from training.networks import Generator  # type: ignore[import-not-found]

    torch.manual_seed(0)
    G = Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3,
                  mapping_kwargs={"num_layers": 8}, synthesis_kwargs={"channel_base": 32768, "channel_max": 512,
                                                                       "num_fp16_res": 0, "conv_clamp": None})
    return G.eval().requires_grad_(False)


class _ModConv3x3(torch.nn.Module):
    """One synthesis layer's 3x3 conv in activation-scaling form: lrelu((conv(x * s) * d + b))."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(c, c, 3, 3) / (3 * c ** 0.5), requires_grad=False)
        self.s = torch.nn.Parameter(torch.rand(1, c, 1, 1) + 0.5, requires_grad=False)
        self.d = torch.nn.Parameter(torch.rand(1, c, 1, 1) + 0.5, requires_grad=False)
        self.b = torch.nn.Parameter(torch.randn(1, c, 1, 1) * 0.1, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from zoo.models.ops import conv2d_resample

        return torch.nn.functional.leaky_relu(torch.addcmul(self.b, conv2d_resample(x * self.s, self.weight,
                                                                                     padding=1), self.d), 0.2)


def winograd_rows(rounds: int, compile_graphs: bool, tiles: tuple[int, ...] = (4, 2)) -> None:
    """Winograd vs direct 3x3 convolution, interleaved best-of-``rounds``: the layer alone (512 ch at 32 px,
    256 at 64, 128 at 128, batch 1, eager and torch.compile with frozen weights) and the whole generator."""
    import torch._inductor.config as inductor_config

    from zoo.models.ops import cpu_winograd

    def timed(fn: Callable[[], Any]) -> float:
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    torch._dynamo.config.recompile_limit = 64  # one graph per layer shape and switch setting

    def compiled(module: torch.nn.Module, tile: int, example: torch.Tensor, min_c: int = 0) -> Callable[[], Any]:
        fn = torch.compile(module, dynamic=False)
        with cpu_winograd(tile, min_c), torch.no_grad(), inductor_config.patch(freezing=True):
            fn(example)  # traced with the switch as set here (dynamo guards on it: call under the same setting)

        def run() -> Any:
            with cpu_winograd(tile, min_c):
                return fn(example)
        return run

    def eager(module: torch.nn.Module, tile: int, example: torch.Tensor, min_c: int = 0) -> Callable[[], Any]:
        def run() -> Any:
            with cpu_winograd(tile, min_c):
                return module(example)
        return run

    def race(cands: dict[str, Callable[[], Any]]) -> dict[str, float]:
        best = {k: math.inf for k in cands}
        with torch.no_grad():
            for fn in cands.values():
                fn()
            for _ in range(rounds):
                for k, fn in cands.items():
                    best[k] = min(best[k], timed(fn))
        return {k: v * 1000 for k, v in best.items()}

    modes = [("off", 0)] + [(f"F({t}x{t},3x3)", t) for t in tiles]
    print("\nWinograd vs direct 3x3 conv, batch 1, ms (best of interleaved rounds):")
    for c, res in ((512, 32), (256, 64), (256, 128), (128, 128)):
        torch.manual_seed(c)
        layer = _ModConv3x3(c).eval()
        x = torch.randn(1, c, res, res)
        cands = {f"eager {name}": eager(layer, t, x) for name, t in modes}
        if compile_graphs:
            cands.update({f"compiled {name}": compiled(_copy_module(layer), t, x) for name, t in modes})
        r = race(cands)
        print(f"  layer {c} ch @ {res} px: " + "  ".join(f"{k} {v:.1f}" for k, v in r.items()))
    G = build()
    z = torch.randn(1, 512)
    cands = {f"eager {name}": eager(G, t, z) for name, t in modes}
    cands["eager F(4x4,3x3) >= 256 ch"] = eager(G, 4, z, 256)
    cands["eager F(4x4,3x3) >= 512 ch"] = eager(G, 4, z, 512)
    if compile_graphs:
        t0 = time.perf_counter()
        cands.update({f"compiled {name}": compiled(build(), t, z) for name, t in modes[:2]})
        cands["compiled F(4x4,3x3) >= 256 ch"] = compiled(build(), 4, z, 256)
        print(f"  (3 generator graphs compiled in {time.perf_counter() - t0:.0f} s)")
    r = race(cands)
    print("  generator config-f 256 px, ms/image: " + "  ".join(f"{k} {v:.1f}" for k, v in r.items()))


def _copy_module(m: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(m)


ALLOCATOR_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from bench_generate import allocator_child
print(json.dumps(allocator_child(*sys.argv[2:])))
"""


def allocator_child(mode: str, res: str, threads: str, batches: str, upstream: str) -> dict[str, float]:
    """In a fresh process: eager ms/image of ganzoo (and upstream) at ``batches``, with the heap in ``mode``."""
    from sdk.backends.allocator import configure_allocator
    from sdk.backends.tune import apply_kernel_layouts

    torch.set_num_threads(int(threads))
    assert configure_allocator() == mode  # $GANZOO_ALLOCATOR, set by allocator_rows
    apply_kernel_layouts(torch.device("cpu"))  # the per-machine kernel choices, in both modes
    paths = {"ganzoo eager": build(int(res))}
    if upstream:
        U = upstream_generator(upstream, int(res))
        U.load_state_dict(paths["ganzoo eager"].state_dict(), strict=False)
        paths["upstream eager"] = U
    out = {}
    for b in (int(x) for x in batches.split(",")):
        for name, G in paths.items():
            def run(z: torch.Tensor, G: torch.nn.Module = G) -> torch.Tensor:
                with torch.no_grad():
                    return G(z, None, noise_mode="const")
            out[f"{name}|{b}"] = round_robin({name: run}, b, 2)[name]
    return out


def _children(variants: dict[str, dict[str, str]], rounds: int, threads: int, res: int, batches: str,
              upstream: str | None) -> dict[str, dict[str, float]]:
    """:func:`allocator_child` in fresh processes, once per variant (its extra environment) per round,
    interleaved round by round; the best ms/image per variant and path."""
    import json
    import subprocess

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    best: dict[str, dict[str, float]] = {v: {} for v in variants}
    for _ in range(rounds):
        for name, extra in variants.items():
            mode = extra.get("GANZOO_ALLOCATOR", "reuse")
            p = subprocess.run([sys.executable, "-c", ALLOCATOR_CHILD, str(Path(__file__).parent), mode, str(res),
                                str(threads), batches, upstream or ""], env={**env, "GANZOO_ALLOCATOR": mode, **extra},
                               capture_output=True, text=True)
            if p.returncode:
                raise SystemExit(p.stderr[-2000:])
            for k, v in json.loads(p.stdout.splitlines()[-1]).items():
                best[name][k] = min(v, best[name].get(k, math.inf))
    return best


def allocator_rows(rounds: int, threads: int, res: int, batches: str, upstream: str | None) -> None:
    """Eager generation with glibc's default heap vs the heap ganzoo sets (sdk.backends.allocator), each in
    its own processes, interleaved round by round; best per path."""
    best = _children({"system": {"GANZOO_ALLOCATOR": "system"}, "reuse": {"GANZOO_ALLOCATOR": "reuse"}},
                     rounds, threads, res, batches, upstream)
    print(f"StyleGAN2 config-f {res} px, {threads} threads, eager, ms/image (best of {rounds} interleaved rounds)")
    print("| path | batch | glibc default heap | freed memory reused | speed-up |")
    print("|---|---|---|---|---|")
    for key in best["system"]:
        name, b = key.split("|")
        a, r = best["system"][key], best["reuse"][key]
        print(f"| {name} | {b} | {a:.0f} | {r:.0f} | {a / r:.2f}x |")


def native_rows(rounds: int, threads: int, res: int, batches: str, upstream: str | None) -> None:
    """Eager generation with the compiled Winograd transforms (zoo/models/native) and without
    (``GANZOO_NATIVE=0``), heap reused in both, each in its own processes, interleaved; best per path."""
    variants = {"off": {"GANZOO_NATIVE": "0"}, "on": {"GANZOO_NATIVE": "1"}}
    if upstream:  # upstream as it runs: glibc's default heap
        variants["as it runs"] = {"GANZOO_ALLOCATOR": "system", "GANZOO_NATIVE": "0"}
    best = _children(variants, rounds, threads, res, batches, upstream)
    print(f"StyleGAN2 config-f {res} px, {threads} threads, eager, ms/image (best of {rounds} interleaved rounds)")
    print("| batch | ganzoo, PyTorch transforms | ganzoo, compiled transforms | speed-up | upstream eager (glibc heap) "
          "| x upstream (compiled) |")
    print("|---|---|---|---|---|---|")
    for key in best["on"]:
        name, b = key.split("|")
        if name != "ganzoo eager":
            continue
        off, on = best["off"][key], best["on"][key]
        up = best.get("as it runs", {}).get(f"upstream eager|{b}", math.inf)
        ups = f"{up:.0f} | {up / on:.2f}x" if up < math.inf else "- | -"
        print(f"| {b} | {off:.0f} | {on:.0f} | {off / on:.2f}x | {ups} |")


def _timed_ms(fn: Callable[[], Any], batch: int, rounds: int, sync: Callable[[], None]) -> float:
    """Best ms/image of ``fn`` over ``rounds`` calls after two warm-up calls; ``sync`` waits for the device."""
    for _ in range(2):
        fn()
    sync()
    best = math.inf
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t)
    return best * 1000 / batch


def device_rows(device: str, res: int, batches: str, rounds: int, upstream: str | None) -> None:
    """Eager generation on ``device`` (``cuda`` on a lent GPU; ``cpu`` runs the same rows as a smoke test):
    ganzoo fp32, ganzoo fp16 under autocast with channels-last weights, the same replayed as a CUDA graph, and
    upstream's own generator (its CUDA plugins when they build there, else its reference ops). Prints ms/image,
    images/s and each row's ratio to upstream at the same batch, and the fp16 PSNR against fp32."""
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    G = build(res).to(dev)
    paths: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}

    def eager(z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return G(z, None, noise_mode="const")

    paths["ganzoo eager fp32"] = eager
    if cuda:
        G16 = build(res).to(dev).to(memory_format=torch.channels_last)

        def half(z: torch.Tensor) -> torch.Tensor:
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
                return G16(z, None, noise_mode="const").float()

        paths["ganzoo fp16 autocast, channels-last"] = half
    plugin_note = ""
    if upstream:
        U = upstream_generator(upstream, res).to(dev)
        U.load_state_dict(G.state_dict(), strict=False)

        def up(z: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return U(z, None, noise_mode="const")

        paths["upstream eager fp32"] = up
        if cuda:
            from torch_utils.ops import bias_act, upfirdn2d  # type: ignore[import-not-found]

            up(torch.randn(1, 512, device=dev))  # builds (or fails to build) the plugins
            plugin_note = (f"upstream CUDA plugins: bias_act {'built' if bias_act._plugin else 'reference ops'}, "
                           f"upfirdn2d {'built' if upfirdn2d._plugin else 'reference ops'}")
    print(f"StyleGAN2 config-f {res} px on {device}"
          f"{' (' + torch.cuda.get_device_name(dev) + ')' if cuda else ''}, torch {torch.__version__}. {plugin_note}")
    print("| path | batch | ms/image | images/s | x upstream |")
    print("|---|---|---|---|---|")
    for b in (int(x) for x in batches.split(",")):
        z = torch.randn(b, 512, device=dev)
        rows = {name: _timed_ms(lambda fn=fn: fn(z), b, rounds, sync) for name, fn in paths.items()}
        if cuda and "ganzoo fp16 autocast, channels-last" in paths:
            try:
                static = z.clone()
                stream = torch.cuda.Stream()
                stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(stream):
                    for _ in range(3):
                        paths["ganzoo fp16 autocast, channels-last"](static)
                torch.cuda.current_stream().wait_stream(stream)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    paths["ganzoo fp16 autocast, channels-last"](static)
                rows["ganzoo fp16, CUDA graph"] = _timed_ms(graph.replay, b, rounds, sync)
            except Exception as e:  # noqa: BLE001 - report and go on
                print(f"CUDA graph capture at batch {b} failed: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
        ref = rows.get("upstream eager fp32")
        for name, ms in rows.items():
            print(f"| {name} | {b} | {ms:.2f} | {1000 / ms:.1f} | {f'{ref / ms:.2f}' if ref else '-'} |")
    if cuda:
        z = torch.randn(8, 512, device=dev, generator=torch.Generator(dev).manual_seed(0))
        a, h = eager(z).double().clamp(-1, 1), paths["ganzoo fp16 autocast, channels-last"](z).double().clamp(-1, 1)
        mse = float((((a - h) / 2) ** 2).mean())
        psnr = 10 * math.log10(1 / mse) if mse else math.inf
        print(f"fp16 vs fp32, 8 images: PSNR {psnr:.1f} dB, max-abs {float((a - h).abs().max()):.3g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds at batch 1 (batch 8: half, at least 1)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for every path")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    ap.add_argument("--upstream", default=None, help="stylegan2-ada-pytorch checkout to time side by side")
    ap.add_argument("--winograd", action="store_true",
                    help="only time Winograd vs direct 3x3 convolutions (layers alone and the whole generator)")
    ap.add_argument("--allocator", action="store_true",
                    help="only time eager generation with glibc's default heap vs the one ganzoo sets")
    ap.add_argument("--native", action="store_true",
                    help="eager with and without the compiled Winograd transforms, fresh processes interleaved")
    ap.add_argument("--res", type=int, default=256, help="resolution for --allocator / --native / --device")
    ap.add_argument("--batches", default=None, help="batch sizes for --allocator (1,4) / --device (1,8,32)")
    ap.add_argument("--device", default=None,
                    help="only time eager generation on this device (cuda on a GPU machine; cpu: a smoke test)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.device:
        device_rows(args.device, args.res, args.batches or "1,8,32", args.rounds, args.upstream)
        return
    if args.native:
        native_rows(args.rounds, args.threads, args.res, args.batches or "1,4", args.upstream)
        return
    if args.allocator:
        allocator_rows(args.rounds, args.threads, args.res, args.batches or "1,4", args.upstream)
        return
    if args.winograd:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.1f}")
        winograd_rows(args.rounds, not args.no_compile)
        print(f"load average now {os.getloadavg()[0]:.1f}")
        return

    nominal, nominal_text = cpu_peak()
    peak_before, how = measured_peak(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.1f}")
    print(f"nominal peak: {nominal_text}")
    G = build()
    gflop = gflop_per_image(G)
    print(f"StyleGAN2 config-f 256 px: {sum(p.numel() for p in G.parameters()) / 1e6:.1f} M parameters, "
          f"{gflop:.1f} GFLOP/image (FlopCounterMode: conv/matmul only)\n")

    print("profile, torch eager batch 1, top ops by self CPU time:")
    print(profile_top(G))
    print("upsampling layers, batch 8, single ops (ms, best of 3): transposed conv (NCHW, channels-last) vs a "
          "3x3 conv of the same FLOPs; the 4x4 FIR after it, NCHW vs channels-last")
    for shape, ct, ct_cl, c3, fir, fir_cl in upsample_op_ms():
        print(f"  {shape:22s} conv_transpose {ct:7.1f} channels-last {ct_cl:7.1f}  conv3x3 {c3:7.1f}   "
              f"FIR NCHW {fir:6.1f}  channels-last {fir_cl:6.1f}")
    print("FIR [1,3,3,1] resampling filter alone, batch 1 (ms, best of 3):")
    for shape, a, b in fir_op_ms():
        print(f"  {shape:22s} 2-D {a:7.1f}   separable {b:7.1f}")

    def eager(z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return G(z)

    G_cl = build().to(memory_format=torch.channels_last)

    def eager_cl(z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return G_cl(z)

    def eager_separable(z: torch.Tensor) -> torch.Tensor:
        sg2.SEPARABLE_FIR = True
        try:
            return eager(z)
        finally:
            sg2.SEPARABLE_FIR = False  # the compiled graphs below were traced with the default

    common: dict[str, Callable[[torch.Tensor], Any]] = {
        "torch eager (NCHW, default)": eager, "torch eager, channels-last": eager_cl,
        "torch eager, FIR separable": eager_separable}
    per_batch: dict[int, dict[str, Callable[[torch.Tensor], Any]]] = {1: {}, 8: {}}

    if not args.no_compile:
        def compiled_fn(module: torch.nn.Module) -> Callable[[torch.Tensor], Any]:
            def run(z: torch.Tensor) -> torch.Tensor:
                with torch.no_grad():
                    return module(z)
            return run

        import torch._inductor.config as inductor_config

        t = time.perf_counter()
        try:
            dyn = compiled_fn(torch.compile(G, dynamic=True))  # one graph for every batch size
            dyn(torch.randn(2, 512))
            common["torch.compile, dynamic batch"] = dyn
            for b in per_batch:
                fn = compiled_fn(torch.compile(build(), dynamic=False))  # its own module: a graph per batch
                fn(torch.randn(b, 512))
                per_batch[b]["torch.compile, static batch"] = fn
                # Inductor's freezing: weights become constants, so oneDNN gets pre-packed weights and fused
                # post-ops. Inference only (needs no_grad), the setting is read when the graph compiles.
                fn = compiled_fn(torch.compile(build(), dynamic=False))
                with inductor_config.patch(freezing=True):
                    fn(torch.randn(b, 512))
                per_batch[b]["torch.compile, static batch, frozen weights"] = fn
            print(f"torch.compile: 5 graphs compiled in {time.perf_counter() - t:.0f} s")
        except Exception as e:  # noqa: BLE001 - report and go on
            print(f"torch.compile unavailable: {type(e).__name__}: {str(e).splitlines()[0][:200]}")

    import numpy as np
    import onnxruntime as ort

    from sdk.export.exporter import export_onnx

    tmp = tempfile.TemporaryDirectory()
    t = time.perf_counter()
    # verified at batch 1 and 2 only, to keep the run short (batch 8 runs the same dynamic-batch graph)
    rep = export_onnx(G, Path(tmp.name) / "g.onnx", verify_batches=(1, 2))
    print(f"onnx export + verification (batch 1, 2): {time.perf_counter() - t:.0f} s, max-abs vs torch "
          f"{max(rep.max_abs_error.values()):.2g}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(str(Path(tmp.name) / "g.onnx"), so, providers=["CPUExecutionProvider"])
    psi = np.asarray(1.0, dtype=np.float32)
    common["onnxruntime CPU"] = lambda z: sess.run(None, {"z": z.numpy(), "truncation_psi": psi})[0]

    if args.upstream:
        try:
            U = upstream_generator(args.upstream)

            def upstream(z: torch.Tensor) -> torch.Tensor:
                with torch.no_grad():
                    return U(z, None, noise_mode="const")

            common["upstream stylegan2-ada-pytorch eager"] = upstream
        except Exception as e:  # noqa: BLE001
            print(f"upstream timing skipped: {type(e).__name__}: {e}")

    ceiling = {b: conv_ceiling(G, b) for b in (1, 8)}
    results = {b: round_robin({**common, **per_batch[b]}, b, args.rounds if b == 1 else max(1, args.rounds // 2))
               for b in (1, 8)}
    tmp.cleanup()
    peak_after, _ = measured_peak(args.threads)
    measured = [v for v in (peak_before, peak_after) if v]
    peak = max(measured) if measured else nominal
    print(f"\nmeasured fp32 peak ({how}): before {peak_before} / after {peak_after} GFLOP/s; using "
          f"{peak:.0f} GFLOP/s ({'measured' if measured else 'nominal'}); nominal estimate {nominal:.0f}")
    print(f"best of interleaved rounds; load average now {os.getloadavg()[0]:.1f}")
    for b, (ms, conv_gflop) in ceiling.items():
        rate = conv_gflop / (ms / 1000)
        print(f"convolutions alone, one oneDNN op each (channels-last), batch {b}: {ms:.1f} ms/image for "
              f"{conv_gflop:.1f} GFLOP = {rate:.1f} GFLOP/s = {100 * rate / peak:.1f}% of peak; a direct-convolution "
              f"path with nothing else in its graph would run at {100 * gflop / (ms / 1000) / peak:.1f}% at best")
    upstream_ms = {b: res.get("upstream stylegan2-ada-pytorch eager") for b, res in results.items()}
    print("| backend | batch | ms/image | GFLOP/s | % of peak | x upstream |")
    print("|---|---|---|---|---|---|")
    for b, res in results.items():
        for name, ms in sorted(res.items(), key=lambda kv: kv[1]):
            rate = gflop / (ms / 1000)
            vs = f"{upstream_ms[b] / ms:.2f}" if upstream_ms[b] else "-"
            print(f"| {name} | {b} | {ms:.1f} | {rate:.1f} | {100 * rate / peak:.1f}% | {vs} |")


if __name__ == "__main__":
    main()
