"""The ganzoo CLI through click's CliRunner: thin commands, JSON output, one-line errors, exit codes."""

from __future__ import annotations

import json

from click.testing import CliRunner
from PIL import Image

from sdk.cli import cli
from conftest import fixture_dir


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_sample_default_model_grid(tmp_path):
    out = tmp_path / "grid.png"
    r = run("sample", "--seeds", "0-3", "--grid", str(out), "--quiet")
    assert r.exit_code == 0, r.output
    im = Image.open(out)
    assert im.size == (128, 128)
    assert not list(tmp_path.glob(".*tmp"))  # no temporary files left behind


def test_sample_outdir_and_json(tmp_path):
    r = run("sample", "dcgan-digiface-64", "--seeds", "1,5", "--outdir", str(tmp_path / "o"), "--json", "-q")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["seeds"] == [1, 5]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["seed0001.png", "seed0005.png"]


def test_sample_errors_are_one_line(tmp_path):
    r = CliRunner().invoke(cli, ["sample", "stylegan2-ffhk", "--grid", str(tmp_path / "g.png")])
    assert r.exit_code != 0
    assert "unknown model" in r.output and "stylegan2-ffhq" in r.output
    assert "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["sample", "--seeds", "x", "--grid", str(tmp_path / "g.png")])
    assert r.exit_code != 0 and "bad seed list" in r.output
    r = CliRunner().invoke(cli, ["sample", "--class", "3", "--grid", str(tmp_path / "g.png")])
    assert r.exit_code != 0 and "unconditional" in r.output
    r = CliRunner().invoke(cli, ["sample"])
    assert r.exit_code != 0 and "--outdir" in r.output
    assert not (tmp_path / "g.png").exists()


def test_list_and_info_json():
    r = run("list", "--json")
    names = {e["name"] for e in json.loads(r.output)}
    assert {"dcgan-digiface-64", "stylegan2-ffhq", "stylegan2-cifar10"} <= names
    r = run("info", "stylegan2-ffhq", "--json")
    d = json.loads(r.output)
    assert d["resolution"] == 1024 and d["non_commercial"] is True
    r = run("info", "stylegan2-ffhq")
    assert "non-commercial" in r.output.lower()


def test_info_takes_a_converted_folder_as_sample_does(tmp_path, converted_fixture):
    folder = converted_fixture("sg2ada_uncond_64", "network-snapshot-000000.pkl")
    d = json.loads(run("info", str(folder), "--json").output)
    assert d["architecture"] == "stylegan2" and d["resolution"] == 64 and d["conditional"] is False
    assert d["local_path"] == str(folder.resolve()) and d["source_format"]
    assert d["backend"].startswith("not measured")  # nothing sampled with this cache yet
    r = run("info", str(folder))
    assert "architecture: stylegan2" in r.output and f"local_path: {folder.resolve()}" in r.output
    assert "license:" in run("info", str(folder), "--card").output
    r = CliRunner().invoke(cli, ["info", str(tmp_path)])
    assert r.exit_code != 0 and "is not a ganzoo model folder" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["info", str(tmp_path / "absent")])
    assert r.exit_code != 0 and "no such model folder" in r.output and "Traceback" not in r.output
    pkl = fixture_dir("sg2ada_uncond_64") / "network-snapshot-000000.pkl"
    r = CliRunner().invoke(cli, ["info", str(pkl)])
    assert r.exit_code != 0 and "is a checkpoint file, not a model: convert it first" in r.output
    r = CliRunner().invoke(cli, ["info", "stylegan2-ffhk"])
    assert r.exit_code != 0 and "unknown model" in r.output


def test_convert_cli(tmp_path):
    src = fixture_dir("sg2ada_uncond_64") / "network-snapshot-000000.pkl"
    r = run("convert", str(src), str(tmp_path / "m"), "--json", "-q")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["architecture"] == "stylegan2"
    r = CliRunner().invoke(cli, ["convert", str(src), str(tmp_path / "m"), "-q"])
    assert r.exit_code != 0 and "already exists" in r.output
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello world" * 10)
    r = CliRunner().invoke(cli, ["convert", str(junk), str(tmp_path / "j")])
    assert r.exit_code != 0 and "known formats" in r.output
    assert not (tmp_path / "j").exists()


def test_main_exit_code(tmp_path):
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", "from sdk.cli import main; main()", "info", "nope-model"],
                       capture_output=True, text=True)
    assert p.returncode == 1
    assert p.stderr.strip().startswith("Error: unknown model")
