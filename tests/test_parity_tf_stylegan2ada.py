"""TensorFlow StyleGAN2-ADA snapshots (state version 5, G_synthesis): every manifest check, the config, label
embedding, options that are mapped or refused by name, and the CLI (convert / sample / export)."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

import converters
import sdk
import zoo
from _manifest_checks import run_checks
from conftest import fixture_dir, golden, manifest
from converters.tf_stylegan2 import collect_variables, convert_networks, read_tf_pickle
from zoo.errors import ConversionError

NAME = "tf_stylegan2ada_64"
PKL = "network-snapshot-000000.pkl"


def _networks():
    return read_tf_pickle(fixture_dir(NAME) / PKL)


def _build(conv):
    from zoo.models.stylegan2 import StyleGAN2Generator

    G = StyleGAN2Generator(**conv.init_kwargs)
    G.load_state_dict(conv.tensors)
    return G.eval()


def test_every_manifest_check(converted_fixture):
    man, gold = manifest(NAME), golden(NAME)
    G = zoo.load(converted_fixture(NAME, PKL))
    checked = run_checks(G, man, gold)
    assert checked == [c["key"] for c in man["checks"]]
    assert torch.equal(G.mapping.w_avg, gold["w_avg"])
    assert set(gold) - {"z", "w_avg"} <= set(checked)


def test_config_matches_the_reference_conversion(converted_fixture):
    man = manifest(NAME)
    cfg = json.loads((converted_fixture(NAME, PKL) / "config.json").read_text())
    want = man["tf_vs_legacy"]["converted_init_kwargs"]
    kw = cfg["init_kwargs"]
    for key in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"):
        assert kw[key] == want[key], key
    for key, value in want["synthesis_kwargs"].items():
        assert kw[key] == value, key
    for key in ("num_layers", "layer_features", "activation", "lr_multiplier", "w_avg_beta"):
        assert kw["mapping_kwargs"][key] == want["mapping_kwargs"][key], key
    assert cfg["num_ws"] == man["derived"]["num_ws"] and cfg["upstream_codebase"] == "stylegan2-ada-tf"
    prov = cfg["provenance"]
    assert prov["source_format"] == "tf-stylegan2-pickle" and prov["source_sha256"] == man["checkpoint"]["sha256"]
    assert any("state version 5" in n for n in prov["notes"])


def test_takes_Gs_not_G(converted_fixture):
    G, _, Gs = _networks()
    from safetensors.torch import load_file

    ours = load_file(converted_fixture(NAME, PKL) / "model.safetensors")
    key = "synthesis/32x32/Conv1/bias"
    assert not torch.equal(collect_variables(G)[key], collect_variables(Gs)[key])
    assert torch.equal(ours["synthesis.b32.conv1.bias"], collect_variables(Gs)[key])


def test_label_embed_conditioning():
    """mapping/LabelEmbed [c_dim, embed]: concat(norm(z), norm(embed(c))) feeds Dense0; widths from the shapes."""
    G, D, Gs = _networks()
    Gs = copy.deepcopy(Gs)
    rng = np.random.RandomState(1)
    emb_w, emb_b = rng.randn(4, 256).astype(np.float32), (0.1 * rng.randn(256)).astype(np.float32)
    mapping = Gs.state["components"]["mapping"]
    mapping.state["variables"] = [(n, rng.randn(768, 64).astype(np.float32) if n == "Dense0/weight" else v)
                                  for n, v in mapping.variables]
    mapping.state["variables"] += [("LabelEmbed/weight", emb_w), ("LabelEmbed/bias", emb_b)]
    Gs.state["static_kwargs"] = {**Gs.static_kwargs, "label_size": 4}
    G1 = _build(convert_networks(G, D, Gs))
    assert G1.c_dim == 4 and G1.mapping.embed.weight.shape == (256, 4)
    tf = collect_variables(Gs)
    z = golden(NAME)["z"]
    c = G1.make_c([0, 1, 3], 3)
    norm = lambda x: x * (x.square().mean(1, keepdim=True) + 1e-8).rsqrt()  # noqa: E731
    y = c @ torch.from_numpy(emb_w) / math.sqrt(4) + torch.from_numpy(emb_b)
    x = torch.cat([norm(z), norm(y)], dim=1)
    for i in range(2):  # the TF recipe, written out: lrmul 0.01 on weight and bias, lrelu with gain sqrt(2)
        w, b = tf[f"mapping/Dense{i}/weight"], tf[f"mapping/Dense{i}/bias"]
        x = F.leaky_relu(x @ (w * 0.01 / math.sqrt(w.shape[0])) + b * 0.01, 0.2) * math.sqrt(2)
    with torch.no_grad():
        ws = G1.mapping(z, c)
    assert (ws[:, 0] - x).abs().max() < 1e-4


def test_unknown_and_fork_options_are_mapped_or_refused_by_name():
    G, D, Gs = _networks()
    ref = _build(convert_networks(G, D, Gs))
    # community forks' resolution_w / resolution_h: a square network maps onto ours ...
    square = copy.deepcopy(Gs)
    square.state["static_kwargs"] = {**Gs.static_kwargs, "resolution_w": 64, "resolution_h": 64}
    conv = convert_networks(G, D, square)
    assert conv.init_kwargs["img_resolution"] == 64
    assert all(torch.equal(conv.tensors[k], v) for k, v in ref.state_dict().items())
    # ... a non-square one is refused, naming the option
    for kw, match in (({"resolution_w": 64, "resolution_h": 48}, "resolution_h=48"),
                      ({"resolution_w": 96}, "resolution_w=96"),
                      ({"fancy_fork_option": 1}, "fancy_fork_option"),
                      ({"synthesis_func": "G_synthesis_stylegan_revised"}, "synthesis_func")):
        bad = copy.deepcopy(Gs)
        bad.state["static_kwargs"] = {**Gs.static_kwargs, **kw}
        with pytest.raises(ConversionError, match=match):
            convert_networks(G, D, bad)
    bad = copy.deepcopy(Gs)
    bad.state["components"]["synthesis"].state["build_func_name"] = "G_synthesis_xl"
    with pytest.raises(ConversionError, match="G_synthesis_xl"):
        convert_networks(G, D, bad)


def test_cli_convert_detects_sample_and_export(tmp_path):
    from sdk.cli import cli

    src = fixture_dir(NAME) / PKL
    assert converters.detect_format(src).name == "tf-stylegan2-pickle"
    r = CliRunner().invoke(cli, ["convert", str(src), str(tmp_path / "m"), "--json", "-q"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["provenance"]["source_format"] == "tf-stylegan2-pickle"
    r = CliRunner().invoke(cli, ["sample", str(tmp_path / "m"), "--seeds", "3,14", "--trunc", "0.5",
                                 "--grid", str(tmp_path / "grid.png"), "-q"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "grid.png").stat().st_size > 0
    r = CliRunner().invoke(cli, ["export", str(tmp_path / "m"), "--out", str(tmp_path / "g.onnx"), "--json", "-q",
                                 "--no-mobile-check"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)["model"]
    assert report["dynamic_batch"] and "truncation_psi" in report["inputs"]
    og = sdk.OnnxGenerator(tmp_path / "g.onnx")
    gold = golden(NAME)
    got = og(gold["z"], truncation_psi=0.5)
    assert (got - gold["img_const_psi0_5"]).abs().max() < 1e-3  # the exported graph reproduces upstream


def test_cli_refuses_a_fork_pickle_naming_the_option(tmp_path):
    """A real pickle file rebuilt from the fixture with a fork's non-square size: refused by name, nothing written;
    the same file with a square size converts."""
    from _tfpickle import write_tf_pickle
    from sdk.cli import cli

    G, D, Gs = _networks()
    for kw, ok in (({"resolution_w": 64, "resolution_h": 32}, False), ({"resolution_w": 64, "resolution_h": 64}, True)):
        fork = copy.deepcopy(Gs)
        for net in (fork, *fork.components.values()):
            net.state["static_kwargs"] = {**net.static_kwargs, **kw}
        src = write_tf_pickle(tmp_path / f"fork-{kw['resolution_h']}.pkl", (G, D, fork))
        out = tmp_path / f"m{kw['resolution_h']}"
        r = CliRunner().invoke(cli, ["convert", str(src), str(out), "-q"])
        if ok:
            assert r.exit_code == 0, r.output
            assert json.loads((out / "config.json").read_text())["img_resolution"] == 64
        else:
            assert r.exit_code != 0 and "resolution_h=32" in r.output and "Traceback" not in r.output
            assert len(r.output.strip().splitlines()) == 1 and not out.exists()
