"""StyleSwin training checkpoints: every manifest check, the seeded w_avg recipe, detection against rosinality,
refused variants, CLI convert/sample/export, latent toolkit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import converters
import sdk
import zoo
from _manifest_checks import output_keys, run_checks
from conftest import assert_close, fixture_dir, golden, manifest, tolerance
from converters.styleswin import convert_checkpoint, read_checkpoint
from sdk.latent import directions
from zoo.errors import ConversionError
from zoo.models.styleswin import mean_latent

NAME = "styleswin_32"
PT = "000000.pt"


@pytest.fixture(scope="module")
def G(converted_fixture):
    return zoo.load(converted_fixture(NAME, PT))


@pytest.fixture(scope="module")
def ckpt():
    return read_checkpoint(fixture_dir(NAME) / PT)


def test_every_manifest_check(G):
    man, gold = manifest(NAME), golden(NAME)
    missing = output_keys(man) - set(run_checks(G, man, gold))
    assert not missing, f"golden outputs without a check: {sorted(missing)}"


def test_w_avg_recipe_is_recorded_and_matches_upstreams_mean(G, converted_fixture):
    gold = golden(NAME)
    cfg = json.loads((converted_fixture(NAME, PT) / "config.json").read_text())
    recipe = cfg["w_avg_recipe"]
    assert recipe["samples"] == 4096 and recipe["seed"] == 0 and "torch.manual_seed" in recipe["how"]
    # the recipe function reproduces the fixture's w_mean (upstream g_ema.style after torch.manual_seed(2024))
    assert_close(mean_latent(G, 4096, seed=2024), gold["w_mean"][0], 1e-5, "mean_latent(seed=2024)")
    torch.manual_seed(recipe["seed"])
    z = torch.randn(recipe["samples"], 64)
    with torch.no_grad():
        assert_close(G.w_avg, G.mapping(z)[:, 0].mean(0), 1e-6, "stored w_avg")
    # the default centre is w_avg; an explicit one replaces it ([D] and [1, D] both accepted)
    with torch.no_grad():
        a = G.mapping(gold["z"], truncation_psi=0.7, truncation_latent=gold["w_mean"][0])
        b = G.mapping(gold["z"], truncation_psi=0.7)
    assert_close(a, gold["ws_psi0_7"], tolerance(manifest(NAME), "ws_psi0_7"), "[D] truncation_latent")
    assert (a - b).abs().max() > 1e-3


def test_no_noise_inputs(G):
    gold = golden(NAME)
    with torch.no_grad():
        assert torch.equal(G(gold["z"][:1], noise_mode="random"), G(gold["z"][:1], noise_mode="none"))
    with pytest.raises(ValueError, match="no noise inputs"):
        G.synthesis(gold["ws_psi1"], noise=[torch.zeros(1)])


def test_seeds_follow_upstream(G):
    man, gold = manifest(NAME), golden(NAME)
    assert torch.equal(sdk.seeds_to_z(G, man["seeds"]), gold["z"])


def test_detection_is_precise():
    assert converters.detect_format(fixture_dir(NAME) / PT).name == "styleswin-pt"
    assert converters.detect_format(fixture_dir("rosinality_64") / PT).name == "rosinality-pt"
    from converters.rosinality import read_checkpoint as read_rosinality
    with pytest.raises(ConversionError, match="rosinality"):
        convert_checkpoint(read_rosinality(fixture_dir("rosinality_64") / PT))


def test_takes_g_ema_and_refuses_variants(ckpt):
    conv = convert_checkpoint(ckpt)
    key = "layers.2.blocks.1.qkv.weight"
    assert torch.equal(conv.tensors["synthesis." + key], ckpt["g_ema"][key])
    assert not torch.equal(conv.tensors["synthesis." + key], ckpt["g"][key])
    g_ema = ckpt["g_ema"]
    args = type(ckpt["args"])()
    args.state = dict(ckpt["args"].state, size=64)
    with pytest.raises(ConversionError, match="args.size=64"):
        convert_checkpoint(dict(ckpt, args=args))
    with pytest.raises(ConversionError, match="extra.weight"):
        convert_checkpoint(dict(ckpt, g_ema={**g_ema, "extra.weight": torch.zeros(1)}))
    mask = "layers.2.blocks.0.attn_mask2"
    with pytest.raises(ConversionError, match="shifted-window mask"):
        convert_checkpoint(dict(ckpt, g_ema={**g_ema, mask: torch.zeros_like(g_ema[mask])}))
    with pytest.raises(ConversionError, match="no shifted windows"):
        convert_checkpoint(dict(ckpt, g_ema={**g_ema, "layers.1.blocks.0.attn_mask2": g_ema[mask]}))
    idx = "layers.0.blocks.0.attn.1.relative_position_index"
    with pytest.raises(ConversionError, match="relative index"):
        convert_checkpoint(dict(ckpt, g_ema={**g_ema, idx: g_ema[idx].flip(0)}))


def test_cli_refuses_a_variant_naming_the_tensor(ckpt, tmp_path):
    from sdk.cli import cli

    g_ema = dict(ckpt["g_ema"])
    g_ema["layers.0.blocks.2.qkv.weight"] = g_ema["layers.0.blocks.1.qkv.weight"]  # a third block: not upstream's
    path = tmp_path / "deeper.pt"
    torch.save({"g_ema": g_ema}, path)
    r = CliRunner().invoke(cli, ["convert", str(path), str(tmp_path / "out"), "-q"])
    assert r.exit_code != 0 and "layers.0.blocks.2.qkv.weight" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_cli_convert_sample_export(tmp_path):
    from sdk.cli import cli

    runner = CliRunner()
    folder = tmp_path / "ssw"
    r = runner.invoke(cli, ["convert", str(fixture_dir(NAME) / PT), str(folder), "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    cfg = json.loads((folder / "config.json").read_text())
    kw = cfg["init_kwargs"]
    want = manifest(NAME)["config"]
    assert cfg["architecture"] == "styleswin" and cfg["num_ws"] == want["n_latent"]
    assert kw["channels"] == want["layer_dims"] and kw["window_sizes"] == want["window_size"]
    assert [2 * h for h in kw["heads_per_attention"]] == want["num_heads(per block; each of the 2 attentions gets "
                                                               "num_heads//2)"]
    r = runner.invoke(cli, ["sample", str(folder), "--seeds", "0-2", "--outdir", str(tmp_path / "imgs"), "-q"],
                      catch_exceptions=False)
    assert r.exit_code == 0, r.output
    want_png = np.asarray(sdk.to_pil(golden(NAME)["img_psi1"][2:3])[0], dtype=np.int16)
    got = np.asarray(Image.open(tmp_path / "imgs" / "seed0002.png"), dtype=np.int16)
    assert np.abs(got - want_png).max() <= 1
    out = tmp_path / "ssw.onnx"
    r = runner.invoke(cli, ["export", str(folder), "--out", str(out), "--no-mobile-check", "--json", "-q"],
                      catch_exceptions=False)
    assert r.exit_code == 0, r.output
    model = json.loads(r.output)["model"]
    assert model["dynamic_batch"] and isinstance(model["inputs"]["z"][0], str)
    assert set(model["max_abs_error"]) == {"1", "2", "8"} and max(model["max_abs_error"].values()) < 1e-3
    onnx_G = sdk.OnnxGenerator(str(out), provider="cpu")
    img = torch.as_tensor(np.asarray(onnx_G(golden(NAME)["z"], truncation_psi=1.0)))
    assert_close(img, golden(NAME)["img_psi1"], 1e-3, "onnxruntime batch 3")


def test_latent_toolkit(G):
    gold = golden(NAME)
    sefa = directions.sefa(G)
    names = sefa.params["source_layers"]
    assert len(names) == 16 and all(n.endswith((".norm1.style", ".norm2.style")) for n in names)
    gs = directions.ganspace(G, n_samples=400, components=3)
    assert gs.vectors.shape == (3, 64) and gs.space == "w"
    mix = sdk.style_mix(G, [0], [1], layers=[6, 7])
    ws = gold["ws_psi1"][0:1].clone()
    ws[:, [6, 7]] = gold["ws_psi1"][1:2, [6, 7]]
    with torch.no_grad():
        assert_close(mix[0, 0:1], G.synthesis(ws), 1e-5, "style_mix")
    frames = sdk.interpolate(G, [0, 2], frames=3)
    ends = sdk.to_pil(gold["img_psi1"][[0, 2]])
    for got, want in ((frames[0], ends[0]), (frames[-1], ends[1])):
        assert np.abs(np.asarray(got, dtype=np.int16) - np.asarray(want, dtype=np.int16)).max() <= 1
    target = sdk.to_pil(gold["img_psi0_7"][1:2])[0]
    inv = sdk.invert(G, target, space="w", steps=20, loss="pixel", quiet=True)
    assert inv.latent.shape[-1] == 64 and inv.metrics["psnr"] > 20


def test_registry_entries():
    want = {"styleswin-ffhq-256": 2.81, "styleswin-lsunchurch-256": 2.95, "styleswin-celebahq-256": 3.25,
            "styleswin-ffhq-1024": 5.07, "styleswin-celebahq-1024": 4.43}  # microsoft/StyleSwin README
    got = {e.name: e for e in zoo.registry.all_entries() if e.family == "styleswin"}
    assert set(got) == set(want)
    for name, fid in want.items():
        e = got[name]
        assert e.fid == fid and e.license == "mit" and e.source_format == "styleswin-pt"
        assert e.url.startswith("https://") and e.source_file.endswith(f"_{e.resolution}.pt")
