"""FastGAN-pytorch train.py checkpoints: every check of fastgan_256's manifest, both files of a save step,
every checkpoint layout train.py has written, refusals, sampling defaults, ONNX export and the z-space toolkit."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

import converters
import sdk
import zoo
from conftest import assert_close, fixture_dir, golden, manifest
from converters.fastgan import apply_ema, parameter_names, strip_module
from sdk.cli import cli
from zoo.errors import ConversionError

FIX = "fastgan_256"


@pytest.fixture(scope="module")
def G(converted_fixture):
    return zoo.load(converted_fixture(FIX, manifest(FIX)["convert_source"]))


def _arg(value, gold):
    return gold[value[1:]] if isinstance(value, str) and value.startswith("@") else value


def run_check(G, check: dict, gold: dict) -> torch.Tensor:
    """One manifest check: ``call`` on the converted model with ``args`` (``@key`` = golden tensor)."""
    args = {k: _arg(v, gold) for k, v in check["args"].items()}
    fn = {"forward": G, "mapping": getattr(G, "mapping", None), "synthesis": getattr(G, "synthesis", None)}
    with torch.no_grad():
        if "torch_manual_seed" in check:
            torch.manual_seed(int(check["torch_manual_seed"]))
        return fn[check["call"]](**args)


@pytest.mark.parametrize("i", range(len(manifest(FIX)["checks"])))
def test_manifest_check(G, i):
    check, gold = manifest(FIX)["checks"][i], golden(FIX)
    out = run_check(G, check, gold)
    assert_close(out, gold[check["key"]], float(check["tol"]), f"{FIX}:{check['key']} ({check['call']})")


def test_every_output_key_has_a_check():
    man = manifest(FIX)
    outputs = {k for k, v in man["golden_keys"].items() if v["role"] == "output"}
    assert outputs <= {c["key"] for c in man["checks"]}


def test_random_noise_is_drawn_in_upstream_order_and_explicit_noise_matches(G):
    gold = golden(FIX)
    torch.manual_seed(1234)
    drawn = [torch.randn(2, 1, r, r) for r in (8, 8, 32, 32, 128, 128)]
    for i, n in enumerate(drawn):
        assert torch.equal(n, gold[f"noise_tseed1234_{i:02d}"])
    with torch.no_grad():
        img = G(gold["z_noise"], noise=[gold[f"noise_tseed1234_{i:02d}"] for i in range(6)])
    assert_close(img, gold["img_ema_noise_random_tseed1234"], 2e-4, "explicit noise")
    assert G.num_noise_inputs == 6
    with pytest.raises(ValueError, match="injects noise 6 times"):
        G(gold["z_noise"], noise=[None] * 5 + [None] * 2)


def test_companion_file_gives_the_same_weights(converted_fixture):
    a = zoo.load(converted_fixture(FIX, "all_50000.pth")).state_dict()
    b = zoo.load(converted_fixture(FIX, "50000.pth")).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def _ckpt(name: str = "all_50000.pth") -> dict:
    return torch.load(fixture_dir(FIX) / name, weights_only=True)


def test_all_layouts_convert_alike(tmp_path, G):
    """With/without DataParallel 'module.' keys, with/without the g_ema list, bare state dict: one model."""
    ck = _ckpt()
    plain_g = strip_module(ck["g"], "t")
    ema_sd = apply_ema(plain_g, ck["g_ema"], "t")
    layouts = {
        "release-2021-01.pth": {**ck, "g": plain_g},  # multi_gpu=False: no prefix
        "ema-only.pth": {"g": ema_sd},  # <iter>.pth written without DataParallel
        "bare.pth": ema_sd,
    }
    want = G.state_dict()
    for name, obj in layouts.items():
        torch.save(obj, tmp_path / name)
        assert converters.detect_format(tmp_path / name).name == "fastgan"
        config, tensors = converters.convert_to_config(tmp_path / name)
        assert config["init_kwargs"] == {"ngf": 4, "nz": 32, "nc": 3, "im_size": 256}
        assert all(torch.equal(tensors[k], want[k]) for k in want), name


def test_training_copy_is_not_what_gets_converted(G):
    """The g_ema list really is applied: the training copy's parameters differ from the converted weights."""
    ck = _ckpt()
    g = strip_module(ck["g"], "t")
    name = parameter_names(g)[0]
    assert name == "init.init.0.weight_orig" and not torch.equal(g[name], ck["g_ema"][0])


def test_variants_are_refused_naming_what_differs(tmp_path):
    ck = _ckpt()
    bad_shape = dict(ck, g={**ck["g"], "module.to_128.weight_orig": torch.zeros(3, 4, 3, 3)})
    short_ema = dict(ck, g_ema=ck["g_ema"][:-1])
    extra = {"g": {**ck["g"], "module.feat_8.9.weight": torch.zeros(1)}}  # <iter>.pth of a deeper variant
    mixed = dict(ck, g={("module." + k if k.startswith("feat_8") else k): v
                        for k, v in strip_module(ck["g"], "t").items()})
    cases = {"shape.pth": (bad_shape, "to_128.weight"), "short.pth": (short_ema, "holds 43 tensors"),
             "extra.pth": (extra, "unexpected feat_8.9.weight"), "mixed.pth": (mixed, "module.")}
    for name, (obj, needle) in cases.items():
        torch.save(obj, tmp_path / name)
        with pytest.raises(ConversionError, match=needle.replace(".", r"\.")):
            converters.convert_to_config(tmp_path / name, format="fastgan")


@pytest.mark.parametrize("im_size", [512, 1024])
def test_larger_im_sizes_build_and_infer(im_size):
    from converters.fastgan import infer_kwargs
    from zoo.models.fastgan import FastGANGenerator

    G = FastGANGenerator(ngf=8, nz=8, im_size=im_size).eval()
    sd = {k.replace(".weight", ".weight_orig") if k.endswith("weight") and v.ndim == 4 else k: v
          for k, v in G.state_dict().items()}
    assert infer_kwargs(sd, "t") == {"ngf": 8, "nz": 8, "nc": 3, "im_size": im_size}
    with torch.no_grad():
        img, small = G(torch.randn(1, 8), return_small=True)
    assert img.shape == (1, 3, im_size, im_size) and small.shape == (1, 3, 128, 128)
    if im_size == 1024:  # only the 1024 branch ends in tanh
        assert img.abs().max() <= 1 and small.abs().max() <= 1
    assert G.num_noise_inputs == 8


def test_sampling_defaults_to_no_noise(G):
    assert G.default_noise_mode == "none" and G.z_convention == "torch"
    a = sdk.generate(G, [0, 1])
    b = sdk.generate(G, [0, 1], noise_mode="none")
    assert torch.equal(a, b)
    gold = golden(FIX)
    assert_close(a, gold["img_ema_noise_none"][:2], 2e-4, "seeds 0,1 = the fixture's z convention")


def test_cli_sample_and_export(G, tmp_path):
    folder = G.model_info["folder"]
    r = CliRunner().invoke(cli, ["sample", folder, "--seeds", "0-1", "--outdir", str(tmp_path / "o"), "--json", "-q"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.output)["files"]) == 2
    out = tmp_path / "g.onnx"
    r = CliRunner().invoke(cli, ["export", folder, "--out", str(out), "--no-mobile-check", "--json", "-q"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)["model"]
    assert report["inputs"]["z"][0] == "batch" and "truncation_psi" in report["inputs"]
    assert max(report["max_abs_error"].values()) <= report["tolerance"]


def test_latent_toolkit_in_z(G):
    d = sdk.directions.sefa(G, k=4)
    assert d.space == "z" and d.vectors.shape == (4, 32) and d.params["source_layers"] == ["init.init.0"]
    g = sdk.directions.ganspace(G, n_samples=64, components=3, batch_size=64)
    assert g.space == "z" and g.vectors.shape == (3, 32)
    frames = sdk.interpolate(G, [0, 1], frames=3, noise_mode="none")
    assert len(frames) == 3 and frames[0].size == (256, 256)
    target = sdk.generate(G, [3])
    inv = sdk.invert(G, target, steps=6, loss="pixel", starts=2, quiet=True)
    start = torch.randn(1, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        err0 = (G(start) - target).square().mean().item()
    assert inv.space == "z" and inv.latent.shape == (1, 32)
    assert (inv.reconstruction - target).square().mean().item() < err0


def test_other_families_keep_const_noise_by_default():
    from zoo.models.stylegan2 import StyleGAN2Generator

    torch.manual_seed(0)
    G = StyleGAN2Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3, channel_base=64,
                           channel_max=8).eval()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(1.0)
    assert sdk.sampling.default_noise_mode(G) == "const"
    a = sdk.generate(G, [0])
    assert torch.equal(a, sdk.generate(G, [0], noise_mode="const"))
    assert not torch.equal(a, sdk.generate(G, [0], noise_mode="none"))


def test_cli_convert_detects_and_refuses(tmp_path):
    ck = _ckpt("50000.pth")
    ok = CliRunner().invoke(cli, ["convert", str(fixture_dir(FIX) / "50000.pth"), str(tmp_path / "m"), "--json", "-q"])
    assert ok.exit_code == 0, ok.output
    assert json.loads((tmp_path / "m" / "config.json").read_text())["provenance"]["source_format"] == "fastgan"
    assert "noise_mode='none'" in (tmp_path / "m" / "README.md").read_text()
    ck["g"] = {k: v for k, v in ck["g"].items() if not k.startswith("module.se_128.")}
    torch.save(ck, tmp_path / "bad.pth")
    bad = CliRunner().invoke(cli, ["convert", str(tmp_path / "bad.pth"), str(tmp_path / "b"), "-q"])
    assert bad.exit_code != 0 and "missing se_128.main.1.weight" in bad.output
    assert len(bad.output.strip().splitlines()) == 1 and not (tmp_path / "b").exists()
