"""MobileStyleGAN Lightning checkpoints: every manifest check, noise, style_mean layouts, safe reading, CLI,
ONNX + mobile variants, latent toolkit."""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import converters
import sdk
import zoo
from _manifest_checks import output_keys, run_checks
from conftest import assert_close, fixture_dir, golden, manifest, tolerance
from converters.mobilestylegan import convert_checkpoint, read_checkpoint
from converters.safe_pickle import Stub
from sdk.latent import directions
from zoo.errors import ConversionError, UnsafePickleError

NAME = "mobilestylegan_small"
CKPT = "mobilestylegan_small.ckpt"


@pytest.fixture(scope="module")
def G(converted_fixture):
    return zoo.load(converted_fixture(NAME, CKPT))


@pytest.fixture(scope="module")
def ckpt():
    return read_checkpoint(fixture_dir(NAME) / CKPT)


def test_every_manifest_check(G):
    man, gold = manifest(NAME), golden(NAME)
    missing = output_keys(man) - set(run_checks(G, man, gold))
    assert not missing, f"golden outputs without a check: {sorted(missing)}"
    # the reference key: the stored truncation centre is used as is (rows of [1, wsize, D] are equal)
    assert torch.equal(G.mapping.w_avg, gold["style_mean"][0, 0])


def test_random_noise_is_upstreams_draw_and_const_is_zero(G):
    """noise_0/noise_1 are what upstream draws after torch.manual_seed(1234): noise_mode='random' draws the same."""
    gold, man = golden(NAME), manifest(NAME)
    ws = gold["ws_psi1"]
    tol = tolerance(man, "img_psi1_noise_given")
    with torch.no_grad():
        torch.manual_seed(1234)
        img = G.synthesis(ws, noise_mode="random")
        assert_close(img, gold["img_psi1_noise_given"], tol, "random noise after manual_seed(1234)")
        img2 = G.synthesis(ws, noise_mode="random")
        assert (img2 - img).abs().max() > 1e-3  # fresh noise on every call, as upstream
        assert torch.equal(G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="none"))
        # explicit noise through G(...): passed on to the synthesis network
        img3 = G(gold["z"], noise=[gold["noise_0"], gold["noise_1"]])
        assert_close(img3, gold["img_psi1_noise_given"], tol, "G(z, noise=...)")
        with pytest.raises(ValueError, match="noise must be a list of 2"):
            G.synthesis(ws, noise=[gold["noise_0"]])
        with pytest.raises(ValueError, match="8x8"):
            G.synthesis(ws, noise=[gold["noise_0"], torch.zeros(2, 1, 4, 4)])


def test_truncation_latent_replaces_the_stored_centre(G):
    gold, man = golden(NAME), manifest(NAME)
    centre = gold["style_mean"][0, :1]
    with torch.no_grad():
        G.mapping.w_avg.add_(1.0)  # a wrong stored centre must not matter when one is given
        try:
            ws = G.mapping(gold["z"], truncation_psi=0.5, truncation_latent=centre)
            img = G(gold["z"], truncation_psi=0.5, noise_mode="none", truncation_latent=centre)
            moved = G.mapping(gold["z"], truncation_psi=0.5)
        finally:
            G.mapping.w_avg.sub_(1.0)
    assert_close(ws, gold["ws_psi0_5"], tolerance(man, "ws_psi0_5"), "mapping(truncation_latent=)")
    assert_close(img, gold["img_psi0_5_noise_none"], tolerance(man, "img_psi0_5_noise_none"), "G(truncation_latent=)")
    assert (moved - gold["ws_psi0_5"]).abs().max() > 0.1
    with pytest.raises(ValueError, match="truncation_latent"):
        G.mapping(gold["z"], truncation_psi=0.5, truncation_latent=torch.zeros(2, 64))


def test_seeds_and_sampling_follow_upstream(G):
    man, gold = manifest(NAME), golden(NAME)
    assert torch.equal(sdk.seeds_to_z(G, man["seeds"]), gold["z"])
    img = sdk.generate(G, man["seeds"], truncation_psi=0.7, batch_size=2)
    assert_close(img, gold["img_psi0_7_noise_none"], tolerance(man, "img_psi0_7_noise_none"), "sdk.generate")


def test_style_mean_layouts(ckpt):
    """[1, D] (before W+ support) and [1, wsize, D] with equal rows both give the stored centre."""
    sd = ckpt["state_dict"]
    centre = sd["style_mean"][0, 0].clone()
    old = dict(ckpt, state_dict={**sd, "style_mean": centre.view(1, -1)})
    conv = convert_checkpoint(old, where="old.ckpt")
    assert torch.equal(conv.tensors["mapping.w_avg"], centre)
    assert "before W+" in conv.extra_config["style_mean_layout"]
    new = convert_checkpoint(ckpt, where="new.ckpt")
    assert torch.equal(new.tensors["mapping.w_avg"], centre)
    assert "synthesis_net.conv1.conv.weight" in sd and not any("teacher" in k or k.startswith("synthesis_net")
                                                                for k in new.tensors)
    rows = sd["style_mean"].clone()
    rows[0, 3] += 1
    with pytest.raises(ConversionError, match="different rows"):
        convert_checkpoint(dict(ckpt, state_dict={**sd, "style_mean": rows}))
    with pytest.raises(ConversionError, match=r"style_mean has shape \[3\]"):
        convert_checkpoint(dict(ckpt, state_dict={**sd, "style_mean": torch.zeros(3)}))


def test_refuses_unknown_variants(ckpt):
    sd = ckpt["state_dict"]
    with pytest.raises(ConversionError, match="student.extra.weight"):
        convert_checkpoint(dict(ckpt, state_dict={**sd, "student.extra.weight": torch.zeros(1)}))
    full = {**sd, "student.layers.0.conv1.conv.weight": torch.zeros(16, 8, 3, 3)}
    with pytest.raises(ConversionError, match="depthwise"):
        convert_checkpoint(dict(ckpt, state_dict=full))
    with pytest.raises(ConversionError, match="Haar"):
        convert_checkpoint(dict(ckpt, state_dict={**sd, "student.idwt.g1_row": -sd["student.idwt.g1_row"]}))
    no_student = {k: v for k, v in sd.items() if not k.startswith("student.")}
    with pytest.raises(ConversionError, match="not a MobileStyleGAN"):
        convert_checkpoint(dict(ckpt, state_dict=no_student))


def test_cli_refuses_a_variant_naming_what_differs(ckpt, tmp_path):
    from sdk.cli import cli

    sd = dict(ckpt["state_dict"])
    sd["style_mean"] = sd["style_mean"].clone()
    sd["style_mean"][0, 2] += 0.5
    path = tmp_path / "per_layer_mean.ckpt"
    torch.save({"pytorch-lightning_version": "1.0.2", "state_dict": sd}, path)
    r = CliRunner().invoke(cli, ["convert", str(path), str(tmp_path / "out"), "-q"])
    assert r.exit_code != 0 and "different rows" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_lightning_callbacks_are_stubs_never_imported(ckpt):
    path = fixture_dir(NAME) / CKPT
    with pytest.raises(pickle.UnpicklingError, match="ModelCheckpoint"):
        torch.load(path, weights_only=True)  # the plain safe loader refuses it: the stub is what makes it readable
    (key,) = ckpt["callbacks"]
    assert issubclass(key, Stub) and key._module == "pytorch_lightning.callbacks.model_checkpoint"
    assert "pytorch_lightning" not in sys.modules


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_callback_entry_is_refused(tmp_path):
    """A Lightning-shaped file whose callbacks entry names another global: refused, nothing runs."""
    marker = tmp_path / "pwned"
    path = tmp_path / "last.ckpt"
    torch.save({"pytorch-lightning_version": "1.0.2", "callbacks": {"cb": _Evil(marker)},
                "state_dict": {"student.input.input": torch.zeros(1, 4, 4, 4),
                               "mapping_net.layers.1.weight": torch.zeros(4, 4)}}, path)
    assert converters.detect_format(path).name == "mobilestylegan-ckpt"
    with pytest.raises(UnsafePickleError, match="allow-list"):
        converters.convert(path, tmp_path / "out")
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_cli_convert_sample_export_mobile_variants(tmp_path):
    from sdk.cli import cli

    runner = CliRunner()
    folder = tmp_path / "msg"
    r = runner.invoke(cli, ["convert", str(fixture_dir(NAME) / CKPT), str(folder), "--json", "-q"],
                      catch_exceptions=False)
    assert r.exit_code == 0, r.output
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["architecture"] == "mobilestylegan" and cfg["provenance"]["source_format"] == "mobilestylegan-ckpt"
    assert cfg["num_ws"] == manifest(NAME)["config"]["wsize(num_ws)"] and cfg["img_resolution"] == 16
    r = runner.invoke(cli, ["sample", str(folder), "--seeds", "0-2", "--trunc", "0.7", "--outdir",
                            str(tmp_path / "imgs"), "--json", "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    png = np.asarray(sdk.to_pil(golden(NAME)["img_psi0_7_noise_none"][1:2])[0], dtype=np.int16)
    from PIL import Image
    assert np.abs(np.asarray(Image.open(tmp_path / "imgs" / "seed0001.png"), dtype=np.int16) - png).max() <= 1

    out = tmp_path / "msg.onnx"
    r = runner.invoke(cli, ["export", str(folder), "--out", str(out), "--int8", "--precision", "fp16", "--format",
                            "ort", "--json", "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    model = report["model"]
    assert model["dynamic_batch"] and isinstance(model["inputs"]["z"][0], str)  # symbolic batch axis
    variants = {v["kind"]: v for v in report["variants"]}
    assert set(variants) == {"main", "int8", "ort", "int8-ort"}
    for v in variants.values():
        assert Path(v["path"]).is_file() and 0 < v["size_vs_fp32"] < 1 and v["psnr_db"] is not None
    assert variants["main"]["psnr_db"] > 40  # fp16 main file
    assert variants["int8"]["psnr_db"] > 20
    assert report["mobile_usability"]["XNNPACK"]["ops_taken"].get("ConvTranspose", 0) > 0  # the Haar IDWT

    # the fp16 graph ("const" noise = zero noise here) reproduces the golden images at batch 3 through
    # onnxruntime, to fp16 precision (the fp32 graph was verified against torch at batch 1, 2 and 8 by the export)
    onnx_G = sdk.OnnxGenerator(str(out), provider="cpu")
    img = torch.as_tensor(np.asarray(onnx_G(golden(NAME)["z"], truncation_psi=0.5)), dtype=torch.float32)
    assert_close(img, golden(NAME)["img_psi0_5_noise_none"], 2e-2, "onnxruntime fp16 batch 3")


def test_latent_toolkit(G):
    gold = golden(NAME)
    sefa = directions.sefa(G)
    names = sefa.params["source_layers"]
    assert any(n.endswith("up.modulation") for n in names) and not any("to_img" in n for n in names)
    assert torch.allclose(sefa.vectors @ sefa.vectors.t(), torch.eye(64), atol=1e-4)
    gs = directions.ganspace(G, n_samples=400, components=3)
    assert gs.vectors.shape == (3, 64) and gs.space == "w"
    mix = sdk.style_mix(G, [0], [1], layers=[0, 1])
    ws = gold["ws_psi1"].clone()
    ws0 = ws[0:1].clone()
    ws0[:, [0, 1]] = ws[1:2, [0, 1]]
    with torch.no_grad():
        assert_close(mix[0, 0:1], G.synthesis(ws0), 1e-5, "style_mix")
    frames = sdk.interpolate(G, [0, 1], frames=3)
    ends = sdk.to_pil(gold["img_psi1_noise_none"][:2])
    for got, want in ((frames[0], ends[0]), (frames[-1], ends[1])):
        assert np.abs(np.asarray(got, dtype=np.int16) - np.asarray(want, dtype=np.int16)).max() <= 1
    target = sdk.to_pil(gold["img_psi0_7_noise_none"][2:3])[0]
    inv = sdk.invert(G, target, space="w", steps=25, loss="pixel", quiet=True)
    assert inv.latent.shape[-1] == 64 and inv.metrics["psnr"] > 30


def test_registry_entry():
    e = zoo.registry.get_entry("mobilestylegan-ffhq-1024")
    assert (e.fid, e.resolution, e.license, e.source_format) == (7.75, 1024, "apache-2.0", "mobilestylegan-ckpt")
    assert e.source_file == "mobilestylegan_ffhq.ckpt" and e.dataset == "FFHQ"
