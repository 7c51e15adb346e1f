"""Projected GAN snapshot pickles: every check of projected_fastgan_lite_128's manifest, safe reading and
detection, G_ema (not G), refusals, sampling defaults, ONNX export and the z-space toolkit."""

from __future__ import annotations

import io
import json
import pickle

import pytest
import torch
from click.testing import CliRunner

import converters
import sdk
import zoo
from conftest import assert_close, fixture_dir, golden, manifest
from converters.projected_gan import convert_generator, read_snapshot
from sdk.cli import cli
from test_parity_fastgan import run_check
from zoo.errors import ConversionError, UnsafePickleError

FIX = "projected_fastgan_lite_128"


@pytest.fixture(scope="module")
def G(converted_fixture):
    return zoo.load(converted_fixture(FIX, manifest(FIX)["convert_source"]))


@pytest.fixture(scope="module")
def snapshot():
    return read_snapshot(fixture_dir(FIX) / "network-snapshot.pkl")


@pytest.mark.parametrize("i", range(len(manifest(FIX)["checks"])))
def test_manifest_check(G, i):
    check, gold = manifest(FIX)["checks"][i], golden(FIX)
    out = run_check(G, check, gold)
    assert_close(out, gold[check["key"]], float(check["tol"]), f"{FIX}:{check['key']} ({check['call']} {check['args']})")


def test_config_read_from_the_pickle(G):
    cfg = manifest(FIX)["config"]["Generator_init"]
    with open(f"{G.model_info['folder']}/config.json") as f:
        config = json.load(f)
    assert config["init_kwargs"] == {"z_dim": cfg["z_dim"], "c_dim": 0, "img_resolution": 128, "img_channels": 3,
                                     "ngf": cfg["ngf"], "lite": True, "cond": False}
    assert config["provenance"]["source_format"] == "projected-gan-pickle"
    assert (G.z_dim, G.w_dim, G.num_ws, G.style_based, G.psi_dtype) == (16, 16, 1, False, None)


def test_detection_routes_the_pickle_here():
    path = fixture_dir(FIX) / "network-snapshot.pkl"
    assert converters.detect_format(path).name == "projected-gan-pickle"
    for other in ("sg2ada_uncond_64", "sg3_t_64"):  # NVIDIA snapshots keep going to the NVIDIA converter
        pkls = sorted(fixture_dir(other).glob("*.pkl"))
        if pkls:
            assert converters.detect_format(pkls[0]).name == "nvidia-pickle"


def test_g_ema_is_converted_not_the_training_copy(snapshot, G):
    from_g = convert_generator(snapshot["G"], "G").tensors
    ours = G.state_dict()
    assert from_g.keys() == ours.keys()
    assert any(not torch.equal(from_g[k], ours[k]) for k in ours)


def test_stale_weight_attribute_is_not_used(snapshot, G):
    """Unused layers pickle a stale W/sigma in their __dict__; the converter recomputes it from weight_orig, u, v."""
    mods = snapshot["G_ema"].state["_modules"]["synthesis"].state["_modules"]
    conv = mods["feat_256"].state["_modules"]["1"].state
    stale = conv["weight"]
    assert not torch.allclose(stale, G.synthesis.feat_256[1].weight)


def test_unknown_global_is_refused_without_running_it(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "network-snapshot.pkl"
    data = pickle.dumps({"G_ema": Evil(), "note": "pg_modules.networks_fastgan"}, protocol=4)
    bad.write_bytes(data)
    assert converters.detect_format(bad).name == "projected-gan-pickle"
    with pytest.raises(UnsafePickleError, match="builtins.print"):
        converters.convert_to_config(bad)


def test_other_generators_are_refused_naming_the_class(tmp_path, snapshot):
    from converters.safe_pickle import stub_class

    fake = stub_class("pg_modules.networks_fastgan", "Generator")()
    fake.state = dict(snapshot["G_ema"].state)
    fake.state["_modules"] = dict(fake.state["_modules"])
    fake.state["_modules"]["synthesis"] = stub_class("pg_modules.networks_fastgan", "OtherSynthesis")()
    fake.state["_modules"]["synthesis"].state = {"_modules": {}}
    with pytest.raises(ConversionError, match="OtherSynthesis"):
        convert_generator(fake)
    with pytest.raises(ConversionError, match="expected pg_modules.networks_fastgan.Generator"):
        convert_generator(snapshot["D"])
    buf = io.BytesIO()
    pickle.dump([1, 2], buf)
    (tmp_path / "x.pkl").write_bytes(b"\x80\x04" + b"pg_modules." + buf.getvalue())
    with pytest.raises(ConversionError):
        converters.convert_to_config(tmp_path / "x.pkl", format="projected-gan-pickle")


def test_sampling_follows_gen_images(G):
    gold = golden(FIX)
    assert G.default_noise_mode == "none" and G.z_convention == "nvidia"
    imgs = sdk.generate(G, [0, 1, 2, 3], truncation_psi=0.5)  # psi is ignored, as upstream
    assert_close(imgs, gold["img"], 1e-4, "sdk.generate seeds 0-3")


def test_cli_sample_and_export_without_psi_input(G, tmp_path):
    folder = G.model_info["folder"]
    r = CliRunner().invoke(cli, ["sample", folder, "--seeds", "0-1", "--grid", str(tmp_path / "g.png"), "--json", "-q"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "p.onnx"
    r = CliRunner().invoke(cli, ["export", folder, "--out", str(out), "--no-mobile-check", "--json", "-q"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)["model"]
    assert list(report["inputs"]) == ["z"] and report["inputs"]["z"][0] == "batch"
    assert report["metadata"]["truncation_psi"] == "none"
    onnx_G = sdk.OnnxGenerator(str(out), quiet=True)
    assert_close(sdk.generate(onnx_G, [0, 1]), golden(FIX)["img"][:2], 1e-3, "onnxruntime vs golden")


def test_latent_toolkit_in_z(G):
    d = sdk.directions.sefa(G, k=3)
    assert d.space == "z" and d.vectors.shape == (3, 16) and d.params["source_layers"] == ["synthesis.init.init.0"]
    g = sdk.directions.ganspace(G, n_samples=48, components=2, batch_size=48)
    assert g.space == "z" and g.vectors.shape == (2, 16)
    frames = sdk.interpolate(G, [0, 1], frames=3)
    assert len(frames) == 3 and frames[1].size == (128, 128)
    target = sdk.generate(G, [5])
    inv = sdk.invert(G, target, steps=6, loss="pixel", starts=2, quiet=True)
    with torch.no_grad():
        err0 = (G(torch.randn(1, 16, generator=torch.Generator().manual_seed(0))) - target).square().mean().item()
    assert inv.space == "z" and (inv.reconstruction - target).square().mean().item() < err0
