"""Large tables written on the fly: a CSV and an XLSX of the same rows.

Each row holds eight columns of mixed kinds (integers, decimals, short labels
from small vocabularies, a unique code, a sentence with non-ASCII letters), the
first row names them. The XLSX is written as Excel writes one (shared strings
for the texts, numbers as values), streamed into its zip a batch of rows at a
time, so neither writer holds the table. Nothing of the kind is kept in the
repository: the benchmark and the tests that need one write it in a temporary folder.
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

HEADER = ("id", "name", "city", "price", "quantity", "ratio", "code", "note")
_NAMES = ("Ada", "Grace", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances")
_CITIES = ("Zürich", "Paris", "Oslo", "Kraków", "Lisboa", "São Paulo", "Kyoto", "Austin")
#: Rows written to the XLSX's sheet at a time.
_BATCH = 1000


def row(index: int) -> tuple[int | float | str, ...]:
    """The values of data row ``index`` (0-based), as a spreadsheet holds them."""
    return (
        index + 1,
        _NAMES[index % len(_NAMES)],
        _CITIES[index * 7 % len(_CITIES)],
        round(index * 1.37 % 1000, 2),
        index * 13 % 97,
        round((index % 89) / 89, 4),
        f"C-{index * 2654435761 % 10**8:08d}",
        f"item {index} shipped from {_CITIES[index % len(_CITIES)]}",
    )


def cell_text(value: int | float | str) -> str:
    """A value as the CSV holds it, and as the extraction writes it back."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def write_csv(path: Path, rows: int) -> Path:
    """A comma-separated file of a header and ``rows`` data rows, UTF-8."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for index in range(rows):
            writer.writerow(cell_text(value) for value in row(index))
    return path


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    "</Types>"
)
_PACKAGE_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Orders" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/sharedStrings" Target="sharedStrings.xml"/>'
    "</Relationships>"
)
_SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
)
_SHEET_TAIL = "</sheetData></worksheet>"
_COLUMNS = "ABCDEFGH"


def write_xlsx(path: Path, rows: int) -> Path:
    """A workbook of one sheet, ``Orders``, holding the CSV's header and rows."""
    strings: dict[str, int] = {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("[Content_Types].xml", _CONTENT_TYPES)
        package.writestr("_rels/.rels", _PACKAGE_RELS)
        package.writestr("xl/workbook.xml", _WORKBOOK)
        package.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with package.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(_SHEET_HEAD.encode())
            for piece in _sheet_rows(rows, strings):
                sheet.write(piece.encode())
            sheet.write(_SHEET_TAIL.encode())
        package.writestr("xl/sharedStrings.xml", _shared_strings(strings))
    return path


def _sheet_rows(rows: int, strings: dict[str, int]) -> Iterator[str]:
    batch: list[str] = []
    for number in range(1, rows + 2):
        values = HEADER if number == 1 else row(number - 2)
        cells = "".join(
            _cell(f"{column}{number}", value, strings)
            for column, value in zip(_COLUMNS, values, strict=True)
        )
        batch.append(f'<row r="{number}">{cells}</row>')
        if len(batch) == _BATCH:
            yield "".join(batch)
            batch.clear()
    yield "".join(batch)


def _cell(ref: str, value: int | float | str, strings: dict[str, int]) -> str:
    if isinstance(value, str):
        index = strings.setdefault(value, len(strings))
        return f'<c r="{ref}" t="s"><v>{index}</v></c>'
    return f'<c r="{ref}"><v>{value}</v></c>'


def _shared_strings(strings: dict[str, int]) -> str:
    items = "".join(f"<si><t>{escape(text)}</t></si>" for text in strings)
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        f'count="{len(strings)}" uniqueCount="{len(strings)}">{items}</sst>'
    )
