"""The CPU heap setting of the sampling paths: freed activations are reused instead of page-faulted in again.

Page faults are counted (``getrusage``), not timed, in fresh processes, since the setting is process-wide.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the setting is glibc's mallopt")

# allocate, fill and free a 64 MiB tensor a few times; report the minor page faults of the repeats
FAULTS = r"""
import json, resource, sys, torch
from sdk.backends import configure_allocator
mode = configure_allocator()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
x = torch.ones(16 << 20)  # first touch: faults in any mode
del x
before = faults()
for _ in range(8):
    x = torch.ones(16 << 20)
    del x
print(json.dumps({"mode": mode, "faults": faults() - before}))
"""


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "GANZOO_ALLOCATOR"}
    full.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=120)


def test_reuse_keeps_freed_memory_mapped():
    p = _run(FAULTS)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["mode"] == "reuse"
    # 8 x 64 MiB mapped afresh would be 131,072 faults of 4 KiB pages; glibc re-faults a freed block at most
    # once or twice while its heap settles
    assert out["faults"] < 2 * 16384 + 1000, out


def test_system_mode_leaves_malloc_alone():
    p = _run(FAULTS, GANZOO_ALLOCATOR="system")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["mode"] == "system"
    assert out["faults"] > 8 * 16384 // 2, out  # every repeat maps and faults its 16,384 pages afresh


def test_release_memory_returns_the_kept_heap():
    code = FAULTS + r"""
from sdk.backends import release_memory
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
x = torch.ones(64 << 20); del x
kept = rss()
release_memory()
print(json.dumps({"kept": kept, "after": rss()}))
"""
    p = _run(code)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.splitlines()[-1])
    assert out["kept"] - out["after"] > 200 << 20, out  # the freed 256 MiB block went back


def _tiny_generator():
    import zoo.models.stylegan2 as sg2

    return sg2.StyleGAN2Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
                                  mapping_kwargs={"num_layers": 1}, channel_base=64, channel_max=16).eval()


def test_bad_mode_is_a_one_line_cli_error(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from sdk.backends import allocator
    from sdk.cli import cli
    from zoo.format import build_config, write_model_folder

    G = _tiny_generator()
    folder = write_model_folder(tmp_path / "m", build_config("stylegan2", G.init_kwargs()), G.state_dict(), "")
    monkeypatch.setenv("GANZOO_ALLOCATOR", "jemalloc")
    with pytest.raises(ValueError, match="GANZOO_ALLOCATOR='jemalloc' is not an allocator mode: use reuse or system"):
        allocator.requested_mode()
    r = CliRunner().invoke(cli, ["sample", str(folder), "--seeds", "0", "--outdir", str(tmp_path / "o")])
    assert r.exit_code != 0
    assert "GANZOO_ALLOCATOR='jemalloc'" in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_the_choice_reports_the_kernel_settings():
    from sdk.backends import fingerprint, resolve
    from zoo.models import ops

    assert fingerprint("cpu")["allocator"] == "reuse"
    _, choice = resolve(_tiny_generator(), "torch", 1)
    assert choice.kernels["allocator"] == "reuse"
    assert choice.kernels["winograd"] == {"tile": ops.CPU_WINOGRAD, "min_channels": ops.CPU_WINOGRAD_MIN_CHANNELS,
                                          "native_transforms": ops.CPU_WINOGRAD_NATIVE is not None}
    assert choice.kernels["fused_modconv_batch1"] == ops.CPU_FUSED_MODCONV
