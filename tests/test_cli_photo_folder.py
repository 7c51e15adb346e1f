"""``ganzoo edit-photo PHOTOS/ --out OUT/``: every real photo of a folder edited through a converted e4e
fixture, failed photos (unreadable, no face) reported with their error, reruns resume."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from sdk.cli import cli

if os.environ.get("GANZOO_EXPECT_INSTALLED") == "1":  # CI installs the align extra: run, never skip
    import dlib  # noqa: F401
else:
    pytest.importorskip("dlib", reason="the align extra (dlib-bin + face-recognition-models) is not installed")

GOOD = ("astronaut", "grace_hopper")


@pytest.fixture
def photos(tmp_path):
    from matplotlib import cbook
    from skimage import data

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(data.astronaut()).save(folder / "astronaut.png")
    shutil.copy(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), folder / "grace_hopper.jpg")
    return folder


def _add_bad(folder):
    from skimage import data

    (folder / "broken.png").write_bytes(b"\x89PNG but not really")
    Image.fromarray(data.coffee()).resize((200, 133)).save(folder / "coffee.png")  # a cup, no face


def _args(photos, enc, out, *more):
    return ["edit-photo", str(photos), "--encoder", str(enc), "--direction", "sefa:1", "--strength", "-1:1",
            "--frames", "2", "--out", str(out), *more]


def _frames(path) -> list[np.ndarray]:
    with Image.open(path) as im:
        out = []
        for k in range(im.n_frames):
            im.seek(k)
            out.append(np.asarray(im.convert("RGB"), dtype=np.int16))
        return out


def _plain_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def test_folder_edits_each_photo_reports_failures_and_resumes(photos, tmp_path, converted_fixture):
    enc = converted_fixture("e4e_64", "e4e_ffhq_encode_64.pt")
    _add_bad(photos)
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, _args(photos, enc, out, "--json"))
    assert r.exit_code == 1, r.output  # two photos failed: non-zero, the others are done
    rep = json.loads(r.output)
    assert rep["processed"] == 4 and rep["ok"] == 2 and rep["failed"] == 2
    assert rep["photos"]["broken"]["status"] == "failed" and "cannot read image" in rep["photos"]["broken"]["error"]
    assert rep["photos"]["coffee"]["status"] == "failed" and "no face found" in rep["photos"]["coffee"]["error"]
    assert not (out / "broken").exists() and not (out / "coffee").exists()
    on_disk = json.loads((out / "report.json").read_text())
    assert {k: v["status"] for k, v in on_disk["photos"].items()} == \
        {"astronaut": "ok", "grace_hopper": "ok", "broken": "failed", "coffee": "failed"}
    for name in GOOD:
        files = sorted(p.name for p in (out / name).iterdir() if not p.name.startswith("."))
        assert files == ["edit.json", "edit.webp"]
        frames = _frames(out / name / "edit.webp")
        assert len(frames) == 2 and frames[0].shape == (64, 64, 3) and np.abs(frames[0] - frames[1]).max() > 0
        per_photo = json.loads((out / name / "edit.json").read_text())
        assert per_photo["frames"] == 2 and per_photo["strengths"] == [-1.0, 1.0]
        assert per_photo["inversion"]["method"] == "encoder" and per_photo["direction"]["method"] == "sefa"
        assert per_photo["align"]["faces_found"] == 1 and set(per_photo["timings"]) == {"align", "encode", "edit"}
        assert rep["photos"][name]["result"]["reconstruction_psnr"] == per_photo["reconstruction_psnr"]
        assert (out / name / "edit.webp").stat().st_mode & 0o777 == _plain_mode()

    # each photo is edited exactly as the one-photo command edits it
    single = tmp_path / "single.webp"
    r1 = CliRunner().invoke(cli, _args(photos / "astronaut.png", enc, single, "--json"))
    assert r1.exit_code == 0, r1.output
    assert json.loads(r1.output)["reconstruction_psnr"] == json.loads((out / "astronaut" / "edit.json").read_text())[
        "reconstruction_psnr"]
    assert all(np.array_equal(a, b) for a, b in zip(_frames(single), _frames(out / "astronaut" / "edit.webp")))

    # rerun: the finished photos stay untouched, only the failed ones are tried again
    mtimes = {n: (out / n / "edit.webp").stat().st_mtime_ns for n in GOOD}
    r = CliRunner().invoke(cli, _args(photos, enc, out, "--json"))
    assert r.exit_code == 1, r.output
    rep = json.loads(r.output)
    assert rep["kept"] == 2 and rep["processed"] == 2 and rep["failed"] == 2
    (photos / "broken.png").unlink()
    (photos / "coffee.png").unlink()
    r = CliRunner().invoke(cli, _args(photos, enc, out, "--json"))
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["kept"] == 2 and rep["processed"] == 0 and set(rep["photos"]) == set(GOOD)
    assert {n: (out / n / "edit.webp").stat().st_mtime_ns for n in GOOD} == mtimes

    # other settings into the same folder refuse, in one line
    r = CliRunner().invoke(cli, _args(photos, enc, out, "-q")[:-1] + ["--strength", "-2:2", "-q"])
    assert r.exit_code != 0 and "other settings (strengths: [-1.0, 1.0] there, [-2.0, 2.0] now)" in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert {n: (out / n / "edit.webp").stat().st_mtime_ns for n in GOOD} == mtimes


def test_folder_on_two_local_processes(photos, tmp_path, converted_fixture):
    """The per-photo function ships to spawned worker processes; the edits match the in-process ones."""
    enc = converted_fixture("e4e_64", "e4e_ffhq_encode_64.pt")
    one, two = tmp_path / "one", tmp_path / "two"
    r = CliRunner().invoke(cli, _args(photos, enc, one, "--format", "png", "-q"))
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, _args(photos, enc, two, "--format", "png", "--engine", "local", "--num-workers", "2",
                                      "--json"))
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["processed"] == 2 and rep["ok"] == 2
    for name in GOOD:
        a = np.asarray(Image.open(one / name / "edit.png"), dtype=np.int16)
        b = np.asarray(Image.open(two / name / "edit.png"), dtype=np.int16)
        assert a.shape == (64, 128, 3) and np.abs(a - b).max() <= 1, name  # a strip of the 2 frames


def test_out_kind_must_match_the_input(photos, tmp_path, converted_fixture):
    enc = converted_fixture("e4e_64", "e4e_ffhq_encode_64.pt")
    r = CliRunner().invoke(cli, _args(photos, enc, tmp_path / "edits.webp"))
    assert r.exit_code != 0 and "for a folder of photos --out is a folder" in r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "edits.webp").exists()
    (tmp_path / "taken.txt").write_text("x")
    r = CliRunner().invoke(cli, _args(photos, enc, tmp_path / "taken.txt"))
    assert r.exit_code != 0 and "is a file" in r.output and len(r.output.strip().splitlines()) == 1
    (tmp_path / "dir").mkdir()
    r = CliRunner().invoke(cli, _args(photos / "astronaut.png", enc, tmp_path / "dir"))
    assert r.exit_code != 0 and "for one photo give a file name" in r.output and len(r.output.strip().splitlines()) == 1
    r = CliRunner().invoke(cli, _args(photos / "astronaut.png", enc, tmp_path / "e.webp", "--format", "png"))
    assert r.exit_code != 0 and "--format is for a folder" in r.output and not (tmp_path / "e.webp").exists()
    r = CliRunner().invoke(cli, _args(photos, enc, tmp_path / "o", "--landmarks", str(tmp_path / "lm.json")))
    assert r.exit_code != 0 and "--landmarks is for one photo" in r.output and not (tmp_path / "o").exists()
