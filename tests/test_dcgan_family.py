"""The DCGAN family and the MLP GAN on real trained weights: conversion, parity, images, classes, grey output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image

import converters
import sdk
import zoo
from conftest import WEIGHTS
from converters.dcgan import convert_named_state_dict, named_table
from converters.safe_pickle import torch_safe_load
from sdk.cli import cli
from zoo.cards import render_card
from zoo.errors import ConversionError
from zoo.format import sha256_file
from zoo.loading import converted_dir
from zoo.registry import get_entry

# registry name -> (file in ../shared/weights, detected source format, image shape [C, H, W])
MODELS = {
    "dcgan-digiface-64": ("gan-face-generate-1.1.1_weights.tar", "dcgan", (3, 64, 64)),
    "dcgan-generateme-celeb-64": ("generateme-0.1.2_dcGanGeneratorModel.pt", "dcgan-named", (3, 64, 64)),
    "dcgan-omniart-eyes-128": ("omniart-eye-generator-0.1_generator_model_state.pth", "dcgan", (3, 128, 128)),
    "mlpgan-mnist-28": ("csinva-mnist_gan_mlp_G--300.ckpt", "mlp-gan", (1, 28, 28)),
}
EYE_CLASSES = ["amber", "blue", "brown", "gray", "grayscale", "green", "hazel", "red"]
# Real samples of these four models have a per-image pixel std of 0.21-0.69 (in [-1, 1] units; measured
# over seeds 0-15 and every eye class), and consecutive seeds differ by a mean-abs 0.08-0.36. A flat or
# collapsed output (wrong BatchNorm statistics, a saturated tanh, z ignored) has std and differences
# near 0, so 0.15 (about 19 grey levels) and 0.05 (about 6 levels) separate the two with a wide margin.
MIN_IMAGE_STD = 0.15
MIN_SEED_DIFF = 0.05


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each real file converted once (the format is auto-detected)."""
    root = tmp_path_factory.mktemp("dcgan-family")
    return {name: converters.convert(WEIGHTS / f, root / name) for name, (f, _, _) in MODELS.items()}


@pytest.fixture(scope="module")
def eyes(converted: dict[str, Path]) -> torch.nn.Module:
    return zoo.load(converted["dcgan-omniart-eyes-128"])


@pytest.mark.parametrize("name", list(MODELS))
def test_cli_convert_autodetects_and_names_real_files(name: str, tmp_path: Path) -> None:
    file, fmt, shape = MODELS[name]
    assert converters.detect_format(WEIGHTS / file).name == fmt
    r = run("convert", str(WEIGHTS / file), str(tmp_path / "out"), "--json", "-q")
    assert r.exit_code == 0, r.output
    config = json.loads(r.output)
    assert config["provenance"]["source_format"] == fmt
    assert config["provenance"]["source_sha256"] == get_entry(name).sha256
    assert config["model_name"] == name  # recognised by sha256: the card credits the registry entry
    assert (config["img_channels"], config["img_resolution"], config["img_resolution"]) == shape
    card = (tmp_path / "out" / "README.md").read_text()
    assert get_entry(name).url in card and "MIT" in card


@pytest.mark.parametrize("name", list(MODELS))
def test_real_samples_shape_range_and_content(name: str, converted: dict[str, Path]) -> None:
    G = zoo.load(converted[name])
    img = sdk.generate(G, seeds=[0, 1, 2, 3], class_idx=0 if G.c_dim else None)
    assert img.shape == (4, *MODELS[name][2])
    assert img.min() >= -1 and img.max() <= 1
    stds = img.flatten(1).std(dim=1)
    assert (stds > MIN_IMAGE_STD).all(), f"near-flat images: per-image std {stds.tolist()}"
    diffs = (img[:, None] - img[None]).abs().flatten(2).mean(2)
    off_diag = diffs[~torch.eye(4, dtype=torch.bool)]
    assert (off_diag > MIN_SEED_DIFF).all(), "two seeds gave (almost) the same image"


def _bn(x: torch.Tensor, sd: dict[str, torch.Tensor], p: str) -> torch.Tensor:
    return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"],
                        training=False, eps=1e-5)


def _reference_dcgan(x: torch.Tensor, sd: dict[str, torch.Tensor], convs: list[str], bns: list[str]) -> torch.Tensor:
    """The upstream forward written with torch.nn.functional on the raw state dict (no ganzoo code)."""
    for i, conv in enumerate(convs):
        stride, pad = (1, 0) if i == 0 else (2, 1)
        x = F.conv_transpose2d(x, sd[f"{conv}.weight"], stride=stride, padding=pad)
        if i < len(bns):
            x = F.relu(_bn(x, sd, bns[i]))
    return torch.tanh(x)


def test_generateme_parity_with_functional_reference(converted: dict[str, Path]) -> None:
    sd = torch_safe_load(WEIGHTS / MODELS["dcgan-generateme-celeb-64"][0])
    z = torch.cat([sdk.seed_to_z(s, 100) for s in range(3)])
    ref = _reference_dcgan(z[:, :, None, None], sd, [f"convTr{k}" for k in range(1, 6)],
                           [f"batchNorm{k}" for k in range(1, 5)])
    with torch.no_grad():
        out = zoo.load(converted["dcgan-generateme-celeb-64"])(z)
    assert (out - ref).abs().max().item() <= 1e-5


def test_omniart_parity_with_functional_reference(eyes: torch.nn.Module) -> None:
    sd = torch_safe_load(WEIGHTS / MODELS["dcgan-omniart-eyes-128"][0])
    z = torch.cat([sdk.seed_to_z(s, 100) for s in range(2)])
    labels = torch.tensor([3, 6])
    onehot = F.one_hot(labels, 8).float()
    x = torch.cat([z, onehot], dim=1)[:, :, None, None]  # upstream: cat(noise, labels) -> view(N, -1, 1, 1)
    ref = _reference_dcgan(x, sd, [f"main.{i}" for i in (0, 4, 7, 10, 13, 16)],
                           [f"main.{i}" for i in (1, 5, 8, 11, 14)])
    with torch.no_grad():
        out = eyes(z, eyes.make_c(labels.tolist(), 2))
    assert (out - ref).abs().max().item() <= 1e-5


def test_mlp_parity_with_functional_reference(converted: dict[str, Path]) -> None:
    sd = torch_safe_load(WEIGHTS / MODELS["mlpgan-mnist-28"][0])
    z = torch.cat([sdk.seed_to_z(s, 64) for s in range(4)])
    h = F.relu(F.linear(z, sd["0.weight"], sd["0.bias"]))
    h = F.relu(F.linear(h, sd["2.weight"], sd["2.bias"]))
    ref = torch.tanh(F.linear(h, sd["4.weight"], sd["4.bias"])).view(4, 1, 28, 28)
    with torch.no_grad():
        out = zoo.load(converted["mlpgan-mnist-28"])(z)
    assert (out - ref).abs().max().item() <= 1e-6


def test_omniart_records_class_names_and_conditions_on_them(eyes: torch.nn.Module) -> None:
    assert eyes.c_dim == 8 and eyes.z_dim == 100 and eyes.class_names == EYE_CLASSES
    seeds = [0, 1]
    imgs = {c: sdk.generate(eyes, seeds, class_idx=c) for c in range(8)}
    # Same z, other class: a different picture.
    assert ((imgs[1] - imgs[2]).abs().flatten(1).mean(1) > MIN_SEED_DIFF).all()
    # Class order check: index 4 ("grayscale") has almost no colour (mean channel spread 0.02-0.04 over
    # seed pairs 0-5; every colour class 0.14 or more), so a shifted name list would fail here.
    spread = {c: (x.max(1).values - x.min(1).values).mean().item() for c, x in imgs.items()}
    assert spread[4] < 0.1 and all(spread[4] < 0.5 * s for c, s in spread.items() if c != 4), spread


def test_omniart_class_errors(eyes: torch.nn.Module, converted: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="out of range"):
        sdk.sample(eyes, seeds=[0], class_idx=8)
    with pytest.raises(ValueError, match="conditional"):
        sdk.sample(eyes, seeds=[0])
    folder = str(converted["dcgan-omniart-eyes-128"])
    r = CliRunner().invoke(cli, ["sample", folder, "--class", "8", "--grid", str(tmp_path / "g.png"), "-q"])
    assert r.exit_code != 0 and "out of range" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["sample", folder, "--class", "hazle", "--grid", str(tmp_path / "g.png"), "-q"])
    assert r.exit_code != 0 and "hazel" in r.output
    assert not (tmp_path / "g.png").exists()
    r = run("sample", folder, "--class", "hazel", "--seeds", "0,1", "--grid", str(tmp_path / "g.png"), "-q")
    assert r.exit_code == 0, r.output
    by_name = np.asarray(Image.open(tmp_path / "g.png"))
    by_index = np.asarray(sdk.make_grid(sdk.sample(eyes, seeds=[0, 1], class_idx=6)))
    assert np.array_equal(by_name, by_index)


def test_convert_classes_option(tmp_path: Path) -> None:
    src = WEIGHTS / MODELS["dcgan-omniart-eyes-128"][0]
    names = ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"]
    r = run("convert", str(src), str(tmp_path / "named"), "--classes", ",".join(names), "--json", "-q")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["class_names"] == names  # explicit names win over the registry's
    r = run("convert", str(src), str(tmp_path / "count"), "--classes", "8", "--json", "-q")
    config = json.loads(r.output)
    assert config["c_dim"] == 8 and config["z_dim"] == 100 and config["class_names"] is None
    r = CliRunner().invoke(cli, ["convert", str(src), str(tmp_path / "dup"), "--classes", "a,a,b,c,d,e,f,g", "-q"])
    assert r.exit_code != 0 and "distinct" in r.output and not (tmp_path / "dup").exists()
    mlp = WEIGHTS / MODELS["mlpgan-mnist-28"][0]
    r = CliRunner().invoke(cli, ["convert", str(mlp), str(tmp_path / "mlp"), "--classes", "3", "-q"])
    assert r.exit_code != 0 and "takes no option" in r.output and not (tmp_path / "mlp").exists()


def test_mnist_grey_through_sdk_and_cli(converted: dict[str, Path], tmp_path: Path) -> None:
    G = zoo.load(converted["mlpgan-mnist-28"])
    ims = sdk.sample(G, seeds=[0, 1, 2, 3])
    assert all(im.mode == "L" and im.size == (28, 28) for im in ims)
    grid_path = tmp_path / "grid.png"
    r = run("sample", str(converted["mlpgan-mnist-28"]), "--seeds", "0-3", "--grid", str(grid_path),
            "--outdir", str(tmp_path / "o"), "-q")
    assert r.exit_code == 0, r.output
    grid = Image.open(grid_path)
    assert grid.mode == "L" and grid.size == (56, 56)
    assert np.array_equal(np.asarray(grid), np.asarray(sdk.make_grid(ims)))
    seed0 = Image.open(tmp_path / "o" / "seed0000.png")
    assert seed0.mode == "L" and np.array_equal(np.asarray(seed0), np.asarray(ims[0]))
    assert np.asarray(seed0).std() > MIN_IMAGE_STD * 127.5


@pytest.mark.parametrize("name", ["dcgan-generateme-celeb-64", "dcgan-omniart-eyes-128", "mlpgan-mnist-28"])
def test_load_by_name_from_cache(name: str, converted: dict[str, Path], tmp_path: Path) -> None:
    shutil.copytree(converted[name], converted_dir(name))
    G = zoo.load(name)
    assert G.model_info["model_name"] == name
    assert G.img_resolution == MODELS[name][2][-1]
    r = run("sample", name, "--seeds", "0,1", "--grid", str(tmp_path / "g.png"), "-q",
            *(["--class", "blue"] if G.c_dim else []))
    assert r.exit_code == 0, r.output
    assert zoo.info(name)["local_path"] == str(converted_dir(name))


@pytest.mark.parametrize("name", list(MODELS))
def test_registry_entries_match_the_real_files(name: str) -> None:
    entry = get_entry(name)
    path = WEIGHTS / MODELS[name][0]
    assert entry.sha256 == sha256_file(path) and entry.size_bytes == path.stat().st_size
    assert entry.source_format == MODELS[name][1] and entry.resolution == MODELS[name][2][-1]
    assert entry.license == "mit" and entry.url.startswith("https://") and entry.source_file
    assert len(entry.class_names) == entry.num_classes and entry.conditional == bool(entry.num_classes)
    card = render_card(model_name=name)  # before conversion: facts from the registry and card data
    assert entry.url in card and "MIT" in card
    assert f"{entry.resolution}x{entry.resolution}, {MODELS[name][2][0]} channel(s)" in card
    assert all(f"{i}. {c}" in card for i, c in enumerate(entry.class_names))


def test_info_lists_class_names() -> None:
    r = run("info", "dcgan-omniart-eyes-128")
    assert r.exit_code == 0 and "8 (" + ", ".join(EYE_CLASSES) + ")" in r.output
    assert json.loads(run("info", "dcgan-omniart-eyes-128", "--json").output)["class_names"] == EYE_CLASSES


def test_named_table_maps_onto_the_dcgan_graph() -> None:
    from zoo.models.dcgan import DCGANGenerator

    expected = set(DCGANGenerator(channels=(512, 256, 128, 64)).state_dict())
    sd = torch_safe_load(WEIGHTS / MODELS["dcgan-generateme-celeb-64"][0])
    assert set(convert_named_state_dict(sd).tensors) == expected
    assert len(named_table(5)) == 9  # 5 convs + 4 BatchNorms, one row each
    broken = {k: v for k, v in sd.items() if not k.startswith("convTr3")}
    with pytest.raises(ConversionError, match="convTr1..convTrN"):
        convert_named_state_dict(broken)
    extra = dict(sd, **{"batchNorm5.weight": torch.ones(3)})
    with pytest.raises(ConversionError, match="batchNorm5.weight"):
        convert_named_state_dict(extra)
