"""The extent of a worksheet read from its XML before the sheet is loaded: each way a
writer may set its cells down gives the same range."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from docworker.formats.ooxml.sheet_extent import CHUNK, declared_cells

PART = "xl/worksheets/sheet1.xml"
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def _extent(tmp_path: Path, rows: str, prefix: str = "") -> int:
    ns = f'xmlns:{prefix[:-1]}="{MAIN}"' if prefix else f'xmlns="{MAIN}"'
    sheet = f"<{prefix}worksheet {ns}><{prefix}sheetData>{rows}</{prefix}sheetData>"
    sheet += f'<{prefix}rowBreaks count="1"/></{prefix}worksheet>'
    path = tmp_path / "book.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(PART, sheet)
    with zipfile.ZipFile(path) as zf:
        return declared_cells(zf, PART)


@pytest.mark.parametrize(
    "rows",
    [
        # As Excel writes them: every cell's position first.
        '<row r="2"><c r="B2"><v>1</v></c><c r="D2"/></row><row r="40"><c r="C40"/></row>',
        # The position after another attribute.
        '<row r="2"><c s="1" r="B2"><v>1</v></c><c t="n" r="D2"/></row>'
        '<row r="40"><c r="C40"/></row>',
        # Cells without positions follow the one before, rows likewise.
        '<row r="2"><c r="B2"/><c/><c/></row>' + "<row/>" * 37 + '<row><c r="C40"/></row>',
    ],
)
def test_each_way_of_writing_cells_gives_the_same_range(tmp_path: Path, rows: str) -> None:
    assert _extent(tmp_path, rows) == 39 * 3  # rows 2-40, columns B-D


def test_prefixed_tags_are_read_too(tmp_path: Path) -> None:
    rows = '<x:row r="2"><x:c r="B2"/><x:c r="D2"/></x:row><x:row r="40"><x:c r="C40"/></x:row>'
    assert _extent(tmp_path, rows, "x:") == 39 * 3


def test_a_far_cell_is_seen_past_a_chunk(tmp_path: Path) -> None:
    filler = '<row r="{n}"><c r="A{n}"><v>1</v></c></row>'
    rows = "".join(filler.format(n=n) for n in range(1, CHUNK // 30))
    rows += '<row r="1048576"><c r="XFD1048576"/></row>'
    assert _extent(tmp_path, rows) == 1048576 * 16384


def test_a_row_number_past_64_bits_is_still_counted(tmp_path: Path) -> None:
    rows = '<row r="1"><c r="A1"/></row><row><c r="B99999999999999999999"/></row>'
    assert _extent(tmp_path, rows) == 99999999999999999999 * 2
