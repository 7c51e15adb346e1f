"""StudioGAN: parity with the shared fixtures' ``checks``, the sampler's seed recipe, conversion rules
(run folder, G/G_ema with --config, refusals), the CLI, ONNX export and the latent toolkit."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import converters
import sdk
import zoo
from conftest import assert_close, fixture_dir, golden, manifest
from sdk.cli import cli
from zoo.errors import ConversionError
from zoo.models.studiogan import StudioGANGenerator, sample_zy

FIXTURES = ("studiogan_biggan_32", "studiogan_sngan_32")
CHECKS = [(f, i) for f in FIXTURES for i in range(len(manifest(f)["checks"]))]


@pytest.fixture(scope="module")
def models(converted_fixture):
    return {f: zoo.load(converted_fixture(f, "."), quiet=True) for f in FIXTURES}


def _arg(value, gold):
    return gold[value[1:]] if isinstance(value, str) and value.startswith("@") else value


@pytest.mark.parametrize("fixture,index", CHECKS, ids=[f"{f}-{manifest(f)['checks'][i]['key']}" for f, i in CHECKS])
def test_manifest_checks(fixture, index, models):
    check = manifest(fixture)["checks"][index]
    gold = golden(fixture)
    G = models[fixture]
    assert check["call"] == "forward"
    args = {k: _arg(v, gold) for k, v in check["args"].items()}
    with torch.no_grad():
        out = G(**args)
    assert_close(out, gold[check["key"]], check["tol"], f"{fixture}:{check['key']}")


def test_converted_configs_follow_the_yaml(models):
    big, sn = models["studiogan_biggan_32"], models["studiogan_sngan_32"]
    kb, ks = big.init_kwargs(), sn.init_kwargs()
    assert kb["backbone"] == "big_resnet" and kb["apply_g_sn"] and kb["z_dim"] == 80 and kb["g_shared_dim"] == 128
    assert [b[0] for b in kb["blocks"]] == ["block", "block", "attn", "block"]  # attention after group 2
    assert kb["blocks"][0][1:3] == [48, 48]  # g_conv_dim 12 * 4, from the shapes
    assert ks["backbone"] == "resnet" and not ks["apply_g_sn"] and ks["z_dim"] == 128  # config.py defaults
    assert ks["blocks"][0][1:3] == [40, 40]
    assert big.class_names[0] == "airplane" and big.c_dim == sn.c_dim == 10


@pytest.mark.parametrize("fixture", FIXTURES)
def test_sampling_checks(fixture):
    """StudioGAN's sampler (labels first on torch's RNG, then randn / truncnorm on numpy's), batch of 4."""
    man, gold = manifest(fixture), golden(fixture)
    z_dim = gold["z_notrunc"].shape[1]
    for check in man["sampling_checks"]:
        seed = int(re.search(r"seed\((\d+)\)", check["recipe"]).group(1))
        t = check.get("truncation_factor", -1.0)
        z, labels = sample_zy(seed, 4, z_dim, 10, t)
        got = labels if check["key"] == "labels" else z
        assert_close(got, gold[check["key"]], check["tol"], f"{fixture}:{check['key']}")


def test_sdk_sample_uses_studiogans_seed_recipe(models):
    """Seed s -> fix_seed(s); torch.randint(label); torch.randn(1, z_dim) -- or truncnorm(-t, t) from numpy."""
    G = models["studiogan_sngan_32"]
    torch.manual_seed(5)
    torch.randint(0, 10, (1,))
    z_ref = torch.randn(1, G.z_dim)
    with torch.no_grad():
        ref = G(z_ref, G.make_c(3, 1))
    assert_close(sdk.generate(G, [5], class_idx=3), ref, 1e-6, "seed 5")
    stats = pytest.importorskip("scipy.stats")
    import numpy as np

    np.random.seed(5)
    zt = torch.from_numpy(stats.truncnorm.rvs(-0.5, 0.5, size=[1, G.z_dim]).astype(np.float32))
    assert_close(sdk.seeds_to_z(G, [5], truncation_psi=0.5), zt, 1e-6, "truncnorm(-0.5, 0.5)")
    with torch.no_grad():
        assert_close(sdk.generate(G, [5], truncation_psi=0.5, class_idx=3), G(zt, G.make_c(3, 1)), 1e-5, "trunc")


def test_lone_generator_file_with_config(tmp_path):
    """model=G-... with --config converts the training copy (img_notrunc_G), noting the G_ema beside it."""
    d = fixture_dir("studiogan_biggan_32")
    cfg, tensors = converters.convert_to_config(d / "model=G-best-weights-step=62000.pth",
                                                options={"config": str(d / "BigGAN.yaml")})
    assert any("model=G_ema" in n for n in cfg["provenance"]["notes"])
    G = StudioGANGenerator(**cfg["init_kwargs"])
    G.load_state_dict(tensors, strict=True)
    gold = golden("studiogan_biggan_32")
    with torch.no_grad():
        assert_close(G(gold["z_notrunc"], gold["c"]), gold["img_notrunc_G"], 1e-4, "G (not G_ema)")


def _copy(out: Path, *names: str, fixture: str = "studiogan_biggan_32") -> Path:
    out.mkdir()
    for n in names:
        shutil.copy(fixture_dir(fixture) / n, out / n)
    return out


def test_refusals(tmp_path):
    d = fixture_dir("studiogan_biggan_32")
    with pytest.raises(ConversionError, match="discriminator"):
        converters.convert_to_config(d / "model=D-best-weights-step=62000.pth")
    run = _copy(tmp_path / "run", "model=G_ema-best-weights-step=62000.pth")
    with pytest.raises(ConversionError, match="--config"):
        converters.convert_to_config(run)
    bad = tmp_path / "bad.yaml"
    bad.write_text((d / "BigGAN.yaml").read_text().replace('"big_resnet"', '"vit_gan"'))
    with pytest.raises(ConversionError, match="unknown StudioGAN backbone 'vit_gan'"):
        converters.convert_to_config(run, options={"config": str(bad)})
    bad.write_text((d / "BigGAN.yaml").read_text().replace("attn_g_loc: [2]", "attn_g_loc: [1]"))
    with pytest.raises(ConversionError, match="self-attention at blocks.1"):
        converters.convert_to_config(run, options={"config": str(bad)})
    bad.write_text((d / "BigGAN.yaml").read_text().replace("z_dim: 80", "z_dim: 120"))
    with pytest.raises(ConversionError, match="z_dim"):
        converters.convert_to_config(run, options={"config": str(bad)})
    bad.write_text((d / "BigGAN.yaml").read_text().replace("apply_g_sn: True", "apply_g_sn: False"))
    with pytest.raises(ConversionError, match="apply_g_sn"):
        converters.convert_to_config(run, options={"config": str(bad)})
    only_d = _copy(tmp_path / "d_only", "BigGAN.yaml", "model=D-best-weights-step=62000.pth")
    with pytest.raises(ConversionError, match="only a StudioGAN discriminator"):
        converters.convert_to_config(only_d)


def test_cli_convert_sample_export(tmp_path, models):
    d = fixture_dir("studiogan_sngan_32")
    runner = CliRunner()
    r = runner.invoke(cli, ["convert", str(d), str(tmp_path / "m"), "--json", "--quiet"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["provenance"]["source_format"] == "studiogan"
    g = d / "model=G-best-weights-step=86000.pth"
    r = runner.invoke(cli, ["convert", str(g), str(tmp_path / "m2"), "--config", str(d / "SNGAN.yaml"), "--quiet"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["convert", str(d / "model=D-best-weights-step=86000.pth"), str(tmp_path / "m3"),
                            "--quiet"])
    assert r.exit_code != 0 and "discriminator" in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "m3").exists()
    r = runner.invoke(cli, ["sample", str(tmp_path / "m"), "--seeds", "0-1", "--class", "2", "--outdir",
                            str(tmp_path / "imgs"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "imgs").glob("*.png"))) == 2
    r = runner.invoke(cli, ["export", str(tmp_path / "m"), "--out", str(tmp_path / "g.onnx"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "g.onnx").is_file()


@pytest.mark.parametrize("fixture", FIXTURES)
def test_onnx_export_dynamic_batch(fixture, models, tmp_path):
    import onnx
    import onnxruntime as ort

    from sdk.export.exporter import FP32_TOLERANCE, export_onnx
    from sdk.export.onnx_generator import OnnxGenerator, OnnxRuntimeError

    G = models[fixture]
    path = tmp_path / "g.onnx"
    report = export_onnx(G, path)
    assert max(report.max_abs_error.values()) <= FP32_TOLERANCE
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == ["z", "c"]  # truncation lives in the prior, not the graph
    gold = golden(fixture)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 3):
        out = sess.run(None, {"z": gold["z_trunc0_5"][:n].numpy(), "c": gold["c"][:n].numpy()})[0]
        assert_close(torch.from_numpy(out), gold["img_trunc0_5"][:n], 1e-4, f"onnx batch {n}")
    OG = OnnxGenerator(path, provider="cpu", quiet=True)
    assert OG.z_convention == "studiogan"
    assert_close(sdk.generate(OG, [3, 4], class_idx=1), sdk.generate(G, [3, 4], class_idx=1), FP32_TOLERANCE, "og")
    with pytest.raises(OnnxRuntimeError, match="no truncation"):
        OG(gold["z_notrunc"][:1], gold["c"][:1], truncation_psi=0.5)


def test_latent_toolkit(models):
    big, sn = models["studiogan_biggan_32"], models["studiogan_sngan_32"]
    d = sdk.directions.sefa(big, k=4)
    assert d.space == "z" and d.vectors.shape == (4, 80)
    assert d.vectors[:, 20:].abs().max().item() < 1e-6  # big_resnet's linear0 reads chunk 0 only
    assert d.params["source_layers"] == ["linear0"]
    d2 = sdk.directions.sefa(sn, k=3)
    w = sn.linear0.weight.detach().to(torch.float64)
    w = w / w.norm(dim=1, keepdim=True)
    top = torch.linalg.eigh(w.t() @ w).eigenvectors[:, -1]
    assert abs(float(top @ d2.vectors[0].to(torch.float64))) > 0.999  # the leading eigenvector of A^T A
    gs = sdk.directions.ganspace(sn, n_samples=300, components=3, batch_size=100)
    assert gs.space == "z" and gs.vectors.shape == (3, 128)
    frames = sdk.interpolate(big, [0, 1], frames=3, class_idx=4)
    assert len(frames) == 3 and frames[0].size == (32, 32)
    first = sdk.sample(big, [0], class_idx=4)[0]
    assert frames[0].tobytes() == first.tobytes()  # the path starts at seed 0's image


def test_invert_in_z(models):
    G = models["studiogan_sngan_32"]
    target = sdk.generate(G, [9], class_idx=2)
    inv = sdk.invert(G, sdk.to_pil(target)[0], steps=40, loss="pixel", quiet=True, class_idx=2, starts=2)
    assert inv.space == "z" and inv.latent.shape == (1, 128)
    assert inv.history[-1] < inv.history[0]
