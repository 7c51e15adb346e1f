"""Applying directions, style mixing, interpolation, animated output and the edit/mix/interpolate CLI."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import sdk
import zoo
from conftest import DIRECTIONS
from sdk.latent import directions as D
from sdk.cli import cli
from sdk.latent.directions import Direction, DirectionError
from sdk.latent.edit import (edit, interpolate, interpolation_latents, lerp, save_frames, slerp, style_mix, style_mix_grid,
                      synthesize, to_ws)
from sdk.latent.latents import save_latent
from sdk.sampling import seeds_to_z

SG2 = ("sg2ada_uncond_64", "network-snapshot-000000.pkl")


@pytest.fixture(scope="module")
def folder(converted_fixture):
    return converted_fixture(*SG2)


@pytest.fixture(scope="module")
def G(folder):
    return zoo.load(folder)


@pytest.fixture(scope="module")
def dcgan():
    return zoo.load("dcgan-digiface-64", quiet=True)


@pytest.fixture(scope="module")
def sefa(G):
    return D.sefa(G, k=8)


@pytest.fixture(scope="module")
def w(G):
    with torch.no_grad():
        return G.mapping(seeds_to_z(G, [0, 1]), None)[:, 0]


def test_strength_zero_is_identity(G, dcgan, sefa, w):
    base = synthesize(G, w, "w")
    assert torch.equal(edit(G, w, sefa, 0.0), w)
    assert torch.equal(synthesize(G, edit(G, w, sefa, 0.0, layers=[0, 1]), "w+"), base)
    ws = to_ws(G, w, "w")
    assert torch.equal(edit(G, ws, sefa, 0.0), ws)
    z = seeds_to_z(G, [0, 1])
    assert torch.equal(synthesize(G, edit(G, z, sefa, 0.0, space="z"), "w"), synthesize(G, z, "z"))
    dz = D.sefa(dcgan, k=3)
    z100 = seeds_to_z(dcgan, [4])
    assert torch.equal(edit(dcgan, z100, dz, 0.0), z100)


def test_direction_changes_the_image(G, dcgan, sefa, w):
    base = synthesize(G, w, "w")
    moved = synthesize(G, edit(G, w, sefa, 3.0), "w")
    assert (moved - base).abs().mean() > 0.02
    # Linear in strength: +s then -s returns to the start.
    assert torch.allclose(edit(G, edit(G, w, sefa, 2.0), sefa, -2.0), w, atol=1e-6)
    assert torch.allclose(edit(G, w, sefa, 1.5, component=3) - w, 1.5 * sefa.vectors[3].expand(2, -1), atol=1e-6)
    dz = D.sefa(dcgan, k=3)
    z = seeds_to_z(dcgan, [4])
    a, b = synthesize(dcgan, z, "z"), synthesize(dcgan, edit(dcgan, z, dz, 4.0), "z")
    assert (a - b).abs().mean() > 0.02


def test_per_layer_application(G, sefa, w):
    out = edit(G, w, sefa, 2.0, layers=[0, 3])
    assert out.shape == (2, G.num_ws, G.w_dim)
    delta = out - w.unsqueeze(1)
    moved = delta.abs().amax(dim=(0, 2)) > 0
    assert moved.tolist() == [i in (0, 3) for i in range(G.num_ws)]
    assert torch.allclose(delta[:, 3], 2.0 * sefa.vectors[0].expand(2, -1), atol=1e-6)
    # A direction computed on layers edits those layers by default.
    d01 = D.sefa(G, layers=[0, 1], k=2)
    rows = (edit(G, w, d01, 1.0) - w.unsqueeze(1)).abs().amax(dim=(0, 2)) > 0
    assert rows.tolist() == [i in (0, 1) for i in range(G.num_ws)]
    # GANSpace scale: one unit of strength is std[k].
    g = Direction(vectors=sefa.vectors[:2], space="w", extra={"std": torch.tensor([3.0, 0.5])})
    assert torch.allclose(edit(G, w, g, 2.0, component=1) - w, 1.0 * sefa.vectors[1].expand(2, -1), atol=1e-6)
    # A per-layer W+ direction adds its own row to each layer.
    rowwise = torch.randn(1, G.num_ws, G.w_dim)
    wp = Direction(vectors=rowwise, space="w+")
    assert torch.allclose(edit(G, w, wp, 1.0) - w.unsqueeze(1), rowwise.expand(2, -1, -1) / 1.0, atol=1e-5)


def test_z_latent_with_w_direction_goes_through_mapping(G, sefa):
    z = seeds_to_z(G, [7])
    got = edit(G, z, sefa, 1.0, space="z")
    with torch.no_grad():
        want = G.mapping(z, None)[:, 0] + sefa.vectors[0]
    assert torch.allclose(got, want, atol=1e-5)


def test_edit_errors(G, dcgan, sefa, w):
    zdir = D.load(DIRECTIONS / "interfacegan" / "stylegan_ffhq_age_boundary.npy")
    with pytest.raises(DirectionError, match="z-space direction cannot move a w latent"):
        edit(G, w, zdir, 1.0)
    with pytest.raises(DirectionError, match="out of range"):
        edit(G, w, sefa, 1.0, layers=[99])
    with pytest.raises(DirectionError, match="shape"):
        edit(G, torch.zeros(1, 7), sefa, 1.0)
    with pytest.raises(DirectionError, match="another generator"):
        edit(dcgan, seeds_to_z(dcgan, [0]), sefa, 1.0)
    with pytest.raises(DirectionError, match="component 8 out of range"):
        edit(G, w, sefa, 1.0, component=8)


def test_imported_directions_apply(G, w):
    age = D.load(DIRECTIONS / "e4e" / "interfacegan_directions" / "age.pt")
    assert torch.allclose(edit(G, w, age, 2.0) - w, 2 * age.vectors[0].expand(2, -1), atol=1e-6)
    light = D.load(DIRECTIONS / "ganspace" / "StyleGAN2-Light_direction-ffhq-ipca-w-style-comp15-range8-9.pkl")
    out = edit(G, w, light, 1.0)
    rows = (out - w.unsqueeze(1)).abs().amax(dim=(0, 2)) > 0
    assert rows.tolist() == [i == 8 for i in range(G.num_ws)]
    assert torch.allclose((out - w.unsqueeze(1))[:, 8].norm(dim=-1), torch.full((2,), light.scale()), atol=1e-4)


def test_style_mix_shapes_and_content(G):
    rows, cols = [0, 1], [2, 3, 4]
    mixed = style_mix(G, rows, cols, [0, 1, 2])
    assert mixed.shape == (2, 3, 3, 64, 64)
    with torch.no_grad():
        ws = G.mapping(seeds_to_z(G, [1, 4]), None)
    manual = ws[0:1].clone()
    manual[:, [0, 1, 2]] = ws[1:2, [0, 1, 2]]
    assert torch.allclose(mixed[1, 2], G.synthesis(manual)[0], atol=1e-5)
    # Taking every layer from the column seed gives the column seed's image.
    full = style_mix(G, [0], [3], range(G.num_ws))
    assert torch.allclose(full[0, 0], sdk.generate(G, [3])[0], atol=1e-5)
    grid = style_mix_grid(G, rows, cols, [0, 1])
    assert grid.size == (64 * 4, 64 * 3)
    with pytest.raises(DirectionError, match="W\\+ indices"):
        style_mix(G, rows, cols, [G.num_ws])


def test_style_mix_needs_w_space(dcgan):
    with pytest.raises(DirectionError, match="style-based"):
        style_mix(dcgan, [0], [1], [0])


def _px(im: Image.Image) -> np.ndarray:
    return np.asarray(im, dtype=np.int16)


def test_interpolate_endpoints_and_count(G, dcgan):
    frames = interpolate(G, [0, 1, 2], 7)
    assert len(frames) == 7 and frames[0].size == (64, 64)
    ref = sdk.sample(G, [0, 1, 2])
    assert np.abs(_px(frames[0]) - _px(ref[0])).max() <= 1
    assert np.abs(_px(frames[3]) - _px(ref[1])).max() <= 1  # 7 frames over 2 segments: frame 3 is seed 1
    assert np.abs(_px(frames[-1]) - _px(ref[2])).max() <= 1
    assert np.abs(_px(frames[1]) - _px(frames[0])).max() > 0
    zframes = interpolate(dcgan, [5, 6], 4)
    zref = sdk.sample(dcgan, [5, 6])
    assert np.abs(_px(zframes[0]) - _px(zref[0])).max() <= 1
    assert np.abs(_px(zframes[-1]) - _px(zref[1])).max() <= 1
    with pytest.raises(ValueError, match="two seeds"):
        interpolate(G, [0], 4)
    with pytest.raises(DirectionError, match="style-based"):
        interpolate(dcgan, [0, 1], 3, space="w")


def test_slerp_vs_lerp(G):
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert torch.allclose(slerp(a, b, 0.5).norm(), torch.tensor(1.0))
    assert torch.allclose(lerp(a, b, 0.5).norm(), torch.tensor(0.5 ** 0.5))
    assert torch.allclose(slerp(a, b, 1 / 3), torch.tensor([[np.cos(np.pi / 6), np.sin(np.pi / 6)]]).float())
    assert torch.equal(slerp(a, b, 0), a) and torch.equal(slerp(a, b, 1), b)
    assert torch.allclose(slerp(a, 2 * a, 0.25), lerp(a, 2 * a, 0.25))  # parallel: falls back to lerp
    zl, _ = interpolation_latents(G, [0, 1], 5, space="z", method="lerp")
    zs, _ = interpolation_latents(G, [0, 1], 5, space="z", method="slerp")
    assert torch.equal(zl[0], zs[0]) and torch.equal(zl[-1], zs[-1])
    # Gaussian z: slerp keeps the norm near the endpoints', lerp shrinks it midway.
    assert zs[2].norm() > zl[2].norm() * 1.2
    assert abs(zs[2].norm() - zs[0].norm()) < 0.1 * zs[0].norm()


def test_save_frames_animated_and_grid(tmp_path, dcgan):
    frames = interpolate(dcgan, [0, 1], 3)
    for ext in (".webp", ".gif"):
        p = save_frames(frames, tmp_path / f"a{ext}", fps=5)
        im = Image.open(p)
        assert getattr(im, "is_animated", False) and im.n_frames == 3
    p = save_frames(frames, tmp_path / "a.png")
    assert Image.open(p).size == (64 * 3, 64)
    assert not list(tmp_path.glob(".*tmp"))


# --- CLI -------------------------------------------------------------------------------------------


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def fail(*args: str):
    r = CliRunner().invoke(cli, [str(a) for a in args])
    assert r.exit_code != 0 and "Traceback" not in r.output
    return r


def test_cli_edit_sefa_webp(folder, tmp_path):
    out = tmp_path / "edit.webp"
    r = run("edit", folder, "--seed", 3, "--direction", "sefa:1", "--strength", "-2:2", "--frames", 5,
            "--layers", "0-3", "--out", out, "--save-direction", tmp_path / "d.safetensors", "--json", "-q")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["strengths"] == [-2.0, -1.0, 0.0, 1.0, 2.0] and data["direction"]["component"] == 1
    im = Image.open(out)
    assert im.n_frames == 5 and im.size == (64, 64)
    d = D.load(tmp_path / "d.safetensors")
    assert d.method == "sefa" and d.layers == [0, 1, 2, 3]
    # The middle frame (strength 0) is the seed's own image.
    im.seek(2)
    ref = sdk.sample(zoo.load(folder), [3])[0]
    assert np.abs(_px(im.convert("RGB")) - _px(ref)).max() <= 1


def test_cli_edit_from_latent_file_and_direction_file(folder, G, tmp_path):
    with torch.no_grad():
        ws = G.mapping(seeds_to_z(G, [2]), None)
    lat = save_latent(tmp_path / "lat.safetensors", ws, space="w+", G=G)
    age = DIRECTIONS / "e4e" / "interfacegan_directions" / "age.pt"
    out = tmp_path / "e.gif"
    r = run("edit", folder, "--latent", lat, "--direction", age, "--strength", "0,3", "--out", out, "--json", "-q")
    assert r.exit_code == 0, r.output
    im = Image.open(out)
    assert im.n_frames == 2
    assert json.loads(r.output)["direction"]["name"] == "age"
    out2 = tmp_path / "g.png"
    r = run("edit", "dcgan-digiface-64", "--seed", 1, "--direction", "ganspace:0", "--samples", 300, "--frames", 3,
            "--out", out2, "-q")
    assert r.exit_code == 0, r.output
    assert Image.open(out2).size == (64 * 3, 64)


def test_cli_edit_errors(folder, tmp_path):
    out = tmp_path / "x.webp"
    assert "exactly one of --seed" in fail("edit", folder, "--direction", "sefa", "--out", out).output
    r = fail("edit", "dcgan-digiface-64", "--seed", 0, "--direction",
             DIRECTIONS / "e4e" / "interfacegan_directions" / "age.pt", "--out", out)
    assert "no W space" in r.output
    r = fail("edit", folder, "--seed", 0, "--direction", DIRECTIONS / "e4e" / "interfacegan_directions" / "pose.pt",
             "--out", out)
    assert "18 W+ rows" in r.output
    assert "unknown image extension" in fail("edit", folder, "--seed", 0, "--direction", "sefa",
                                             "--out", tmp_path / "x.xyz").output
    assert "bad strength" in fail("edit", folder, "--seed", 0, "--direction", "sefa", "--strength", "a:b",
                                  "--out", out).output
    other = save_latent(tmp_path / "other.safetensors", torch.zeros(1, 100), space="z",
                        G=zoo.load("dcgan-digiface-64", quiet=True))
    assert "another generator" in fail("edit", folder, "--latent", other, "--direction", "sefa", "--out", out).output
    assert not out.exists() and not list(tmp_path.glob(".*tmp"))


def test_cli_mix_and_interpolate(folder, tmp_path):
    r = run("mix", folder, "--rows", "0-1", "--cols", "2-4", "--layers", "0-3", "--out", tmp_path / "mix.png",
            "--json", "-q")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["layers"] == [0, 1, 2, 3]
    assert Image.open(tmp_path / "mix.png").size == (64 * 4, 64 * 3)
    r = run("interpolate", folder, "--seeds", "0,1,2", "--frames", 6, "--method", "slerp",
            "--out", tmp_path / "i.webp", "--json", "-q")
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "i.webp").n_frames == 6
    r = run("interpolate", "dcgan-digiface-64", "--seeds", "0,1", "--frames", 4, "--out", tmp_path / "i.gif", "-q")
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "i.gif").n_frames == 4
    assert "style-based" in fail("mix", "dcgan-digiface-64", "--out", tmp_path / "m.png").output
    assert "bad --layers" in fail("mix", folder, "--layers", "x", "--out", tmp_path / "m.png").output
    assert not (tmp_path / "m.png").exists()


@pytest.mark.skipif(importlib.util.find_spec("open_clip") is None, reason="open-clip-torch not installed")
def test_cli_edit_text(folder, tmp_path):
    from _tiny_clip import make_tiny_clip

    clip_dir = make_tiny_clip(tmp_path / "clip")
    out = tmp_path / "t.gif"
    r = run("edit", folder, "--seed", 0, "--direction", "text:a smiling face", "--clip-pretrained", clip_dir,
            "--steps", 3, "--strength", "0:1", "--frames", 2, "--out", out, "--json", "-q")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["direction"]["method"] == "text" and data["direction"]["space"] == "w+"
    assert data["text"]["clip_loss_end"] < data["text"]["clip_loss_start"]
    assert Image.open(out).n_frames == 2
