"""rosinality/stylegan2-pytorch checkpoints: parity on every golden key, seed convention, strict key mapping."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import converters
import sdk
import zoo
from conftest import assert_close, fixture_dir, golden, manifest, tolerance
from converters.rosinality import _channels_rule, convert_checkpoint, read_checkpoint
from zoo.errors import ConversionError

NAME = "rosinality_64"
PT = "000000.pt"


def _calls(G, z):
    """The manifest's calls, in zoo terms: ``randomize_noise=False`` is the stored noise (``noise_mode='const'``),
    ``truncation_latent=latent_avg`` is ``w_avg``, rosinality truncates every layer (no cutoff)."""
    return {
        "latent_avg": lambda: G.mapping.w_avg,
        "ws_trunc1": lambda: G.mapping(z, None, truncation_psi=1),
        "ws_trunc0_5": lambda: G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=None),
        "img_trunc1": lambda: G(z, None, truncation_psi=1, noise_mode="const"),
        "img_trunc0_5": lambda: G(z, None, truncation_psi=0.5, noise_mode="const"),
    }


def test_every_golden_key(converted_fixture):
    man, gold = manifest(NAME), golden(NAME)
    G = zoo.load(converted_fixture(NAME, PT))
    z = gold["z"]
    calls = _calls(G, z)
    checked = []
    with torch.no_grad():
        for key, expected in gold.items():
            if key == "z":
                continue
            assert key in calls, f"golden key {key} of {NAME} has no parity check"
            tol = 0.0 if key == "latent_avg" else tolerance(man, key)  # a stored tensor copies exactly
            assert_close(calls[key](), expected, tol, f"{NAME}:{key}")
            checked.append(key)
    assert sorted(checked) == sorted(k for k in man["golden_keys"] if k != "z")


def test_seed_convention_is_torch_manual_seed(converted_fixture):
    """The converted model samples with rosinality's z recipe: sdk seeds reproduce the fixture's z and images."""
    man, gold = manifest(NAME), golden(NAME)
    G = zoo.load(converted_fixture(NAME, PT))
    assert G.z_convention == "torch"
    assert torch.equal(sdk.seeds_to_z(G, man["seeds"]), gold["z"])
    img = sdk.generate(G, man["seeds"], truncation_psi=0.5, batch_size=2)
    assert_close(img, gold["img_trunc0_5"], tolerance(man, "img_trunc0_5"), "sdk.generate psi 0.5")
    state = torch.get_rng_state()
    sdk.seeds_to_z(G, [3])
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is left alone


def test_config_from_tensor_shapes(converted_fixture):
    man = manifest(NAME)
    cfg = json.loads((converted_fixture(NAME, PT) / "config.json").read_text())
    kw = cfg["init_kwargs"]
    assert cfg["architecture"] == "stylegan2" and cfg["num_ws"] == man["derived"]["n_latent"]
    assert kw["img_resolution"] == man["config"]["size"] and kw["z_dim"] == kw["w_dim"] == man["config"]["style_dim"]
    assert kw["mapping_kwargs"]["num_layers"] == man["config"]["n_mlp"]
    assert kw["channels"] == {k: v for k, v in man["config"]["channels_used"].items()}
    assert kw["resample_filter"] == man["config"]["blur_kernel"]
    assert cfg["provenance"]["source_format"] == "rosinality-pt"
    assert cfg["provenance"]["source_sha256"] == man["checkpoint"]["sha256"]


def test_upstream_default_widths_use_the_nvidia_rule():
    # rosinality's table {4..32: 512, 64: 256*cm, ..., 1024: 16*cm}, cm = 2 and 1
    for cm, base in ((2, 32768), (1, 16384)):
        widths = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm, 512: 32 * cm,
                  1024: 16 * cm}
        assert _channels_rule(widths) == (base, 512)
    assert _channels_rule({4: 64, 8: 64, 16: 32, 32: 32, 64: 16}) is None


def test_takes_g_ema_not_g(converted_fixture):
    ckpt = read_checkpoint(fixture_dir(NAME) / PT)
    ours = load_file(converted_fixture(NAME, PT) / "model.safetensors")
    assert not torch.equal(ckpt["g"]["convs.2.activate.bias"], ckpt["g_ema"]["convs.2.activate.bias"])
    assert torch.equal(ours["synthesis.b16.conv0.bias"], ckpt["g_ema"]["convs.2.activate.bias"])
    assert torch.equal(ours["synthesis.b16.conv1.noise_const"], ckpt["g_ema"]["noises.noise_4"][0, 0])


def test_unexpected_key_is_named():
    ckpt = read_checkpoint(fixture_dir(NAME) / PT)
    bad = dict(ckpt, g_ema={**ckpt["g_ema"], "convs.3.conv.extra_scale": torch.ones(3)})
    with pytest.raises(ConversionError, match=r"convs\.3\.conv\.extra_scale"):
        convert_checkpoint(bad)
    bad = dict(ckpt, g_ema={**ckpt["g_ema"], "noises.noise_9": torch.ones(1, 1, 128, 128)})
    with pytest.raises(ConversionError, match=r"noises\.noise_9"):
        convert_checkpoint(bad)
    missing = {k: v for k, v in ckpt["g_ema"].items() if k != "convs.5.noise.weight"}
    with pytest.raises(ConversionError, match=r"synthesis\.b32\.conv1\.noise_strength"):
        convert_checkpoint(dict(ckpt, g_ema=missing))


def test_without_latent_avg_w_avg_is_the_mapping_mean():
    ckpt = read_checkpoint(fixture_dir(NAME) / PT)
    conv = convert_checkpoint({"g_ema": ckpt["g_ema"]})
    w_avg = conv.tensors["mapping.w_avg"]
    assert any("latent_avg" in n for n in conv.notes)
    from zoo.models.stylegan2 import StyleGAN2Generator

    G = StyleGAN2Generator(**conv.init_kwargs)
    G.load_state_dict(conv.tensors)
    with torch.no_grad():
        ws = G.mapping(torch.randn(1024, 512, generator=torch.Generator().manual_seed(123)))[:, 0]
    mean, spread = ws.mean(0), ws.std(0).max()
    # an independent sample's mean agrees to sampling error, and is far from a trivial (zero) centre
    assert (mean - w_avg).abs().max() < 0.2 * spread
    assert mean.abs().max() > 1.0 * spread


def test_legacy_torch_save_is_detected(tmp_path):
    """Pre-1.6 torch.save files (no zip) of the same dict convert to the same tensors."""
    ckpt = read_checkpoint(fixture_dir(NAME) / PT)
    src = tmp_path / "legacy.pt"
    torch.save({"g_ema": ckpt["g_ema"], "latent_avg": ckpt["latent_avg"]}, src,
               _use_new_zipfile_serialization=False)
    assert converters.detect_format(src).name == "rosinality-pt"
    a = converters.convert_to_config(src)[1]
    b = convert_checkpoint(ckpt).tensors
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cli_convert_autodetects(tmp_path):
    from sdk.cli import cli

    r = CliRunner().invoke(cli, ["convert", str(fixture_dir(NAME) / PT), str(tmp_path / "m"), "--json", "-q"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["provenance"]["source_format"] == "rosinality-pt" and data["img_resolution"] == 64
