"""CLI arguments out of range: one clear error line, non-zero exit, and no partial output."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from sdk.cli import cli

PKL = "network-snapshot-000000.pkl"


@pytest.fixture(scope="module")
def cond_model(tmp_path_factory):
    import converters
    from conftest import fixture_dir

    return converters.convert(fixture_dir("sg2ada_cond_fp16_32") / PKL, tmp_path_factory.mktemp("cli") / "cond")


CASES = [
    (["--seeds", "-1"], "out of range"),
    (["--seeds", "5-2"], "bad seed list"),
    (["--seeds", "0-4294967296"], "more than"),
    (["--seeds", "4294967296"], "out of range"),
    (["--seeds", ","], "no seeds"),
    (["--seeds", "1e3"], "bad seed list"),
    (["--batch-size", "0"], "batch-size"),
    (["--batch-size", "-3"], "batch-size"),
    (["--cols", "0"], "cols"),
    (["--trunc", "nan"], "finite"),
    (["--trunc", "inf"], "finite"),
    (["--trunc-cutoff", "-1"], "trunc-cutoff"),
    (["--noise-mode", "loud"], "noise-mode"),
    (["--device", "tpu:7"], "device"),
    (["--class", "5"], "out of range"),
    (["--class", "-1"], "out of range"),
    (["--class", "dog"], "class"),
]


@pytest.mark.parametrize("args,match", CASES)
def test_sample_bad_arguments(cond_model, tmp_path, args, match):
    out, grid = tmp_path / "out", tmp_path / "grid.png"
    extra = [] if "--class" in args else ["--class", "0"]
    r = CliRunner().invoke(cli, ["sample", str(cond_model), "--outdir", str(out), "--grid", str(grid), "-q",
                                 *extra, *args])
    assert r.exit_code != 0, r.output
    assert match.lower() in r.output.lower(), r.output
    assert "Traceback" not in r.output
    assert not out.exists() and not grid.exists()
    assert list(tmp_path.iterdir()) == []


def test_unconditional_model_rejects_class(tmp_path):
    r = CliRunner().invoke(cli, ["sample", "--class", "1", "--grid", str(tmp_path / "g.png"), "-q"])
    assert r.exit_code != 0 and "unconditional" in r.output and not (tmp_path / "g.png").exists()


def test_conditional_model_needs_class(cond_model, tmp_path):
    r = CliRunner().invoke(cli, ["sample", str(cond_model), "--grid", str(tmp_path / "g.png"), "-q"])
    assert r.exit_code != 0 and "conditional" in r.output and not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("args,match", [
    (["convert", "SRC", "OUT", "--format", "nonesuch"], "unknown format"),
    (["push", "SRC", "--repo-id", "a/b/c", "--dry-run"], "bad Hub model id"),
    (["push", "SRC", "--repo-id", "org/x@main", "--dry-run"], "--revision"),
    (["cache", "clear", "never-cached-model"], "not in the cache"),
    (["info", "nope-model"], "unknown model"),
])
def test_other_commands_bad_arguments(cond_model, tmp_path, args, match):
    from conftest import fixture_dir

    args = [str(fixture_dir("sg2ada_uncond_64") / PKL) if a == "SRC" and args[0] == "convert" else
            str(cond_model) if a == "SRC" else str(tmp_path / "out") if a == "OUT" else a for a in args]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code != 0 and match in r.output, r.output
    assert "Traceback" not in r.output and not (tmp_path / "out").exists()
