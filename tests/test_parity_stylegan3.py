"""StyleGAN3 (configs T and R) parity: every golden key, through the project's converter; transform SDK/CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import sdk
import zoo
from conftest import assert_close, fixture_dir, golden, manifest, tolerance

SG3_FIXTURES = ["sg3_t_64", "sg3_r_64"]
PKL = "network-snapshot-000000.pkl"
# The fixtures' transform inputs (manifest 'outputs': make_transform(translate=[0.2, -0.15], angle=12.5)).
TRANSLATE, ANGLE = (0.2, -0.15), 12.5
# Keys outside the manifest's ws_*/img_* patterns: stored buffers copy exactly; the 3x3 matrices are pure
# float64 math cast to float32; the Fourier-feature input is one layer of float32 arithmetic.
EXTRA_TOL = {"w_avg": 0.0, "make_transform": 1e-7, "input_transform": 1e-7, "input_features_seed0_psi1": 1e-5}


def _calls(G, z, c):
    """The manifest's exact call for each golden key."""

    def with_transform():
        buf = G.synthesis.input.transform
        with sdk.input_transform(G, translate=TRANSLATE, rotate=ANGLE):
            img = G(z, c, truncation_psi=1, noise_mode="const")
            # exactly the value upstream copies into the buffer
            assert_close(buf, torch.from_numpy(np.linalg.inv(sdk.make_transform(TRANSLATE, ANGLE))).float(),
                         1e-7, "transform buffer inside the context")
        return img

    return {
        "w_avg": lambda: G.mapping.w_avg,
        "ws_psi1": lambda: G.mapping(z, c, truncation_psi=1),
        "ws_psi0_7": lambda: G.mapping(z, c, truncation_psi=0.7),
        "img_psi1": lambda: G(z, c, truncation_psi=1, noise_mode="const"),
        "img_psi0_7": lambda: G(z, c, truncation_psi=0.7, noise_mode="const"),
        "input_features_seed0_psi1": lambda: G.synthesis.input(G.mapping(z[:1], None if c is None else c[:1])[:, 0]),
        "make_transform": lambda: torch.from_numpy(sdk.make_transform(TRANSLATE, ANGLE)).float(),
        "input_transform": lambda: torch.from_numpy(np.linalg.inv(sdk.make_transform(TRANSLATE, ANGLE))).float(),
        "img_psi1_transform": with_transform,
    }


@pytest.mark.parametrize("name", SG3_FIXTURES)
def test_every_golden_key(name, converted_fixture):
    man, gold = manifest(name), golden(name)
    G = zoo.load(converted_fixture(name, PKL))
    assert G.architecture == "stylegan3" and G.num_ws == man["derived"]["num_ws"]
    z, c = gold["z"], None
    calls = _calls(G, z, c)
    checked = []
    with torch.no_grad():
        for key, expected in gold.items():
            if key == "z":
                continue
            assert key in calls, f"golden key {key} of {name} has no parity check"
            tol = EXTRA_TOL[key] if key in EXTRA_TOL else tolerance(man, key)
            assert_close(calls[key](), expected, tol, f"{name}:{key}")
            checked.append(key)
        # the transform was restored (the plain call is what img_psi1 checked)
        assert torch.equal(G.synthesis.input.transform, torch.eye(3))
    assert len(checked) == len(man["golden_keys"]) - 1


@pytest.mark.parametrize("name", SG3_FIXTURES)
def test_sdk_seeds_and_transform_match_goldens(name, converted_fixture):
    """sdk.generate(seeds, translate, rotate) reproduces img_psi1_transform (seeds -> z as gen_images.py)."""
    man, gold = manifest(name), golden(name)
    G = zoo.load(converted_fixture(name, PKL))
    img = sdk.generate(G, man["seeds"], translate=TRANSLATE, rotate=ANGLE, batch_size=3)
    assert_close(img, gold["img_psi1_transform"], tolerance(man, "img_psi1_transform"), "generate(translate, rotate)")
    assert torch.equal(G.synthesis.input.transform, torch.eye(3))  # not mutated permanently


def test_converted_layout_and_filters(converted_fixture):
    """Config R: 1x1 convs and radial 2-D down filters; the filters we design equal the stored ones."""
    from safetensors.torch import load_file

    from zoo.models.stylegan3 import design_lowpass_filter

    folder = converted_fixture("sg3_r_64", PKL)
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["architecture"] == "stylegan3"
    assert cfg["init_kwargs"]["conv_kernel"] == 1 and cfg["init_kwargs"]["use_radial_filters"] is True
    assert cfg["provenance"]["source_sha256"] == manifest("sg3_r_64")["checkpoint"]["sha256"]
    stored = load_file(folder / "model.safetensors")
    G = zoo.load(folder)
    derived = {d["name"]: d for d in manifest("sg3_r_64")["derived"]["layers"][1:]}
    for spec in G.synthesis.layer_specs:
        assert list(spec.padding) == derived[spec.name]["padding"]
        assert spec.down_radial == derived[spec.name]["down_radial"]
        up = design_lowpass_filter(spec.up_taps, spec.in_cutoff, spec.in_half_width * 2, spec.tmp_sampling_rate)
        down = design_lowpass_filter(spec.down_taps, spec.out_cutoff, spec.out_half_width * 2,
                                     spec.tmp_sampling_rate, radial=spec.down_radial)
        for key, ours in ((f"synthesis.{spec.name}.up_filter", up), (f"synthesis.{spec.name}.down_filter", down)):
            if ours is None:
                assert key not in stored
            else:
                assert_close(ours, stored[key], 1e-6, key)
    assert stored["synthesis.L0_36_64.down_filter"].ndim == 2  # radial
    assert stored["synthesis.L12_84_32.down_filter"].ndim == 1  # critically sampled: separable


def test_loads_G_ema_and_rejects_bad_config():
    from converters.nvidia import flatten_state, read_snapshot
    from converters.stylegan3 import convert_stylegan3
    from zoo.errors import ConversionError

    snap = read_snapshot(fixture_dir("sg3_t_64") / PKL)
    ema = flatten_state(snap["G_ema"])
    conv = convert_stylegan3(snap["G_ema"], ema, "fixture")
    assert set(conv.tensors) == set(ema)  # upstream names kept, nothing dropped
    key = "synthesis.L3_36_32.weight"
    assert torch.equal(conv.tensors[key], ema[key]) and not torch.equal(conv.tensors[key], flatten_state(snap["G"])[key])
    # a stray tensor is an error, never silently dropped
    extra = dict(flatten_state(snap["G_ema"]), **{"synthesis.extra_thing": torch.zeros(1)})
    with pytest.raises(ConversionError, match="no mapping"):
        convert_stylegan3(snap["G_ema"], extra, "fixture")
    # a config that does not reproduce the stored layer geometry is refused
    rec = snap["G_ema"]
    rec.state["_init_kwargs"] = dict(rec.state["_init_kwargs"], margin_size=4)
    with pytest.raises(ConversionError, match="layer layout|geometry"):
        convert_stylegan3(rec, flatten_state(rec), "fixture")
    rec.state["_init_kwargs"] = dict(rec.state["_init_kwargs"], frobnicate=1)
    with pytest.raises(ConversionError, match="frobnicate"):
        convert_stylegan3(rec, flatten_state(rec), "fixture")


def test_transform_on_non_sg3_is_clear_error():
    G = zoo.load("dcgan-digiface-64")
    with pytest.raises(ValueError, match="StyleGAN3"):
        sdk.sample(G, [0], rotate=10)


def test_registry_entries():
    names = zoo.list_models("stylegan3")
    assert len(names) == 12
    e = zoo.info("stylegan3-r-afhqv2-512")
    assert e["url"].endswith("/stylegan3/versions/1/files/stylegan3-r-afhqv2-512x512.pkl")
    assert e["resolution"] == 512 and e["license"] == "nvidia-source-code-license" and e["non_commercial"]
    assert zoo.info("stylegan3-t-ffhqu-256")["url"].endswith("stylegan3-t-ffhqu-256x256.pkl")


def test_cli_translate_rotate(tmp_path, converted_fixture):
    from sdk.cli import cli

    folder = str(converted_fixture("sg3_t_64", PKL))
    gold = golden("sg3_t_64")
    r = CliRunner().invoke(cli, ["sample", folder, "--seeds", "0,1", "--outdir", str(tmp_path / "o"),
                                 "--translate", "0.2,-0.15", "--rotate", "12.5", "--json", "-q"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.output)["files"]) == 2
    got = np.stack([np.asarray(Image.open(tmp_path / "o" / f"seed{s:04d}.png")) for s in (0, 1)]).astype(int)
    expected = sdk.to_uint8(gold["img_psi1_transform"][:2]).numpy().astype(int)
    plain = sdk.to_uint8(gold["img_psi1"][:2]).numpy().astype(int)
    assert np.abs(got - expected).max() <= 1
    assert np.abs(got - plain).max() > 10  # the transform really changed the images
    # a leading minus is a value, not an option
    r = CliRunner().invoke(cli, ["sample", folder, "--seeds", "0", "--grid", str(tmp_path / "m.png"),
                                 "--translate", "-0.1,0", "-q"])
    assert r.exit_code == 0, r.output
    # bad input: one-line errors, nothing written
    r = CliRunner().invoke(cli, ["sample", folder, "--grid", str(tmp_path / "b.png"), "--translate", "0.1"])
    assert r.exit_code != 0 and "TX,TY" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["sample", "--grid", str(tmp_path / "d.png"), "--rotate", "5"])
    assert r.exit_code != 0 and "StyleGAN3" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "b.png").exists() and not (tmp_path / "d.png").exists()
