"""``zoo.load("hf-hub:...")`` and ``ganzoo push`` against a fake Hub served on 127.0.0.1."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from huggingface_hub import ModelCard

import zoo
from conftest import golden
from httpfakes import FakeHub
from sdk.cli import cli
from zoo.errors import ModelFormatError, OfflineError
from zoo.hub import HubError, load_from_hub

PKL = "network-snapshot-000000.pkl"
FILES = ("config.json", "model.safetensors", "README.md")


@pytest.fixture
def model_dir(converted_fixture):
    return converted_fixture("sg2ada_uncond_64", PKL)


@pytest.fixture
def hub(model_dir, tmp_path, monkeypatch):
    h = FakeHub().start()
    h.add_commit("org/sg2", {n: (model_dir / n).read_bytes() for n in FILES})
    monkeypatch.setenv("HF_ENDPOINT", h.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # in case the environment had it set at import
    yield h
    h.stop()


def _parity(G) -> None:
    g = golden("sg2ada_uncond_64")
    for key, psi in (("img_const_psi1", 1.0), ("img_const_psi0_5", 0.5)):
        err = (G(g["z"], None, truncation_psi=psi, noise_mode="const") - g[key]).abs().max().item()
        assert err <= 1e-4, (key, err)


def test_load_from_hub_fetches_only_model_files(hub):
    G = zoo.load("hf-hub:org/sg2", quiet=True)
    _parity(G)
    fetched = {p.rsplit("/", 1)[-1] for m, p in hub.requests if m == "GET"}
    assert fetched == {"config.json", "model.safetensors"}  # never README or anything else
    assert G.model_info["hub_repo"] == "org/sg2"
    n = len(hub.requests)
    zoo.load("hf-hub:org/sg2", quiet=True)
    assert not [r for r in hub.requests[n:] if r[0] == "GET"]  # second load: metadata check only, no download


def test_revisions(hub, model_dir):
    first = hub.repos["org/sg2"].revisions["main"]
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg["model_name"] = "second-commit"
    second = hub.add_commit("org/sg2", {"config.json": json.dumps(cfg).encode()})
    assert zoo.load("hf-hub:org/sg2", quiet=True).model_info["hub_commit"] == second
    G = zoo.load(f"hf-hub:org/sg2@{first}", quiet=True)
    assert G.model_info["hub_commit"] == first
    assert load_from_hub("org/sg2", revision=first, quiet=True).model_info["hub_commit"] == first
    with pytest.raises(HubError, match="revision 'v9' not found"):
        zoo.load("hf-hub:org/sg2@v9", quiet=True)
    with pytest.raises(HubError, match="two revisions"):
        load_from_hub(f"org/sg2@{first}", revision="main")


def test_offline_uses_prepopulated_cache_without_server(hub, monkeypatch):
    zoo.load("hf-hub:org/sg2", quiet=True)  # populate the Hub cache
    hub.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    n = len(hub.requests)
    _parity(zoo.load("hf-hub:org/sg2", quiet=True))
    assert len(hub.requests) == n
    monkeypatch.delenv("HF_HUB_OFFLINE")  # online but the server is gone: the cached copy still loads
    _parity(zoo.load("hf-hub:org/sg2", quiet=True))


def test_offline_with_empty_cache_says_what_was_tried(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError) as e:
        zoo.load("hf-hub:org/sg2", quiet=True)
    msg = str(e.value)
    assert "hf-hub:org/sg2@main" in msg and "HF_HUB_OFFLINE" in msg and "config.json" in msg
    assert "model.safetensors" in msg and "zoo.load('path/to/folder')" in msg
    assert hub.requests == []


def test_unreachable_endpoint_with_empty_cache(hub, monkeypatch):
    hub.stop()
    with pytest.raises(OfflineError, match="cannot be reached"):
        zoo.load("hf-hub:org/sg2", quiet=True)


def test_clear_errors(hub):
    with pytest.raises(HubError, match="org/nope not found"):
        zoo.load("hf-hub:org/nope", quiet=True)
    hub.add_commit("org/notmodel", {"config.json": b"{}"})
    with pytest.raises(ModelFormatError, match="has no model.safetensors"):
        zoo.load("hf-hub:org/notmodel", quiet=True)
    for bad in ("hf-hub:noslash", "hf-hub:a/b/c", "hf-hub:org/x@", "hf-hub:../etc"):
        with pytest.raises(HubError, match="bad Hub model id"):
            zoo.load(bad, quiet=True)
    hub.add_commit("org/broken", {"config.json": b"{not json", "model.safetensors": b"junk"})
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        zoo.load("hf-hub:org/broken", quiet=True)


def test_private_repo_needs_token(hub, monkeypatch):
    hub.token = "secret-token"
    hub.repos["org/sg2"].private = True
    with pytest.raises(HubError, match="not found.*HF_TOKEN"):
        zoo.load("hf-hub:org/sg2", quiet=True)
    monkeypatch.setenv("HF_TOKEN", "secret-token")
    _parity(zoo.load("hf-hub:org/sg2", quiet=True))


# --- push -------------------------------------------------------------------------------------------------

def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_push_dry_run_lists_files_without_network(model_dir, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: any request would fail
    r = run("push", str(model_dir), "--repo-id", "org/new", "--dry-run", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["dry_run"] is True and d["repo_id"] == "org/new"
    assert {f["path"]: f["size_bytes"] for f in d["files"]} == {n: (model_dir / n).stat().st_size for n in FILES}
    assert d["total_bytes"] == sum(f["size_bytes"] for f in d["files"])
    r = run("push", str(model_dir), "--repo-id", "org/new", "--dry-run")
    assert r.exit_code == 0 and "would upload" in r.output and "model.safetensors" in r.output


def test_push_validates_the_folder(model_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    (bad / "README.md").unlink()
    r = run("push", str(bad), "--repo-id", "org/x", "--dry-run")
    assert r.exit_code != 0 and "README.md" in r.output and "Traceback" not in r.output
    (bad / "README.md").write_text("# no header\n")
    r = run("push", str(bad), "--repo-id", "org/x", "--dry-run")
    assert r.exit_code != 0 and "YAML" in r.output
    (bad / "README.md").write_text("---\nlicense: [unclosed\n---\n# x\n")
    r = run("push", str(bad), "--repo-id", "org/x", "--dry-run")
    assert r.exit_code != 0 and "does not parse" in r.output
    shutil.copy(model_dir / "README.md", bad / "README.md")
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 2])
    r = run("push", str(bad), "--repo-id", "org/x", "--dry-run")
    assert r.exit_code != 0 and "corrupt or truncated" in r.output
    r = run("push", str(model_dir), "--repo-id", "not a repo", "--dry-run")
    assert r.exit_code != 0 and "bad Hub model id" in r.output and "expected org/name or org/name@revision" in r.output


def test_push_uploads_and_loads_back(hub, model_dir, tmp_path):
    extra = tmp_path / "with-extra"
    shutil.copytree(model_dir, extra)
    (extra / "notes.txt").write_text("local scratch, not published")
    r = run("push", str(extra), "--repo-id", "someone/published", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    repo = hub.repos["someone/published"]
    files = repo.commits[repo.revisions["main"]]
    assert sorted(files) == sorted(FILES)  # only the model files are published
    assert files["model.safetensors"] == (model_dir / "model.safetensors").read_bytes()
    assert d["commit"] == repo.revisions["main"]
    assert ModelCard(files["README.md"].decode()).data.library_name == "ganzoo"
    assert repo.private is False
    _parity(zoo.load("hf-hub:someone/published", quiet=True))
    r = run("push", str(model_dir), "--repo-id", "someone/secret", "--private", "--json")
    assert r.exit_code == 0 and hub.repos["someone/secret"].private is True
    grid = tmp_path / "grid.png"
    r = run("sample", "hf-hub:someone/published", "--seeds", "0-1", "--grid", str(grid), "-q")
    assert r.exit_code == 0, r.output
    assert grid.is_file()


def test_registry_entry_with_hub_repo_prefers_the_hub(hub, monkeypatch):
    """A registry entry naming a Hub repo loads from it; the original URL is the fallback."""
    import hashlib

    from conftest import fixture_dir
    from httpfakes import FileServer
    from zoo import registry

    data = (fixture_dir("sg2ada_uncond_64") / PKL).read_bytes()
    files = FileServer(files={"/sg2.pkl": data}).start()
    try:
        def entry(name, repo):
            return registry.ModelEntry(name=name, family="stylegan2", architecture="stylegan2",
                                       source_format="nvidia-pickle", url=files.url("sg2.pkl"), dataset="none",
                                       resolution=64, license="mit", sha256=hashlib.sha256(data).hexdigest(),
                                       hub_repo=repo)
        registry.register_model(entry("tmp-hub-entry", "org/sg2"))
        registry.register_model(entry("tmp-hub-missing", "org/absent"))
        G = zoo.load("tmp-hub-entry", quiet=True)
        assert G.model_info["hub_repo"] == "org/sg2" and files.requests == []
        _parity(G)
        G = zoo.load("tmp-hub-missing", quiet=True)  # repo missing -> original file, converted
        assert len(files.gets("sg2.pkl")) == 1
        _parity(G)
    finally:
        files.stop()
        registry._MODELS.pop("tmp-hub-entry", None)
        registry._MODELS.pop("tmp-hub-missing", None)
