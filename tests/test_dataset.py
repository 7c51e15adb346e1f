"""Dataset generation on one machine: per-seed equality with sdk.sample, shard records, resume, formats,
refusals, folder-wide inversion, and the permissions of everything ganzoo writes."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tarfile

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import sdk
import zoo
from conftest import fixture_dir
from sdk.cli import cli
from sdk.dataset import DatasetError, DatasetSettingsError, generate_dataset, parse_seed_ranges, plan_shards

SG2C = ("sg2ada_cond_fp16_32", "network-snapshot-000000.pkl")


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def file_sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_seed_ranges_and_shard_plan():
    assert parse_seed_ranges("0-4,7, 5-6") == [(0, 7)]
    assert parse_seed_ranges(3) == [(0, 2)]
    assert parse_seed_ranges(range(10, 20)) == [(10, 19)]
    assert parse_seed_ranges("0-49999999") == [(0, 49_999_999)]  # never expanded into a list
    with pytest.raises(DatasetError, match="given twice"):
        parse_seed_ranges("0-5,3")
    with pytest.raises(DatasetError, match="bad seed list"):
        parse_seed_ranges("a-b")
    plan = list(plan_shards(parse_seed_ranges("0-4,10-13"), 3))
    assert [p.name for p in plan] == ["seeds000000-000002", "seeds000003-000010", "seeds000011-000013"]
    assert [p.seeds() for p in plan] == [[0, 1, 2], [3, 4, 10], [11, 12, 13]]


def test_png_images_equal_sample_and_resume(tmp_path):
    out = tmp_path / "ds"
    G = zoo.load("dcgan-digiface-64", quiet=True)
    r = generate_dataset("dcgan-digiface-64", out, seeds="3-9", shard_size=3, batch_size=2)
    assert r.complete and r.images_written == 7 and r.shards_total == 3
    names = sorted(p.name for p in out.iterdir())
    assert names == ["manifest.json", "seeds000003-000005", "seeds000006-000008", "seeds000009-000009"]
    ref = sdk.sample(G, seeds=list(range(3, 10)))
    for k, im in zip(range(3, 10), ref):
        shard = out / next(n for n in names if n.startswith("seeds") and int(n[5:11]) <= k <= int(n[12:]))
        assert np.array_equal(pixels(shard / f"seed{k:06d}.png"), np.asarray(im)), k
    # the same bytes `ganzoo sample` writes for that seed
    assert run("sample", "--seeds", "4", "--outdir", str(tmp_path / "s"), "-q").exit_code == 0
    assert file_sha(tmp_path / "s" / "seed0004.png") == file_sha(out / "seeds000003-000005" / "seed000004.png")
    man = json.loads((out / "manifest.json").read_text())
    assert man["model"] == "dcgan-digiface-64" and man["weights_sha256"] == G.model_info["weights_sha256"]
    assert man["settings"]["seeds"] == "3-9" and "ganzoo_version" in man
    assert man["shards"]["seeds000006-000008"]["count"] == 3

    # resume: nothing to do; a truncated image is found and only its shard is made again, identical
    r = generate_dataset("dcgan-digiface-64", out, seeds="3-9", shard_size=3, batch_size=2)
    assert r.shards_kept == 3 and r.shards_written == []
    victim = out / "seeds000006-000008" / "seed000007.png"
    good = victim.read_bytes()
    victim.write_bytes(good[: len(good) // 2])
    (out / ".seeds000003-000005.tmp-dead").mkdir()  # what a killed writer leaves
    r = generate_dataset("dcgan-digiface-64", out, seeds="3-9", shard_size=3, batch_size=2)
    assert r.shards_regenerated == ["seeds000006-000008"] and r.shards_written == ["seeds000006-000008"]
    assert victim.read_bytes() == good
    assert not [p for p in out.iterdir() if p.name.startswith(".seeds")]
    # a corrupt byte of the same size is caught by the sha256
    data = bytearray(good)
    data[-20] ^= 0xFF
    victim.write_bytes(bytes(data))
    r = generate_dataset("dcgan-digiface-64", out, seeds="3-9", shard_size=3, batch_size=2)
    assert r.shards_regenerated == ["seeds000006-000008"] and victim.read_bytes() == good

    with pytest.raises(DatasetSettingsError, match="truncation_psi"):
        generate_dataset("dcgan-digiface-64", out, seeds="3-9", shard_size=3, batch_size=2, truncation_psi=0.5)
    with pytest.raises(DatasetSettingsError, match="shard_size"):
        generate_dataset("dcgan-digiface-64", out, seeds="3-9", shard_size=4, batch_size=2)


def test_conditional_npz_and_webdataset(tmp_path, converted_fixture):
    folder = converted_fixture(*SG2C)
    G = zoo.load(folder)
    r = generate_dataset(folder, tmp_path / "npz", seeds="0-4", shard_size=3, format="npz", class_idx="uniform")
    assert r.complete
    with np.load(tmp_path / "npz" / "seeds000000-000002.npz") as f:
        assert f["arr_0"].dtype == np.uint8 and f["arr_0"].shape == (3, 32, 32, 3)
        assert f["arr_1"].tolist() == [0, 1, 2] and f["seeds"].tolist() == [0, 1, 2]
        for i, k in enumerate(range(3)):
            assert np.array_equal(f["arr_0"][i], np.asarray(sdk.sample(G, [k], class_idx=k % G.c_dim)[0]))

    import webdataset as wds

    r = generate_dataset(folder, tmp_path / "wds", seeds="0-1", shard_size=2, format="webdataset", class_idx="all")
    assert r.images_total == 2 * G.c_dim
    tar = tmp_path / "wds" / "seeds000000-000001.tar"
    samples = list(wds.WebDataset(str(tar), shardshuffle=False).decode("pil").to_tuple("__key__", "png", "json", "cls"))
    assert len(samples) == 2 * G.c_dim
    key, img, meta, cls = samples[G.c_dim + 3]
    assert key == "seed000001-c0003" and meta["seed"] == 1 and meta["class"] == 3 and cls == 3
    assert np.array_equal(np.asarray(img.convert("RGB")), np.asarray(sdk.sample(G, [1], class_idx=3)[0]))
    with tarfile.open(tar) as t:  # reproducible archives: no timestamps or owners
        assert {m.mtime for m in t.getmembers()} == {0} and {m.uname for m in t.getmembers()} == {""}

    with pytest.raises(DatasetError, match="conditional"):
        generate_dataset(folder, tmp_path / "x", seeds="0-1")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "other.txt").write_text("x")
    with pytest.raises(DatasetError, match="not empty"):
        generate_dataset(folder, tmp_path / "busy", seeds="0-1", class_idx=0)


def test_local_pool_two_workers_same_shards(tmp_path):
    a = generate_dataset("dcgan-digiface-64", tmp_path / "a", seeds="0-7", shard_size=2, format="npz")
    b = generate_dataset("dcgan-digiface-64", tmp_path / "b", seeds="0-7", shard_size=2, format="npz", num_workers=2)
    assert a.complete and b.complete
    ma = json.loads((tmp_path / "a" / "manifest.json").read_text())["shards"]
    mb = json.loads((tmp_path / "b" / "manifest.json").read_text())["shards"]
    assert {k: v["sha256"] for k, v in ma.items()} == {k: v["sha256"] for k, v in mb.items()}
    assert len(ma) == 4


def test_cli_generate_json_and_errors(tmp_path):
    r = run("generate", "--num", "3", "--shard-size", "2", "--out", str(tmp_path / "d"), "--format", "npz", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["complete"] and data["images_written"] == 3 and data["shards_total"] == 2
    r = CliRunner().invoke(cli, ["generate", "--num", "3", "--out", str(tmp_path / "d"), "--format", "npz"])
    assert r.exit_code != 0 and "other settings" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["generate", "--out", str(tmp_path / "e")])
    assert r.exit_code != 0 and "--num" in r.output


def test_invert_folder_reports_failures_and_resumes(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    G = zoo.load("dcgan-digiface-64", quiet=True)
    for k in (1, 2):
        sdk.save_image(sdk.sample(G, [k])[0], photos / f"face{k}.png")
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    args = ["invert", "dcgan-digiface-64", str(photos), "--outdir", str(out), "--steps", "2", "--loss", "pixel",
            "--json", "-q"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1, r.output  # one photo failed: non-zero, but the others are done
    rep = json.loads(r.output)
    assert rep["photos"]["broken"]["status"] == "failed" and "cannot read image" in rep["photos"]["broken"]["error"]
    for k in (1, 2):
        assert rep["photos"][f"face{k}"]["status"] == "ok"
        assert sorted(p.name for p in (out / f"face{k}").iterdir() if not p.name.startswith(".")) == \
            ["latent.safetensors", "reconstruction.png", "side_by_side.png"]
    assert json.loads((out / "report.json").read_text())["photos"]["broken"]["status"] == "failed"
    (photos / "broken.jpg").unlink()
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["kept"] == 2 and rep["processed"] == 0
    r = CliRunner().invoke(cli, args[:-2] + ["--steps", "3", "-q"])
    assert r.exit_code != 0 and "other settings" in r.output


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_written_files_get_umask_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        assert run("sample", "--seeds", "0-1", "--outdir", str(tmp_path / "s"), "--grid", str(tmp_path / "g.png"),
                   "-q").exit_code == 0
        files = [tmp_path / "s" / "seed0000.png", tmp_path / "s" / "seed0001.png", tmp_path / "g.png"]
        generate_dataset("dcgan-digiface-64", tmp_path / "d", seeds="0-1", shard_size=2)
        generate_dataset("dcgan-digiface-64", tmp_path / "w", seeds="0-1", shard_size=2, format="webdataset")
        files += [tmp_path / "d" / "manifest.json", tmp_path / "d" / "seeds000000-000001" / "seed000000.png",
                  tmp_path / "w" / "seeds000000-000001.tar"]
        G = zoo.load("dcgan-digiface-64", quiet=True)
        from sdk.latent.latents import save_latent

        files.append(save_latent(tmp_path / "lat.safetensors", sdk.seeds_to_z(G, [0]), space="z", G=G))
        from sdk.latent.direction import Direction

        d = Direction(vectors=np.ones((1, G.z_dim), dtype=np.float32), space="z", method="test")
        files.append(d.save(tmp_path / "dir.safetensors"))
        conv = tmp_path / "conv"
        import converters

        converters.convert(fixture_dir(SG2C[0]) / SG2C[1], conv)
        files += [conv / "model.safetensors", conv / "config.json"]
    finally:
        os.umask(old)
    for f in files:
        assert _mode(f) == 0o640, f"{f.name}: {oct(_mode(f))}"
    assert _mode(tmp_path / "d" / "seeds000000-000001") == 0o750
    assert _mode(conv) == 0o750
