"""``ganzoo align`` and ``ganzoo edit-photo`` end to end on a real photo through a converted fixture model."""

from __future__ import annotations

import json
import os
import shutil
import types

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import DIRECTIONS, fixture_dir
from sdk.cli import cli
from sdk.photo.edit import INTERFACEGAN, PhotoEditError, interfacegan_path

if os.environ.get("GANZOO_EXPECT_INSTALLED") == "1":  # CI installs the align extra: run, never skip
    import dlib  # noqa: F401
else:
    pytest.importorskip("dlib", reason="the align extra (dlib-bin + face-recognition-models) is not installed")


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    from skimage import data

    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


def _plain_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def test_align_command(photo, tmp_path):
    out = tmp_path / "aligned.png"
    r = CliRunner().invoke(cli, ["align", str(photo), "--out", str(out), "--size", "128", "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert Image.open(out).size == (128, 128) and info["detector"] == "dlib-68" and len(info["landmarks"]) == 68
    assert (out.stat().st_mode & 0o777) == _plain_mode()
    bad = CliRunner().invoke(cli, ["align", str(photo), "--out", str(tmp_path / "x.png"), "--landmarks",
                                   str(tmp_path / "missing.json")])
    assert bad.exit_code != 0 and "landmarks" in bad.output and not (tmp_path / "x.png").exists()


def test_edit_photo_end_to_end(photo, tmp_path, converted_fixture):
    """Real photo -> dlib alignment -> e4e encoder -> PTI -> SeFa edit -> pasted back, with a JSON report."""
    enc = converted_fixture("e4e_64", "e4e_ffhq_encode_64.pt")
    out = tmp_path / "edit.webp"
    args = ["edit-photo", str(photo), "--encoder", str(enc), "--direction", "sefa:1", "--strength", "-2:2",
            "--frames", "3", "--pti", "--pti-steps", "4", "--loss", "pixel", "--paste-back", "--out", str(out)]
    r = CliRunner().invoke(cli, args + ["--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["frames"] == 3 and rep["strengths"] == [-2.0, 0.0, 2.0]
    assert set(rep["timings"]) == {"align", "encode", "pti", "edit", "paste back"}
    assert rep["inversion"]["method"] == "encoder" and rep["inversion"]["loss_detail"].startswith("encoder only (e4e")
    assert rep["pti"]["steps"] == 4 and rep["pti"]["psnr_after"] == pytest.approx(rep["reconstruction_psnr"], abs=1e-3)
    assert rep["direction"]["method"] == "sefa" and rep["align"]["faces_found"] == 1
    anim = Image.open(out)
    assert anim.n_frames == 3 and anim.size == (512, 512)  # whole photo back
    assert (out.stat().st_mode & 0o777) == _plain_mode()
    # pixels far from the face are the photo's own
    first = np.asarray(anim.convert("RGB"), dtype=np.int16)
    orig = np.asarray(Image.open(photo).convert("RGB"), dtype=np.int16)
    assert np.abs(first[400:, :100] - orig[400:, :100]).max() <= 1  # lossless webp
    # progress per stage on stderr without --json
    r2 = CliRunner().invoke(cli, ["edit-photo", str(photo), "--encoder", str(enc), "--direction", "sefa:1",
                                  "--frames", "1", "--strength", "1", "--out", str(tmp_path / "e.png")])
    assert r2.exit_code == 0, r2.output
    assert "[1/3] align" in r2.output and "[2/3] encode" in r2.output and "[3/3] edit" in r2.output


def test_edit_photo_without_encoder_inverts_and_says_so(photo, tmp_path, converted_fixture):
    model = converted_fixture("e4e_64", "e4e_ffhq_encode_64.pt")  # --model of an encoder folder: its generator
    r = CliRunner().invoke(cli, ["edit-photo", str(photo), "--model", str(fixture_dir("rosinality_64") / "000000.pt"),
                                 "--direction", "sefa:0", "--frames", "1", "--strength", "1", "--steps", "2",
                                 "--loss", "pixel", "--out", str(tmp_path / "e.png"), "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["inversion"]["method"] == "optimize" and "no encoder is registered" in rep["inversion"]["note"]
    assert "invert" in rep["timings"]
    r = CliRunner().invoke(cli, ["edit-photo", str(photo), "--model", str(model), "--direction", "interfacegan:smile",
                                 "--out", str(tmp_path / "f.png")])
    assert r.exit_code != 0 and "stylegan2-ffhq" in r.output and "sefa:K" in r.output
    r = CliRunner().invoke(cli, ["edit-photo", str(photo), "--direction", "sefa", "--out", str(tmp_path / "g.png")])
    assert r.exit_code != 0 and "--model" in r.output


def test_interfacegan_names_resolve_to_published_files(tmp_path):
    """interfacegan:NAME is a published file (sha256-pinned) for stylegan2-ffhq's W space, cached like models."""
    from sdk.latent import directions
    from zoo.loading import cache_dir

    assert set(INTERFACEGAN) == {"age", "pose", "smile"}
    ffhq_like = types.SimpleNamespace(w_dim=512, num_ws=18)
    cached = cache_dir() / "directions" / "interfacegan-smile.pt"
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(DIRECTIONS / "e4e" / "interfacegan_directions" / "smile.pt", cached)
    from zoo.format import sha256_file

    assert sha256_file(cached) == INTERFACEGAN["smile"].sha256
    path = interfacegan_path("smile", ffhq_like)
    assert path == cached and directions.load(path).vector(0).numel() == 512
    with pytest.raises(PhotoEditError, match="published: age, pose, smile"):
        interfacegan_path("beard", ffhq_like)
    with pytest.raises(PhotoEditError, match="18 x 512"):
        interfacegan_path("age", types.SimpleNamespace(w_dim=32, num_ws=10))
