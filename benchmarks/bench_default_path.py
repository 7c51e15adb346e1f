"""What a user gets: whole ``ganzoo sample`` processes against the NVlabs sampling loop (not a test).

    python benchmarks/bench_default_path.py [--res 256 1024] [--seeds 64] [--rounds 3] [--threads N]
        [--upstream PATH/TO/stylegan2-ada-pytorch]

StyleGAN2 config-f generators with random weights of the real shapes (z = w = 512, 8 mapping layers,
channel_base 32768, channel_max 512) are written as common-format folders, then timed as separate processes,
interleaved round by round so machine noise hits every path alike:

- ``ganzoo sample FOLDER --seeds 0-(N-1) --outdir ...`` with an empty cache ("cold": the default path measures
  batch sizes while it samples), the same again ("warm": the cached choice), and after ``ganzoo tune`` (every
  backend measured; its compile / export time is reported separately, it is paid once per model and machine);
- ``ganzoo sample ... --backend torch --batch-size 8``: the previous default;
- with ``--bf16``: ``ganzoo sample ... --precision bf16``, the opt-in reduced-precision path, twice: measuring its
  batch size, then with the measured one;
- with ``--upstream``: the NVlabs ``gen_images.py`` loop (one seed at a time, ``RandomState(seed).randn``,
  ``noise_mode='const'``, PNG per image) on that checkout's own ``training.networks.Generator``, same weights;
  once as it runs, once with the heap setting ganzoo applies to itself (``sdk.backends.allocator``), to show
  how much of the difference that setting alone makes.

Prints wall seconds, images/s and peak RSS per path (medians over rounds) and each path's speed as a ratio to
upstream (or to the previous default without ``--upstream``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

UPSTREAM_LOOP = r"""
import sys, time, types
sys.path.insert(0, sys.argv[1])
sys.modules.setdefault("requests", types.ModuleType("requests"))
if sys.argv[7] == "reuse":  # the heap setting ganzoo applies (sdk.backends.allocator), for a like-for-like row
    import ctypes
    libc = ctypes.CDLL("libc.so.6")
    assert libc.mallopt(-4, 0) and libc.mallopt(-1, 2**31 - 1)
import numpy as np, torch, PIL.Image
from safetensors.torch import load_file
from training.networks import Generator
torch.set_num_threads(int(sys.argv[5]))
res, n, out = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
G = Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3, mapping_kwargs={"num_layers": 8},
              synthesis_kwargs={"channel_base": 32768, "channel_max": 512, "num_fp16_res": 0, "conv_clamp": None})
missing, unexpected = G.load_state_dict(load_file(sys.argv[6]), strict=False)
assert not missing, missing
G = G.eval().requires_grad_(False)
for seed in range(n):
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim))
    img = G(z, None, truncation_psi=1, noise_mode="const")
    img = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    PIL.Image.fromarray(img[0].numpy(), "RGB").save(f"{out}/seed{seed:04d}.png")
"""


def write_model(res: int, folder: Path) -> Path:
    import torch

    import zoo.models.stylegan2 as sg2
    from zoo.format import build_config, write_model_folder

    torch.manual_seed(0)
    kwargs = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3, mapping_kwargs={"num_layers": 8},
                  channel_base=32768, channel_max=512)
    G = sg2.StyleGAN2Generator(**kwargs)
    with torch.no_grad():
        for name, t in list(G.named_parameters()) + list(G.named_buffers()):
            if name.endswith(("bias", "noise_strength", "w_avg")):
                t.add_(0.1 * torch.randn_like(t))
    config = build_config("stylegan2", G.init_kwargs(), provenance={"source_format": "benchmark (random weights)"})
    return write_model_folder(folder, config, G.state_dict(), "---\n---\nrandom config-f weights\n", overwrite=True)


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one child process."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    err = p.stderr.read() if p.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd[:6])} ... failed:\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--res", type=int, nargs="+", default=[256])
    ap.add_argument("--seeds", type=int, default=64, help="images per process")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--upstream", default=None, help="stylegan2-ada-pytorch checkout")
    ap.add_argument("--no-tune", action="store_true", help="skip the `ganzoo tune` path (it compiles for minutes)")
    ap.add_argument("--bf16", action="store_true",
                    help="add the opt-in reduced-precision path (`--precision bf16`, CPUs with AVX512-BF16 / AMX)")
    args = ap.parse_args()
    base_env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), GANZOO_NO_LICENSE_NOTICE="1",
                    PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    ganzoo = [sys.executable, "-c", "from sdk.cli import main; main()"]
    print(f"{args.threads} threads, {args.seeds} images per process, {args.rounds} interleaved rounds; "
          f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-") as tmp:
        work = Path(tmp)
        for res in args.res:
            model = write_model(res, work / f"cf{res}")
            seeds = f"0-{args.seeds - 1}"
            tuned_cache = work / f"cache-tuned-{res}"
            env_t = dict(base_env, GANZOO_CACHE=str(tuned_cache))
            tune_note = ""
            if not args.no_tune:
                t0 = time.perf_counter()
                subprocess.run(ganzoo + ["tune", str(model), "--batches", "1,2,4,8", "--json", "-q"], env=env_t,
                               check=True, stdout=subprocess.PIPE)
                choice = json.loads((next(tuned_cache.glob("autotune/[0-9a-f]*-*.json"))).read_text())["choice"]
                tune_note = (f"; `ganzoo tune` took {time.perf_counter() - t0:.0f} s once and chose "
                             f"{choice['backend']} at batch {choice['batch_size']}")
            results: dict[str, list[tuple[float, float]]] = {}
            for r in range(args.rounds):
                out = work / f"out-{res}-{r}"
                cold_cache = work / f"cache-cold-{res}-{r}"
                runs = {
                    "ganzoo sample, default (cold cache)": (ganzoo + ["sample", str(model), "--seeds", seeds, "--outdir",
                                                                      str(out / "cold"), "-q"],
                                                            dict(base_env, GANZOO_CACHE=str(cold_cache))),
                    "ganzoo sample, default (warm cache)": (ganzoo + ["sample", str(model), "--seeds", seeds, "--outdir",
                                                                      str(out / "warm"), "-q"],
                                                            dict(base_env, GANZOO_CACHE=str(cold_cache))),
                    "ganzoo sample --backend torch --batch-size 8": (
                        ganzoo + ["sample", str(model), "--seeds", seeds, "--outdir", str(out / "b8"), "--backend",
                                  "torch", "--batch-size", "8", "-q"], dict(base_env, GANZOO_CACHE=str(cold_cache))),
                }
                if args.bf16:  # its batch size is measured by its first run and kept, like the default's
                    bf16 = ganzoo + ["sample", str(model), "--seeds", seeds, "--outdir", str(out / "bf16"),
                                     "--precision", "bf16", "-q"]
                    runs["ganzoo sample --precision bf16, batch measured (opt-in)"] = (
                        bf16, dict(base_env, GANZOO_CACHE=str(cold_cache)))
                    runs["ganzoo sample --precision bf16, cached batch (opt-in)"] = (
                        bf16, dict(base_env, GANZOO_CACHE=str(cold_cache)))
                if not args.no_tune:
                    runs["ganzoo sample, after ganzoo tune"] = (ganzoo + ["sample", str(model), "--seeds", seeds,
                                                                          "--outdir", str(out / "tuned"), "-q"], env_t)
                if args.upstream:
                    (out / "up").mkdir(parents=True, exist_ok=True)
                    up = [sys.executable, "-c", UPSTREAM_LOOP, args.upstream, str(res), str(args.seeds), str(out / "up"),
                          str(args.threads), str(model / "model.safetensors")]
                    runs["upstream gen_images.py loop"] = (up + ["system"], base_env)
                    runs["upstream loop, with ganzoo's heap setting"] = (up + ["reuse"], base_env)
                for name, (cmd, env) in runs.items():
                    results.setdefault(name, []).append(timed(cmd, env))
            ref_name = "upstream gen_images.py loop" if args.upstream else "ganzoo sample --backend torch --batch-size 8"
            ref = statistics.median(w for w, _ in results[ref_name])
            print(f"\nStyleGAN2 config-f {res} px, {args.seeds} images{tune_note}")
            print(f"| path | wall s | images/s | peak RSS MiB | x {ref_name.split(' ')[0]} |")
            print("|---|---|---|---|---|")
            for name, vals in results.items():
                wall = statistics.median(w for w, _ in vals)
                rss = max(m for _, m in vals)
                print(f"| {name} | {wall:.1f} | {args.seeds / wall:.2f} | {rss:.0f} | {ref / wall:.2f} |")


if __name__ == "__main__":
    main()
