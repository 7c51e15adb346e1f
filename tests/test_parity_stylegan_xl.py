"""StyleGAN-XL: every manifest check of sgxl_cond_32, gen_images.py sampling, truncation_latent / noise, safe
reading of the dill snapshot, detection against plain NVIDIA pickles, CLI, ONNX and the latent toolkit."""

from __future__ import annotations

import io
import json
import pickletools
import sys

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
from sdk.latent.edit import interpolate, style_mix
from zoo.errors import ConversionError, UnsafePickleError

NAME, PKL = "sgxl_cond_32", "best_model.pkl"


@pytest.fixture(scope="module")
def folder(converted_fixture):
    return converted_fixture(NAME, PKL)


@pytest.fixture(scope="module")
def G(folder):
    return zoo.load(folder)


def test_every_manifest_check(G):
    man, gold = manifest(NAME), golden(NAME)
    derived = man["config"]["derived"]
    assert G.architecture == "stylegan_xl" and (G.z_dim, G.c_dim, G.w_dim) == (64, 10, 128)
    assert G.num_ws == derived["num_ws"] and G.synthesis.layer_names == derived["layer_names"]
    assert torch.equal(G.mapping.w_avg, gold["w_avg"])  # the per-class centres, copied exactly
    assert set(run_checks(G, man, gold)) == output_keys(man)


def test_gen_images_recipe_per_seed_and_class(G):
    """sdk.generate(seed, class, psi) = gen_images.py: RandomState(seed) z, one-hot class, class-centre truncation."""
    man, gold = manifest(NAME), golden(NAME)
    for i, (seed, k) in enumerate(zip(man["seeds"], man["classes"])):
        img = sdk.generate(G, [seed], truncation_psi=0.7, class_idx=k)
        assert_close(img, gold["img_psi0_7"][i:i + 1], 1e-4, f"seed {seed} class {k}")


def test_truncation_latent_and_noise(G):
    gold = golden(NAME)
    z, c = gold["z"], gold["c"]
    classes = c.argmax(1).tolist()
    centres = G.class_w_avg(classes)
    with torch.no_grad():
        # the explicit centres equal the stored per-class ones: same result as the default
        ws = G.mapping(z, c, truncation_psi=0.7, truncation_latent=centres)
        assert_close(ws, gold["ws_psi0_7"], 1e-5, "mapping(truncation_latent=class centres)")
        img = G(z, c, truncation_psi=0.7, truncation_latent=centres)
        assert_close(img, gold["img_psi0_7"], 1e-4, "G(truncation_latent=class centres)")
        # one shared centre [1, w_dim]: psi 0 lands every row on it
        target = torch.randn(1, G.w_dim, generator=torch.Generator().manual_seed(0))
        ws0 = G.mapping(z, c, truncation_psi=0.0, truncation_latent=target)
        assert torch.allclose(ws0, target.expand_as(ws0[:, 0]).unsqueeze(1).expand_as(ws0), atol=1e-6)
        with pytest.raises(ValueError, match="truncation_latent must have shape"):
            G.mapping(z, c, truncation_psi=0.5, truncation_latent=torch.zeros(2, G.w_dim))
        # noise=: SG3-style layers have none; all-None lists are the plain call, tensors are refused
        out = G.synthesis(gold["ws_psi0_7"], noise=[None] * G.num_ws)
        assert_close(out, gold["img_from_ws_psi0_7"], 1e-4, "synthesis(noise=[None...])")
        with pytest.raises(ValueError, match="no noise inputs"):
            G.synthesis(gold["ws_psi0_7"], noise=[torch.zeros(1, 1, 36, 36)])
    assert G.w_avg.shape == (G.w_dim,) and torch.allclose(G.w_avg, gold["w_avg"].mean(0))


def _rename_modules(data: bytes, mapping: dict[str, str]) -> bytes:
    """The same pickle with module-name strings replaced (frames dropped: lengths change)."""
    out = bytearray()
    ops = list(pickletools.genops(io.BytesIO(data)))
    for i, (op, arg, pos) in enumerate(ops):
        end = ops[i + 1][2] if i + 1 < len(ops) else len(data)
        if op.name == "FRAME":
            continue
        if op.name == "SHORT_BINUNICODE" and arg in mapping:
            b = mapping[arg].encode()
            out += b"\x8c" + bytes([len(b)]) + b
            continue
        out += data[pos:end]
    return bytes(out)


def test_discriminator_is_read_inert_and_foreign_globals_refused(tmp_path):
    before = {m: m in sys.modules for m in ("timm", "dill", "pg_modules", "feature_networks")}
    snap = converters.stylegan_xl.read_snapshot(fixture_dir(NAME) / PKL)
    assert {m: m in sys.modules for m in before} == before  # nothing imported for D's classes
    assert type(snap["D"]).__name__ == "ProjectedDiscriminator" and isinstance(snap["D"], converters.stylegan_xl.Inert)
    # a global outside D's inert world (here planted in place of a timm module) is refused, nothing runs
    bad = tmp_path / "evil.pkl"
    bad.write_bytes(_rename_modules((fixture_dir(NAME) / PKL).read_bytes(),
                                    {"timm.models.vision_transformer": "posix"}))
    with pytest.raises(UnsafePickleError, match="posix"):
        converters.convert_to_config(bad)


def test_detection_against_plain_nvidia_pickles():
    sgxl = fixture_dir(NAME) / PKL
    sg3 = fixture_dir("sg3_t_64") / "network-snapshot-000000.pkl"
    assert converters.detect_format(sgxl).name == "stylegan-xl-pickle"
    assert converters.detect_format(sg3).name == "nvidia-pickle"
    with pytest.raises(ConversionError, match="StyleGAN-XL snapshot.*--format stylegan-xl-pickle"):
        converters.convert_to_config(sgxl, format="nvidia-pickle")
    with pytest.raises(ConversionError, match="nvidia stylegan2/stylegan3 snapshot|NVIDIA stylegan2/stylegan3"):
        converters.convert_to_config(sg3, format="stylegan-xl-pickle")


def test_unconditional_variant_truncates_towards_single_centre(G):
    from zoo.models.stylegan_xl import StyleGANXLGenerator

    kw = dict(G.init_kwargs(), c_dim=0)
    U = StyleGANXLGenerator(**kw).eval()
    assert U.mapping.w_avg.shape == (U.w_dim,) and not hasattr(U.mapping, "embed_proj")
    with torch.no_grad():
        U.mapping.w_avg.normal_()
        ws = U.mapping(torch.randn(2, U.z_dim), None, truncation_psi=0.0)
    assert torch.allclose(ws, U.mapping.w_avg.expand_as(ws))


def test_cli_convert_and_sample_match_golden(tmp_path):
    out = tmp_path / "m"
    r = CliRunner().invoke(cli, ["convert", str(fixture_dir(NAME) / PKL), str(out), "-q"])
    assert r.exit_code == 0, r.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["architecture"] == "stylegan_xl" and cfg["upstream_class"] == "SuperresGenerator"
    r = CliRunner().invoke(cli, ["sample", str(out), "--seeds", "1", "--class", "3", "--trunc", "0.7",
                                 "--outdir", str(tmp_path / "png"), "-q"])
    assert r.exit_code == 0, r.output
    ref = sdk.to_uint8(golden(NAME)["img_psi0_7"][1:2]).numpy().astype(np.int16)[0]  # seed 1 is class 3
    px = np.asarray(Image.open(tmp_path / "png" / "seed0001.png"), dtype=np.int16)
    assert np.abs(px - ref).max() <= 1


def test_cli_export_per_class_truncation(folder, G, tmp_path):
    import onnxruntime as ort

    path = tmp_path / "sgxl.onnx"
    r = CliRunner().invoke(cli, ["export", str(folder), "--out", str(path), "--no-mobile-check", "--json", "-q"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)["model"]
    assert report["dynamic_batch"] and set(report["inputs"]) == {"z", "c", "truncation_psi"}
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gold = golden(NAME)
    for psi, key in ((0.7, "img_psi0_7"), (1.0, "img_psi1")):
        (img,) = sess.run(None, {"z": gold["z"].numpy(), "c": gold["c"].numpy(),
                                 "truncation_psi": np.asarray(psi, dtype=np.float32)})
        assert_close(torch.from_numpy(img), gold[key], 1e-3, f"onnxruntime {key}")
    OG = sdk.OnnxGenerator(path, provider="cpu", quiet=True)
    assert_close(sdk.generate(OG, [1], truncation_psi=0.7, class_idx=3), gold["img_psi0_7"][1:2], 1e-3,
                 "OnnxGenerator seed 1 class 3")
    # a baked truncation cutoff reaches the per-class truncation of the graph
    cut = tmp_path / "sgxl_cut3.onnx"
    sdk.export_onnx(G, cut, parts="mapping", truncation_cutoff=3, verify_batches=(1, 3))
    (ws,) = ort.InferenceSession(str(cut), providers=["CPUExecutionProvider"]).run(
        None, {"z": gold["z"].numpy(), "c": gold["c"].numpy(), "truncation_psi": np.asarray(0.5, dtype=np.float32)})
    assert_close(torch.from_numpy(ws), gold["ws_psi0_5_cutoff3"], 1e-4, "onnxruntime ws_psi0_5_cutoff3")


def test_latent_toolkit(G):
    gold = golden(NAME)
    imgs = sdk.sample(G, [0, 1], class_idx=3, truncation_psi=0.7)
    assert len(imgs) == 2 and imgs[0].size == (32, 32)
    affines = D.style_affines(G)
    assert [i for _, _, i, _ in affines] == list(range(G.num_ws))  # input affine reads ws[0], layer k ws[k + 1]
    d = D.sefa(G, k=4)
    assert d.space == "w" and d.vectors.shape == (4, G.w_dim)
    g = D.ganspace(G, n_samples=300, components=3, seed=0)
    assert g.space == "w" and g.vectors.shape == (3, G.w_dim)
    w = gold["ws_psi0_7"][:1, 0]
    moved = sdk.edit(G, w, d, 2.0)
    assert torch.allclose(moved - w, 2.0 * d.vectors[0:1], atol=1e-5)
    mixed = style_mix(G, [0], [1, 2], [0, 1, 2], class_idx=3)
    assert mixed.shape == (1, 2, 3, 32, 32)
    frames = interpolate(G, [1, 2], 3, class_idx=3)
    ends = sdk.sample(G, [1, 2], class_idx=3)
    assert np.abs(np.asarray(frames[0], np.int16) - np.asarray(ends[0], np.int16)).max() <= 1
    assert np.abs(np.asarray(frames[-1], np.int16) - np.asarray(ends[1], np.int16)).max() <= 1
    target = sdk.to_pil(gold["img_psi0_7"][1:2])[0]
    inv = sdk.invert(G, target, steps=20, loss="pixel", quiet=True, class_idx=3)
    assert inv.space == "w" and inv.latent.shape[-1] == G.w_dim
    first = sdk.invert(G, target, steps=1, loss="pixel", quiet=True, class_idx=3)
    assert inv.metrics["psnr"] > first.metrics["psnr"] + 1, (inv.metrics, first.metrics)


def test_stem_generator_class_converts(tmp_path):
    """16 px stems (imagenet16.pkl) are plain ``Generator`` records of the same module: same reading path."""
    stem = tmp_path / "stem.pkl"
    stem.write_bytes(_rename_modules((fixture_dir(NAME) / PKL).read_bytes(), {"SuperresGenerator": "Generator"}))
    assert converters.detect_format(stem).name == "stylegan-xl-pickle"
    cfg, tensors = converters.convert_to_config(stem)
    ref_cfg, ref = converters.convert_to_config(fixture_dir(NAME) / PKL)
    assert cfg["upstream_class"] == "Generator" and ref_cfg["upstream_class"] == "SuperresGenerator"
    assert cfg["init_kwargs"] == ref_cfg["init_kwargs"] and all(torch.equal(tensors[k], ref[k]) for k in ref)


def test_variant_refused_naming_what_differs(tmp_path):
    variant = tmp_path / "variant.pkl"
    variant.write_bytes(_rename_modules((fixture_dir(NAME) / PKL).read_bytes(), {"Embedding": "EmbeddingBag"}))
    with pytest.raises(ConversionError, match="mapping.embed is not a plain torch.nn.Embedding"):
        converters.convert_to_config(variant)
