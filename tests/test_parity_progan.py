"""ProGAN (pytorch_GAN_zoo ``BaseGAN.save`` checkpoints): parity on every golden key of pgan_mini."""

from __future__ import annotations

import pytest
import torch

import converters
import sdk
import zoo
from conftest import assert_close, fixture_dir, golden, manifest, tolerance
from converters.progan import CONFIG_STUB, convert_checkpoint
from converters.safe_pickle import torch_safe_load
from zoo.registry import get_architecture

FIX = "pgan_mini"
FILE = "fixture_s3_i48000-5f3abe1d.pth"


@pytest.fixture(scope="module")
def G(converted_fixture):
    return zoo.load(converted_fixture(FIX, FILE))


def test_manifest_keys_are_all_covered():
    assert set(manifest(FIX)["golden_keys"]) == {"noise", "img_avgG"}


def test_noise_input_convention():
    torch.manual_seed(0)  # manifest: buildNoiseData(4) = torch.randn(4, 64) after manual_seed(0)
    assert torch.equal(torch.randn(4, 64), golden(FIX)["noise"])


def test_img_avgG(G):
    man, gold = manifest(FIX), golden(FIX)
    with torch.no_grad():
        img = G(gold["noise"])
    assert_close(img, gold["img_avgG"], tolerance(man, "img_avgG"), f"{FIX}:img_avgG")


def test_converted_config(G):
    assert converters.detect_format(fixture_dir(FIX) / FILE).name == "pgan-zoo"
    assert G.architecture == "progan" and G.img_resolution == 32 and G.z_dim == 64 and G.c_dim == 0
    assert G.init_kwargs() == dict(z_dim=64, depths=[32, 32, 16, 16], img_channels=3, leaky_relu_leak=0.2,
                                   equalized_lr=True, alpha=0.0, activation="none")
    assert "toRGBLayers.0.module.weight" in G.state_dict()  # upstream names kept, unused lower toRGBs too


def test_takes_avgG_not_netG():
    """netG (training copy) differs from avgG by ~2 (manifest); without avgG the fallback is netG."""
    gold = golden(FIX)
    ckpt = torch_safe_load(fixture_dir(FIX) / FILE, stubs=[CONFIG_STUB])
    ckpt.pop("avgG")
    conv = convert_checkpoint(ckpt, "no-avgG")
    assert "netG" in conv.notes[0]
    G = get_architecture("progan")(**conv.init_kwargs)
    G.load_state_dict(conv.tensors)
    with torch.no_grad():
        assert (G(gold["noise"]) - gold["img_avgG"]).abs().max().item() > 0.5


def test_legacy_key_spelling_maps_the_same():
    """Older checkpoints store ``formatLayer.weight`` (no ``.module.``); upstream loads both."""
    ckpt = torch_safe_load(fixture_dir(FIX) / FILE, stubs=[CONFIG_STUB])
    new = convert_checkpoint(ckpt, "new").tensors
    ckpt["avgG"] = {k.replace(".module.", "."): v for k, v in ckpt["avgG"].items()}
    old = convert_checkpoint(ckpt, "old").tensors
    assert old.keys() == new.keys() and all(torch.equal(old[k], new[k]) for k in new)


def test_alpha_blends_previous_scale(G):
    """alpha=1 gives the upsampled RGB of the previous scale (upstream GNet blending)."""
    kw = dict(G.init_kwargs(), alpha=1.0)
    G1 = get_architecture("progan")(**kw)
    G1.load_state_dict(G.state_dict())
    kw3 = dict(G.init_kwargs(), depths=[32, 32, 16])
    G3 = get_architecture("progan")(**kw3)
    G3.load_state_dict({k: v for k, v in G.state_dict().items()
                        if not k.startswith(("scaleLayers.2", "toRGBLayers.3"))})
    z = golden(FIX)["noise"]
    with torch.no_grad():
        want = torch.nn.functional.interpolate(G3(z), scale_factor=2, mode="nearest")
        assert torch.allclose(G1(z), want, atol=1e-5)


def test_truncation_is_refused_and_sampling_works(G):
    with pytest.raises(ValueError, match="no truncation"):
        G(torch.zeros(1, 64), truncation_psi=0.7)
    imgs = sdk.sample(G, seeds=[0, 1])
    assert len(imgs) == 2 and imgs[0].size == (32, 32)


def test_registry_entries():
    names = zoo.list_models("progan")
    assert names == ["progan-celeba-128", "progan-celebahq-256", "progan-celebahq-512", "progan-dtd-128"]
    e = zoo.registry.get_entry("progan-celebahq-256")
    assert e.url == "https://dl.fbaipublicfiles.com/gan_zoo/PGAN/celebaHQ_s6_i80000-6196db68.pth"
    assert e.license == "bsd-3-clause" and e.resolution == 256
