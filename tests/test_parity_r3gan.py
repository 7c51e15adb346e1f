"""R3GAN: every manifest check of the r3gan_32 fixture, both module layouts, detection, CLI, ONNX, latent toolkit."""

from __future__ import annotations

import io
import json
import pickletools

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import converters
import sdk
import zoo
from _manifest_checks import output_keys, run_checks
from conftest import assert_close, fixture_dir, golden, manifest
from sdk.cli import cli
from sdk.latent import directions as D
from sdk.latent.edit import interpolate
from zoo.errors import ConversionError, UnsafePickleError

NAME, PKL = "r3gan_32", "network-snapshot-000001280.pkl"
# Upstream bfloat16 path reproduced by G.emulate_bfloat16: measured max-abs 0.0078 (one bfloat16 ulp at |x| ~ 1.5,
# convolution accumulation order) against img_bf16_default.
BF16_EMULATION_TOL = 0.01


@pytest.fixture(scope="module")
def folder(converted_fixture):
    return converted_fixture(NAME, PKL)


@pytest.fixture(scope="module")
def G(folder):
    return zoo.load(folder)


def test_every_manifest_check(G):
    man, gold = manifest(NAME), golden(NAME)
    assert G.architecture == "r3gan" and G.z_dim == man["config"]["derived"]["z_dim"] and G.img_resolution == 32
    assert G.bfloat16_stages == [1, 2, 3]  # FP16Stages [-1, -2, -3] of 4 stages, read from the pickled DataTypes
    assert {c["call"] for c in man["checks"]} == {"forward"}
    assert set(run_checks(G, man, gold)) == output_keys(man)  # fp32 outputs, each within its tolerance


def test_bfloat16_emulation_reproduces_upstream_default(G):
    gold = golden(NAME)
    try:
        G.emulate_bfloat16 = True
        with torch.no_grad():
            out = torch.cat([G(gold["z"][i:i + 1]) for i in range(4)])  # one seed per call, as upstream
    finally:
        G.emulate_bfloat16 = False
    assert out.dtype == torch.float32
    assert_close(out, gold["img_bf16_default"], BF16_EMULATION_TOL, "emulated bfloat16")
    # the emulation really runs in bfloat16: it is further from the fp32 golden than the fp32 path is
    assert (out - gold["img"]).abs().max() > 1e-3
    assert all(s.DataType == torch.float32 for s in G.Model.MainLayers)


def _rename_modules(data: bytes, mapping: dict[str, str]) -> bytes:
    """The same pickle with module-name strings replaced (frames dropped: lengths change)."""
    out = bytearray()
    ops = list(pickletools.genops(io.BytesIO(data)))
    for i, (op, arg, pos) in enumerate(ops):
        end = ops[i + 1][2] if i + 1 < len(ops) else len(data)
        if op.name == "FRAME":
            continue
        if op.name == "SHORT_BINUNICODE" and isinstance(arg, str):
            new = arg
            for old, repl in mapping.items():
                if arg == old or arg.startswith(old + "."):
                    new = repl + arg[len(old):]
            if new != arg:
                b = new.encode()
                out += b"\x8c" + bytes([len(b)]) + b
                continue
        out += data[pos:end]
    return bytes(out)


PRE_RENAME = {"training.networks": "training.networks_baseline", "R3GAN": "BaselineGAN"}


def test_pre_rename_layout_converts_identically(tmp_path):
    src = (fixture_dir(NAME) / PKL).read_bytes()
    old = tmp_path / "network-snapshot-old.pkl"
    old.write_bytes(_rename_modules(src, PRE_RENAME))
    data = old.read_bytes()
    assert b"BaselineGAN.Networks" in data and b"training.networks_baseline" in data and b"R3GAN." not in data
    assert converters.detect_format(old).name == "r3gan-pickle"
    cfg_new, t_new = converters.convert_to_config(fixture_dir(NAME) / PKL)
    cfg_old, t_old = converters.convert_to_config(old)
    assert cfg_new["upstream_layout"] == "current" and cfg_old["upstream_layout"] == "pre-rename"
    assert cfg_old["init_kwargs"] == cfg_new["init_kwargs"]
    assert t_old.keys() == t_new.keys() and all(torch.equal(t_old[k], t_new[k]) for k in t_new)


def test_unknown_module_refused_naming_it(tmp_path):
    bad = tmp_path / "variant.pkl"
    bad.write_bytes(_rename_modules((fixture_dir(NAME) / PKL).read_bytes(), {"R3GAN.Networks": "R3GAN.NetworksV2"}))
    with pytest.raises(UnsafePickleError, match="R3GAN.NetworksV2"):
        converters.convert_to_config(bad, format="r3gan-pickle")


def test_detection_and_refusals():
    r3 = fixture_dir(NAME) / PKL
    assert converters.detect_format(r3).name == "r3gan-pickle"
    sgxl = fixture_dir("sgxl_cond_32") / "best_model.pkl"
    with pytest.raises(ConversionError, match="NVIDIA persistence pickle"):
        converters.convert_to_config(sgxl, format="r3gan-pickle")
    with pytest.raises(ConversionError, match="not a StyleGAN-XL snapshot"):
        converters.convert_to_config(r3, format="stylegan-xl-pickle")
    with pytest.raises(ConversionError):
        converters.convert_to_config(r3, format="nvidia-pickle")


def test_truncation_refused(G):
    z = torch.zeros(1, G.z_dim)
    with pytest.raises(ValueError, match="no truncation"):
        G(z, truncation_psi=0.7)
    with pytest.raises(ValueError, match="z must have shape"):
        G(torch.zeros(1, 3))


def test_cli_convert_and_sample_match_golden(tmp_path):
    out = tmp_path / "m"
    r = CliRunner().invoke(cli, ["convert", str(fixture_dir(NAME) / PKL), str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "config.json").read_text())["architecture"] == "r3gan"
    r = CliRunner().invoke(cli, ["sample", str(out), "--seeds", "0-2,85", "--outdir", str(tmp_path / "png"), "-q"])
    assert r.exit_code == 0, r.output
    ref = sdk.to_uint8(golden(NAME)["img"]).numpy().astype(np.int16)  # the golden, quantised as gen_images.py
    for i, seed in enumerate([0, 1, 2, 85]):
        px = np.asarray(Image.open(tmp_path / "png" / f"seed{seed:04d}.png"), dtype=np.int16)
        assert px.shape == (32, 32, 3) and np.abs(px - ref[i]).max() <= 1


def test_cli_export_dynamic_batch_without_psi(folder, tmp_path):
    import onnxruntime as ort

    path = tmp_path / "r3gan.onnx"
    r = CliRunner().invoke(cli, ["export", str(folder), "--out", str(path), "--no-mobile-check", "--json", "-q"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)["model"]
    assert report["dynamic_batch"] and set(report["inputs"]) == {"z"}  # no truncation_psi: the family has none
    assert report["metadata"]["truncation_psi"] == "none"
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gold = golden(NAME)
    (img,) = sess.run(None, {"z": gold["z"][:3].numpy()})
    assert_close(torch.from_numpy(img), gold["img"][:3], 1e-3, "onnxruntime vs golden")
    OG = sdk.OnnxGenerator(path, provider="cpu", quiet=True)  # seeds -> z as gen_images.py, through the graph
    assert_close(sdk.generate(OG, [0, 1, 2, 85], batch_size=2), gold["img"], 1e-3, "OnnxGenerator seeds")


def test_latent_toolkit(G):
    gold = golden(NAME)
    imgs = sdk.sample(G, [0, 85])
    assert len(imgs) == 2 and imgs[0].size == (32, 32)
    assert torch.allclose(sdk.generate(G, [0, 1, 2, 85]), gold["img"], atol=1e-4)
    d = D.sefa(G, k=4)
    assert d.space == "z" and d.vectors.shape == (4, 64)
    assert d.params["source_layers"] == ["Model.MainLayers.0.Layers.0.LinearLayer"]
    g = D.ganspace(G, n_samples=200, components=3, seed=0)
    assert g.space == "z" and g.vectors.shape == (3, 64)
    z = gold["z"][:1]
    moved = sdk.edit(G, z, d, 3.0)
    assert torch.allclose(moved - z, 3.0 * d.vectors[0:1], atol=1e-5)
    frames = interpolate(G, [0, 85], 3)
    ends = sdk.sample(G, [0, 85])
    assert np.abs(np.asarray(frames[0], np.int16) - np.asarray(ends[0], np.int16)).max() <= 1
    assert np.abs(np.asarray(frames[-1], np.int16) - np.asarray(ends[1], np.int16)).max() <= 1
    with pytest.raises(Exception, match="style-based"):
        sdk.style_mix(G, [0], [1], [0])
    target = sdk.to_pil(gold["img"][:1])[0]
    inv = sdk.invert(G, target, steps=30, loss="pixel", quiet=True, starts=2)
    assert inv.space == "z" and inv.latent.shape == (1, 64)
    assert inv.metrics["psnr"] > 30, inv.metrics  # 47 dB measured; one step gives 10 dB


def test_conditional_layout_embeds_after_z_and_toolkit_works():
    """The CIFAR-10/ImageNet layout (EmbeddingLayer, bias-free, concatenated after z), on random weights."""
    from zoo.models.r3gan import R3GANGenerator

    torch.manual_seed(0)
    G = R3GANGenerator(NoiseDimension=16, WidthPerStage=[16, 8], CardinalityPerStage=[2, 2], BlocksPerStage=[1, 1],
                       ExpansionFactor=2, c_dim=10, ConditionEmbeddingDimension=16).eval()
    assert G.img_resolution == 8 and G.Model.EmbeddingLayer.weight.shape == (16, 10)
    seen = {}
    lin = G.Model.MainLayers[0].Layers[0].LinearLayer
    h = lin.register_forward_pre_hook(lambda _m, a: seen.setdefault("x", a[0].detach().clone()))
    z, c = torch.randn(2, 16), G.make_c([3, 7], 2)
    with torch.no_grad():
        img = G(z, c)
    h.remove()
    assert img.shape == (2, 3, 8, 8)
    assert torch.equal(seen["x"][:, :16], z)
    assert torch.allclose(seen["x"][:, 16:], c @ G.Model.EmbeddingLayer.weight.t())
    with pytest.raises(ValueError, match="one-hot"):
        G(z)
    d = D.sefa(G, k=3)  # the z columns of the basis projection (z_projection hook)
    assert d.space == "z" and d.vectors.shape == (3, 16)
    assert D.ganspace(G, n_samples=100, components=2).vectors.shape == (2, 16)
    a, b = sdk.generate(G, [0], class_idx=3), sdk.generate(G, [0], class_idx=7)
    assert (a - b).abs().max() > 1e-3
