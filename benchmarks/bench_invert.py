"""Inversion benchmark: PSNR after N steps and seconds per step, ganzoo's schedule vs the NVlabs projector's.

Generators are random-weight StyleGAN2 configs (64 px and 256 px) made to look like trained ones where it
matters for inversion: ``w_avg`` set from 10000 mapping samples, every layer's noise strength 0.1, and the
output scaled so images mostly lie in [-1, 1] (random torgb weights give a standard deviation of ~1.5).
Targets are in-range: ``G(z)`` for random z with the generator's constant noise maps, saved as 8-bit PNG.

Both schedules use the same loss (the pixel loss: MSE + 0.01 x (1 - MS-SSIM); LPIPS-VGG weights are not
available offline), so the comparison isolates the optimisation schedule. The baseline re-creates the
published NVlabs projector defaults (Adam, lr 0.1 on raw w, warm-up 0.05 / cosine ramp-down 0.25, initial
w noise 0.05 fading over 0.75, noise maps re-drawn at random, noise regularisation 1e5, w_avg from 10000
samples); its N-step rows use the same schedule compressed to N steps, its 1000-step row is the default.
A third row re-runs ganzoo's schedule with randomly re-drawn initial noise maps (as the projector does) up
to 200 steps, to show what starting from the generator's own constant maps is worth. Every cell is the mean
over ``--targets`` targets (2 by default) at each resolution; s/step is the median over a row's cells.
A full run (``--res 64 256 --steps 25 50 100 200 1000 --threads 1``) takes about 40 minutes on one core;
``--long nvlabs`` keeps the 1000-step column for the NVlabs baseline only (about 30 minutes).

    python benchmarks/bench_invert.py [--res 64 256] [--targets 2] [--steps 25 50 100 200 1000] [--space w]
                                      [--threads 1] [--long ganzoo nvlabs]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sdk  # noqa: E402
from sdk.latent.invert import DEFAULT_SCHEDULE, NVLABS_SCHEDULE, PerceptualFallbackWarning, w_statistics  # noqa: E402
from zoo.models.stylegan2 import StyleGAN2Generator  # noqa: E402

CONFIGS = {  # resolution -> (channel_base, channel_max): small enough for a CPU run of 1000-step inversions
    64: (16384, 256),
    256: (8192, 256),
}


def make_generator(res: int, seed: int = 0) -> StyleGAN2Generator:
    torch.manual_seed(seed)
    base, cmax = CONFIGS[res]
    G = StyleGAN2Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3, channel_base=base,
                           channel_max=cmax).eval().requires_grad_(False)
    with torch.no_grad():
        G.mapping.w_avg.copy_(G.mapping(torch.randn(10000, 512), None)[:, 0].mean(0))
        for name, p in G.synthesis.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
        std = G(torch.randn(16, 512)).std().item()
        for block in G.synthesis.children():
            if hasattr(block, "torgb"):
                block.torgb.weight.mul_(0.5 / std)
                block.torgb.bias.mul_(0.5 / std)
    G.model_info = {"model_name": f"random-stylegan2-{res}"}
    return G


def targets(G: StyleGAN2Generator, n: int) -> list:
    out = []
    for seed in range(n):
        z = sdk.seed_to_z(1000 + seed, G.z_dim)
        with torch.no_grad():
            out.append(sdk.to_pil(G(z, noise_mode="const"))[0])
    return out


def run(G, images, schedule, steps: int, space: str) -> tuple[float, float]:
    psnrs, seconds = [], 0.0
    for i, im in enumerate(images):
        t0 = time.perf_counter()
        inv = sdk.invert(G, im, space=space, steps=steps, loss="pixel", quiet=True, seed=i, schedule=schedule)
        seconds += time.perf_counter() - t0
        psnrs.append(inv.metrics["psnr"])
    return float(np.mean(psnrs)), seconds / (steps * len(images))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--res", type=int, nargs="+", default=[64, 256], choices=sorted(CONFIGS))
    ap.add_argument("--targets", type=int, default=2)
    ap.add_argument("--steps", type=int, nargs="+", default=[25, 50, 100, 200, 1000])
    ap.add_argument("--space", default="w", choices=["w", "w+"])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    ap.add_argument("--long", nargs="+", default=["ganzoo", "nvlabs"], choices=["ganzoo", "nvlabs"],
                    help="schedules that also run step counts above 200 (the others show '-' there)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", PerceptualFallbackWarning)
    pixel = dict(pixel_weight=1.0, ssim_weight=DEFAULT_SCHEDULE.ssim_weight, lpips_weight=0.0)
    schedules = {  # name -> (schedule, runs step counts above 200)
        "ganzoo": (DEFAULT_SCHEDULE, "ganzoo" in args.long),
        "ganzoo, noise maps re-drawn": (replace(DEFAULT_SCHEDULE, noise_init="random"), False),
        "NVlabs defaults": (replace(NVLABS_SCHEDULE, **pixel), "nvlabs" in args.long),
    }
    rows = []
    for res in args.res:
        G = make_generator(res)
        images = targets(G, args.targets)
        w_statistics(G, None)  # computed once per generator and cached: keep it out of the per-step timings
        for name, (sched, long) in schedules.items():
            cells, sps = [], []
            for steps in args.steps:
                if steps > 200 and not long:
                    cells.append("-")
                    continue
                p, s = run(G, images, sched, steps, args.space)
                cells.append(f"{p:.1f}")
                sps.append(s)
                print(f"# {res}px {name} {steps} steps: {p:.2f} dB, {s:.3f} s/step", file=sys.stderr, flush=True)
            rows.append((f"{res}px", name, cells, float(np.median(sps))))
    header = ["res", "schedule"] + [f"{s} steps" for s in args.steps] + ["s/step"]
    print(f"\nPSNR (dB, mean of {args.targets} in-range targets, {args.space} space, pixel loss, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads)\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for res, name, cells, sps in rows:
        print(f"| {res} | {name} | " + " | ".join(cells) + f" | {sps:.3f} |")


if __name__ == "__main__":
    main()
