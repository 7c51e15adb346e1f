"""StyleGAN (v1) TF pickles: every manifest check, dimensions from the variables, fused upsampling, lod
blending, conditioning, refusals, CLI, latent toolkit, registry and the InterFaceGAN boundaries."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from safetensors.torch import load_file

import converters
import sdk
import zoo
from _manifest_checks import run_checks
from conftest import DIRECTIONS, fixture_dir, golden, manifest
from converters.tf_stylegan1 import convert_networks
from converters.tf_stylegan2 import collect_variables, read_tf_pickle
from zoo.errors import ConversionError

FIXTURES = {"tf_stylegan1_64": "network-snapshot-003600.pkl", "tf_stylegan1_128": "network-snapshot-004800.pkl"}


def _load(converted_fixture, name: str = "tf_stylegan1_64"):
    return zoo.load(converted_fixture(name, FIXTURES[name]))


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_every_manifest_check(name, converted_fixture):
    man, gold = manifest(name), golden(name)
    G = _load(converted_fixture, name)
    checked = run_checks(G, man, gold)
    assert checked == [c["key"] for c in man["checks"]]
    assert torch.equal(G.mapping.w_avg, gold["w_avg"])  # a stored variable copies exactly
    # every golden key is covered by a check (z is the input, w_avg compared above)
    assert set(gold) - {"z", "w_avg"} <= set(checked)


def test_golden_z_is_the_nvidia_seed_convention():
    gold, man = golden("tf_stylegan1_64"), manifest("tf_stylegan1_64")
    assert torch.equal(torch.cat([sdk.seed_to_z(s, 512) for s in man["seeds"]]), gold["z"])


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_dimensions_come_from_the_variables(name, converted_fixture):
    man = manifest(name)
    cfg = json.loads((converted_fixture(name, FIXTURES[name]) / "config.json").read_text())
    d = man["derived"]
    assert cfg["architecture"] == "stylegan1" and cfg["provenance"]["source_format"] == "tf-stylegan1-pickle"
    assert (cfg["z_dim"], cfg["w_dim"], cfg["num_ws"], cfg["c_dim"], cfg["img_resolution"]) == \
        (d["z_dim"], d["w_dim"], d["num_ws"], d["c_dim"], d["resolution"])
    kw = cfg["init_kwargs"]
    base, fmax = man["config"]["G_static_kwargs"]["fmap_base"], man["config"]["G_static_kwargs"]["fmap_max"]
    assert kw["channels"] == {str(r): min(base // (r // 2), fmax) for r in [2 ** i for i in range(2, 8)]
                              if r <= d["resolution"]}
    assert kw["mapping_kwargs"]["num_layers"] == 8 and kw["mapping_kwargs"]["layer_features"] == 64
    assert kw["lod"] == 0.0 and kw["fused_scale"] == "auto"


def test_fused_upsampling_is_the_flipped_kernel_on_a_nearest_upsample(converted_fixture):
    """128 px blocks fuse (conv_transpose2d of the 4-tap kernel); that equals nearest 2x + the FLIPPED 3x3 kernel."""
    G = _load(converted_fixture, "tf_stylegan1_128")
    fused, plain = G.synthesis.b128.conv0, G.synthesis.b64.conv0
    assert fused.fused and not plain.fused
    x = torch.randn(2, fused.weight.shape[1], 64, 64, generator=torch.Generator().manual_seed(0))
    w = fused.weight * math.sqrt(2) / math.sqrt(9 * fused.weight.shape[1])
    ref = F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), w.flip([2, 3]), padding=1)
    blur = torch.tensor([1.0, 2.0, 1.0])
    blur = (torch.outer(blur, blur) / 16)[None, None].repeat(ref.shape[1], 1, 1, 1)
    ref = F.conv2d(ref, blur, padding=1, groups=ref.shape[1])
    with torch.no_grad():
        assert (fused._conv(x) - ref).abs().max() < 1e-4
        unflipped = F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), w, padding=1)
        assert (fused._conv(x) - F.conv2d(unflipped, blur, padding=1, groups=ref.shape[1])).abs().max() > 1e-2


def _with_lod(lod: float):
    G, D, Gs = read_tf_pickle(fixture_dir("tf_stylegan1_64") / FIXTURES["tf_stylegan1_64"])
    Gs = copy.deepcopy(Gs)
    Gs.state["variables"] = [(n, np.float32(lod) if n == "lod" else v) for n, v in Gs.variables]
    return _build(convert_networks(G, D, Gs))


def _build(conv):
    from zoo.models.stylegan1 import StyleGAN1Generator

    G = StyleGAN1Generator(**conv.init_kwargs)
    G.load_state_dict(conv.tensors)
    return G.eval()


def test_lod_blends_the_progressive_heads(converted_fixture):
    """Mid-growing snapshot: img = lerp(ToRGB_lod0(x64), upscale(ToRGB_lod1(x32)), lod), from the TF variables."""
    gold = golden("tf_stylegan1_64")
    tf = collect_variables(read_tf_pickle(fixture_dir("tf_stylegan1_64") / FIXTURES["tf_stylegan1_64"])[2])
    G0 = _load(converted_fixture)
    feats = {}
    hooks = [getattr(G0.synthesis, f"b{r}").conv1.register_forward_hook(
        lambda _m, _a, out, r=r: feats.__setitem__(r, out)) for r in (32, 64)]
    with torch.no_grad():
        G0.synthesis(gold["ws_psi1"])
    for h in hooks:
        h.remove()

    def rgb(k: int, x: torch.Tensor) -> torch.Tensor:
        w = tf[f"synthesis/ToRGB_lod{k}/weight"]  # [1, 1, C, 3]
        return torch.einsum("nchw,co->nohw", x, w[0, 0] / math.sqrt(w.shape[2])) + \
            tf[f"synthesis/ToRGB_lod{k}/bias"].reshape(1, -1, 1, 1)

    rgb64, up32 = rgb(0, feats[64]), F.interpolate(rgb(1, feats[32]), scale_factor=2.0, mode="nearest")
    with torch.no_grad():
        for lod, want in ((0.25, rgb64 + (up32 - rgb64) * 0.25), (1.0, up32)):
            G = _with_lod(lod)
            assert G.synthesis.lod == lod
            assert (G.synthesis(gold["ws_psi1"]) - want).abs().max() < 1e-4, lod
        assert (G0.synthesis(gold["ws_psi1"]) - rgb64).abs().max() < 1e-4


def test_takes_Gs_and_reads_the_layouts(converted_fixture):
    G, _, Gs = read_tf_pickle(fixture_dir("tf_stylegan1_64") / FIXTURES["tf_stylegan1_64"])
    tf, tf_g = collect_variables(Gs), collect_variables(G)
    ours = load_file(converted_fixture("tf_stylegan1_64", FIXTURES["tf_stylegan1_64"]) / "model.safetensors")
    key = "synthesis/16x16/Conv1/bias"
    assert not torch.equal(tf[key], tf_g[key]) and torch.equal(ours["synthesis.b16.conv1.bias"], tf[key])
    assert torch.equal(ours["synthesis.b16.conv0.weight"], tf["synthesis/16x16/Conv0_up/weight"].permute(3, 2, 0, 1))
    assert torch.equal(ours["synthesis.b8.conv1.affine.weight"], tf["synthesis/8x8/Conv1/StyleMod/weight"].t())
    assert torch.equal(ours["synthesis.b4.conv0.const"], tf["synthesis/4x4/Const/const"][0])
    assert torch.equal(ours["synthesis.b16.conv1.noise_const"], tf["synthesis/noise5"][0, 0])
    assert torch.equal(ours["synthesis.b64.torgb.weight"], tf["synthesis/ToRGB_lod0/weight"].permute(3, 2, 0, 1))
    assert torch.equal(ours["synthesis.b8.torgb.bias"], tf["synthesis/ToRGB_lod3/bias"])


def test_conditional_mapping_label_concat():
    """label_size > 0: LabelConcat [c_dim, z_dim] doubles Dense0's input; c_dim and z_dim come from the shapes."""
    G, D, Gs = read_tf_pickle(fixture_dir("tf_stylegan1_64") / FIXTURES["tf_stylegan1_64"])
    Gs = copy.deepcopy(Gs)
    rng = np.random.RandomState(0)
    label = rng.randn(5, 512).astype(np.float32)
    mapping = Gs.state["components"]["mapping"]
    mapping.state["variables"] = [(n, rng.randn(1024, 64).astype(np.float32) if n == "Dense0/weight" else v)
                                  for n, v in mapping.variables] + [("LabelConcat/weight", label)]
    for net in (Gs, mapping, Gs.state["components"]["synthesis"]):
        net.state["static_kwargs"] = {**net.static_kwargs, "label_size": 5}
    G1 = _build(convert_networks(G, D, Gs))
    assert (G1.z_dim, G1.c_dim) == (512, 5)
    tf = collect_variables(Gs)
    z = golden("tf_stylegan1_64")["z"]
    c = G1.make_c([0, 3, 4], 3)
    x = torch.cat([z, c @ torch.from_numpy(label)], dim=1)  # the TF recipe, written out
    x = x * (x.square().mean(1, keepdim=True) + 1e-8).rsqrt()
    for i in range(8):
        w, b = tf[f"mapping/Dense{i}/weight"], tf[f"mapping/Dense{i}/bias"]
        x = F.leaky_relu(x @ (w * math.sqrt(2) / math.sqrt(w.shape[0]) * 0.01) + b * 0.01, 0.2)
    with torch.no_grad():
        ws = G1.mapping(z, c)
    assert ws.shape == (3, 10, 256) and (ws[:, 0] - x).abs().max() < 1e-5
    with pytest.raises(ValueError, match="c must be"):
        G1(z, None)


def test_unknown_options_and_variants_are_named():
    G, D, Gs = read_tf_pickle(fixture_dir("tf_stylegan1_64") / FIXTURES["tf_stylegan1_64"])
    for kw, match in (({"use_pixel_norm": True}, "use_pixel_norm"), ({"resolution_w": 96}, "resolution_w"),
                      ({"nonlinearity": "elu"}, "nonlinearity"), ({"resolution": 128}, "resolution=128")):
        bad = copy.deepcopy(Gs)
        bad.state["static_kwargs"] = {**bad.static_kwargs, **kw}
        with pytest.raises(ConversionError, match=match):
            convert_networks(G, D, bad)
    bad = copy.deepcopy(Gs)
    synth = bad.state["components"]["synthesis"]
    synth.state["variables"] = list(synth.variables) + [("32x32/Conv1/extra", np.ones(3, np.float32))]
    with pytest.raises(ConversionError, match="synthesis/32x32/Conv1/extra"):
        convert_networks(G, D, bad)
    # a StyleGAN2 pickle forced through this format is refused, naming what it is
    G2, D2, Gs2 = read_tf_pickle(fixture_dir("tf_stylegan2ada_64") / "network-snapshot-000000.pkl")
    with pytest.raises(ConversionError, match="G_main"):
        convert_networks(G2, D2, Gs2)
    from converters.tf_stylegan2 import convert_networks as convert_sg2

    with pytest.raises(ConversionError, match="tf-stylegan1-pickle"):
        convert_sg2(G, D, Gs)
    v4 = copy.deepcopy(Gs)  # G_style re-saved by a newer dnnlib (state version 4) still reads here
    v4.state["version"] = 4
    assert convert_networks(G, D, v4).init_kwargs["img_resolution"] == 64


def test_cli_convert_detects_sample_and_export(tmp_path):
    from sdk.cli import cli

    src = fixture_dir("tf_stylegan1_128") / FIXTURES["tf_stylegan1_128"]
    assert converters.detect_format(src).name == "tf-stylegan1-pickle"
    r = CliRunner().invoke(cli, ["convert", str(src), str(tmp_path / "m"), "--json", "-q"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["provenance"]["source_format"] == "tf-stylegan1-pickle"
    r = CliRunner().invoke(cli, ["sample", str(tmp_path / "m"), "--seeds", "0-1", "--trunc", "0.7",
                                 "--trunc-cutoff", "8", "--outdir", str(tmp_path / "img"), "-q"])
    assert r.exit_code == 0, r.output
    from PIL import Image

    assert Image.open(tmp_path / "img" / "seed0000.png").size == (128, 128)
    r = CliRunner().invoke(cli, ["export", str(tmp_path / "m"), "--out", str(tmp_path / "g.onnx"), "--json", "-q",
                                 "--no-mobile-check"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)["model"]
    assert report["max_abs_error"] and max(report["max_abs_error"].values()) <= report["tolerance"]
    assert report["dynamic_batch"] and "truncation_psi" in report["inputs"]
    og = sdk.OnnxGenerator(tmp_path / "g.onnx")
    G = zoo.load(tmp_path / "m")
    z = torch.randn(3, 512, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = G(z, truncation_psi=0.6)
    assert (og(z, truncation_psi=0.6) - want).abs().max() < 1e-3


def test_latent_toolkit(converted_fixture):
    from sdk.latent import directions as D

    G = _load(converted_fixture)
    imgs = sdk.sample(G, seeds=[0, 1], truncation_psi=0.7, truncation_cutoff=8)
    assert len(imgs) == 2 and imgs[0].size == (64, 64)
    sefa = D.sefa(G, k=4)
    assert sefa.vectors.shape == (4, 256) and sefa.space == "w"
    gs = D.ganspace(G, n_samples=512, components=3)
    assert gs.vectors.shape[-1] == 256 and len(gs) == 3
    w = G.mapping(sdk.seed_to_z(0, 512), None)[:, 0]
    moved = sdk.edit(G, w, sefa, 3.0)
    assert moved.shape == w.shape and (moved - w).norm() > 1
    mixed = sdk.style_mix(G, [0, 1], [2], layers=[0, 1, 2])
    assert len(mixed) > 0
    frames = sdk.interpolate(G, [0, 1], frames=3)
    assert len(frames) == 3
    with torch.no_grad():
        target = G.synthesis(G.mapping(sdk.seed_to_z(5, 512), None), noise_mode="const")
    inv = sdk.invert(G, target, space="w+", steps=8, loss="pixel", quiet=True)
    assert inv.latent.shape == (1, 10, 256)
    with torch.no_grad():
        start = G.synthesis(G.mapping.w_avg.reshape(1, 1, -1).repeat(1, 10, 1))
        recon = G.synthesis(inv.latent)
    assert (recon - target).square().mean() < (start - target).square().mean()


def test_registry_entries():
    want = {"stylegan1-ffhq": ("FFHQ", 1024, 4.40), "stylegan1-celebahq": ("CelebA-HQ", 1024, 5.06),
            "stylegan1-bedrooms": ("LSUN Bedroom", 256, 2.65), "stylegan1-cars": ("LSUN Car", 512, 3.27),
            "stylegan1-cats": ("LSUN Cat", 256, 8.53)}
    for name, (dataset, res, fid) in want.items():
        e = zoo.info(name)
        assert (e["dataset"], e["resolution"], e["fid"]) == (dataset, res, fid)
        assert e["source_format"] == "tf-stylegan1-pickle" and e["architecture"] == "stylegan1"
        assert e["url"].startswith("https://") and e["source_file"].startswith("karras2019stylegan-")
        assert e["license"] == "cc-by-nc-4.0" and e["non_commercial"]
    assert "512x384" in zoo.info("stylegan1-cars")["notes"]
    from zoo.cards import card_data, render_card

    for name in want:  # the cards state the official examples' sampling settings
        assert card_data(name)["sampling"] == {**card_data(name)["sampling"], "truncation_psi": 0.7,
                                               "truncation_cutoff": 8}
        text = render_card(model_name=name)
        assert "truncation psi 0.7" in text and "cutoff 8" in text and "non-commercial" in text.lower()


def test_release_configs_have_the_released_shapes():
    from zoo.models.stylegan1 import StyleGAN1Generator, release_init_kwargs

    released = manifest("tf_stylegan1_128")["released_models"]["models"]
    for name in ("stylegan1-ffhq", "stylegan1-celebahq", "stylegan1-bedrooms", "stylegan1-cars", "stylegan1-cats"):
        e = zoo.info(name)
        want = released[e["source_file"]]
        with torch.device("meta"):
            G = StyleGAN1Generator(**release_init_kwargs(name))
        assert G.num_ws == want["num_ws"] and G.img_resolution == want["resolution"] == e["resolution"]
        for block, ch in want["G_channels_per_block"].items():
            r = int(block.split("x")[0])
            assert getattr(G.synthesis, f"b{r}").conv1.out_channels == ch, (name, block)
        fused = [f"{r}x{r}" for r in G.synthesis.block_resolutions if getattr(G.synthesis, f"b{r}").conv0.fused]
        assert fused == want["G_fused_Conv0_up_blocks"], name


@pytest.mark.parametrize("model", ["stylegan1-ffhq", "stylegan1-celebahq"])
def test_interfacegan_boundaries_apply(model):
    from sdk.latent import directions as D
    from sdk.latent.direction import DirectionError
    from zoo.models.stylegan1 import StyleGAN1Generator, release_init_kwargs

    key = model.split("-")[1]
    torch.manual_seed(0)  # the registry model's real shapes with random weights (the real ones cannot be downloaded)
    G = StyleGAN1Generator(**release_init_kwargs(model)).eval()
    G.model_info["model_name"] = model
    assert G.num_ws == 18 and G.w_dim == G.z_dim == 512
    z = sdk.seed_to_z(0, 512)
    for attr in ("age", "smile", "pose"):
        bz = D.load(DIRECTIONS / "interfacegan" / f"stylegan_{key}_{attr}_boundary.npy")
        bw = D.load(DIRECTIONS / "interfacegan" / f"stylegan_{key}_{attr}_w_boundary.npy")
        assert (bz.space, bw.space) == ("z", "w")
        bz.check(G)
        bw.check(G)
        zz = sdk.edit(G, z, bz, 2.0, space="z")
        assert torch.allclose(zz - z, 2.0 * bz.vectors.float(), atol=1e-5)
        with torch.no_grad():
            w = G.mapping(z, None)[:, 0]
        ww = sdk.edit(G, w, bw, -1.5, space="w")
        assert torch.allclose(ww - w, -1.5 * bw.vectors.float(), atol=1e-5)
        wp = sdk.edit(G, w, bw, 1.0, layers=[0, 1, 2, 3], space="w")
        assert wp.shape == (1, 18, 512) and torch.equal(wp[:, 4:], w.unsqueeze(1).expand(1, 14, 512))
    with pytest.raises(DirectionError, match="z-space direction cannot move a w"):
        sdk.edit(G, w, bz, 1.0, space="w")
    with torch.device("meta"):
        narrow = StyleGAN1Generator(**{**release_init_kwargs(model), "z_dim": 256, "w_dim": 256})
    with pytest.raises(DirectionError, match="width 512"):
        bw.check(narrow)
    with pytest.raises(DirectionError, match="width 512"):
        bz.check(narrow)


def test_cli_refuses_a_variant_naming_what_differs(tmp_path):
    """A real pickle rebuilt from the fixture with an option the architecture lacks: detected, then refused."""
    from _tfpickle import write_tf_pickle
    from sdk.cli import cli

    G, D, Gs = read_tf_pickle(fixture_dir("tf_stylegan1_64") / FIXTURES["tf_stylegan1_64"])
    bad = copy.deepcopy(Gs)
    synth = bad.state["components"]["synthesis"]
    synth.state["static_kwargs"] = {**synth.static_kwargs, "use_pixel_norm": True}
    src = write_tf_pickle(tmp_path / "variant.pkl", (G, D, bad), protocol=4)
    assert converters.detect_format(src).name == "tf-stylegan1-pickle"
    r = CliRunner().invoke(cli, ["convert", str(src), str(tmp_path / "m"), "-q"])
    assert r.exit_code != 0 and "use_pixel_norm=True" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "m").exists()
