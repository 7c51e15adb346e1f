"""Photo benchmark: seconds per photo for encoder only, encoder + optimisation, optimisation only and PTI.

Timing part (``--res``, default 1024): the real shapes with random weights: an e4e encoder (IR-SE50 backbone
at the released widths 64/128/256/512, Encoder4Editing head, w 512) in front of a StyleGAN2 config-f decoder
(channel_base 32768, channel_max 512, 18 x 512 W+). The encoder pass is timed whole; an optimisation step and a
PTI step (pivot forward + backward, plus the locality term's reference and tuned forwards) are each timed over
``--measure`` steps (median) and multiplied by the step count (default 100 optimisation steps, 350 PTI steps,
the PTI paper's). The machine is shared and noisy: the table therefore also gives every row as a ratio to the
encoder-only time, measured in the same run.

PSNR part (``--psnr-res``, default 128, a config-f-like decoder narrowed to fit a CPU run): in-range targets
``G(z)`` of the random decoder (output scaled into [-1, 1], as in bench_invert.py), full runs of each method
with the pixel loss. A random encoder's latent is no better than a random guess, so the encoder-only PSNR here
says nothing about a trained encoder; encoder + optimisation shows what the optimisation adds from such a
start. PTI starts from the optimisation's pivot, as the paper does, on the in-range targets and on an
out-of-range photo (scikit-image's astronaut, FFHQ-aligned when dlib is installed, else centre-cropped).

    python benchmarks/bench_photo.py [--res 1024] [--measure 2] [--steps 100] [--pti-steps 350]
                                     [--psnr-res 128] [--psnr-pti-steps 100] [--targets 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sdk  # noqa: E402
from sdk.latent.invert import PerceptualFallbackWarning, encoder_latent, w_statistics  # noqa: E402
from zoo.models.encoders import PSPEncoder  # noqa: E402
from zoo.models.stylegan2 import StyleGAN2Generator  # noqa: E402

WIDTHS = [64, 128, 256, 512]  # IR-SE50 as released


def gen_kwargs(res: int, base: int = 32768, cmax: int = 512) -> dict:
    return dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3, channel_base=base,
                channel_max=cmax, mapping_kwargs=dict(num_layers=8))


def make_encoder(res: int, base: int = 32768, cmax: int = 512, seed: int = 0) -> PSPEncoder:
    torch.manual_seed(seed)
    n = StyleGAN2Generator(**gen_kwargs(res, base, cmax)).num_ws
    enc = PSPEncoder("Encoder4Editing", "e4e", "ir_se", 3, WIDTHS, [3, 4, 14, 3], n, n, gen_kwargs(res, base, cmax))
    G = enc.generator
    with torch.no_grad():
        for m in enc.encoder.modules():  # keep the signal alive through the random backbone
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="linear")
        G.mapping.w_avg.copy_(G.mapping(torch.randn(4096, 512), None)[:, 0].mean(0))
        enc.latent_avg.copy_(G.mapping.w_avg.expand_as(enc.latent_avg))
        for name, p in G.synthesis.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
        std = G(torch.randn(4, 512)).std().item()
        for block in G.synthesis.children():
            if hasattr(block, "torgb"):
                block.torgb.weight.mul_(0.5 / std)
                block.torgb.bias.mul_(0.5 / std)
    G.model_info = {"model_name": f"random-config-f-{res}"}
    enc.model_info = {"model_name": "random-e4e"}
    return enc.eval().requires_grad_(False)


def in_range_targets(G: StyleGAN2Generator, n: int) -> list:
    out = []
    for seed in range(n):
        with torch.no_grad():
            out.append(sdk.to_pil(G(sdk.seed_to_z(2000 + seed, 512), noise_mode="const"))[0])
    return out


def astronaut(size: int):
    from PIL import Image
    from skimage import data

    img = Image.fromarray(data.astronaut())
    try:
        return sdk.align_face(img, output_size=max(size, 256)).image, "astronaut, FFHQ-aligned"
    except Exception:  # noqa: BLE001 - no dlib: a plain face crop
        return img.crop((150, 50, 300, 200)), "astronaut, centre crop (dlib not installed)"


def time_steps(fn, steps: int, measure: int) -> tuple[float, float]:
    """(median seconds of one step over ``measure`` steps, extrapolated seconds for ``steps``)."""
    times = []
    fn(times, measure)
    per = statistics.median(times)
    return per, per * steps


def timing(res: int, steps: int, pti_steps: int, measure: int) -> list[tuple[str, float, str]]:
    enc = make_encoder(res)
    G = enc.generator
    photo = in_range_targets(G, 1)[0]
    w_statistics(G, None)
    t0 = time.perf_counter()
    ws = encoder_latent(enc, photo)
    t_enc = time.perf_counter() - t0

    def opt(times: list, k: int) -> None:
        def cb(step, total, loss):
            times.append(time.perf_counter() - last[0])
            last[0] = time.perf_counter()
        last = [time.perf_counter()]
        sdk.invert(G, photo, method="optimize", space="w+", steps=k, loss="pixel", quiet=True, callback=cb, init=ws)

    def pti(times: list, k: int) -> None:
        def cb(step, total, loss):
            times.append(time.perf_counter() - last[0])
            last[0] = time.perf_counter()
        last = [time.perf_counter()]
        sdk.pivotal_tuning(G, photo, ws, steps=k, loss="pixel", quiet=True, callback=cb)

    opt_step, opt_total = time_steps(opt, steps, measure)
    pti_step, pti_total = time_steps(pti, pti_steps, measure)
    return [
        ("encoder only (e4e, IR-SE50)", t_enc, "measured"),
        (f"encoder + {steps} optimisation steps", t_enc + opt_total, f"{opt_step:.2f} s/step x {steps}"),
        (f"optimisation only ({steps} steps, current default)", opt_total, f"{opt_step:.2f} s/step x {steps}"),
        (f"PTI ({pti_steps} steps, after the encoder)", t_enc + pti_total, f"{pti_step:.2f} s/step x {pti_steps}"),
    ]


def psnr_runs(res: int, steps: int, pti_steps: int, n: int) -> list[tuple[str, str, str]]:
    enc = make_encoder(res, base=8192, cmax=256)
    G = enc.generator
    targets = in_range_targets(G, n)
    rows: dict[str, list[float]] = {}
    pti_in: list[tuple[float, float]] = []
    for im in targets:
        e = sdk.invert(G, im, method="encoder", encoder=enc, loss="pixel")
        rows.setdefault("encoder only", []).append(e.metrics["psnr"])
        eo = sdk.invert(G, im, method="encoder+optimize", encoder=enc, steps=steps, loss="pixel", quiet=True)
        rows.setdefault(f"encoder + {steps} steps", []).append(eo.metrics["psnr"])
        o = sdk.invert(G, im, method="optimize", space="w+", steps=steps, loss="pixel", quiet=True)
        rows.setdefault(f"optimisation only ({steps} steps)", []).append(o.metrics["psnr"])
        _, rep = sdk.pivotal_tuning(G, im, o.ws, steps=pti_steps, loss="pixel", quiet=True)
        pti_in.append((rep.psnr_before, rep.psnr_after))
    out = [(k, f"{np.mean(v):.1f}", "in range") for k, v in rows.items()]
    b, a = np.mean([p[0] for p in pti_in]), np.mean([p[1] for p in pti_in])
    out.append((f"PTI ({pti_steps} steps) on the optimisation pivot", f"{b:.1f} -> {a:.1f}", "in range"))
    photo, what = astronaut(res)
    o = sdk.invert(G, photo, method="optimize", space="w+", steps=steps, loss="pixel", quiet=True)
    _, rep = sdk.pivotal_tuning(G, photo, o.ws, steps=pti_steps, loss="pixel", quiet=True)
    out.append((f"PTI ({pti_steps} steps) on the optimisation pivot", f"{rep.psnr_before:.1f} -> {rep.psnr_after:.1f}",
                f"out of range: {what}"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--res", type=int, default=1024)
    ap.add_argument("--measure", type=int, default=2, help="timed steps per method (median)")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--pti-steps", type=int, default=350)
    ap.add_argument("--psnr-res", type=int, default=128)
    ap.add_argument("--psnr-pti-steps", type=int, default=100)
    ap.add_argument("--targets", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--skip-psnr", action="store_true")
    ap.add_argument("--skip-timing", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", PerceptualFallbackWarning)
    if not args.skip_timing:
        rows = timing(args.res, args.steps, args.pti_steps, args.measure)
        base = rows[0][1]
        print(f"\nSeconds per photo, {args.res} px config-f decoder + IR-SE50 e4e encoder, random weights, "
              f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)\n")
        print("| method | s/photo | x encoder only | how |")
        print("|---|---|---|---|")
        for name, secs, how in rows:
            print(f"| {name} | {secs:.1f} | {secs / base:.0f} | {how} |")
    if args.skip_psnr:
        return
    print(f"\nReconstruction PSNR (dB), {args.psnr_res} px decoder, random weights, pixel loss, mean of "
          f"{args.targets} targets\n")
    print("| method | PSNR | images |")
    print("|---|---|---|")
    for name, value, what in psnr_runs(args.psnr_res, args.steps, args.psnr_pti_steps, args.targets):
        print(f"| {name} | {value} | {what} |")


if __name__ == "__main__":
    main()
