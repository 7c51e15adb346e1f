"""The README's supported-families table is generated from the registry and must stay in sync with it."""

from __future__ import annotations

from pathlib import Path

import pytest

import converters
from conftest import ROOT
from zoo import docs
from zoo.registry import all_entries


def test_readme_table_is_up_to_date() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert docs.current_block(text) == docs.supported_table().rstrip("\n"), (
        "README.md's supported-families table is stale: run `python -m zoo.docs --write README.md`")


def test_table_lists_every_family_architecture_and_format() -> None:
    table = docs.supported_table()
    rows = {line.split("|")[1].strip(): line for line in docs.families_table().splitlines()[2:]}
    entries = all_entries()
    assert set(rows) == {e.family for e in entries}
    for e in entries:
        assert f"`{e.architecture}`" in rows[e.family] and f"`{e.source_format}`" in rows[e.family]
    for fmt in converters.list_formats():
        assert f"| `{fmt.name}` |" in table


def test_row_facts_for_the_dcgan_family() -> None:
    row = next(line for line in docs.families_table().splitlines() if line.startswith("| dcgan |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "`dcgan`, `dcgan-named`"
    assert cells[4] == "64-128"  # 64x64 faces up to the 128x128 eyes
    assert cells[5] == "1 of 3 models"  # only the eye generator is conditional
    assert "mit" in cells[6] and "non-commercial" in cells[6]  # DigiFace-1M's terms


def test_write_and_check(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n\n{docs.START}\nold table\n{docs.END}\n\nafter\n", encoding="utf-8")
    assert docs.main(["--check", str(readme)]) == 1
    assert docs.main(["--write", str(readme)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# x\n\nbefore\n\n") and text.endswith(f"{docs.END}\n\nafter\n")
    assert "old table" not in text and docs.supported_table().rstrip("\n") in text
    assert docs.main(["--check", str(readme)]) == 0
    assert docs.main(["--write", str(readme)]) == 0 and readme.read_text(encoding="utf-8") == text  # idempotent


def test_missing_markers_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="supported-table:start"):
        docs.replace_block("no markers here", "table")
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n", encoding="utf-8")
    assert docs.main(["--write", str(readme)]) == 2 and readme.read_text() == "no markers\n"
