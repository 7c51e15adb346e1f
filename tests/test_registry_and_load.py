"""Registry, strict loading of the common format, and zoo.load resolution."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file, save_file

import zoo
from zoo.errors import ModelFormatError, OfflineError, UnknownModelError

PKL = "network-snapshot-000000.pkl"


def test_unknown_model_lists_close_names():
    with pytest.raises(UnknownModelError) as e:
        zoo.load("stylegan2-ffhg")
    assert "stylegan2-ffhq" in str(e.value)


def test_registry_entries_have_required_facts():
    names = zoo.list_models()
    for required in ("stylegan2-ffhq", "stylegan2-metfaces", "stylegan2-afhqcat", "stylegan2-afhqdog",
                     "stylegan2-afhqwild", "stylegan2-brecahad", "stylegan2-cifar10", "dcgan-digiface-64"):
        assert required in names
    for name in names:
        e = zoo.info(name)
        assert e["url"].startswith("https://") and e["resolution"] > 0 and e["license"] and e["dataset"]
    assert zoo.info("stylegan2-cifar10")["num_classes"] == 10
    assert zoo.info("stylegan2-ffhq")["non_commercial"]


def test_strict_load_names_missing_and_unexpected(converted_fixture, tmp_path):
    src = converted_fixture("sg2ada_uncond_64", PKL)
    bad = tmp_path / "bad"
    shutil.copytree(src, bad)
    t = load_file(bad / "model.safetensors")
    t.pop("synthesis.b8.conv0.weight")
    t["synthesis.b8.extra"] = torch.zeros(1)
    save_file(t, bad / "model.safetensors")
    with pytest.raises(ModelFormatError) as e:
        zoo.load(bad)
    assert "synthesis.b8.conv0.weight" in str(e.value) and "synthesis.b8.extra" in str(e.value)


def test_wrong_shape_is_named(converted_fixture, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(converted_fixture("sg2ada_uncond_64", PKL), bad)
    t = load_file(bad / "model.safetensors")
    t["mapping.w_avg"] = torch.zeros(7)
    save_file(t, bad / "model.safetensors")
    with pytest.raises(ModelFormatError, match="mapping.w_avg"):
        zoo.load(bad)


def test_truncated_weights_file(converted_fixture, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(converted_fixture("sg2ada_uncond_64", PKL), bad)
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelFormatError, match="corrupt or truncated"):
        zoo.load(bad)


def test_bad_config(converted_fixture, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(converted_fixture("sg2ada_uncond_64", PKL), bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["architecture"] = "nonesuch"
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="unknown architecture"):
        zoo.load(bad)
    (bad / "config.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        zoo.load(bad)


def test_load_upstream_file_converts_once(tmp_path, monkeypatch):
    from conftest import fixture_dir
    import converters

    import zoo.plugins

    calls = []
    real = converters.convert
    # zoo reaches the converter only through the plugin hook that ``converters`` registers on import.
    monkeypatch.setattr(zoo.plugins, "_CONVERTER", lambda *a, **k: calls.append(1) or real(*a, **k))
    src = fixture_dir("sg2ada_uncond_64") / PKL
    G1 = zoo.load(src, quiet=True)
    G2 = zoo.load(src, quiet=True)
    assert len(calls) == 1
    z = torch.randn(1, 512)
    assert torch.equal(G1(z), G2(z))


def test_offline_with_nothing_cached_fails_fast(monkeypatch):
    monkeypatch.setenv("GANZOO_OFFLINE", "1")
    t = time.monotonic()
    with pytest.raises(OfflineError) as e:
        zoo.load("stylegan2-afhqcat")
    assert time.monotonic() - t < 2.0
    msg = str(e.value)
    assert "afhqcat.pkl" in msg and "zoo.load(" in msg


def test_unreachable_host_fails_fast(monkeypatch):
    """Network on but nothing listening: a clear OfflineError within 2 s, no cache entry."""
    import socket

    import zoo.registry as reg
    from zoo.download import ensure_converted
    from zoo.loading import converted_dir

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens on this port now
    entry = reg.ModelEntry(name="tmp-unreachable", family="stylegan2", architecture="stylegan2",
                           source_format="nvidia-pickle", url=f"http://127.0.0.1:{port}/x.pkl", dataset="none",
                           resolution=64, license="mit")
    t = time.monotonic()
    with pytest.raises(OfflineError, match="x.pkl"):
        ensure_converted(entry, quiet=True)
    assert time.monotonic() - t < 2.0
    assert not converted_dir(entry.name).exists()


def test_zoo_does_not_import_converters_until_a_conversion_is_needed():
    code = ("import sys, zoo, sdk\n"
            "assert 'converters' not in sys.modules, 'zoo/sdk imported converters at import time'\n"
            "from zoo.plugins import converter\n"
            "import converters\n"
            "assert converter() is converters.convert\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_empty_name_and_special_files_are_one_line_errors(tmp_path, monkeypatch):
    """``zoo.load("")`` must not load the current directory; a device file is no checkpoint."""
    from click.testing import CliRunner

    from sdk.cli import cli
    from zoo.errors import ZooError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text("{}")  # something the current directory might hold
    for spec in ("", "   "):
        with pytest.raises(UnknownModelError, match="empty model name"):
            zoo.load(spec)
    with pytest.raises(ZooError, match="not a regular file or folder"):
        zoo.load("/dev/zero")
    for spec in ("", "/dev/zero"):
        r = CliRunner().invoke(cli, ["sample", spec, "--seeds", "0", "--outdir", str(tmp_path / "o"), "-q"])
        assert r.exit_code != 0 and "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "o").exists()
