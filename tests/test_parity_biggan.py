"""BigGAN-deep (pytorch-pretrained-BigGAN format): parity on every golden key of biggan_deep_128_mini."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import converters
import zoo
from conftest import assert_close, fixture_dir, golden, manifest, tolerance
from sdk.truncated_noise import truncated_noise
from zoo.errors import ConversionError

FIX = "biggan_deep_128_mini"
# golden key suffix -> (truncation, rows used), from the manifest's "inputs"/"outputs" recipes
CASES = {"0_4": (0.4, 4), "1": (1.0, 4), "0_433": (0.433, 2)}


@pytest.fixture(scope="module")
def G(converted_fixture):
    return zoo.load(converted_fixture(FIX, "."))


def test_manifest_keys_are_all_covered():
    covered = {"class_vector", "embed", "img_trunc0_4_trainmode_firstcall"}
    covered |= {f"noise_trunc{k}" for k in CASES} | {f"img_trunc{k}" for k in CASES}
    assert set(manifest(FIX)["golden_keys"]) == covered


@pytest.mark.parametrize("key", sorted(CASES))
def test_images_eval_mode(G, key):
    man, gold = manifest(FIX), golden(FIX)
    t, n = CASES[key]
    with torch.no_grad():
        img = G(gold[f"noise_trunc{key}"], gold["class_vector"][:n], truncation_psi=t)
    assert_close(img, gold[f"img_trunc{key}"], tolerance(man, f"img_trunc{key}"), f"{FIX}:img_trunc{key}")


@pytest.mark.parametrize("key", sorted(CASES))
def test_noise_inputs_reproduced_exactly(key):
    """Our scipy-free truncated normal gives upstream's ``truncated_noise_sample(4, 128, t, seed=0)`` bit for bit."""
    t, n = CASES[key]
    assert torch.equal(truncated_noise(4, 128, t, seed=0)[:n], golden(FIX)[f"noise_trunc{key}"])


def test_class_vector_and_embed(G):
    man, gold = manifest(FIX), golden(FIX)
    assert torch.equal(gold["class_vector"], G.make_c([207, 360, 1, 999], 4))  # one_hot_from_int
    with torch.no_grad():
        embed = G.embeddings(gold["class_vector"])
    assert_close(embed, gold["embed"], tolerance(man, "embed"), f"{FIX}:embed")


def test_truncation_stats_use_upstream_reversed_weights(G):
    """t=0.433: modf(0.433/0.02) = (0.65, 21) -> rows 21*0.65 + 22*0.35 (not the plain lerp 21*0.35 + 22*0.65)."""
    bn = G.generator.layers[0].bn_0
    mean, var = bn.stats(0.433)
    rm, rv = bn.running_means, bn.running_vars
    assert torch.allclose(mean, rm[21] * 0.65 + rm[22] * 0.35, atol=1e-6)
    assert torch.allclose(var, rv[21] * 0.65 + rv[22] * 0.35, atol=1e-6)
    assert not torch.allclose(mean, rm[21] * 0.35 + rm[22] * 0.65, atol=1e-3)
    assert torch.equal(bn.stats(0.4)[0], rm[20]) and torch.equal(bn.stats(1.0)[0], rm[50])


def test_trainmode_first_call_is_reference_only_but_reproducible(converted_fixture):
    """The eval-mode model differs from upstream's train-mode first call; one explicit power step reproduces it."""
    man, gold = manifest(FIX), golden(FIX)
    G = zoo.load(converted_fixture(FIX, "."))  # fresh copy: the step below mutates u/v
    ref = gold["img_trunc0_4_trainmode_firstcall"]
    z, c = gold["noise_trunc0_4"][:1], gold["class_vector"][:1]
    with torch.no_grad():
        eval_img = G(z, c, truncation_psi=0.4)
        assert (eval_img - ref).abs().max().item() > 0.1  # manifest: differs by 0.179
        G.spectral_norm_step_()
        first = G(z, c, truncation_psi=0.4)
        assert_close(first, ref, tolerance(man, "img_trunc0_4_trainmode_firstcall"), "trainmode_firstcall")
        G.spectral_norm_step_()
        assert (G(z, c, truncation_psi=0.4) - first).abs().max().item() > 1e-4  # drifts on every call


def test_bin_file_with_sibling_config_and_s3_pair(tmp_path):
    """Accepted inputs: the folder, the .bin next to config.json, and the S3 pair biggan-deep-N-*."""
    src = fixture_dir(FIX)
    shutil.copy(src / "pytorch_model.bin", tmp_path / "biggan-deep-128-pytorch_model.bin")
    shutil.copy(src / "config.json", tmp_path / "biggan-deep-128-config.json")
    assert converters.detect_format(tmp_path / "biggan-deep-128-pytorch_model.bin").name == "biggan-hf"
    assert converters.detect_format(src / "pytorch_model.bin").name == "biggan-hf"
    config, tensors = converters.convert_to_config(tmp_path / "biggan-deep-128-pytorch_model.bin")
    assert config["architecture"] == "biggan-deep" and config["img_resolution"] == 128 and config["c_dim"] == 1000
    assert config["class_names"][207] == "golden retriever" and len(config["class_names"]) == 1000
    sd = torch.load(src / "pytorch_model.bin", weights_only=True)
    assert set(tensors) == set(sd)  # upstream names kept
    assert all(torch.equal(tensors[k], sd[k]) for k in sd)


def test_zoo_load_upstream_folder_directly():
    """An upstream folder has its own config.json; zoo.load must convert it, not read it as a ganzoo folder."""
    G = zoo.load(fixture_dir(FIX), quiet=True)
    assert G.architecture == "biggan-deep" and G.class_names[207] == "golden retriever"


def test_conversion_errors_are_clear(tmp_path):
    src = fixture_dir(FIX)
    shutil.copy(src / "pytorch_model.bin", tmp_path / "pytorch_model.bin")
    with pytest.raises(ConversionError, match="config is missing"):
        converters.convert_to_config(tmp_path / "pytorch_model.bin", format="biggan-hf")
    cfg = json.loads((src / "config.json").read_text())
    cfg.pop("layers")
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConversionError, match="missing layers"):
        converters.convert_to_config(tmp_path, format="biggan-hf")
    sd = torch.load(src / "pytorch_model.bin", weights_only=True)
    sd["generator.extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "pytorch_model.bin")
    shutil.copy(src / "config.json", tmp_path / "config.json")
    with pytest.raises(ConversionError, match="generator.extra.weight"):
        converters.convert_to_config(tmp_path)
    assert not (tmp_path / "out").exists()


def test_forward_rejects_bad_truncation(G):
    z, c = torch.zeros(1, 128), G.make_c(0, 1)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        G(z, c, truncation_psi=1.5)
    with pytest.raises(ValueError, match="conditional"):
        G.make_c(None, 1)
