"""zoo.load remembers a passed size check (the meta-device build) per config, so later processes skip it,
and still checks any config it has not seen pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LOAD = r"""
import json, sys
import torch, zoo, zoo.format
builds = []
_build = zoo.format._build_checked
zoo.format._build_checked = lambda *a: builds.append(a[0].__name__) or _build(*a)
G = zoo.load(sys.argv[1])
with torch.no_grad():
    img = G(torch.zeros(1, G.z_dim), None, noise_mode="const")
print(json.dumps({"builds": len(builds), "sum": float(img.double().sum())}))
"""


def _load(folder: Path, cache: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), GANZOO_CACHE=str(cache), GANZOO_NO_LICENSE_NOTICE="1")
    p = subprocess.run([sys.executable, "-c", LOAD, str(folder)], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.splitlines()[-1])


def test_a_passed_size_check_is_remembered_and_other_configs_are_still_checked(tmp_path, monkeypatch):
    import zoo
    import zoo.models.stylegan2 as sg2
    from zoo.errors import ModelFormatError
    from zoo.format import build_config, write_model_folder

    G = sg2.StyleGAN2Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
                               mapping_kwargs={"num_layers": 1}, channel_base=64, channel_max=16).eval()
    folder = write_model_folder(tmp_path / "m", build_config("stylegan2", G.init_kwargs()), G.state_dict(), "")
    cache = tmp_path / "cache"
    first = _load(folder, cache)
    assert first["builds"] == 1  # the meta-device build ran
    assert len(list((cache / "checked").glob("*.json"))) == 1
    second = _load(folder, cache)
    assert second["builds"] == 0  # remembered: no meta-device build this time
    assert second["sum"] == first["sum"]
    # a config never seen to pass is checked again, whatever is remembered
    config = json.loads((folder / "config.json").read_text())
    config["init_kwargs"].update(channel_base=1 << 20, channel_max=8192, img_resolution=32)  # ~6e9 values
    config["img_resolution"] = 32
    (folder / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("GANZOO_CACHE", str(cache))
    with pytest.raises(ModelFormatError, match="values"):
        zoo.load(str(folder))
    assert len(list((cache / "checked").glob("*.json"))) == 1


# One converted fixture per architecture family (the same files the parity tests convert).
ARCH_FIXTURES = [
    ("sg2ada_uncond_64", "network-snapshot-000000.pkl"), ("sg3_t_64", "network-snapshot-000000.pkl"),
    ("sgxl_cond_32", "best_model.pkl"), ("tf_stylegan1_64", "network-snapshot-003600.pkl"),
    ("biggan_deep_128_mini", "."), ("r3gan_32", "network-snapshot-000001280.pkl"), ("styleswin_32", "000000.pt"),
    ("mobilestylegan_small", "mobilestylegan_small.ckpt"), ("studiogan_biggan_32", "."),
    ("pgan_mini", "fixture_s3_i48000-5f3abe1d.pth"), ("fastgan_256", "all_50000.pth"),
]

BUILD_ALL = r"""
import json, sys
from pathlib import Path
import zoo, zoo.format
from zoo.registry import get_architecture
out = {}
for folder in sys.argv[1:]:
    cfg = zoo.format.read_config(Path(folder))
    zoo.format._build_checked(get_architecture(cfg["architecture"]), cfg, folder)
    out[cfg["architecture"]] = "torch._dynamo" in sys.modules
print(json.dumps(out))
"""


def test_the_size_check_builds_every_family_without_importing_torch_dynamo(converted_fixture):
    """Meta-device arithmetic runs torch's Python reference ops, whose first use imports torch._dynamo (about a
    second of a first load); constructors compute their small constants on the CPU (``ops.on_host``) instead."""
    folders = [str(converted_fixture(name, file)) for name, file in ARCH_FIXTURES]
    env = dict(os.environ, PYTHONPATH=str(ROOT), GANZOO_NO_LICENSE_NOTICE="1")
    p = subprocess.run([sys.executable, "-c", BUILD_ALL, *folders], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    imported = json.loads(p.stdout.splitlines()[-1])
    assert len(imported) == len(ARCH_FIXTURES)
    first = next((arch for arch, dyn in imported.items() if dyn), None)
    assert first is None, f"building {first!r} on the meta device imported torch._dynamo"
