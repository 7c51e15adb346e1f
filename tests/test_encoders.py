"""pSp / e4e / ReStyle encoders: parity on every manifest check, content-based detection, the encoder API."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import torch.nn.functional as F

import converters
import sdk
import zoo
from conftest import assert_close, fixture_dir, golden, manifest
from converters.psp import convert_encoder_checkpoint, read_checkpoint
from zoo.errors import ConversionError, ZooError
from zoo.models.encoders import BasicBlock, PSPEncoder, StyleEncoder

FIXTURES = {"e4e_64": "e4e_ffhq_encode_64.pt", "psp_64": "psp_ffhq_encode_64.pt", "restyle_psp_64": "best_model.pt"}
FAMILY = {"e4e_64": ("e4e", "Encoder4Editing"), "psp_64": ("psp", "GradualStyleEncoder"),
          "restyle_psp_64": ("restyle-psp", "BackboneEncoder")}


def _args(args: dict, gold: dict) -> dict:
    return {k: gold[v[1:]] if isinstance(v, str) and v.startswith("@") else v for k, v in args.items()}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_every_manifest_check(name, converted_fixture):
    man, gold = manifest(name), golden(name)
    enc = zoo.load(converted_fixture(name, FIXTURES[name]))
    assert isinstance(enc, PSPEncoder)
    done = []
    with torch.no_grad():
        for check in man["checks"]:
            got = getattr(enc, check["call"])(**_args(check["args"], gold))
            assert_close(got, gold[check["key"]], check["tol"], f"{name}:{check['key']}")
            done.append(check["key"])
    unchecked = set(man.get("unchecked_keys", {}))
    assert sorted(done) == sorted(k for k in gold if k not in unchecked | {"x", "latent_avg"})


def test_restyle_average_image_and_iterations(converted_fixture):
    name = "restyle_psp_64"
    man, gold = manifest(name), golden(name)
    enc = zoo.load(converted_fixture(name, FIXTURES[name]))
    with torch.no_grad():
        assert_close(enc.average_image(), gold["avg_image"], man["tolerance"]["avg_image"], "avg_image")
        steps = enc.encode(gold["x"], n_iters=3, return_all=True)
        assert steps.shape[0] == 3
        for i in range(3):
            assert_close(steps[i], gold[f"ws_iter{i + 1}"], 1e-5, f"return_all step {i + 1}")
        assert_close(enc.encode(gold["x"]), gold["ws_iter5"], 2e-5, "default n_iters = n_iters_per_batch")
    assert enc.default_n_iters == man["config"]["opts"]["n_iters_per_batch"] and enc.iterative


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_config_names_family_widths_and_generator(name, converted_fixture):
    man = manifest(name)
    folder = converted_fixture(name, FIXTURES[name])
    cfg = json.loads((folder / "config.json").read_text())
    kw = cfg["init_kwargs"]
    family, etype = FAMILY[name]
    assert cfg["architecture"] == "psp-encoder" and kw["family"] == family and kw["encoder_type"] == etype
    assert cfg["encoder"] == {"family": family, "type": etype}
    widths = man["config"]["widths"]
    assert kw["widths"] == [widths["ir_se50_block_widths"][k] for k in ("64", "128", "256", "512")]
    assert kw["input_nc"] == man["derived"]["input_nc"] and kw["n_styles"] == man["derived"]["n_styles"]
    assert cfg["w_dim"] == widths["w_dim"] and cfg["provenance"]["source_sha256"] == man["checkpoint"]["sha256"]
    enc = zoo.load(folder)
    G = enc.generator
    assert G.style_based and G.w_dim == widths["w_dim"] and G.num_ws == man["derived"]["decoder_n_latent"]
    assert G.model_info == {"model_name": f"{folder}:generator", "weights_sha256": enc.model_info["weights_sha256"]}
    imgs = sdk.sample(G, seeds=[0])  # the decoder is an ordinary zoo generator
    assert imgs[0].size == (G.img_resolution, G.img_resolution)


def test_detected_from_content_not_name(tmp_path):
    """An e4e file renamed to the Coach's best_model.pt is still e4e; a pSp file renamed e4e_* is still pSp."""
    a = tmp_path / "best_model.pt"
    shutil.copy(fixture_dir("e4e_64") / FIXTURES["e4e_64"], a)
    b = tmp_path / "e4e_ffhq_encode.pt"
    shutil.copy(fixture_dir("psp_64") / FIXTURES["psp_64"], b)
    assert converters.detect_format(a).name == converters.detect_format(b).name == "psp-encoder-pt"
    cfg_a, _ = converters.convert_to_config(a)
    cfg_b, _ = converters.convert_to_config(b)
    assert cfg_a["init_kwargs"]["family"] == "e4e" and cfg_b["init_kwargs"]["family"] == "psp"


def test_bad_checkpoints_are_refused_with_the_reason():
    ckpt = read_checkpoint(fixture_dir("psp_64") / FIXTURES["psp_64"])
    bad = dict(ckpt, opts=dict(ckpt["opts"], encoder_type="BackboneEncoder"))  # opts disagree with the FPN tensors
    with pytest.raises(ConversionError, match="fpn"):
        convert_encoder_checkpoint(bad)
    extra = dict(ckpt, state_dict={**ckpt["state_dict"], "encoder.extra.weight": torch.zeros(1)})
    with pytest.raises(ConversionError, match="encoder.extra.weight|extra.weight"):
        convert_encoder_checkpoint(extra)
    drop = dict(ckpt, state_dict={k: v for k, v in ckpt["state_dict"].items() if k != "encoder.latlayer2.bias"})
    with pytest.raises(ConversionError, match="latlayer2.bias"):
        convert_encoder_checkpoint(drop)


def test_input_checks_and_single_pass_iterations(converted_fixture):
    enc = zoo.load(converted_fixture("psp_64", FIXTURES["psp_64"]))
    with pytest.raises(ZooError, match=r"\[N, 3, 256, 256\]"):
        enc.encode(torch.zeros(1, 3, 128, 128))
    with pytest.raises(ZooError, match="one pass"):
        enc.encode(torch.zeros(1, 3, 256, 256), n_iters=3)


@pytest.mark.parametrize("etype,learn_in_w", [("BackboneEncoderUsingLastLayerIntoW", True),
                                              ("BackboneEncoderUsingLastLayerIntoWPlus", False),
                                              ("ResNetProgressiveBackboneEncoder", False)])
def test_other_released_heads_convert_and_run(etype, learn_in_w):
    """Heads without a shared fixture: converted from a checkpoint of the upstream key layout, then run."""
    base = read_checkpoint(fixture_dir("psp_64") / FIXTURES["psp_64"])
    dec = {k: v for k, v in base["state_dict"].items() if k.startswith("decoder.")}
    backbone = "resnet34" if etype.startswith("ResNet") else "ir_se"
    units = [3, 4, 6, 3] if backbone == "resnet34" else [3, 4, 14, 3]
    nc = 6 if etype.startswith("ResNet") else 3
    with torch.device("meta"):
        shapes = StyleEncoder(etype, backbone, nc, [16, 16, 32, 32], units, 36, 10)
    sd = {f"encoder.{k}": (torch.rand(v.shape) + 0.5 if "running_var" in k else torch.randn(v.shape) * 0.1)
          if v.is_floating_point() else torch.zeros(v.shape, dtype=v.dtype) for k, v in shapes.state_dict().items()}
    opts = {"encoder_type": etype, "input_nc": nc, "output_size": 64, "learn_in_w": learn_in_w,
            "start_from_latent_avg": True}
    if nc == 6:
        opts["n_iters_per_batch"] = 2
    avg = base["latent_avg"][:1] if learn_in_w else base["latent_avg"]
    ckpt = {"state_dict": {**sd, **dec}, "opts": opts, "latent_avg": avg}
    if nc == 6:  # what ReStyle-e4e's Coach saves beside the weights
        ckpt.update(global_step=10, optimizer={"state": {}, "param_groups": []}, best_val_loss=0.5,
                    discriminator_state_dict={"w": torch.zeros(2)}, discriminator_optimizer_state_dict={})
    conv = convert_encoder_checkpoint(ckpt)
    enc = PSPEncoder(**conv.init_kwargs)
    enc.load_state_dict(conv.tensors, strict=True)
    enc.eval()
    x = torch.rand(2, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        ws = enc.encode(x)
    assert ws.shape == (2, 10, 36) and torch.isfinite(ws).all()
    if learn_in_w:  # one w for every layer
        assert torch.equal(ws, ws[:, :1].expand_as(ws))
    assert conv.init_kwargs["family"] == ("restyle-e4e" if nc == 6 else "psp")


def test_basic_block_is_torchvision_resnet_arithmetic():
    """Our ResNet BasicBlock against the same arithmetic spelled out with functional ops."""
    torch.manual_seed(0)
    blk = BasicBlock(4, 8, 2).eval()
    for m in blk.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_()
    x = torch.randn(1, 4, 8, 8)
    F = torch.nn.functional

    def bn(m, t):
        return F.batch_norm(t, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)

    y = F.relu(bn(blk.bn1, F.conv2d(x, blk.conv1.weight, stride=2, padding=1)))
    y = bn(blk.bn2, F.conv2d(y, blk.conv2.weight, padding=1))
    short = bn(blk.downsample[1], F.conv2d(x, blk.downsample[0].weight, stride=2))
    with torch.no_grad():
        assert_close(blk(x), F.relu(y + short), 1e-6, "BasicBlock")


def test_car_encoders_take_and_give_4_by_3_images():
    """ReStyle / e4e car models: 192x256 inputs, the average image and reconstructions cropped like upstream."""
    base = read_checkpoint(fixture_dir("psp_64") / FIXTURES["psp_64"])
    dec = {k: v for k, v in base["state_dict"].items() if k.startswith("decoder.")}
    with torch.device("meta"):
        shapes = StyleEncoder("ResNetBackboneEncoder", "resnet34", 6, [16, 16, 32, 32], [3, 4, 6, 3], 36, 10)
    sd = {f"encoder.{k}": (torch.rand(v.shape) + 0.5 if "running_var" in k else torch.randn(v.shape) * 0.1)
          if v.is_floating_point() else torch.zeros(v.shape, dtype=v.dtype) for k, v in shapes.state_dict().items()}
    opts = {"encoder_type": "ResNetBackboneEncoder", "input_nc": 6, "output_size": 64, "n_iters_per_batch": 2,
            "dataset_type": "cars_encode"}
    conv = convert_encoder_checkpoint({"state_dict": {**sd, **dec}, "opts": opts, "latent_avg": base["latent_avg"]})
    enc = PSPEncoder(**conv.init_kwargs)
    enc.load_state_dict(conv.tensors, strict=True)
    enc.eval()
    assert enc.input_size == (192, 256) and conv.init_kwargs["family"] == "restyle-psp"
    with torch.no_grad():
        full = enc.generator.synthesis(enc.latent_avg.unsqueeze(0), noise_mode="const")  # [1, 3, 64, 64]
        assert torch.allclose(enc.average_image(), F.adaptive_avg_pool2d(full[:, :, 8:56], (192, 256)))
        x = torch.rand(1, 3, 192, 256) * 2 - 1
        assert enc.reconstruct(x).shape == (1, 3, 48, 64)
        assert enc.reconstruct(x, resize=True).shape == (1, 3, 192, 256)
    with pytest.raises(ZooError, match="192"):
        enc.encode(torch.zeros(1, 3, 256, 256))


def test_checkpoint_without_latent_avg_uses_the_decoder_mean(tmp_path):
    ckpt = read_checkpoint(fixture_dir("psp_64") / FIXTURES["psp_64"])
    ckpt = {k: v for k, v in ckpt.items() if k != "latent_avg"}
    conv = convert_encoder_checkpoint(ckpt)
    assert any("no latent_avg" in n for n in conv.notes)
    assert torch.equal(conv.tensors["latent_avg"][0], conv.tensors["generator.mapping.w_avg"])
    path = tmp_path / "best_model.pt"
    torch.save(ckpt, path)
    assert converters.detect_format(path).name == "psp-encoder-pt"
