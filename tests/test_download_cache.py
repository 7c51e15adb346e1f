"""Convert-on-first-use against a real HTTP server on 127.0.0.1: caching, resume, corruption, locking."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch

import zoo
from conftest import ROOT, fixture_dir, golden
from httpfakes import FileServer, wait_for
from zoo import registry
from zoo.download import DownloadError, partial_downloads, source_path
from zoo.errors import OfflineError
from zoo.loading import converted_dir

PKL = fixture_dir("sg2ada_uncond_64") / "network-snapshot-000000.pkl"
DATA = PKL.read_bytes()
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def server():
    fs = FileServer(files={"/sg2.pkl": DATA}).start()
    yield fs
    fs.stop()


def make_entry(url: str, *, sha256: str | None = SHA, size: int | None = len(DATA), name: str | None = None,
               license: str = "mit") -> registry.ModelEntry:
    return registry.ModelEntry(name=name or f"tmp-sg2-{uuid.uuid4().hex[:8]}", family="stylegan2",
                               architecture="stylegan2", source_format="nvidia-pickle", url=url, dataset="none",
                               resolution=64, license=license, sha256=sha256, size_bytes=size, source_file="sg2.pkl")


@pytest.fixture
def register():
    added: list[str] = []

    def add(entry: registry.ModelEntry) -> registry.ModelEntry:
        registry.register_model(entry)
        added.append(entry.name)
        return entry

    yield add
    for name in added:
        registry._MODELS.pop(name, None)


def _check_model(G: torch.nn.Module) -> None:
    """The loaded model reproduces the fixture's upstream image golden (so the bytes really arrived intact)."""
    g = golden("sg2ada_uncond_64")
    with torch.no_grad():
        img = G(g["z"], None, truncation_psi=1.0, noise_mode="const")
    assert (img - g["img_const_psi1"]).abs().max().item() <= 1e-4


def test_first_load_downloads_and_converts_then_cache_hit_makes_no_request(server, register):
    entry = register(make_entry(server.url("sg2.pkl")))
    G = zoo.load(entry.name, quiet=True)
    _check_model(G)
    assert len(server.gets("sg2.pkl")) == 1
    assert (converted_dir(entry.name) / "config.json").is_file()
    assert not source_path(entry).exists() and partial_downloads() == []  # the download is not kept
    n = len(server.requests)
    G2 = zoo.load(entry.name, quiet=True)
    assert len(server.requests) == n  # served from the cache: no request at all
    z = torch.randn(2, 512)
    assert torch.equal(G(z), G2(z))


def test_progress_bar_and_quiet(server, register, capsys):
    entry = register(make_entry(server.url("sg2.pkl")))
    zoo.load(entry.name)
    err = capsys.readouterr().err
    assert entry.name in err and ("B/s" in err or "%" in err)
    entry2 = register(make_entry(server.url("sg2.pkl")))
    zoo.load(entry2.name, quiet=True)
    assert capsys.readouterr().err == ""


def test_truncated_download_leaves_no_cache_entry_then_resumes_with_range(server, register, monkeypatch):
    entry = register(make_entry(server.url("sg2.pkl"), sha256=None, size=None))  # only Content-Length to go by
    server.mode = "truncate"
    with pytest.raises(OfflineError, match="ended early|interrupted"):
        zoo.load(entry.name, quiet=True)
    assert not converted_dir(entry.name).exists()
    assert not source_path(entry).exists()
    part = source_path(entry).with_name(source_path(entry).name + ".part")
    assert part.is_file() and 0 < part.stat().st_size < len(DATA)
    have = part.stat().st_size
    monkeypatch.setenv("GANZOO_OFFLINE", "1")
    with pytest.raises(OfflineError):  # offline: the partial file is never taken for the model
        zoo.load(entry.name, quiet=True)
    monkeypatch.delenv("GANZOO_OFFLINE")
    server.mode = "ok"
    _check_model(zoo.load(entry.name, quiet=True))
    assert server.gets("sg2.pkl")[-1][2] == f"bytes={have}-"  # resumed, not restarted


def test_resume_falls_back_when_server_ignores_range(server, register):
    entry = register(make_entry(server.url("sg2.pkl")))
    part = source_path(entry).with_name(source_path(entry).name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(DATA[:1000])
    server.mode = "norange"
    _check_model(zoo.load(entry.name, quiet=True))
    assert server.gets("sg2.pkl")[-1][2] == "bytes=1000-"


def test_complete_part_file_needs_no_request_and_bad_range_restarts(server, register):
    entry = register(make_entry(server.url("sg2.pkl")))
    part = source_path(entry).with_name(source_path(entry).name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(DATA)  # a previous run got every byte but was killed before renaming
    _check_model(zoo.load(entry.name, quiet=True))
    assert server.gets("sg2.pkl") == []
    entry2 = register(make_entry(server.url("sg2.pkl"), sha256=None, size=None))
    part2 = source_path(entry2).with_name(source_path(entry2).name + ".part")
    part2.write_bytes(DATA + b"junk")  # longer than the file: the server answers 416
    _check_model(zoo.load(entry2.name, quiet=True))
    assert [g[2] for g in server.gets("sg2.pkl")] == [f"bytes={len(DATA) + 4}-", None]


def test_corrupted_download_is_refused_and_deleted(server, register):
    entry = register(make_entry(server.url("sg2.pkl")))
    server.mode = "corrupt"
    with pytest.raises(DownloadError, match="sha256") as e:
        zoo.load(entry.name, quiet=True)
    assert "nothing was cached" in str(e.value)
    assert not converted_dir(entry.name).exists()
    assert partial_downloads() == []
    server.mode = "ok"
    _check_model(zoo.load(entry.name, quiet=True))


def test_wrong_size_is_refused(server, register):
    entry = register(make_entry(server.url("sg2.pkl"), sha256=None, size=len(DATA) + 1))
    with pytest.raises(DownloadError, match="expected"):
        zoo.load(entry.name, quiet=True)
    assert not converted_dir(entry.name).exists() and partial_downloads() == []


def test_html_is_refused(server, register):
    entry = register(make_entry(server.url("sg2.pkl"), sha256=None, size=None))
    server.mode = "html"
    with pytest.raises(DownloadError, match="HTML"):
        zoo.load(entry.name, quiet=True)
    # an HTML page served as application/octet-stream is caught by its content
    server.mode = "ok"
    server.files["/page.pkl"] = b"\n  <!DOCTYPE html><html><body>Sign in to continue</body></html>"
    entry2 = register(make_entry(server.url("page.pkl"), sha256=None, size=None))
    with pytest.raises(DownloadError, match="HTML"):
        zoo.load(entry2.name, quiet=True)
    assert not converted_dir(entry.name).exists() and not converted_dir(entry2.name).exists()
    assert partial_downloads() == []


def test_not_a_checkpoint_without_hash_is_refused_and_deleted(server, register):
    server.files["/junk.pkl"] = b"\x80\x04torch_utils.persistence" + b"\x00" * 100
    entry = register(make_entry(server.url("junk.pkl"), sha256=None, size=None))
    with pytest.raises(zoo.ConversionError, match="could not be converted"):
        zoo.load(entry.name, quiet=True)
    assert not converted_dir(entry.name).exists() and partial_downloads() == []


def test_http_404_is_a_clear_error(server, register):
    entry = register(make_entry(server.url("missing.pkl")))
    with pytest.raises(OfflineError, match="404"):
        zoo.load(entry.name, quiet=True)
    assert not converted_dir(entry.name).exists()


_CHILD = """
import sys, zoo
from zoo.registry import ModelEntry, register_model
register_model(ModelEntry(name=sys.argv[1], family="stylegan2", architecture="stylegan2",
    source_format="nvidia-pickle", url=sys.argv[2], dataset="none", resolution=64, license="mit",
    sha256=sys.argv[3], size_bytes=int(sys.argv[4]), source_file="sg2.pkl"))
G = zoo.load(sys.argv[1], quiet=True)
print("OK", G.img_resolution)
"""


def _child(entry: registry.ModelEntry) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", _CHILD, entry.name, entry.url, str(entry.sha256),
                             str(entry.size_bytes)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_process_killed_mid_download_leaves_nothing_mistaken_for_a_model(server, register):
    entry = register(make_entry(server.url("sg2.pkl")))
    server.mode, server.stall_after = "stall", 1 << 20
    part = source_path(entry).with_name(source_path(entry).name + ".part")
    proc = _child(entry)
    try:
        assert wait_for(lambda: part.is_file() and part.stat().st_size >= 1 << 20, timeout=60), "child never started"
    finally:
        proc.kill()
        proc.wait(timeout=30)
    server.release.set()
    assert not converted_dir(entry.name).exists() and not source_path(entry).exists()
    assert part.stat().st_size == 1 << 20
    server.mode = "ok"
    _check_model(zoo.load(entry.name, quiet=True))
    assert server.gets("sg2.pkl")[-1][2] == f"bytes={1 << 20}-"


def test_concurrent_loads_download_once(server, register):
    entry = register(make_entry(server.url("sg2.pkl")))
    procs = [_child(entry) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert out.strip() == "OK 64"
    assert len(server.gets("sg2.pkl")) == 1
    assert sorted(p.name for p in converted_dir(entry.name).iterdir()) == ["README.md", "config.json",
                                                                          "model.safetensors"]


def test_licence_notice_printed_once(server, register, capsys, monkeypatch):
    monkeypatch.delenv("GANZOO_NO_LICENSE_NOTICE", raising=False)
    entry = register(make_entry(server.url("sg2.pkl"), license="nvidia-source-code-license"))
    zoo.load(entry.name, quiet=True)  # quiet: no notice
    assert "non-commercial" not in capsys.readouterr().err
    zoo.load(entry.name)
    zoo.load(entry.name)
    err = capsys.readouterr().err
    assert err.count("non-commercial use only") == 1 and entry.name in err
    entry2 = register(make_entry(server.url("sg2.pkl"), license="nvidia-source-code-license"))
    monkeypatch.setenv("GANZOO_NO_LICENSE_NOTICE", "1")
    zoo.load(entry2.name)
    assert "non-commercial" not in capsys.readouterr().err
    entry3 = register(make_entry(server.url("sg2.pkl"), license="mit"))
    monkeypatch.delenv("GANZOO_NO_LICENSE_NOTICE")
    zoo.load(entry3.name)
    assert "non-commercial" not in capsys.readouterr().err


def test_cache_helpers(server, register):
    from zoo.download import cached_models, clear_cache

    entry = register(make_entry(server.url("sg2.pkl")))
    zoo.load(entry.name, quiet=True)
    listed = cached_models()
    assert [m["name"] for m in listed] == [entry.name] and listed[0]["size_bytes"] > 0
    assert clear_cache(entry.name) == [str(converted_dir(entry.name))]
    assert cached_models() == []
    assert isinstance(Path(zoo.cache_dir()), Path)


def test_cache_cli_list_and_clear(server, register):
    import json

    from click.testing import CliRunner

    from sdk.cli import cli

    a = register(make_entry(server.url("sg2.pkl")))
    b = register(make_entry(server.url("sg2.pkl")))
    zoo.load(a.name, quiet=True)
    zoo.load(b.name, quiet=True)
    r = CliRunner().invoke(cli, ["cache", "list", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert sorted(m["name"] for m in d["models"]) == sorted([a.name, b.name])
    assert d["cache_dir"] == str(zoo.cache_dir())
    r = CliRunner().invoke(cli, ["cache", "list"])
    assert a.name in r.output and "MiB" in r.output
    r = CliRunner().invoke(cli, ["cache", "clear", a.name, "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["removed"] == [str(converted_dir(a.name))]
    assert not converted_dir(a.name).exists() and converted_dir(b.name).exists()
    r = CliRunner().invoke(cli, ["cache", "clear", a.name])
    assert r.exit_code != 0 and "not in the cache" in r.output
    r = CliRunner().invoke(cli, ["cache", "clear"])
    assert r.exit_code == 0 and not converted_dir(b.name).exists()
    r = CliRunner().invoke(cli, ["cache", "list"])
    assert "(empty)" in r.output
