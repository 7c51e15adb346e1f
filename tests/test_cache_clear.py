"""``ganzoo cache clear``: every name or path ``cache list`` prints removes exactly that entry; no match is an error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import zoo
from conftest import fixture_dir
from sdk.cli import cli

PKL = "network-snapshot-000000.pkl"


@pytest.fixture
def cache() -> dict[str, Path]:
    """A cache with a converted file (via ``zoo.load``), a registry model folder and a partial download."""
    src = fixture_dir("sg2ada_uncond_64") / PKL
    folder = Path(zoo.load(src, quiet=True).model_info["folder"])
    registry = zoo.cache_dir() / "models" / "some-model"
    shutil.copytree(folder, registry)
    partial = zoo.cache_dir() / "downloads" / "other-model--ckpt.pkl.part"
    partial.parent.mkdir()
    partial.write_bytes(b"x" * 10)
    return {"src": src, "file": folder, "registry": registry, "partial": partial}


def _listed() -> dict[str, object]:
    r = CliRunner().invoke(cli, ["cache", "list", "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def _clear(arg: str) -> list[str]:
    r = CliRunner().invoke(cli, ["cache", "clear", arg, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)["removed"]


def test_converted_file_key_from_cache_list_is_cleared(cache):
    r = CliRunner().invoke(cli, ["cache", "list"])
    key = cache["file"].name
    assert r.exit_code == 0 and key in r.output and "file" in r.output
    r = CliRunner().invoke(cli, ["cache", "clear", key])
    assert r.exit_code == 0, r.output
    assert "removed 1 item(s)" in r.output and not cache["file"].exists()
    assert cache["registry"].is_dir() and cache["partial"].is_file()  # only that entry
    assert [m["name"] for m in _listed()["models"]] == ["some-model"]


@pytest.mark.parametrize("field", ["name", "path"])
def test_every_listed_name_or_path_clears_exactly_that_entry(cache, field):
    listed = _listed()
    assert len(listed["models"]) == 2
    for m in listed["models"]:
        before = {x["path"] for x in _listed()["models"]}
        assert _clear(str(m[field])) == [m["path"]]
        assert {x["path"] for x in _listed()["models"]} == before - {m["path"]}
    assert _listed()["models"] == [] and cache["partial"].is_file()
    partial = listed["partial_downloads"]
    assert [p["path"] for p in partial] == [str(cache["partial"])]
    assert _clear(partial[0]["path"]) == [str(cache["partial"])] and not cache["partial"].exists()


def test_source_file_path_clears_its_conversion(cache):
    assert _clear(str(cache["src"])) == [str(cache["file"])]
    assert not cache["file"].exists() and cache["src"].is_file() and cache["registry"].is_dir()


def test_registry_name_also_clears_its_partial_downloads(cache):
    other = cache["partial"].with_name("some-model--ckpt.pkl.part")
    other.write_bytes(b"y")
    assert sorted(_clear("some-model")) == sorted([str(cache["registry"]), str(other)])
    assert cache["file"].is_dir() and cache["partial"].is_file()


@pytest.mark.parametrize("arg", ["never-cached", "422465b6", "..", ".", "models", "../converted-files", "CACHE",
                                 "CACHE/models", "CACHE/models/some-model.lock", "SRC"])
def test_no_match_is_a_one_line_error_naming_the_cache(cache, arg, tmp_path):
    if arg.startswith("CACHE"):  # the cache's own folders and locks are not entries
        arg = arg.replace("CACHE", str(zoo.cache_dir()))
        if arg.endswith(".lock"):
            Path(arg).touch()
    if arg == "SRC":  # an upstream file whose conversion is not cached
        arg = str(tmp_path / PKL)
        shutil.copy(cache["src"], arg)
        with open(arg, "ab") as f:
            f.write(b"\0")
    r = CliRunner().invoke(cli, ["cache", "clear", arg])
    assert r.exit_code != 0 and "removed" not in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert "not in the cache" in r.output and cache["file"].name in r.output and "some-model" in r.output
    assert cache["file"].is_dir() and cache["registry"].is_dir() and cache["partial"].is_file()
    assert zoo.cache_dir().is_dir() and all(Path(a).exists() for a in [arg] if a.endswith(".lock"))


def test_clear_all_and_empty_cache_error(cache):
    r = CliRunner().invoke(cli, ["cache", "clear"])
    assert r.exit_code == 0 and "removed 3 item(s)" in r.output
    assert _listed()["models"] == [] and _listed()["partial_downloads"] == []
    r = CliRunner().invoke(cli, ["cache", "clear", cache["file"].name])
    assert r.exit_code != 0 and "(cached: none)" in r.output
