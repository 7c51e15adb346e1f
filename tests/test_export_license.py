"""The licence a model carries reaches the ONNX metadata and the export report (registry, config.json, card)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

import zoo
from sdk.export.exporter import build_metadata
from zoo.loading import EMBEDDED_DIR
from zoo.registry import get_entry

NAME = "dcgan-digiface-64"


def _license(G: zoo.GanGenerator) -> tuple[str, str]:
    meta = build_metadata(G, "full", "fp32", "const", None)
    return meta["ganzoo.license"], meta.get("ganzoo.license_note", "")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the embedded model folder that no longer names its registry entry."""
    out = tmp_path / "converted"
    shutil.copytree(EMBEDDED_DIR / NAME, out)
    config = json.loads((out / "config.json").read_text())
    config.pop("model_name")
    (out / "config.json").write_text(json.dumps(config))
    return out


def test_cli_export_of_registry_model_states_its_licence(tmp_path):
    from sdk.cli import cli

    out = tmp_path / "dc.onnx"
    r = CliRunner().invoke(cli, ["export", NAME, "--out", str(out), "--no-mobile-check", "--json", "-q"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    entry = get_entry(NAME)
    report = json.loads(r.output)
    on_disk = json.loads((tmp_path / "dc.export.json").read_text())
    onnx_meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    for meta in (report["model"]["metadata"], on_disk["model"]["metadata"]):
        assert meta["license"] == entry.license == "mit"
        assert "non-commercial" in meta["license_note"]
    assert onnx_meta["ganzoo.license"] == "mit" and "non-commercial" in onnx_meta["ganzoo.license_note"]


def test_converted_folder_licence_comes_from_its_card(folder):
    G = zoo.load(folder)
    assert "model_name" not in G.model_info
    license_id, note = _license(G)
    assert license_id == "mit" and "DigiFace-1M" in note and "non-commercial" in note


def test_converted_folder_licence_in_config_wins(folder):
    config = json.loads((folder / "config.json").read_text())
    config.update(license="cc-by-nc-4.0", license_note="Research use only.")
    (folder / "config.json").write_text(json.dumps(config))
    assert _license(zoo.load(folder)) == ("cc-by-nc-4.0", "Research use only.")


def test_card_with_other_licence_uses_its_name_and_unknown_is_empty(folder):
    card = (folder / "README.md").read_text()
    (folder / "README.md").write_text(card.replace("license: mit", "license: other\nlicense_name: acme-research"))
    assert _license(zoo.load(folder))[0] == "acme-research"
    (folder / "README.md").write_text(card.replace("license: mit", "license: other\nlicense_name: unknown")
                                      .split("## Licence")[0])
    assert _license(zoo.load(folder)) == ("", "")
