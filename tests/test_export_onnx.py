"""ONNX export: onnxruntime vs torch at batch 1/2/8, metadata, truncation input, refusal, OnnxGenerator, CLI.

Families are listed in CASES as (name, loader); a loader takes the ``converted_fixture`` getter and
returns a CPU generator. Add a family by appending one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

import sdk
import zoo
from sdk.export.exporter import FP32_TOLERANCE, OnnxExportError, export_onnx
from sdk.export.onnx_generator import OnnxGenerator, OnnxRuntimeError
from conftest import WEIGHTS

PKL = "network-snapshot-000000.pkl"


def _random_sg2(architecture: str, c_dim: int = 0) -> zoo.GanGenerator:
    """A small StyleGAN2 with every zero-initialised tensor (biases, noise strengths, w_avg) made random."""
    from zoo.models.stylegan2 import StyleGAN2Generator

    torch.manual_seed(7)
    G = StyleGAN2Generator(z_dim=32, c_dim=c_dim, w_dim=32, img_resolution=32, img_channels=3,
                           mapping_kwargs={"num_layers": 2}, channel_base=256, channel_max=32,
                           architecture=architecture, conv_clamp=256)
    with torch.no_grad():
        for name, t in list(G.named_parameters()) + list(G.named_buffers()):
            if name.endswith(("bias", "noise_strength", "w_avg")):
                t.add_(0.2 * torch.randn_like(t))
    return G.eval().requires_grad_(False)


CASES: list[tuple[str, Callable[[Any], zoo.GanGenerator]]] = [
    ("sg2ada_uncond_64", lambda conv: zoo.load(conv("sg2ada_uncond_64", PKL))),
    ("sg2ada_cond_fp16_32", lambda conv: zoo.load(conv("sg2ada_cond_fp16_32", PKL))),
    ("sg2_orig_random", lambda conv: _random_sg2("orig")),
    ("sg2_resnet_random_cond", lambda conv: _random_sg2("resnet", c_dim=4)),
    ("dcgan-digiface-64", lambda conv: zoo.load("dcgan-digiface-64", quiet=True)),
    ("sg3_t_64", lambda conv: zoo.load(conv("sg3_t_64", PKL))),
    ("sg3_r_64", lambda conv: zoo.load(conv("sg3_r_64", PKL))),
    ("tf_stylegan2_64", lambda conv: zoo.load(conv("tf_stylegan2_64", PKL))),
    ("dcgan_examples", lambda conv: zoo.load(conv("dcgan_examples", "weights.tar"))),
    ("rosinality_64", lambda conv: zoo.load(conv("rosinality_64", "000000.pt"))),
    ("mlpgan-mnist", lambda conv: zoo.load(WEIGHTS / "csinva-mnist_gan_mlp_G--300.ckpt", quiet=True)),
    ("biggan_deep_128_mini", lambda conv: zoo.load(conv("biggan_deep_128_mini", "."))),
    ("pgan_mini", lambda conv: zoo.load(conv("pgan_mini", "fixture_s3_i48000-5f3abe1d.pth"))),
]
IDS = [name for name, _ in CASES]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, converted_fixture):
    """``exported(name)`` -> (G, path, report): each case is exported once per module (dynamic batch, fp32)."""
    cache: dict[str, tuple[Any, Path, Any]] = {}
    loaders = dict(CASES)

    def get(name: str):
        if name not in cache:
            G = loaders[name](converted_fixture)
            path = tmp_path_factory.mktemp(f"onnx-{name}") / "model.onnx"
            cache[name] = (G, path, export_onnx(G, path))
        return cache[name]

    return get


def _inputs(G, batch: int, psi: float, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, G.z_dim, generator=gen)
    c = G.make_c([i % G.c_dim for i in range(batch)], batch) if G.c_dim else None
    extras = G.onnx_extra_inputs("full") if hasattr(G, "onnx_extra_inputs") else {}  # their exported defaults
    return {"z": z, "c": c, "truncation_psi": torch.tensor(psi, dtype=G.psi_dtype or torch.float32), **extras}


def _ort(path: Path, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {i.name: inputs[i.name].numpy() for i in sess.get_inputs()}
    return torch.from_numpy(sess.run(None, feed)[0])


@pytest.mark.parametrize("name", IDS)
def test_dynamic_batch_matches_torch(name, exported):
    G, path, report = exported(name)
    assert set(report.max_abs_error) == {"1", "2", "8"}
    assert max(report.max_abs_error.values()) <= FP32_TOLERANCE == report.tolerance
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    names = [i.name for i in model.graph.input]
    psi_input = ["truncation_psi"] if G.psi_dtype is not None else []  # ProGAN has no truncation
    extras = list(G.onnx_extra_inputs("full")) if hasattr(G, "onnx_extra_inputs") else []  # SG3: transform
    assert names == ["z"] + (["c"] if G.c_dim else []) + psi_input + extras
    assert [o.name for o in model.graph.output] == ["img"]
    z_dims = model.graph.input[0].type.tensor_type.shape.dim
    assert z_dims[0].dim_param and z_dims[1].dim_value == G.z_dim  # symbolic batch, fixed z_dim
    # independent check at a batch size the exporter did not verify, through G's own forward
    psi = 0.8 if psi_input else 1.0
    inp = _inputs(G, 3, psi, seed=11)
    with torch.no_grad():
        ref = G(inp["z"], inp["c"], truncation_psi=psi, noise_mode="const")
    out = _ort(path, inp)
    assert out.shape == (3, G.img_channels, G.img_resolution, G.img_resolution)
    assert (out - ref).abs().max().item() <= FP32_TOLERANCE


@pytest.mark.parametrize("name", IDS)
def test_metadata(name, exported):
    G, path, _ = exported(name)
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["ganzoo.architecture"] == G.architecture
    assert int(meta["ganzoo.resolution"]) == G.img_resolution
    assert int(meta["ganzoo.z_dim"]) == G.z_dim and int(meta["ganzoo.c_dim"]) == G.c_dim
    assert json.loads(meta["ganzoo.class_names"]) == G.class_names
    assert meta["ganzoo.weights_sha256"] == G.model_info.get("weights_sha256", "")
    assert meta["ganzoo.source_model"] == G.model_info.get("model_name", G.model_info.get("provenance", {})
                                                             .get("source_file", ""))
    assert meta["ganzoo.ganzoo_version"]
    if name.startswith("sg2ada") or name.startswith("dcgan"):
        assert len(meta["ganzoo.weights_sha256"]) == 64


@pytest.mark.parametrize("name", [n for n in IDS if n != "pgan_mini"])
def test_truncation_psi_is_an_input(name, exported):
    G, path, _ = exported(name)
    outs = {}
    for psi in (1.0, 0.5):
        inp = _inputs(G, 2, psi, seed=3)
        with torch.no_grad():
            ref = G(inp["z"], inp["c"], truncation_psi=psi)
        outs[psi] = _ort(path, inp)
        assert (outs[psi] - ref).abs().max().item() <= FP32_TOLERANCE, psi
    assert (outs[1.0] - outs[0.5]).abs().max().item() > 1e-2  # psi really changes the graph's output


def test_stylegan3_transform_is_an_input(exported):
    """translate/rotate reach an exported StyleGAN3 through its ``transform`` input, as in torch."""
    G, path, _ = exported("sg3_t_64")
    OG = OnnxGenerator(path, provider="cpu", quiet=True)
    assert OG.input_names[-1] == "transform" and OG.extra_defaults["transform"].shape == (3, 3)
    plain = sdk.generate(OG, [0, 1], truncation_psi=0.7)
    moved = sdk.generate(OG, [0, 1], truncation_psi=0.7, translate=(0.1, -0.2), rotate=15)
    ref = sdk.generate(G, [0, 1], truncation_psi=0.7, translate=(0.1, -0.2), rotate=15)
    assert (moved - ref).abs().max().item() <= FP32_TOLERANCE
    assert (moved - plain).abs().max().item() > 0.1  # the transform really changes the image
    assert torch.equal(G.synthesis.input.transform, torch.eye(3))  # torch model restored after the call


def test_family_without_truncation_has_no_psi_input(exported):
    """ProGAN (pixel-normalised z) has no truncation: no dead input in the graph, and psi != 1 is refused."""
    G, path, _ = exported("pgan_mini")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["ganzoo.truncation_psi"] == "none"
    OG = OnnxGenerator(path, provider="cpu", quiet=True)
    assert "truncation_psi" not in OG.input_names
    with pytest.raises(OnnxRuntimeError, match="has no truncation"):
        OG(torch.randn(1, OG.z_dim), truncation_psi=0.7)
    with pytest.raises(ValueError, match="no truncation"):
        G(torch.randn(1, G.z_dim), truncation_psi=0.7)


def test_biggan_statistics_row_follows_psi_exactly(exported):
    """BigGAN picks BN statistics from psi / 0.02 in float64; the graph takes psi as float64 to match.

    At grid values the choice is discontinuous (upstream blends rows i and i+1 with reversed weights, and
    takes row i alone when the fraction is exactly 0): psi=0.02 gives row 1, its float32 neighbour row 0.
    """
    G, path, _ = exported("biggan_deep_128_mini")
    OG = OnnxGenerator(path, provider="cpu", quiet=True)
    assert OG.metadata["truncation_psi"] == "float64" and json.loads(OG.metadata["truncation_psi_range"]) == [0, 1]
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(4)) * 0.5
    c = G.make_c([3, 999], 2)
    with torch.no_grad():
        as_float32 = G(z, c, truncation_psi=float(np.float32(0.02)))
        for psi in (0.02, 0.1, 0.433, 0.5, 0.7, 1.0):
            ref = G(z, c, truncation_psi=psi)
            assert (OG(z, c, truncation_psi=psi) - ref).abs().max().item() <= FP32_TOLERANCE, psi
    assert (as_float32 - G(z, c, truncation_psi=0.02)).abs().max().item() > 10 * FP32_TOLERANCE
    for bad in (0.0, 1.5):
        with pytest.raises(OnnxRuntimeError, match=r"truncation_psi must be in \(0, 1\]"):
            OG(z, c, truncation_psi=bad)


@pytest.mark.parametrize("name", IDS)
def test_onnx_generator_samples_like_torch(name, exported):
    G, path, _ = exported(name)
    OG = OnnxGenerator(path, provider="cpu", quiet=True)
    assert (OG.z_dim, OG.c_dim, OG.img_resolution, OG.img_channels) == \
        (G.z_dim, G.c_dim, G.img_resolution, G.img_channels)
    cls = 1 if G.c_dim else None
    seeds = [0, 1, 2]
    psi = 0.7 if G.psi_dtype is not None else 1.0
    a = sdk.generate(OG, seeds, truncation_psi=psi, class_idx=cls, batch_size=2)
    b = sdk.generate(G, seeds, truncation_psi=psi, class_idx=cls, batch_size=2)
    assert isinstance(a, torch.Tensor) and a.shape == b.shape
    assert (a - b).abs().max().item() <= FP32_TOLERANCE
    ims_a, ims_b = sdk.sample(OG, seeds, class_idx=cls), sdk.sample(G, seeds, class_idx=cls)
    for x, y in zip(ims_a, ims_b):
        diff = np.abs(np.asarray(x, dtype=np.int16) - np.asarray(y, dtype=np.int16))
        assert diff.max() <= 1


def test_refused_export_leaves_no_file(tmp_path):
    G = _random_sg2("skip")
    out = tmp_path / "m.onnx"
    # fp16 really differs from torch fp32 by ~1e-3: a 1e-6 tolerance must refuse it
    with pytest.raises(OnnxExportError, match="differs from torch"):
        export_onnx(G, out, precision="fp16", tolerance=1e-6)
    assert list(tmp_path.iterdir()) == []


def test_bad_requests_are_refused_before_export(tmp_path):
    dcgan = zoo.load("dcgan-digiface-64", quiet=True)
    with pytest.raises(OnnxExportError, match="parts='full'"):
        export_onnx(dcgan, tmp_path / "m.onnx", parts="mapping")
    with pytest.raises(OnnxExportError, match="noise"):
        export_onnx(dcgan, tmp_path / "m.onnx", noise="random")
    with pytest.raises(OnnxExportError, match="precision"):
        export_onnx(dcgan, tmp_path / "m.onnx", precision="int4")
    assert list(tmp_path.iterdir()) == []


def test_mapping_and_synthesis_parts_chain_to_full(tmp_path, exported):
    G, _, _ = exported("sg2ada_cond_fp16_32")
    rm = export_onnx(G, tmp_path / "mapping.onnx", parts="mapping")
    rs = export_onnx(G, tmp_path / "synthesis.onnx", parts="synthesis")
    assert list(rm.inputs) == ["z", "c", "truncation_psi"] and list(rm.outputs) == ["ws"]
    assert list(rs.inputs) == ["ws"] and list(rs.outputs) == ["img"]
    assert rm.outputs["ws"][1:] == [G.num_ws, G.w_dim]
    assert max(rm.max_abs_error.values()) <= 1e-4 and max(rs.max_abs_error.values()) <= FP32_TOLERANCE
    inp = _inputs(G, 4, 0.6, seed=5)
    ws = _ort(tmp_path / "mapping.onnx", inp)
    img = _ort(tmp_path / "synthesis.onnx", {"ws": ws})
    with torch.no_grad():
        ref = G(inp["z"], inp["c"], truncation_psi=0.6)
    assert (img - ref).abs().max().item() <= FP32_TOLERANCE
    with pytest.raises(OnnxRuntimeError, match="mapping part"):
        OnnxGenerator(tmp_path / "mapping.onnx", provider="cpu", quiet=True)(inp["z"], inp["c"])


def test_provider_fallback_is_announced(exported, capsys):
    import onnxruntime as ort

    _, path, _ = exported("sg2_orig_random")
    OG = OnnxGenerator(path, provider="cuda")
    err = capsys.readouterr().err
    assert OG.provider_in_use in ort.get_available_providers()
    assert f"runs model.onnx on {OG.provider_in_use}" in err
    if "CUDAExecutionProvider" not in ort.get_available_providers():  # the CPU-only wheel
        assert OG.provider_in_use == "CPUExecutionProvider"
        assert "CUDAExecutionProvider not in this onnxruntime build" in err
    OG = OnnxGenerator(path, provider="mobile", quiet=True)
    assert OG.provider_in_use in ort.get_available_providers()
    with pytest.raises(OnnxRuntimeError, match="unknown provider"):
        OnnxGenerator(path, provider="tpu")
    with pytest.raises(OnnxRuntimeError, match="truncation_cutoff"):
        OG(torch.randn(1, OG.z_dim), truncation_cutoff=2)
    with pytest.raises(OnnxRuntimeError, match="noise_mode"):
        OG(torch.randn(1, OG.z_dim), noise_mode="random")
    with pytest.raises(ValueError, match="z must have shape"):
        OG(torch.randn(1, OG.z_dim + 1))


def test_cli_export_variants_report_and_onnx_sampling(tmp_path, converted_fixture):
    from sdk.cli import cli

    folder = converted_fixture("sg2ada_cond_fp16_32", PKL)
    out = tmp_path / "g.onnx"
    r = CliRunner().invoke(cli, ["export", str(folder), "--out", str(out), "--precision", "fp16", "--format", "ort",
                                 "--int8", "--json", "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    on_disk = json.loads((tmp_path / "g.export.json").read_text())
    assert on_disk["variants"] == report["variants"]
    assert report["model"]["precision"] == "fp16" and report["model"]["metadata"]["precision"] == "fp16"
    variants = {v["kind"]: v for v in report["variants"]}
    assert set(variants) == {"main", "int8", "ort", "int8-ort"}
    for v in variants.values():
        assert Path(v["path"]).is_file() and v["size_bytes"] == Path(v["path"]).stat().st_size
        assert 0 < v["size_vs_fp32"] < 1  # fp16 and int8 are smaller than the fp32 reference
        assert v["max_abs"] > 0 and v["psnr_db"] is not None
    assert variants["main"]["psnr_db"] > 40 and variants["main"]["max_abs"] < 0.1  # fp16
    assert 15 < variants["int8"]["psnr_db"] < variants["main"]["psnr_db"]  # int8 loses more than fp16
    assert variants["int8"]["quantization"]["method"] == "dynamic"
    assert variants["int8"]["quantization"]["quantized_nodes"] > 0
    assert variants["ort"]["psnr_db"] > 40
    mobile = report["mobile_usability"]
    for ep in ("NNAPI", "CoreML_MLProgram", "CoreML_NeuralNetwork"):
        assert mobile[ep]["fixed_shapes"]["ops_taken"].get("Conv", 0) > 0
    assert mobile["XNNPACK"]["ops_taken"]["Conv"] > 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left

    # the ORT-format file keeps the metadata and samples through the CLI
    r = CliRunner().invoke(cli, ["sample", str(tmp_path / "g.ort"), "--backend", "onnx", "--provider", "cpu",
                                 "--seeds", "0-1", "--class", "2", "--outdir", str(tmp_path / "imgs"), "--json", "-q"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "imgs").iterdir()) == ["seed0000.png", "seed0001.png"]
    # and bad use is a one-line error with a non-zero exit
    r = CliRunner().invoke(cli, ["sample", str(tmp_path / "g.ort"), "--backend", "compiled", "--grid",
                                 str(tmp_path / "x.png")])
    assert r.exit_code != 0 and "exported file" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["export", "dcgan-digiface-64", "--out", str(tmp_path / "d.onnx"), "--parts",
                                 "synthesis", "-q"])
    assert r.exit_code != 0 and "parts='full'" in r.output and not (tmp_path / "d.onnx").exists()


@pytest.mark.parametrize("architecture", ["skip", "resnet"])
def test_separable_fir_switch_matches_2d_filter(architecture, monkeypatch):
    """The benchmark's FIR switch: two 1-D passes equal the 2-D filter up to float rounding."""
    import zoo.models.stylegan2 as sg2

    G = _random_sg2(architecture)
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        monkeypatch.setattr(sg2, "SEPARABLE_FIR", False)  # whatever an earlier kernel_forms probe chose here
        ref = G(z, truncation_psi=0.7)
        monkeypatch.setattr(sg2, "SEPARABLE_FIR", True)
        sep = G(z, truncation_psi=0.7)
    assert 0 < (sep - ref).abs().max().item() < 1e-5  # a different computation, the same result


def test_int8_falls_back_to_static_qdq_for_conv_transpose(tmp_path, exported):
    """Dynamic quantization skips ConvTranspose (all of DCGAN): static QDQ with seed calibration takes over."""
    from sdk.export.mobile import compare_quality, quantize_int8

    _, path, _ = exported("dcgan-digiface-64")
    q8, info = quantize_int8(path, tmp_path / "q8.onnx")
    assert info["method"] == "static-qdq" and info["quantized_nodes"] >= 5
    assert q8.stat().st_size < 0.3 * path.stat().st_size
    quality = compare_quality(path, q8)
    assert 25 < quality["psnr_db"] < 60 and quality["max_abs"] > 0  # real trained faces survive int8
    OG = OnnxGenerator(q8, provider="cpu", quiet=True)
    assert OG.metadata["precision"] == "int8" and OG.z_dim == 100


def test_biggan_int8_leaves_nothing_in_the_working_directory(tmp_path, monkeypatch, exported):
    """onnxruntime's shape inference gives up on BigGAN and dumps its model into the cwd; none may stay."""
    from sdk.export.mobile import compare_quality, quantize_int8

    _, path, _ = exported("biggan_deep_128_mini")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    q8, info = quantize_int8(path, tmp_path / "q8.onnx")
    assert list(work.iterdir()) == []
    assert q8.is_file() and info["quantized_nodes"] > 0
    assert compare_quality(path, q8)["psnr_db"] > 30
