"""Original TensorFlow StyleGAN2 pickles: parity on every golden key, strict variable mapping, safe reading."""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import converters
import zoo
from conftest import assert_close, fixture_dir, golden, manifest, sg2_golden_calls, tolerance
from converters.tf_stylegan2 import collect_variables, convert_networks, read_tf_pickle
from zoo.errors import ConversionError, UnsafePickleError

NAME = "tf_stylegan2_64"
PKL = "network-snapshot-000000.pkl"




def test_every_golden_key(converted_fixture):
    man, gold = manifest(NAME), golden(NAME)
    G = zoo.load(converted_fixture(NAME, PKL))
    z = gold["z"]
    c = torch.zeros([z.shape[0], 0])  # manifest "labels": unconditional
    calls = sg2_golden_calls(G, z, c)
    checked = []
    with torch.no_grad():
        for key, expected in gold.items():
            if key == "z":
                continue
            assert key in calls, f"golden key {key} of {NAME} has no parity check"
            tol = 0.0 if key == "w_avg" else tolerance(man, key)  # a stored buffer copies exactly
            assert_close(calls[key](), expected, tol, f"{NAME}:{key}")
            checked.append(key)
    assert sorted(checked) == sorted(k for k in man["golden_keys"] if k != "z")


def test_golden_z_is_the_nvidia_seed_convention():
    import sdk

    man, gold = manifest(NAME), golden(NAME)
    z = torch.cat([sdk.seed_to_z(s, 512) for s in man["seeds"]])
    assert torch.equal(z, gold["z"])


def test_config_from_static_kwargs(converted_fixture):
    cfg = json.loads((converted_fixture(NAME, PKL) / "config.json").read_text())
    man = manifest(NAME)
    want = man["config"]["converted_pytorch_init_kwargs"]
    kw = cfg["init_kwargs"]
    assert cfg["architecture"] == "stylegan2" and cfg["num_ws"] == man["derived"]["num_ws"]
    for key in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"):
        assert kw[key] == want[key]
    assert kw["channel_base"] == 2 * man["config"]["G_static_kwargs"]["fmap_base"] == 512
    assert kw["channel_max"] == 32
    assert kw["mapping_kwargs"]["layer_features"] == 64 and kw["mapping_kwargs"]["num_layers"] == 8
    assert kw["mapping_kwargs"]["lr_multiplier"] == 0.01
    assert cfg["provenance"]["source_format"] == "tf-stylegan2-pickle"
    assert cfg["provenance"]["source_sha256"] == man["checkpoint"]["sha256"]


def test_layouts_flip_and_style_bias(converted_fixture):
    """Conv0_up kernels are flipped and transposed, plain convs only transposed, style biases + 1."""
    _, _, Gs = read_tf_pickle(fixture_dir(NAME) / PKL)
    tf = collect_variables(Gs)
    ours = load_file(converted_fixture(NAME, PKL) / "model.safetensors")
    up = tf["synthesis/16x16/Conv0_up/weight"]
    assert torch.equal(ours["synthesis.b16.conv0.weight"], up.flip([0, 1]).permute(3, 2, 0, 1))
    assert not torch.equal(ours["synthesis.b16.conv0.weight"], up.permute(3, 2, 0, 1))
    assert torch.equal(ours["synthesis.b16.conv1.weight"], tf["synthesis/16x16/Conv1/weight"].permute(3, 2, 0, 1))
    assert torch.equal(ours["synthesis.b16.conv1.affine.bias"], tf["synthesis/16x16/Conv1/mod_bias"] + 1)
    assert torch.equal(ours["mapping.fc3.weight"], tf["mapping/Dense3/weight"].t())
    assert torch.equal(ours["synthesis.b32.conv0.noise_const"], tf["synthesis/noise5"][0, 0])
    assert torch.equal(ours["synthesis.b32.conv1.noise_const"], tf["synthesis/noise6"][0, 0])


def test_takes_Gs_not_G(converted_fixture):
    G, _, Gs = read_tf_pickle(fixture_dir(NAME) / PKL)
    ours = load_file(converted_fixture(NAME, PKL) / "model.safetensors")
    key = "synthesis/8x8/Conv1/bias"
    g, gs = collect_variables(G)[key], collect_variables(Gs)[key]
    assert not torch.equal(g, gs)
    assert torch.equal(ours["synthesis.b8.conv1.bias"], gs)


def test_unexpected_variable_is_named():
    G, D, Gs = read_tf_pickle(fixture_dir(NAME) / PKL)
    bad = copy.deepcopy(Gs)
    synth = bad.state["components"]["synthesis"]
    synth.state["variables"] = list(synth.state["variables"]) + [("64x64/Conv1/extra_gain", np.ones(3, np.float32))]
    with pytest.raises(ConversionError, match="synthesis/64x64/Conv1/extra_gain"):
        convert_networks(G, D, bad)
    # a variable of a resolution the network does not have is unexpected too
    bad = copy.deepcopy(Gs)
    synth = bad.state["components"]["synthesis"]
    synth.state["variables"] = list(synth.state["variables"]) + [("noise9", np.ones([1, 1, 128, 128], np.float32))]
    with pytest.raises(ConversionError, match="synthesis/noise9"):
        convert_networks(G, D, bad)


def test_missing_variable_and_unknown_option_are_named():
    G, D, Gs = read_tf_pickle(fixture_dir(NAME) / PKL)
    bad = copy.deepcopy(Gs)
    synth = bad.state["components"]["synthesis"]
    synth.state["variables"] = [v for v in synth.state["variables"] if v[0] != "32x32/Conv1/bias"]
    with pytest.raises(ConversionError, match="synthesis.b32.conv1.bias"):
        convert_networks(G, D, bad)
    bad = copy.deepcopy(Gs)
    bad.state["static_kwargs"] = {**bad.state["static_kwargs"], "fancy_option": 3}
    with pytest.raises(ConversionError, match="fancy_option"):
        convert_networks(G, D, bad)
    bad = copy.deepcopy(Gs)
    bad.state["static_kwargs"] = {**bad.state["static_kwargs"], "normalize_latents": False}
    with pytest.raises(ConversionError, match="normalize_latents"):
        convert_networks(G, D, bad)


def test_code_in_a_tf_pickle_is_refused(tmp_path):
    """A pickle that looks like a TF network but names os.system is stopped before anything runs."""
    marker = tmp_path / "ran"
    payload = (b"\x80\x04" + pickle.dumps("dnnlib.tflib.network", protocol=4)[2:-1] + b"0"
               + b"cos\nsystem\n(V" + f"touch {marker}".encode() + b"\ntR.")
    src = tmp_path / "evil.pkl"
    src.write_bytes(payload)
    assert converters.detect_format(src).name == "tf-stylegan2-pickle"
    with pytest.raises(UnsafePickleError, match="os.system"):
        converters.convert(src, tmp_path / "out")
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_cli_convert_autodetects(tmp_path):
    from sdk.cli import cli

    r = CliRunner().invoke(cli, ["convert", str(fixture_dir(NAME) / PKL), str(tmp_path / "m"), "--json", "-q"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["provenance"]["source_format"] == "tf-stylegan2-pickle" and data["img_resolution"] == 64


def test_registry_entries_for_the_tf_releases():
    fids = {"ffhq": 2.84, "car": 2.32, "cat": 6.93, "church": 3.86, "horse": 3.43}
    res = {"ffhq": 1024, "car": 512, "cat": 256, "church": 256, "horse": 256}
    formats = {f.name for f in converters.list_formats()}
    for key, fid in fids.items():
        e = zoo.info(f"stylegan2-{key}-config-f")
        assert e["url"] == f"https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/stylegan2-{key}-config-f.pkl"
        assert e["source_format"] == "tf-stylegan2-pickle" and e["source_format"] in formats
        assert e["license"] == "nvidia-source-code-license" and e["non_commercial"]
        assert e["fid"] == fid and e["resolution"] == res[key] and e["architecture"] == "stylegan2"
    assert "512x384" in zoo.info("stylegan2-car-config-f")["notes"]
