"""Model cards: every registry entry renders a card whose YAML header parses back; card data is included."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from huggingface_hub import ModelCard

import zoo
from cards import cards_dir
from sdk.cli import cli
from zoo.cards import card_data, render_card
from zoo.registry import all_entries

NAMES = [e.name for e in all_entries()]


def _parse(text: str) -> dict:
    data = ModelCard(text).data.to_dict()
    assert data["library_name"] == "ganzoo"
    assert data["pipeline_tag"] == "unconditional-image-generation"
    assert data["license"]
    return data


@pytest.mark.parametrize("name", NAMES)
def test_every_entry_card_renders_and_parses(name):
    entry = zoo.registry.get_entry(name)
    text = render_card(model_name=name)
    data = _parse(text)
    assert entry.family in data["tags"]
    if data["license"] == "other":
        assert data["license_name"] == entry.license
    assert entry.dataset in text and f'zoo.load("{name}")' in text
    if entry.non_commercial:
        assert "non-commercial" in text.lower()
    extra = card_data(name)
    if extra:  # entries with a data file carry its facts into the card
        assert data.get("datasets", []) == extra.get("datasets", [])
        assert extra["summary"] in text
        for key in ("parity", "conversion", "title"):
            if key in extra:
                assert extra[key] in text, key


def test_every_stylegan2_entry_has_card_data():
    for e in all_entries():
        if e.family != "stylegan2":
            continue
        d = card_data(e.name)
        assert d, f"cards/data/{e.name}.json missing"
        assert d["summary"] and d["datasets"] and d["parity"]
        assert d["conversion"].startswith(f"ganzoo convert {e.source_file} ")


def test_card_data_files_belong_to_registered_models():
    for path in (cards_dir() / "data").glob("*.json"):
        json.loads(path.read_text())
        assert path.stem in NAMES, f"{path.name} has no registry entry"


def test_converted_folder_card_has_provenance(converted_fixture):
    folder = converted_fixture("sg2ada_uncond_64", "network-snapshot-000000.pkl")
    text = (folder / "README.md").read_text()
    _parse(text)
    assert "nvidia-pickle" in text and "network-snapshot-000000.pkl" in text
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["provenance"]["source_sha256"] in text
    text2 = render_card(cfg, model_name="stylegan2-afhqcat")  # config + registry entry + data file
    assert _parse(text2)["datasets"] == ["afhq"] and "z_dim 512" in text2


def test_info_card_cli():
    r = CliRunner().invoke(cli, ["info", "stylegan2-ffhq", "--card"])
    assert r.exit_code == 0, r.output
    data = _parse(r.output)
    assert data["datasets"] == ["ffhq"] and "# StyleGAN2 FFHQ 1024x1024" in r.output
    r = CliRunner().invoke(cli, ["info", "stylegan2-nonesuch", "--card"])
    assert r.exit_code != 0 and "unknown model" in r.output
