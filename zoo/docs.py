"""Documentation generated from the registry: the README's table of supported families and formats.

``python -m zoo.docs`` prints the table; ``--write README.md`` replaces the block between the
``<!-- supported-table:start -->`` and ``<!-- supported-table:end -->`` markers; ``--check README.md``
exits non-zero when that block is out of date.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

from .registry import ModelEntry, all_entries

START = "<!-- supported-table:start -->"
END = "<!-- supported-table:end -->"
MAX_EXAMPLES = 3


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _codes(items: Iterable[str]) -> str:
    return ", ".join(f"`{i}`" for i in items)


def _resolutions(entries: Sequence[ModelEntry]) -> str:
    lo, hi = min(e.resolution for e in entries), max(e.resolution for e in entries)
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def _conditional(entries: Sequence[ModelEntry]) -> str:
    n = sum(e.conditional for e in entries)
    return "no" if n == 0 else "yes" if n == len(entries) else f"{n} of {len(entries)} models"


def _licences(entries: Sequence[ModelEntry]) -> str:
    out = []
    for lic in sorted({e.license for e in entries}):
        same = [e for e in entries if e.license == lic]
        nc = sum(e.non_commercial for e in same)
        note = "" if nc == 0 else " (non-commercial)" if nc == len(same) else f" ({nc} of {len(same)} non-commercial)"
        out.append(lic + note)
    return ", ".join(out)


def families_table(entries: Sequence[ModelEntry] | None = None) -> str:
    """One row per model family: architectures, source formats, example models, resolutions, licences."""
    entries = list(all_entries() if entries is None else entries)
    by_family: dict[str, list[ModelEntry]] = defaultdict(list)
    for e in entries:
        by_family[e.family].append(e)
    lines = ["| family | architectures | source formats | example models | resolution | conditional | licences |",
             "|---|---|---|---|---|---|---|"]
    for family in sorted(by_family):
        es = sorted(by_family[family], key=lambda e: e.name)
        examples = _codes(e.name for e in es[:MAX_EXAMPLES])
        if len(es) > MAX_EXAMPLES:
            examples += f" (+{len(es) - MAX_EXAMPLES} more)"
        cells = [family, _codes(sorted({e.architecture for e in es})), _codes(sorted({e.source_format for e in es})),
                 examples, _resolutions(es), _conditional(es), _licences(es)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def formats_table() -> str:
    """Every registered source format (``ganzoo convert --format``) with its description, in detection order."""
    from converters import list_formats

    lines = ["| source format | what it reads |", "|---|---|"]
    for fmt in list_formats():
        lines.append(f"| `{_cell(fmt.name)}` | {_cell(fmt.description)} |")
    return "\n".join(lines)


def supported_table() -> str:
    """The Markdown that belongs between the README markers (families, then source formats)."""
    return (f"{families_table()}\n\n"
            "`ganzoo convert` detects the source format of a file; `--format` forces one:\n\n"
            f"{formats_table()}\n")


def replace_block(text: str, block: str, where: str = "README.md") -> str:
    """``text`` with the content between the markers replaced by ``block``."""
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ValueError(f"{where} must contain one {START} line followed by one {END} line")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block.rstrip()}\n{END}{tail}"


def current_block(text: str, where: str = "README.md") -> str:
    """The content between the markers of ``text`` (without the markers)."""
    if START not in text or END not in text:
        raise ValueError(f"{where} has no {START} ... {END} block")
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo.docs", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="README", help="replace the marked block of README in place")
    group.add_argument("--check", metavar="README", help="exit 1 when the marked block of README is out of date")
    args = parser.parse_args(argv)
    table = supported_table()
    target = args.write or args.check
    if not target:
        sys.stdout.write(table)
        return 0
    path = Path(target)
    text = path.read_text(encoding="utf-8")
    try:
        if args.check:
            if current_block(text, path.name) != table.rstrip("\n"):
                print(f"{path}: the supported-families table is out of date; run python -m zoo.docs --write {path}",
                      file=sys.stderr)
                return 1
            return 0
        new = replace_block(text, table, path.name)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if new != text:
        from .fileio import write_text_atomic

        write_text_atomic(path, new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
