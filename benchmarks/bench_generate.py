"""Generation speed of a StyleGAN2 config-f generator at 256 px on this machine's CPU (not a test).

    python benchmarks/bench_generate.py [--rounds N] [--no-compile] [--upstream PATH/TO/stylegan2-ada-pytorch]

Random weights of the real size: z = w = 512, 8 mapping layers, channel_base 32768 / channel_max 512
(config-f widths: 512 channels up to 64 px, 256 at 128 px, 128 at 256 px). Prints ms/image for torch
eager, torch.compile and onnxruntime (CPU) at batch 1 and 8, GFLOP/image from
``torch.utils.flop_counter.FlopCounterMode``, the achieved fraction of an estimated fp32 peak, the top
ops of a profile, and eager timings with the FIR resampling filter run as one 2-D pass vs two 1-D passes.
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

import zoo.stylegan2 as sg2  # noqa: E402

CONFIG = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
              mapping_kwargs={"num_layers": 8}, channel_base=32768, channel_max=512)


def build() -> sg2.StyleGAN2Generator:
    torch.manual_seed(0)
    G = sg2.StyleGAN2Generator(**CONFIG)
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
    from zoo.ops import make_filter, upfirdn2d

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


def upstream_generator(path: str) -> torch.nn.Module:
    """The reference Generator from a stylegan2-ada-pytorch checkout, same config, random weights."""
    sys.path.insert(0, path)
    import types

    sys.modules.setdefault("requests", types.ModuleType("requests"))  # dnnlib.util imports it for downloads only
    from training.networks import Generator  # type: ignore[import-not-found]

    torch.manual_seed(0)
    G = Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
                  mapping_kwargs={"num_layers": 8}, synthesis_kwargs={"channel_base": 32768, "channel_max": 512,
                                                                       "num_fp16_res": 0, "conv_clamp": None})
    return G.eval().requires_grad_(False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds at batch 1 (batch 8: half, at least 1)")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    ap.add_argument("--upstream", default=None, help="stylegan2-ada-pytorch checkout to time side by side")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    peak, peak_text = cpu_peak()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.1f}")
    print(f"peak estimate: {peak_text}")
    G = build()
    gflop = gflop_per_image(G)
    print(f"StyleGAN2 config-f 256 px: {sum(p.numel() for p in G.parameters()) / 1e6:.1f} M parameters, "
          f"{gflop:.1f} GFLOP/image (FlopCounterMode: conv/matmul only)\n")

    print("profile, torch eager batch 1, top ops by self CPU time:")
    print(profile_top(G))
    print("FIR [1,3,3,1] resampling filter alone (ms, best of 3):")
    for shape, a, b in fir_op_ms():
        print(f"  {shape:22s} 2-D {a:7.1f}   separable {b:7.1f}")

    def eager(z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return G(z)

    def eager_separable(z: torch.Tensor) -> torch.Tensor:
        sg2.SEPARABLE_FIR = True
        try:
            return eager(z)
        finally:
            sg2.SEPARABLE_FIR = False  # the compiled graph below was traced with the default

    backends: dict[str, Callable[[torch.Tensor], Any]] = {
        "torch eager (FIR 2-D, default)": eager, "torch eager, FIR separable": eager_separable}

    if not args.no_compile:
        t = time.perf_counter()
        try:
            Gc = torch.compile(G, dynamic=True)  # one compiled graph for every batch size

            def compiled(z: torch.Tensor) -> torch.Tensor:
                with torch.no_grad():
                    return Gc(z)

            compiled(torch.randn(2, 512))
            backends["torch.compile (inductor)"] = compiled
            print(f"torch.compile: compiled in {time.perf_counter() - t:.0f} s")
        except Exception as e:  # noqa: BLE001 - report and go on
            print(f"torch.compile unavailable: {type(e).__name__}: {str(e).splitlines()[0][:200]}")

    import numpy as np
    import onnxruntime as ort

    from sdk.export import export_onnx

    tmp = tempfile.TemporaryDirectory()
    t = time.perf_counter()
    # verified at batch 1 and 2 only, to keep the run short (batch 8 runs the same dynamic-batch graph)
    rep = export_onnx(G, Path(tmp.name) / "g.onnx", verify_batches=(1, 2))
    print(f"onnx export + verification (batch 1, 2): {time.perf_counter() - t:.0f} s, max-abs vs torch "
          f"{max(rep.max_abs_error.values()):.2g}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(str(Path(tmp.name) / "g.onnx"), so, providers=["CPUExecutionProvider"])
    psi = np.asarray(1.0, dtype=np.float32)
    backends["onnxruntime CPU"] = lambda z: sess.run(None, {"z": z.numpy(), "truncation_psi": psi})[0]

    if args.upstream:
        try:
            U = upstream_generator(args.upstream)

            def upstream(z: torch.Tensor) -> torch.Tensor:
                with torch.no_grad():
                    return U(z, None, noise_mode="const")

            backends["upstream stylegan2-ada-pytorch eager"] = upstream
        except Exception as e:  # noqa: BLE001
            print(f"upstream timing skipped: {type(e).__name__}: {e}")

    results = {b: round_robin(backends, b, args.rounds if b == 1 else max(1, args.rounds // 2)) for b in (1, 8)}
    tmp.cleanup()
    print(f"\nbest of interleaved rounds; load average now {os.getloadavg()[0]:.1f}")
    print(f"{'backend':40s} {'batch':>5s} {'ms/image':>10s} {'GFLOP/s':>9s} {'% of peak':>9s}")
    for b, res in results.items():
        for name, ms in res.items():
            rate = gflop / (ms / 1000)
            print(f"{name:40s} {b:5d} {ms:10.1f} {rate:9.1f} {100 * rate / peak:8.1f}%")


if __name__ == "__main__":
    main()
