"""Paths the CLI cannot use: one line naming the path and what to do, a non-zero exit, nothing written; and the
commands' own listings (`convert --list-formats`)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

import converters
from sdk.cli import cli
from sdk.cli.common import os_error_text
from conftest import ROOT, WEIGHTS

DCGAN = WEIGHTS / "generateme-0.1.2_dcGanGeneratorModel.pt"


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def _one_clean_line(r) -> str:
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and "[Errno" not in r.output, r.output
    (line,) = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
    return line


def test_convert_refuses_a_bad_output_path_before_converting(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("x")
    read = []
    real = converters.convert_to_config
    monkeypatch.setattr(converters, "convert_to_config", lambda *a, **k: read.append(a) or real(*a, **k))
    for out, want in ((tmp_path / "afile", "is a file, not a folder"),
                      (tmp_path / "afile" / "sub", "afile is a file, not a folder")):
        line = _one_clean_line(run("convert", str(DCGAN), str(out)))
        assert want in line and "pick" in line, line
    assert read == []  # refused before the checkpoint was read
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep").write_text("x")
    line = _one_clean_line(run("convert", str(DCGAN), str(tmp_path / "full")))
    assert "not empty" in line and "--force" in line
    assert read == []


@pytest.mark.parametrize("where", ["grid", "outdir"])
def test_sample_under_a_file_names_the_path(tmp_path, where):
    (tmp_path / "afile").write_text("x")
    target = ["--grid", str(tmp_path / "afile" / "g.png")] if where == "grid" else \
        ["--outdir", str(tmp_path / "afile" / "o")]
    line = _one_clean_line(run("sample", "--seeds", "0-1", "-q", *target))
    assert "afile" in line and "choose another path" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_os_error_text_says_what_to_do():
    assert os_error_text(FileExistsError(errno.EEXIST, "File exists", "afile")) == \
        "'afile' already exists, as a file where a folder is needed; choose another path"
    assert "read-only" in os_error_text(OSError(errno.EROFS, "Read-only file system", "/ro/x"))
    assert os_error_text(IsADirectoryError(errno.EISDIR, "Is a directory", ".x.tmp", None, "od/seed0002.png")) == \
        "'od/seed0002.png' is a folder; give a file path"
    assert os_error_text(FileExistsError("out already exists and is not empty")) == \
        "out already exists and is not empty"  # a message of its own is kept


def test_convert_lists_its_formats():
    r = run("convert", "--list-formats")
    assert r.exit_code == 0, r.output
    names = [ln.split()[0] for ln in r.output.splitlines()]
    assert names == [f.name for f in converters.list_formats()] and "nvidia-pickle" in names
    assert "--list-formats" in run("convert", "--help").output


def test_a_closed_pipe_ends_quietly(tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line, as after `| head -1`
    try:
        proc = subprocess.run([sys.executable, "-c", "from sdk.cli import main; main()", "list"], cwd=ROOT,
                              stdout=write_end, stderr=subprocess.PIPE, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "GANZOO_CACHE": str(tmp_path)})
    finally:
        os.close(write_end)
    err = proc.stderr.decode()
    assert proc.returncode != 0
    assert "Error" not in err and "Traceback" not in err and "Broken pipe" not in err, err


def test_generate_names_the_cli_option_for_a_missing_class(tmp_path):
    model = converters.convert(WEIGHTS / "omniart-eye-generator-0.1_generator_model_state.pth", tmp_path / "eyes")
    line = _one_clean_line(run("generate", str(model), "--num", "2", "--out", str(tmp_path / "ds"), "-q"))
    assert "conditional (8 classes)" in line and "--class N" in line, line
    assert not (tmp_path / "ds").exists() or not any((tmp_path / "ds").iterdir())


def test_convert_refuses_a_class_count_that_contradicts_the_registered_file(tmp_path):
    eyes = WEIGHTS / "omniart-eye-generator-0.1_generator_model_state.pth"
    line = _one_clean_line(run("convert", str(eyes), str(tmp_path / "e"), "--classes", "a,b"))
    assert "registered" in line and "has 8 classes, not 2" in line, line
    line = _one_clean_line(run("convert", str(DCGAN), str(tmp_path / "d"), "--classes", "3"))
    assert "no classes (it is unconditional), not 3" in line, line
    assert not any(tmp_path.iterdir())
    names = ",".join(f"c{i}" for i in range(8))  # the right count with names of the user's own is taken
    r = run("convert", str(eyes), str(tmp_path / "e"), "--classes", names, "--json", "-q")
    assert r.exit_code == 0, r.output
    import json

    assert json.loads(r.output)["class_names"] == names.split(",")


def test_json_on_stdout_stays_parseable_while_backends_report_progress(tmp_path):
    import json

    r = run("sample", "--seeds", "0-1", "--backend", "onnx", "--outdir", str(tmp_path / "o"), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["backend"]["backend"] == "onnx"  # stdout holds the JSON and nothing else
    assert "ganzoo: " in r.stderr  # the progress went to stderr
