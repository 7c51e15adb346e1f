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


def test_onnx_export_dynamic_batch(models, tmp_path):
    """big_resnet (SN, attention, shared embedding) here; the resnet fixture is exported through the CLI test."""
    import onnx
    import onnxruntime as ort

    from sdk.export.exporter import FP32_TOLERANCE, export_onnx
    from sdk.export.onnx_generator import OnnxGenerator, OnnxRuntimeError

    fixture = "studiogan_biggan_32"
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


# --- backbones without a shared fixture: against a reference built from torch's own modules -------------------
# The reference follows upstream's forward passes (src/models/deep_conv.py, resnet.py, big_resnet.py,
# big_resnet_deep_*.py) with torch.nn layers, torch.nn.utils.spectral_norm(eps=1e-6) and nn.BatchNorm2d(eps=1e-4)
# in eval mode, so spectral norm with stored u/v, the transposed-conv SN dimension and BN are torch's, not ours.

from torch import nn  # noqa: E402
from torch.nn.utils import spectral_norm  # noqa: E402

ACTS = {"ReLU": nn.ReLU(), "Leaky_ReLU": nn.LeakyReLU(0.1), "ELU": nn.ELU(), "GELU": nn.GELU()}


def _sn(m: nn.Module, sn: bool) -> nn.Module:
    return spectral_norm(m, eps=1e-6) if sn else m


class _CBN(nn.Module):
    def __init__(self, y_dim: int, ch: int, sn: bool) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(ch, eps=1e-4, affine=False)
        self.gain = _sn(nn.Linear(y_dim, ch, bias=False), sn)
        self.bias = _sn(nn.Linear(y_dim, ch, bias=False), sn)

    def forward(self, x, y):
        return self.bn(x) * (1 + self.gain(y)).view(y.shape[0], -1, 1, 1) + self.bias(y).view(y.shape[0], -1, 1, 1)


class _Attn(nn.Module):
    def __init__(self, ch: int, sn: bool) -> None:
        super().__init__()
        c = lambda i, o: _sn(nn.Conv2d(i, o, 1, bias=False), sn)  # noqa: E731
        self.conv1x1_theta, self.conv1x1_phi = c(ch, ch // 8), c(ch, ch // 8)
        self.conv1x1_g, self.conv1x1_attn = c(ch, ch // 2), c(ch // 2, ch)
        self.sigma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        _, ch, h, w = x.shape
        theta = self.conv1x1_theta(x).view(-1, ch // 8, h * w)
        phi = nn.functional.max_pool2d(self.conv1x1_phi(x), 2).view(-1, ch // 8, h * w // 4)
        attn = torch.softmax(torch.bmm(theta.permute(0, 2, 1), phi), -1)
        g = nn.functional.max_pool2d(self.conv1x1_g(x), 2).view(-1, ch // 2, h * w // 4)
        return x + self.sigma * self.conv1x1_attn(torch.bmm(g, attn.permute(0, 2, 1)).view(-1, ch // 2, h, w))


class _Block(nn.Module):
    def __init__(self, kind, cin, cout, y_dim, sn, act, up=True):
        super().__init__()
        self.kind, self.act, self.up, self.cout = kind, ACTS[act], up, cout
        bn = (lambda ch: _CBN(y_dim, ch, sn)) if y_dim else (lambda ch: nn.BatchNorm2d(ch, eps=1e-4))
        conv = lambda i, o, k: _sn(nn.Conv2d(i, o, k, 1, k // 2), sn)  # noqa: E731
        if kind == "deep_conv":
            self.deconv0 = _sn(nn.ConvTranspose2d(cin, cout, 4, 2, 1), sn)
            self.bn0 = bn(cout)
        elif kind in ("resnet", "big_resnet"):
            self.bn1, self.bn2 = bn(cin), bn(cout)
            self.conv2d0, self.conv2d1, self.conv2d2 = conv(cin, cout, 1), conv(cin, cout, 3), conv(cout, cout, 3)
        else:
            hid = cin // 4
            self.bn1, self.bn2, self.bn3, self.bn4 = bn(cin), bn(hid), bn(hid), bn(hid)
            if kind == "big_resnet_deep_studiogan":
                self.conv2d0 = conv(cin, cout, 1)
            self.conv2d1, self.conv2d2 = conv(cin, hid, 1), conv(hid, hid, 3)
            self.conv2d3, self.conv2d4 = conv(hid, hid, 3), conv(hid, cout, 1)

    def _bn(self, bn, x, y):
        return bn(x, y) if isinstance(bn, _CBN) else bn(x)

    def forward(self, x, y):
        a, up = self.act, (lambda t: nn.functional.interpolate(t, scale_factor=2, mode="nearest"))
        if self.kind == "deep_conv":
            return a(self._bn(self.bn0, self.deconv0(x), y))
        if self.kind in ("resnet", "big_resnet"):
            h = self.conv2d1(up(a(self._bn(self.bn1, x, y))))
            return self.conv2d2(a(self._bn(self.bn2, h, y))) + self.conv2d0(up(x))
        x0 = x if self.kind == "big_resnet_deep_studiogan" or x.shape[1] == self.cout else x[:, :self.cout]
        h = self.conv2d1(a(self.bn1(x, y)))
        h = a(self.bn2(h, y))
        h = self.conv2d2(up(h) if self.up else h)
        h = self.conv2d4(a(self.bn4(self.conv2d3(a(self.bn3(h, y))), y)))
        x0 = up(x0) if self.up else x0
        return h + (self.conv2d0(x0) if hasattr(self, "conv2d0") else x0)


class _RefG(nn.Module):
    """Upstream's Generator for one backbone at img_size 32 or 64 (width tables of g_in/out_dims_collection)."""

    def __init__(self, backbone, img_size, z_dim, n_cls, cond, shared_dim, conv_dim, sn, act, attn, depth=1):
        super().__init__()
        self.backbone, self.n_cls, self.cond, self.act = backbone, n_cls, cond, ACTS[act]
        c = conv_dim
        if backbone == "deep_conv":
            ins, outs = [512, 256, 128], [256, 128, 64]
        else:
            ins = {32: [4 * c] * 3, 64: [16 * c, 8 * c, 4 * c, 2 * c]}[img_size]
            outs = {32: [4 * c] * 3, 64: [8 * c, 4 * c, 2 * c, c]}[img_size]
        self.ins, n = ins, len(ins)
        self.chunk = z_dim // (n + 1)
        if backbone == "big_resnet":
            y_dim, lin_in = self.chunk + (shared_dim if cond else 0), self.chunk
        elif backbone.startswith("big_resnet_deep"):
            y_dim = lin_in = z_dim + (shared_dim if cond else 0)
        else:
            y_dim, lin_in = (n_cls if cond else 0), z_dim
        self.linear0 = _sn(nn.Linear(lin_in, ins[0] * 16), sn)
        if cond and backbone not in ("resnet", "deep_conv"):
            self.shared = nn.Embedding(n_cls, shared_dim)
        blocks = []
        for i in range(n):
            for g in range(depth):
                cout = ins[i] if g < depth - 1 else outs[i]
                blocks.append([_Block(backbone, ins[i], cout, y_dim, sn, act, up=g == depth - 1)])
            if i + 1 in attn:
                blocks.append([_Attn(outs[i], sn)])
        self.blocks = nn.ModuleList([nn.ModuleList(b) for b in blocks])
        if backbone == "deep_conv":
            self.conv4 = _sn(nn.Conv2d(outs[-1], 3, 3, 1, 1), sn)
        else:
            self.bn4 = nn.BatchNorm2d(outs[-1], eps=1e-4)
            self.conv2d5 = _sn(nn.Conv2d(outs[-1], 3, 3, 1, 1), sn)

    def forward(self, z, label):
        b = self.backbone
        if b == "big_resnet":
            zs = torch.split(z, self.chunk, 1)
            ys = [torch.cat([self.shared(label), zi], 1) if self.cond else zi for zi in zs[1:]]
            x = self.linear0(zs[0])
        elif b.startswith("big_resnet_deep"):
            y = torch.cat([self.shared(label), z], 1) if self.cond else z
            ys, x = None, self.linear0(y)
        else:
            y = nn.functional.one_hot(label, self.n_cls).float() if self.cond else None
            ys, x = None, self.linear0(z)
        x = x.view(-1, self.ins[0], 4, 4)
        k = 0
        for (blk,) in self.blocks:
            if isinstance(blk, _Attn):
                x = blk(x)
            else:
                x = blk(x, ys[k] if ys is not None else y)
                k += 1
        if b == "deep_conv":
            return torch.tanh(self.conv4(x))
        return torch.tanh(self.conv2d5(self.act(self.bn4(x))))


def _randomise(G: nn.Module, gen: torch.Generator) -> None:
    """Non-trivial values everywhere: weights ~ 1/sqrt(fan_in), u/v giving a positive sigma, BN stats, sigma."""
    with torch.no_grad():
        for name, p in G.named_parameters():
            if p.ndim >= 2:
                fan_in = p[0].numel() if "deconv" not in name else p.shape[0] * p[0, 0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / fan_in ** 0.5)
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
        for m in G.modules():
            if hasattr(m, "weight_orig"):
                w = m.weight_orig
                mat = (w.transpose(0, 1) if isinstance(m, nn.ConvTranspose2d) else w).reshape(m.weight_u.numel(), -1)
                v = torch.nn.functional.normalize(torch.randn(mat.shape[1], generator=gen), dim=0)
                m.weight_v.copy_(0.97 * v)
                m.weight_u.copy_(0.95 * torch.nn.functional.normalize(mat @ v, dim=0))
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.uniform_(0.5, 1.5, generator=gen)


def _calibrate(G: _RefG, z: torch.Tensor, labels: torch.Tensor, gen: torch.Generator) -> None:
    """BN running stats from one batch (BN layers alone in train mode), perturbed; head scaled so tanh is live."""
    G.eval()
    bns = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    with torch.no_grad():
        G(z, labels)
        G.eval()
        for m in bns:
            m.running_mean.add_(0.1 * m.running_var.sqrt() * torch.randn(m.running_mean.shape, generator=gen))
            m.running_var.mul_(0.8 + 0.45 * torch.rand(m.running_var.shape, generator=gen))
        last = G.conv4 if hasattr(G, "conv4") else G.conv2d5
        box: list[torch.Tensor] = []
        hook = last.register_forward_hook(lambda _m, _i, o: box.append(o))
        G(z, labels)
        hook.remove()
        factor = 0.6 / float(box[0].std())
        if hasattr(last, "weight_orig"):
            last.weight_u.div_(factor)  # sigma is linear in u
        else:
            last.weight.mul_(factor)
        last.bias.mul_(factor)


BACKBONE_CASES = {
    # name: (YAML MODEL section, DATA section, reference kwargs)
    "deep_conv_sn_cbn": ({"backbone": "deep_conv", "g_cond_mtd": "cBN", "apply_g_sn": True},
                         {"img_size": 32, "num_classes": 4}, dict(backbone="deep_conv", img_size=32, z_dim=128,
                         n_cls=4, cond=True, shared_dim=0, conv_dim=0, sn=True, act="ReLU", attn=[])),
    "deep_conv_uncond": ({"backbone": "deep_conv", "z_dim": 16}, {"img_size": 32, "num_classes": 1},
                         dict(backbone="deep_conv", img_size=32, z_dim=16, n_cls=1, cond=False, shared_dim=0,
                              conv_dim=0, sn=False, act="ReLU", attn=[])),
    "resnet_gelu_attn_sn": ({"g_cond_mtd": "cBN", "apply_g_sn": True, "g_act_fn": "GELU", "apply_attn": True,
                             "attn_g_loc": [1], "g_conv_dim": 4, "z_dim": 24}, {"img_size": 64, "num_classes": 3},
                            dict(backbone="resnet", img_size=64, z_dim=24, n_cls=3, cond=True, shared_dim=0,
                                 conv_dim=4, sn=True, act="GELU", attn=[1])),
    "big_resnet_uncond_leaky": ({"backbone": "big_resnet", "g_act_fn": "Leaky_ReLU", "z_dim": 50, "g_conv_dim": 4},
                                {"img_size": 64, "num_classes": 10},
                                dict(backbone="big_resnet", img_size=64, z_dim=50, n_cls=10, cond=False,
                                     shared_dim=0, conv_dim=4, sn=False, act="Leaky_ReLU", attn=[])),
    "deep_legacy": ({"backbone": "big_resnet_deep_legacy", "g_cond_mtd": "cBN", "apply_g_sn": True, "z_dim": 16,
                     "g_shared_dim": 8, "g_conv_dim": 4, "g_depth": 2, "apply_attn": True, "attn_g_loc": [2]},
                    {"img_size": 64, "num_classes": 5},
                    dict(backbone="big_resnet_deep_legacy", img_size=64, z_dim=16, n_cls=5, cond=True, shared_dim=8,
                         conv_dim=4, sn=True, act="ReLU", attn=[2], depth=2)),
    "deep_studiogan_elu": ({"backbone": "big_resnet_deep_studiogan", "g_cond_mtd": "cBN", "apply_g_sn": True,
                            "g_act_fn": "ELU", "z_dim": 16, "g_shared_dim": 8, "g_conv_dim": 4, "g_depth": 2},
                           {"img_size": 64, "num_classes": 5},
                           dict(backbone="big_resnet_deep_studiogan", img_size=64, z_dim=16, n_cls=5, cond=True,
                                shared_dim=8, conv_dim=4, sn=True, act="ELU", attn=[], depth=2)),
}


@pytest.mark.parametrize("case", sorted(BACKBONE_CASES))
def test_backbone_matches_torch_reference(case):
    from converters.studiogan import convert_state_dict

    model_cfg, data_cfg, ref_kwargs = BACKBONE_CASES[case]
    gen = torch.Generator().manual_seed(sorted(BACKBONE_CASES).index(case))
    ref = _RefG(**ref_kwargs)
    _randomise(ref, gen)
    _calibrate(ref, torch.randn(16, ref_kwargs["z_dim"], generator=gen),
               torch.randint(0, ref_kwargs["n_cls"], (16,), generator=gen), gen)
    sd = {k: v.clone() for k, v in ref.state_dict().items()}
    conv = convert_state_dict(sd, {"DATA": data_cfg, "MODEL": model_cfg}, where=case)
    G = StudioGANGenerator(**conv.init_kwargs)
    G.load_state_dict(conv.tensors, strict=True)
    z = torch.randn(3, ref_kwargs["z_dim"], generator=gen)
    labels = torch.tensor([0, 2, 1]) % ref_kwargs["n_cls"]
    with torch.no_grad():
        want = ref(z, labels)
        got = G(z, nn.functional.one_hot(labels, ref_kwargs["n_cls"]).float() if G.c_dim else None)
    assert want.std() > 0.05 and (want.abs() < 0.99).float().mean() > 0.5  # a live, unsaturated reference
    assert_close(got, want, 1e-5, case)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_malicious_generator_file_is_refused_unexecuted(tmp_path):
    """A G_ema file beside a valid YAML whose pickle calls os.system: refused by the allow-list, never run."""
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(fixture_dir("studiogan_sngan_32") / "SNGAN.yaml", run / "SNGAN.yaml")
    marker = tmp_path / "pwned"
    torch.save({"state_dict": {"linear0.weight": torch.zeros(2, 2)}, "x": _Payload(marker)},
               run / "model=G_ema-best-weights-step=1.pth")
    with pytest.raises(zoo.errors.ZooError, match="allow-list"):
        converters.convert(run, tmp_path / "out")
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_spectral_norm_step_reproduces_studiogans_eval_path(converted_fixture):
    """Informational golden: StudioGAN's evaluation loop runs one SN power iteration per call (train-mode SN)."""
    G = zoo.load(converted_fixture("studiogan_biggan_32", "."), quiet=True)
    gold = golden("studiogan_biggan_32")
    G.spectral_norm_step_()
    with torch.no_grad():
        out = G(gold["z_notrunc"], gold["c"])
    assert_close(out, gold["img_notrunc_studiogan_eval_firstcall"], 1e-4, "eval path, first call")
    assert (out - gold["img_notrunc"]).abs().max() > 0.5  # the step matters
