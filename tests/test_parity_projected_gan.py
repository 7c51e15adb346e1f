"""Projected GAN snapshot pickles: every check of projected_fastgan_lite_128's manifest, safe reading and
detection, G_ema (not G), refusals, sampling defaults, ONNX export, the z-space toolkit, and the full and
class-conditional generators against an independent reference."""

from __future__ import annotations

import io
import json
import pickle
import sys
import types

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn
from torch.nn.utils import spectral_norm

import converters
import sdk
import zoo
from conftest import assert_close, fixture_dir, golden, manifest
from converters.projected_gan import convert_generator, read_snapshot
from sdk.cli import cli
from test_parity_fastgan import run_check
from zoo.errors import ConversionError, UnsafePickleError

FIX = "projected_fastgan_lite_128"


@pytest.fixture(scope="module")
def G(converted_fixture):
    return zoo.load(converted_fixture(FIX, manifest(FIX)["convert_source"]))


@pytest.fixture(scope="module")
def snapshot():
    return read_snapshot(fixture_dir(FIX) / "network-snapshot.pkl")


@pytest.mark.parametrize("i", range(len(manifest(FIX)["checks"])))
def test_manifest_check(G, i):
    check, gold = manifest(FIX)["checks"][i], golden(FIX)
    out = run_check(G, check, gold)
    assert_close(out, gold[check["key"]], float(check["tol"]), f"{FIX}:{check['key']} ({check['call']} {check['args']})")


def test_config_read_from_the_pickle(G):
    cfg = manifest(FIX)["config"]["Generator_init"]
    with open(f"{G.model_info['folder']}/config.json") as f:
        config = json.load(f)
    assert config["init_kwargs"] == {"z_dim": cfg["z_dim"], "c_dim": 0, "img_resolution": 128, "img_channels": 3,
                                     "ngf": cfg["ngf"], "lite": True, "cond": False}
    assert config["provenance"]["source_format"] == "projected-gan-pickle"
    assert (G.z_dim, G.w_dim, G.num_ws, G.style_based, G.psi_dtype) == (16, 16, 1, False, None)


def test_detection_routes_the_pickle_here():
    path = fixture_dir(FIX) / "network-snapshot.pkl"
    assert converters.detect_format(path).name == "projected-gan-pickle"
    for other in ("sg2ada_uncond_64", "sg3_t_64"):  # NVIDIA snapshots keep going to the NVIDIA converter
        pkls = sorted(fixture_dir(other).glob("*.pkl"))
        if pkls:
            assert converters.detect_format(pkls[0]).name == "nvidia-pickle"


def test_g_ema_is_converted_not_the_training_copy(snapshot, G):
    from_g = convert_generator(snapshot["G"], "G").tensors
    ours = G.state_dict()
    assert from_g.keys() == ours.keys()
    assert any(not torch.equal(from_g[k], ours[k]) for k in ours)


def test_stale_weight_attribute_is_not_used(snapshot, G):
    """Unused layers pickle a stale W/sigma in their __dict__; the converter recomputes it from weight_orig, u, v."""
    mods = snapshot["G_ema"].state["_modules"]["synthesis"].state["_modules"]
    conv = mods["feat_256"].state["_modules"]["1"].state
    stale = conv["weight"]
    assert not torch.allclose(stale, G.synthesis.feat_256[1].weight)


def test_unknown_global_is_refused_without_running_it(tmp_path):
    class Evil:  # (not print: Ray, started by other tests in this process, replaces builtins.print)
        def __reduce__(self):
            return (exec, ("pwned = True",))

    bad = tmp_path / "network-snapshot.pkl"
    data = pickle.dumps({"G_ema": Evil(), "note": "pg_modules.networks_fastgan"}, protocol=4)
    bad.write_bytes(data)
    assert converters.detect_format(bad).name == "projected-gan-pickle"
    with pytest.raises(UnsafePickleError, match="builtins.exec"):
        converters.convert_to_config(bad)


def test_other_generators_are_refused_naming_the_class(tmp_path, snapshot):
    from converters.safe_pickle import stub_class

    fake = stub_class("pg_modules.networks_fastgan", "Generator")()
    fake.state = dict(snapshot["G_ema"].state)
    fake.state["_modules"] = dict(fake.state["_modules"])
    fake.state["_modules"]["synthesis"] = stub_class("pg_modules.networks_fastgan", "OtherSynthesis")()
    fake.state["_modules"]["synthesis"].state = {"_modules": {}}
    with pytest.raises(ConversionError, match="OtherSynthesis"):
        convert_generator(fake)
    with pytest.raises(ConversionError, match="expected pg_modules.networks_fastgan.Generator"):
        convert_generator(snapshot["D"])
    buf = io.BytesIO()
    pickle.dump([1, 2], buf)
    (tmp_path / "x.pkl").write_bytes(b"\x80\x04" + b"pg_modules." + buf.getvalue())
    with pytest.raises(ConversionError):
        converters.convert_to_config(tmp_path / "x.pkl", format="projected-gan-pickle")


def test_sampling_follows_gen_images(G):
    gold = golden(FIX)
    assert G.default_noise_mode == "none" and G.z_convention == "nvidia"
    imgs = sdk.generate(G, [0, 1, 2, 3], truncation_psi=0.5)  # psi is ignored, as upstream
    assert_close(imgs, gold["img"], 1e-4, "sdk.generate seeds 0-3")


def test_cli_sample_and_export_without_psi_input(G, tmp_path):
    folder = G.model_info["folder"]
    r = CliRunner().invoke(cli, ["sample", folder, "--seeds", "0-1", "--grid", str(tmp_path / "g.png"), "--json", "-q"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "p.onnx"
    r = CliRunner().invoke(cli, ["export", folder, "--out", str(out), "--no-mobile-check", "--json", "-q"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)["model"]
    assert list(report["inputs"]) == ["z"] and report["inputs"]["z"][0] == "batch"
    assert report["metadata"]["truncation_psi"] == "none"
    onnx_G = sdk.OnnxGenerator(str(out), quiet=True)
    assert_close(sdk.generate(onnx_G, [0, 1]), golden(FIX)["img"][:2], 1e-3, "onnxruntime vs golden")


def test_latent_toolkit_in_z(G):
    d = sdk.directions.sefa(G, k=3)
    assert d.space == "z" and d.vectors.shape == (3, 16) and d.params["source_layers"] == ["synthesis.init.init.0"]
    g = sdk.directions.ganspace(G, n_samples=48, components=2, batch_size=48)
    assert g.space == "z" and g.vectors.shape == (2, 16)
    frames = sdk.interpolate(G, [0, 1], frames=3)
    assert len(frames) == 3 and frames[1].size == (128, 128)
    target = sdk.generate(G, [5])
    inv = sdk.invert(G, target, steps=6, loss="pixel", starts=2, quiet=True)
    with torch.no_grad():
        err0 = (G(torch.randn(1, 16, generator=torch.Generator().manual_seed(0))) - target).square().mean().item()
    assert inv.space == "z" and (inv.reconstruction - target).square().mean().item() < err0


# --- Full (noise) and class-conditional variants -----------------------------------------------------------
# The shared fixture is lite and unconditional. An independent re-statement of upstream's module structure
# (pg_modules/blocks.py, pg_modules/networks_fastgan.py: class names, child names, torch.nn.utils.spectral_norm
# hooks) is pickled the way training_loop.py pickles a snapshot, under upstream's import paths, then converted;
# the converted model must reproduce this reference's eval-mode output (torch's own spectral norm), including
# its random noise after torch.manual_seed.

MULT = {2: 16, 4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5}


class GLU(nn.Module):
    def forward(self, x):
        n = x.shape[1] // 2
        return x[:, :n] * torch.sigmoid(x[:, n:])


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x + self.weight * torch.randn(x.shape[0], 1, x.shape[2], x.shape[3])


class InitLayer(nn.Module):
    def __init__(self, nz, ch):
        super().__init__()
        self.init = nn.Sequential(spectral_norm(nn.ConvTranspose2d(nz, ch * 2, 4, 1, 0, bias=False)),
                                  nn.BatchNorm2d(ch * 2), GLU())

    def forward(self, z):
        return self.init(z.view(z.shape[0], -1, 1, 1))


class SEBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.main = nn.Sequential(nn.AdaptiveAvgPool2d(4), spectral_norm(nn.Conv2d(cin, cout, 4, 1, 0, bias=False)),
                                  Swish(), spectral_norm(nn.Conv2d(cout, cout, 1, 1, 0, bias=False)), nn.Sigmoid())

    def forward(self, small, big):
        return big * self.main(small)


class CCBN(nn.Module):
    def __init__(self, out, inp):
        super().__init__()
        self.gain, self.bias = spectral_norm(nn.Linear(inp, out)), spectral_norm(nn.Linear(inp, out))
        self.register_buffer("stored_mean", torch.zeros(out))
        self.register_buffer("stored_var", torch.ones(out))

    def forward(self, x, y):
        out = F.batch_norm(x, self.stored_mean, self.stored_var, None, None, self.training, 0.1, 1e-5)
        return out * (1 + self.gain(y)).view(y.shape[0], -1, 1, 1) + self.bias(y).view(y.shape[0], -1, 1, 1)


class UpBlockBigCond(nn.Module):
    def __init__(self, cin, cout, z_dim):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv1 = spectral_norm(nn.Conv2d(cin, cout * 2, 3, 1, 1, bias=False))
        self.conv2 = spectral_norm(nn.Conv2d(cout, cout * 2, 3, 1, 1, bias=False))
        self.bn1, self.bn2 = CCBN(cout * 2, z_dim), CCBN(cout * 2, z_dim)
        self.act = GLU()
        self.noise = NoiseInjection()

    def forward(self, x, c):
        x = self.act(self.bn1(self.noise(self.conv1(self.up(x))), c))
        return self.act(self.bn2(self.noise(self.conv2(x)), c))


def up_block_big(cin, cout):
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                         spectral_norm(nn.Conv2d(cin, cout * 2, 3, 1, 1, bias=False)), NoiseInjection(),
                         nn.BatchNorm2d(cout * 2), GLU(), spectral_norm(nn.Conv2d(cout, cout * 2, 3, 1, 1, bias=False)),
                         NoiseInjection(), nn.BatchNorm2d(cout * 2), GLU())


class DummyMapping(nn.Module):
    def forward(self, z, c, **kwargs):
        return z.unsqueeze(1)


class FastganSynthesis(nn.Module):
    def __init__(self, ngf, z_dim, res, cond):
        super().__init__()
        nfc = {k: int(v * ngf) for k, v in MULT.items()}
        self.cond, self.res = cond, res
        self.init = InitLayer(z_dim, nfc[2])
        for r in (8, 16, 32, 64, 128, 256):
            setattr(self, f"feat_{r}", UpBlockBigCond(nfc[r // 2], nfc[r], z_dim) if cond
                    else up_block_big(nfc[r // 2], nfc[r]))
        self.se_64, self.se_128, self.se_256 = SEBlock(nfc[4], nfc[64]), SEBlock(nfc[8], nfc[128]), SEBlock(nfc[16], nfc[256])
        self.to_big = spectral_norm(nn.Conv2d(nfc[res], 3, 3, 1, 1, bias=True))
        if cond:
            self.embed = nn.Embedding(1000, z_dim)

    def forward(self, ws, c):
        e = self.embed(c.argmax(1)) if self.cond else None
        call = (lambda m, x: m(x, e)) if self.cond else (lambda m, x: m(x))
        x = ws[:, 0] * (ws[:, 0].square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        f4 = self.init(x)
        f8 = call(self.feat_8, f4)
        f16 = call(self.feat_16, f8)
        f32 = call(self.feat_32, f16)
        f64 = self.se_64(f4, call(self.feat_64, f32))
        f = self.se_128(f8, call(self.feat_128, f64))
        if self.res >= 256:
            f = self.se_256(f16, call(self.feat_256, f))
        return self.to_big(f)


class Generator(nn.Module):
    def __init__(self, z_dim, c_dim, res, ngf, cond):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.img_resolution, self.img_channels = z_dim, c_dim, 0, res, 3
        self.mapping = DummyMapping()
        self.synthesis = FastganSynthesis(ngf, z_dim, res, cond)

    def forward(self, z, c, **kwargs):
        return self.synthesis(self.mapping(z, c), c)


CLASSES = {"pg_modules.blocks": [GLU, Swish, NoiseInjection, InitLayer, SEBlock, CCBN, UpBlockBigCond],
           "pg_modules.networks_fastgan": [DummyMapping, Generator]}


@pytest.fixture()
def upstream_names(monkeypatch):
    """Give the reference classes upstream's import paths for pickling (as the real snapshot names them)."""
    monkeypatch.setitem(sys.modules, "pg_modules", types.ModuleType("pg_modules"))
    for mod, classes in CLASSES.items():
        m = types.ModuleType(mod)
        for cls in classes:
            monkeypatch.setattr(cls, "__module__", mod)
            setattr(m, cls.__name__, cls)
        monkeypatch.setitem(sys.modules, mod, m)
    name = "FastganSynthesisCond"
    cond_cls = type(name, (FastganSynthesis,), {"__module__": "pg_modules.networks_fastgan", "__qualname__": name})
    monkeypatch.setattr(FastganSynthesis, "__module__", "pg_modules.networks_fastgan")
    sys.modules["pg_modules.networks_fastgan"].FastganSynthesis = FastganSynthesis
    sys.modules["pg_modules.networks_fastgan"].FastganSynthesisCond = cond_cls
    return cond_cls


def _reference(cond: bool, cond_cls: type) -> Generator:
    torch.manual_seed(7)
    G = Generator(z_dim=8, c_dim=5 if cond else 0, res=256 if cond else 128, ngf=4, cond=cond)
    if cond:
        G.synthesis.__class__ = cond_cls
    gen = torch.Generator().manual_seed(8)
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, NoiseInjection):
                m.weight.fill_(0.3)
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=gen))
        G.train()
        c = F.one_hot(torch.arange(4) % 5, 5).float() if cond else None
        for _ in range(2):  # fills BN statistics and advances the spectral-norm u/v
            G(torch.randn(4, 8), c)
        if cond:
            for m in G.modules():
                if isinstance(m, CCBN):
                    m.stored_mean.copy_(0.1 * torch.randn(m.stored_mean.shape, generator=gen))
                    m.stored_var.copy_(1 + 0.2 * torch.rand(m.stored_var.shape, generator=gen))
    return G.eval().requires_grad_(False)


@pytest.mark.parametrize("cond", [False, True], ids=["fastgan-128", "fastgan-cond-256"])
def test_full_and_conditional_variants(tmp_path, upstream_names, cond):
    ref = _reference(cond, upstream_names)
    path = tmp_path / "network-snapshot.pkl"
    with open(path, "wb") as f:
        pickle.dump({"G": ref, "D": None, "G_ema": ref, "training_set_kwargs": {}, "progress": {}}, f, protocol=4)
    assert converters.detect_format(path).name == "projected-gan-pickle"
    out = converters.convert(path, tmp_path / "model")
    G = zoo.load(out)
    assert (G.synthesis.cond, G.c_dim, G.img_resolution) == (cond, 5 if cond else 0, 256 if cond else 128)
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(1))
    c = G.make_c([0, 3, 4], 3) if cond else None
    with torch.no_grad():
        torch.manual_seed(99)
        want = ref(z, c)
        torch.manual_seed(99)
        got = G(z, c, noise_mode="random")
        quiet = G(z, c, noise_mode="none")
    err = (got - want).abs().max().item()
    assert err < 1e-4, err
    assert (quiet - want).abs().max().item() > 1e-3  # the noise matters, so the draw order was checked
    assert G.num_noise_inputs == (12 if cond else 10)


class ProjectedDiscriminator(nn.Module):
    pass


class EasyDict(dict):
    pass


def test_stylegan2_cfg_snapshot_goes_to_the_nvidia_converter(tmp_path, monkeypatch):
    """--cfg stylegan2: persistent G_ema (NVIDIA format) beside a pg_modules discriminator."""
    from converters.nvidia import PersistentRecord, read_snapshot as nvidia_read

    src = sorted(fixture_dir("sg2ada_uncond_64").glob("*.pkl"))[0]
    snap = nvidia_read(src)
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # only its import path is pickled
        raise AssertionError("never called")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", persistence)
    disc = types.ModuleType("pg_modules.discriminator")
    disc.ProjectedDiscriminator = ProjectedDiscriminator
    monkeypatch.setitem(sys.modules, "pg_modules", types.ModuleType("pg_modules"))
    monkeypatch.setitem(sys.modules, "pg_modules.discriminator", disc)
    monkeypatch.setattr(ProjectedDiscriminator, "__module__", "pg_modules.discriminator")
    dnnlib_util = types.ModuleType("dnnlib.util")
    dnnlib_util.EasyDict = EasyDict
    monkeypatch.setitem(sys.modules, "dnnlib", types.ModuleType("dnnlib"))
    monkeypatch.setitem(sys.modules, "dnnlib.util", dnnlib_util)
    monkeypatch.setattr(EasyDict, "__module__", "dnnlib.util")
    from converters.safe_pickle import StubDict

    class P(pickle.Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, PersistentRecord):
                meta = {"class_name": obj.class_name, "module_src": obj.module_src, "state": obj.state}
                return _reconstruct_persistent_obj, (meta,)
            if isinstance(obj, StubDict):
                return EasyDict, (dict(obj),)
            return NotImplemented

    path = tmp_path / "network-snapshot.pkl"
    with open(path, "wb") as f:
        P(f, protocol=4).dump({"G": snap["G_ema"], "G_ema": snap["G_ema"], "D": ProjectedDiscriminator(),
                               "training_set_kwargs": {}, "progress": {}})
    assert converters.detect_format(path).name == "projected-gan-pickle"
    config, tensors = converters.convert_to_config(path)
    ref_config, ref = converters.convert_to_config(src)
    assert config["architecture"] == ref_config["architecture"] == "stylegan2"
    assert tensors.keys() == ref.keys() and all(torch.equal(tensors[k], ref[k]) for k in ref)
