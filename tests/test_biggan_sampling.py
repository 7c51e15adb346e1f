"""BigGAN sampling surface: truncated-normal z convention, classes by index or ImageNet name, CLI, download."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import sdk
import zoo
from conftest import fixture_dir, golden
from sdk.classes import class_index, imagenet_class_names
from sdk.cli import cli
from sdk.truncated_noise import truncated_noise

FIX = "biggan_deep_128_mini"


@pytest.fixture(scope="module")
def G(converted_fixture):
    return zoo.load(converted_fixture(FIX, "."))


def test_biggan_z_convention_deterministic_and_bounded(G):
    assert G.z_convention == "biggan"
    z = sdk.seeds_to_z(G, [0, 1, 2], truncation_psi=0.5)
    assert z.shape == (3, 128) and z.dtype == torch.float32
    assert torch.equal(z, sdk.seeds_to_z(G, [0, 1, 2], truncation_psi=0.5))  # deterministic per seed
    assert torch.equal(z[1:2], sdk.seeds_to_z(G, [1], truncation_psi=0.5))  # independent of the batch
    assert not torch.equal(z[0], z[1])
    # seed 0 is upstream truncated_noise_sample(batch_size=1, seed=0): the first golden row
    assert torch.equal(sdk.seeds_to_z(G, [0], truncation_psi=0.4)[0], golden(FIX)["noise_trunc0_4"][0])
    many = torch.cat([truncated_noise(64, 128, 0.7, seed=s) for s in range(3)])
    assert many.abs().max().item() <= 2 * 0.7 + 1e-6
    assert many.abs().max().item() > 1.3  # tails are used, not clipped
    assert abs(many.std().item() - 0.7 * 0.8796) < 0.02  # std of N(0,1) truncated to [-2, 2] is 0.8796


def test_imagenet_class_names_and_lookup(G):
    names = imagenet_class_names()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert names[0] == "tench" and names[207] == "golden retriever" and names[999] == "toilet tissue"
    assert G.class_names == names  # stored in the converted config
    assert class_index(G, "golden retriever") == 207
    assert class_index(G, "  Golden_Retriever ") == 207


def test_unknown_class_name_lists_close_matches(G):
    with pytest.raises(ValueError) as e:
        class_index(G, "golden retreiver")
    msg = str(e.value)
    assert "unknown class name 'golden retreiver'" in msg and "golden retriever" in msg and "\n" not in msg
    with pytest.raises(ValueError, match="Labrador retriever"):
        class_index(G, "retriever")


def test_sample_class_by_index_and_name(G):
    by_idx = sdk.generate(G, [3], truncation_psi=0.4, class_idx=207)
    by_name = sdk.generate(G, [3], truncation_psi=0.4, class_idx="golden retriever")
    assert torch.equal(by_idx, by_name)
    with torch.no_grad():
        direct = G(truncated_noise(1, 128, 0.4, seed=3), G.make_c(207, 1), truncation_psi=0.4)
    assert torch.equal(by_idx, direct)
    other = sdk.generate(G, [3], truncation_psi=0.4, class_idx=1)
    assert (other - by_idx).abs().max().item() > 1e-3
    imgs = sdk.sample(G, [3], truncation_psi=0.4, class_idx="golden retriever")
    assert imgs[0].size == (128, 128)


def test_cli_sample_class_name(G, converted_fixture, tmp_path):
    folder = converted_fixture(FIX, ".")
    r = CliRunner().invoke(cli, ["sample", str(folder), "--class", "golden retriever", "--seeds", "3", "--trunc",
                                 "0.4", "--outdir", str(tmp_path), "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    got = np.asarray(Image.open(tmp_path / "seed0003.png"))
    want = np.asarray(sdk.sample(G, [3], truncation_psi=0.4, class_idx=207)[0])
    assert np.array_equal(got, want)
    r = CliRunner().invoke(cli, ["sample", str(folder), "--class", "golden retreiver", "--seeds", "3",
                                 "--outdir", str(tmp_path / "bad")])
    assert r.exit_code != 0 and "golden retriever" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "bad").exists()


def test_registry_entries():
    for res in (128, 256, 512):
        e = zoo.registry.get_entry(f"biggan-deep-{res}")
        assert e.architecture == "biggan-deep" and e.resolution == res and e.num_classes == 1000
        assert e.url.endswith(f"biggan-deep-{res}-pytorch_model.bin")
        assert e.companion_urls == (e.url.replace("pytorch_model.bin", "config.json"),)
        assert e.license == "apache-2.0" and "Brock" in e.paper


def test_download_fetches_companion_config(monkeypatch):
    """Convert-on-first-use downloads the weights and the config beside them, converts, then cleans up."""
    from zoo import download as dl

    got: list[str] = []

    def fake_download(url: str, dest: Path, **kw: object) -> Path:
        got.append(url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        name = "config.json" if url.endswith("config.json") else "pytorch_model.bin"
        shutil.copy(fixture_dir(FIX) / name, dest)
        return dest

    monkeypatch.setattr(dl, "download", fake_download)
    G = zoo.load("biggan-deep-128", quiet=True)
    assert G.architecture == "biggan-deep" and G.model_info["model_name"] == "biggan-deep-128"
    assert [u.rsplit("/", 1)[-1] for u in got] == ["biggan-deep-128-pytorch_model.bin", "biggan-deep-128-config.json"]
    assert not list((zoo.cache_dir() / "downloads").iterdir())
