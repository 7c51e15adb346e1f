"""Latent directions: SeFa, GANSpace, CLIP text edits, published-file importers, save/load and checks."""

from __future__ import annotations

import importlib.util
import math
import os
import pickle

import numpy as np
import pytest
import torch

import zoo
from conftest import DIRECTIONS
from sdk.latent import directions as D
from sdk.latent.directions import Direction, DirectionError
from zoo.errors import OfflineError, UnsafePickleError

SG2 = ("sg2ada_uncond_64", "network-snapshot-000000.pkl")


@pytest.fixture(scope="module")
def G(converted_fixture):
    return zoo.load(converted_fixture(*SG2))


@pytest.fixture(scope="module")
def dcgan():
    return zoo.load("dcgan-digiface-64", quiet=True)


@pytest.fixture(scope="module")
def sefa_all(G):
    return D.sefa(G)


def _direct_sefa(weights: list[torch.Tensor], normalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    A = torch.cat([w.to(torch.float64) for w in weights])
    if normalize:
        A = A / A.norm(dim=1, keepdim=True)
    evals, evecs = torch.linalg.eigh(A.t() @ A)
    return evals.flip(0), evecs.flip(1).t()


def _conv_affines(G, blocks_layers: list[tuple[str, str]]) -> list[torch.Tensor]:
    sd = G.state_dict()
    gain = 1 / math.sqrt(G.w_dim)  # FullyConnectedLayer weight_gain (lr_multiplier 1)
    return [sd[f"synthesis.{b}.{layer}.affine.weight"] * gain for b, layer in blocks_layers]


def _assert_same_subspace(got: torch.Tensor, ref: torch.Tensor, k: int) -> None:
    # Eigenvectors are unique up to sign: compare |cos| of the leading ones.
    cos = (got[:k].to(torch.float64) * ref[:k]).sum(dim=1).abs()
    assert cos.min() > 1 - 1e-5, f"leading eigenvectors differ: |cos| = {cos.tolist()}"


def test_sefa_is_orthonormal_and_matches_eigh(G, sefa_all):
    d = sefa_all
    assert d.space == "w" and d.method == "sefa" and d.vectors.shape == (512, 512)
    assert d.weights_sha256 == G.model_info["weights_sha256"]
    eye = d.vectors.to(torch.float64) @ d.vectors.to(torch.float64).t()
    assert (eye - torch.eye(512, dtype=torch.float64)).abs().max() < 1e-5
    # Independent reconstruction: all convolution affines (ToRGB excluded), rows normalised.
    names = [("b4", "conv1")] + [(f"b{r}", c) for r in (8, 16, 32, 64) for c in ("conv0", "conv1")]
    evals, evecs = _direct_sefa(_conv_affines(G, names))
    assert torch.allclose(d.extra["eigenvalues"].to(torch.float64), evals, rtol=1e-4, atol=1e-6)
    gaps = (evals[:9] - evals[1:10]).abs()
    assert gaps.min() > 1e-3  # distinct leading eigenvalues, so the vectors are well defined
    _assert_same_subspace(d.vectors, evecs, 8)


def test_sefa_layers_and_weight_gain(G):
    d = D.sefa(G, layers=[0, 1], k=6, normalize=False)
    assert d.layers == [0, 1] and d.vectors.shape == (6, 512)
    # W+ index 0 feeds b4.conv1; index 1 feeds b8.conv0 (and b4.torgb, excluded).
    evals, evecs = _direct_sefa(_conv_affines(G, [("b4", "conv1"), ("b8", "conv0")]), normalize=False)
    assert torch.allclose(d.extra["eigenvalues"].to(torch.float64), evals[:6], rtol=1e-4)
    _assert_same_subspace(d.vectors, evecs, 6)
    with pytest.raises(DirectionError, match="out of range"):
        D.sefa(G, layers=[10])


def test_style_affines_map_to_w_plus_rows(G):
    got = {name: idx for name, _, idx, _ in D.style_affines(G)}
    # NVIDIA StyleGAN2 layout: convolutions take consecutive ws; a block's ToRGB reads the next one.
    expected = {"b4.conv1.affine": 0, "b4.torgb.affine": 1}
    for i, res in enumerate((8, 16, 32, 64)):
        expected.update({f"b{res}.conv0.affine": 1 + 2 * i, f"b{res}.conv1.affine": 2 + 2 * i,
                         f"b{res}.torgb.affine": 3 + 2 * i})
    assert got == expected
    assert {n for n, _, _, rgb in D.style_affines(G) if rgb} == {k for k in expected if "torgb" in k}


def test_sefa_dcgan_uses_first_projection(dcgan):
    d = D.sefa(dcgan, k=10)
    assert d.space == "z" and d.vectors.shape == (10, 100) and d.layers is None
    w = dcgan.main[0].weight.detach()  # [z_dim, C, 4, 4]
    evals, evecs = _direct_sefa([w.flatten(1).t()])
    assert torch.allclose(d.extra["eigenvalues"].to(torch.float64), evals[:10], rtol=1e-4)
    _assert_same_subspace(d.vectors, evecs, 5)
    with pytest.raises(DirectionError, match="no W\\+ layers"):
        D.sefa(dcgan, layers=[0])


def test_ganspace_w_space(G):
    d = D.ganspace(G, n_samples=3000, components=6, seed=1)
    assert d.space == "w" and d.vectors.shape == (6, 512)
    v = d.vectors.to(torch.float64)
    assert (v @ v.t() - torch.eye(6, dtype=torch.float64)).abs().max() < 1e-5
    std = d.extra["std"]
    assert torch.all(std[:-1] >= std[1:]) and std[0] > 0
    # Fresh samples: variance along PC0 matches std[0] and beats a random direction.
    z = torch.from_numpy(np.random.RandomState(5).randn(2000, 512)).float()
    w = G.mapping(z, None)[:, 0].to(torch.float64)
    proj = (w - d.extra["mean"].to(torch.float64)) @ v.t()
    assert abs(proj[:, 0].std().item() / std[0].item() - 1) < 0.1
    rnd = torch.nn.functional.normalize(torch.randn(512, dtype=torch.float64), dim=0)
    assert proj[:, 0].std() > 2 * ((w - w.mean(0)) @ rnd).std()
    assert torch.allclose(D.ganspace(G, n_samples=3000, components=6, seed=1).vectors, d.vectors)


def test_ganspace_dcgan_regresses_to_z(dcgan):
    d = D.ganspace(dcgan, n_samples=600, components=4, seed=0)
    assert d.space == "z" and d.vectors.shape == (4, 100) and d.params["layer"] == "main.2"
    assert torch.allclose(d.vectors.norm(dim=1), torch.ones(4), atol=1e-5)
    # z ~ N(0, I): the spread of z along any unit vector is about 1.
    assert torch.all((d.extra["std"] > 0.8) & (d.extra["std"] < 1.25))
    # The z direction predicts the activation principal coordinate it was regressed from.
    acts = {}

    def keep(_m, _a, out):
        acts["x"] = out.flatten(1).clone()

    h = dcgan.main[2].register_forward_hook(keep)
    z = torch.from_numpy(np.random.RandomState(3).randn(400, 100)).float()
    with torch.no_grad():
        dcgan(z)
    h.remove()
    x = acts["x"].to(torch.float64)
    _, _, V = torch.svd_lowrank(x - x.mean(0), q=8, niter=6)
    pc0 = (x - x.mean(0)) @ V[:, 0]
    corr = np.corrcoef(pc0.numpy(), (z.to(torch.float64) @ d.vectors[0].to(torch.float64)).numpy())[0, 1]
    assert abs(corr) > 0.5


def test_direction_roundtrip_and_checks(G, dcgan, sefa_all, tmp_path):
    p = sefa_all.save(tmp_path / "sefa.safetensors")
    back = D.load(p)
    assert back.method == "sefa" and back.space == "w" and back.weights_sha256 == sefa_all.weights_sha256
    assert torch.equal(back.vectors, sefa_all.vectors)
    assert torch.equal(back.extra["eigenvalues"], sefa_all.extra["eigenvalues"])
    back.check(G)
    with pytest.raises(DirectionError, match="another generator"):
        back.check(dcgan)
    with pytest.raises(DirectionError, match="no W space"):
        Direction(vectors=back.vectors[:2], space="w").check(dcgan)
    other = Direction(vectors=back.vectors[:2], space="w", method="sefa", weights_sha256="0" * 64)
    with pytest.raises(DirectionError, match="another generator"):
        other.check(G)
    z_boundary = D.load(DIRECTIONS / "interfacegan" / "stylegan_ffhq_age_boundary.npy")
    with pytest.raises(DirectionError, match="width 512"):
        z_boundary.check(dcgan)
    with pytest.raises(DirectionError, match="unknown latent space"):
        Direction(vectors=torch.zeros(1, 4), space="s")
    assert not list(tmp_path.glob(".*tmp"))


def test_interfacegan_boundaries_load():
    files = sorted((DIRECTIONS / "interfacegan").glob("*.npy"))
    assert len(files) == 39
    for f in files:
        d = D.load(f)
        assert d.vectors.shape == (1, 512) and d.method == "interfacegan"
        assert d.space == ("w" if f.name.endswith("_w_boundary.npy") else "z"), f.name
        assert d.params["conditional"] == ("_c_" in f.name)
        assert abs(d.vectors.norm().item() - 1) < 1e-5
        assert d.params["dtype"] == "float64" and d.weights_sha256 is None
    d = D.load(DIRECTIONS / "interfacegan" / "stylegan_ffhq_eyeglasses_c_age_boundary.npy")
    assert d.names == ["eyeglasses"] and d.params["model"] == "stylegan_ffhq" and d.params["conditions"] == ["age"]
    d = D.load(DIRECTIONS / "interfacegan" / "pggan_celebahq_age_c_gender_eyeglasses_boundary.npy")
    assert d.params["conditions"] == ["gender", "eyeglasses"] and d.names == ["age"]


def test_interfacegan_pp_boundaries_load():
    for folder in sorted((DIRECTIONS / "interfacegan_pp").iterdir()):
        files = sorted(folder.glob("*.npy"))
        assert len(files) == 39
        for f in files:
            d = D.load(f)
            assert d.vectors.shape == (1, 512) and d.params["dtype"] == "float32"
            assert d.space == ("w" if folder.name.endswith("_w") else "z")
        assert D.load(folder / "boundary_Bald.npy").names == ["Bald"]


def test_project_boundary_reproduces_published_conditionals():
    ifg = DIRECTIONS / "interfacegan"
    load = lambda name: np.load(ifg / f"{name}_boundary.npy")  # noqa: E731
    cases = [("stylegan_ffhq_age", ["gender"]), ("stylegan_ffhq_eyeglasses", ["age"]),
             ("pggan_celebahq_age", ["gender", "eyeglasses"]), ("pggan_celebahq_gender", ["age", "eyeglasses"])]
    for primal, conds in cases:
        model = primal.rsplit("_", 1)[0]
        got = D.project_boundary(load(primal), *[load(f"{model}_{c}") for c in conds])
        ref = torch.from_numpy(load(f"{primal}_c_{'_'.join(conds)}")).float()
        assert got.shape == (1, 512)
        assert (got * ref).sum().item() > 1 - 1e-4, primal
        for c in conds:  # moving along the result keeps the condition attributes fixed
            assert abs((got.double() * torch.from_numpy(load(f"{model}_{c}"))).sum().item()) < 1e-5
    with pytest.raises(DirectionError, match="span"):
        b = load("stylegan_ffhq_age")
        D.project_boundary(b, b)


def test_e4e_directions_load(G):
    base = DIRECTIONS / "e4e"
    for name in ("age", "smile"):
        d = D.load(base / "interfacegan_directions" / f"{name}.pt")
        assert d.space == "w" and d.vectors.shape == (1, 512) and d.names == [name]
        d.check(G)  # same width: applies to any 512-wide W
    pose = D.load(base / "interfacegan_directions" / "pose.pt")
    assert pose.space == "w+" and pose.vectors.shape == (1, 18, 512) and pose.num_layers == 18
    with pytest.raises(DirectionError, match="18 W\\+ rows"):
        pose.check(G)
    for name, k in (("ffhq_pca", 80), ("cars_pca", 80)):
        d = D.load(base / "ganspace_pca" / f"{name}.pt")
        assert d.method == "ganspace" and d.space == "w" and d.vectors.shape == (k, 512)
        assert d.extra["std"].shape == (k,) and d.extra["mean"].shape == (512,)
    d = D.load(base / "ganspace_pca" / "ffhq_pca.pt")
    assert abs(d.scale(0) - 2.8556) < 1e-3


def test_ganspace_pickle_loads_with_numpy_only_unpickler():
    d = D.load(DIRECTIONS / "ganspace" / "StyleGAN2-Light_direction-ffhq-ipca-w-style-comp15-range8-9.pkl")
    assert d.space == "w" and d.method == "ganspace" and d.vectors.shape == (1, 512)
    assert d.layers == [8] and d.names == ["Light direction"]
    assert abs(d.scale() - 1.0335) < 1e-3
    assert d.params["component_index"] == 15 and d.params["decomposition"]["name"] == "ipca"
    assert abs(d.params["sigma_range"] + 2.8) < 1e-9


class _SystemPayload:
    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_numpy_unpickler_refuses_code_and_object_arrays(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"lat_comp": np.zeros((1, 4), np.float32), "x": _SystemPayload(marker)}))
    with pytest.raises(UnsafePickleError, match="allow-list"):
        D.load(evil)
    assert not marker.exists()
    objs = tmp_path / "objs.pkl"
    objs.write_bytes(pickle.dumps({"lat_comp": np.array([1, "a"], dtype=object)}))
    with pytest.raises(UnsafePickleError, match="object"):
        D.read_numpy_pickle(objs)
    ok = tmp_path / "ok.pkl"
    ok.write_bytes(pickle.dumps({"lat_comp": np.ones((1, 4), np.float32), "latent_space": "Z",
                                 "lat_stdev": 2.0, "edit_start": 0, "edit_end": 2}))
    d = D.load(ok)
    assert d.space == "z" and d.layers == [0, 1] and d.scale() == 2.0


def test_unknown_or_broken_files(tmp_path):
    bad = tmp_path / "x.txt"
    bad.write_text("hi")
    with pytest.raises(DirectionError, match="unknown direction file type"):
        D.load(bad)
    with pytest.raises(FileNotFoundError):
        D.load(tmp_path / "missing.npy")
    npy = tmp_path / "three.npy"
    np.save(npy, np.zeros((3, 512)))
    with pytest.raises(DirectionError, match="shape \\(1, width\\)"):
        D.load(npy)
    st = tmp_path / "junk.safetensors"
    st.write_bytes(b"\x00" * 20)
    with pytest.raises(DirectionError, match="not a readable direction file"):
        D.load(st)


# --- CLIP text edits ---------------------------------------------------------------------------------


def _need_open_clip() -> None:
    # Not importorskip: importing open_clip directly may fail on a mismatched torchvision, which
    # sdk.latent.textedit.import_open_clip handles; only a missing package skips.
    if importlib.util.find_spec("open_clip") is None:
        pytest.skip("open-clip-torch is not installed (pip install 'ganzoo[clip]')")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    _need_open_clip()
    from _tiny_clip import make_tiny_clip

    return make_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny")


def test_open_clip_imports_without_working_torchvision():
    from sdk.latent.textedit import import_open_clip

    _need_open_clip()
    oc = import_open_clip()
    assert hasattr(oc, "create_model")


def test_open_clip_guard_with_broken_torchvision_init(tmp_path):
    """Whatever torchvision is installed, simulate its init failing as a mismatched build does."""
    import subprocess
    import sys

    _need_open_clip()
    code = (
        "import importlib, sys\n"
        "real = importlib.import_module\n"
        "def broken(name, *a, **k):\n"
        "    if name == 'torchvision':\n"
        "        raise RuntimeError('operator torchvision::nms does not exist')\n"
        "    return real(name, *a, **k)\n"
        "importlib.import_module = broken\n"
        "from sdk.latent.textedit import import_open_clip\n"
        "oc = import_open_clip()\n"
        "import torchvision.transforms\n"
        "print(oc.__name__, hasattr(torchvision, '__version__'))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.split() == ["open_clip", "True"]


def test_text_edit_lowers_clip_loss_and_stays_close(G, tiny_clip):
    d = D.text(G, "a photo of a smiling face", seed=3, pretrained=tiny_clip, steps=8, lr=0.02, l2=0.05)
    assert d.method == "text" and d.space == "w+" and d.vectors.shape == (1, G.num_ws, G.w_dim)
    assert d.weights_sha256 == G.model_info["weights_sha256"]
    p = d.params
    assert p["clip_loss_end"] < p["clip_loss_start"]
    w0 = G.mapping(torch.from_numpy(np.random.RandomState(3).randn(1, 512)).float(), None)
    # Stays near the source: the move is small next to the latent itself.
    assert 0 < p["distance"] < 0.25 * w0.norm().item()
    assert abs(d.scale() - p["distance"]) < 1e-6
    # Strength 1 reproduces the optimised latent's CLIP score.
    from sdk.latent.edit import edit, synthesize
    from sdk.latent.textedit import ClipScorer, load_clip

    scorer = ClipScorer(*load_clip(pretrained=tiny_clip), torch.device("cpu"))
    target = scorer.text(["a photo of a smiling face"])
    moved = synthesize(G, edit(G, w0, d, 1.0, space="w+"), "w+")
    with torch.no_grad():
        loss = (1 - scorer.image(moved) @ target.t()).item()
    assert abs(loss - p["clip_loss_end"]) < 1e-4


def test_text_edit_z_model_with_neutral(dcgan, tiny_clip):
    d = D.text(dcgan, "a smiling face", neutral="a face", seed=0, pretrained=tiny_clip, steps=4, lr=0.05,
               id_weight=0.5)
    assert d.space == "z" and d.vectors.shape == (1, 100)
    assert d.params["clip_loss_end"] < d.params["clip_loss_start"]


def test_text_edit_errors(G, tiny_clip, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="open_clip_config.json"):
        D.text(G, "x", pretrained=empty, steps=1)
    (empty / "open_clip_config.json").write_text((tiny_clip / "open_clip_config.json").read_text())
    with pytest.raises(FileNotFoundError, match="no CLIP weights"):
        D.text(G, "x", pretrained=empty, steps=1)
    with pytest.raises(ValueError, match="empty"):
        D.text(G, "  ", pretrained=tiny_clip)
    with pytest.raises(ValueError, match="unknown CLIP model"):
        D.text(G, "x", clip_model="ViT-Q-99", pretrained="laion2b_s34b_b79k")
    # Offline, nothing cached: a clear error naming the fix.
    import huggingface_hub.constants as hc

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(OfflineError, match="pretrained=DIR"):
        D.text(G, "x", pretrained="laion2b_s34b_b79k", steps=1)

