"""The tables a corpus document should give: from its ground truth, or read from the file itself.

Two kinds of truth, each a :class:`TableTruth`:

- **expected**: the tables of the document's ``NAME.expected.md`` (Markdown pipe
  tables and raw HTML tables; a ``.txt`` truth cannot hold a table and is not
  used). These are Docling's, Unstructured's or MarkItDown's exports, so they
  hold grids without spans, and a truth a peer exported does not count for it.
  A truth without any table still says something: that none should be found.
- **file**: the cells the file itself holds, read by an independent reader,
  never by our extractor: WordprocessingML's ``w:tbl`` read from the raw XML
  (``w:gridSpan``, ``w:vMerge`` and ``w:gridBefore`` give the spans and offsets);
  the blocks of touching non-empty cells of each worksheet of an ``.xlsx``, by
  openpyxl (the bench extra brings it in with MarkItDown; without it the workbooks
  are left out), merged cells as spans; the HTML tables of ``.html`` and ``.md``
  files by lxml. These know spans, and are compared with them.
"""

from __future__ import annotations

import datetime
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from bench.scoring import CorpusFile, GroundTruth, ground_truths
from bench.table_cells import Cell, TableGrid, html_tables, markdown_tables, normalise_cell


@dataclass(frozen=True)
class TableTruth:
    """The tables a document should give, and where that knowledge comes from."""

    document: str
    #: What the tables were read from: the truth file's name, or the reader used.
    source: str
    tables: tuple[TableGrid, ...]
    #: Whether the truth knows which cells span (a Markdown truth cannot say).
    spans: bool
    #: The peer that exported this truth (its score on it does not count), if any.
    produced_by: str | None = None

    @property
    def folder(self) -> str:
        return self.document.split("/", 1)[0]

    def counts_for(self, tool: str) -> bool:
        return self.produced_by is None or self.produced_by not in tool.lower()


def expected_truths() -> list[TableTruth]:
    """A truth for every Markdown or HTML ground truth of the corpus, tables or none."""
    return [_expected(truth) for truth in ground_truths() if truth.kind in ("md", "html")]


def _expected(truth: GroundTruth) -> TableTruth:
    # Written out as grids: the HTML tables a Markdown truth may hold too.
    tables = tuple(table.as_grid() for table in markdown_tables(truth.read()))
    name = Path(truth.truth).name
    return TableTruth(truth.document, name, tables, spans=False, produced_by=truth.produced_by)


def file_truths(files: list[CorpusFile]) -> Iterator[TableTruth]:
    """A truth for every file of ``files`` whose own tables can be read independently."""
    for item in files:
        suffix = item.absolute.suffix.lower()
        reader = _READERS.get(suffix)
        if reader is None or (suffix == ".xlsx" and not openpyxl_installed()):
            continue
        label, read = reader
        try:
            tables = read(item.absolute)
        except _UNREADABLE:
            continue  # an encrypted or broken file: it has no truth to give
        # A table without any text (a page's layout of images) has nothing to read.
        tables = [t for t in tables if any(cell.text for cell in t.cells)]
        if tables:
            yield TableTruth(item.path, label, tuple(tables), spans=True)


# ---------------------------------------------------------------- DOCX

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def docx_tables(path: Path) -> list[TableGrid]:
    """The outermost tables of a DOCX's body, from ``word/document.xml``; a nested
    table's text stays in its cell; a text box's fallback copy is skipped."""
    with zipfile.ZipFile(path) as package:
        root = etree.fromstring(package.read("word/document.xml"), _SAFE_XML)
    return [
        _docx_table(table)
        for table in root.iter(f"{_W}tbl")
        if not any(a.tag in (f"{_W}tbl", _FALLBACK) for a in table.iterancestors())
    ]


def _docx_table(table: etree._Element) -> TableGrid:
    cells: list[Cell] = []
    #: Column → index in ``cells`` of the vertically merged cell open there.
    merging: dict[int, int] = {}
    for r, row in enumerate(table.iterchildren(f"{_W}tr")):
        col = _w_val(row.find(f"{_W}trPr/{_W}gridBefore"), 0)
        for tc in row.iterchildren(f"{_W}tc"):
            span = _w_val(tc.find(f"{_W}tcPr/{_W}gridSpan"), 1)
            vmerge = tc.find(f"{_W}tcPr/{_W}vMerge")
            if vmerge is not None and vmerge.get(f"{_W}val") != "restart" and col in merging:
                above = cells[merging[col]]
                cells[merging[col]] = Cell(
                    above.row, above.col, above.text, above.row_span + 1, above.col_span
                )
            else:
                for covered in range(col, col + span):
                    merging.pop(covered, None)
                if vmerge is not None:
                    merging[col] = len(cells)
                cells.append(Cell(r, col, normalise_cell(_docx_text(tc)), 1, span))
            col += span
    n_rows = max((c.row + c.row_span for c in cells), default=0)
    n_cols = max((c.col + c.col_span for c in cells), default=0)
    return TableGrid(n_rows, n_cols, tuple(cells))


def _w_val(element: etree._Element | None, default: int) -> int:
    if element is None:
        return default
    try:
        return max(0, int(element.get(f"{_W}val", default)))
    except ValueError:
        return default


def _docx_text(cell: etree._Element) -> str:
    """A cell's text: its paragraphs joined by spaces; tabs and line breaks are spaces."""
    runs = (f"{_W}t", f"{_W}tab", f"{_W}br", f"{_W}cr")
    return " ".join(
        "".join((r.text or "") if r.tag == f"{_W}t" else " " for r in p.iter(*runs))
        for p in cell.iter(f"{_W}p")
    )


# ---------------------------------------------------------------- XLSX


def xlsx_tables(path: Path) -> list[TableGrid]:
    """The tables of every worksheet, by openpyxl: each block of non-empty cells that
    touch (sideways or up and down; a merged range counts as filled) is a table, its
    box's cells with merged ranges as spans, blocks in reading order (top row, then
    left column). Formulas give their cached values, as a reader shows them."""
    import openpyxl  # type: ignore[import-untyped,unused-ignore]  # the bench extra

    workbook = openpyxl.load_workbook(path, data_only=True)
    try:
        return [table for sheet in workbook.worksheets for table in _sheet_tables(sheet)]
    finally:
        workbook.close()


Position = tuple[int, int]


def _sheet_tables(sheet: Any) -> list[TableGrid]:
    values: dict[Position, str] = {}
    for row in sheet.iter_rows():
        for cell in row:
            text = "" if cell.value is None else _xlsx_text(cell.value)
            if text:
                values[(cell.row, cell.column)] = text
    spans: dict[Position, tuple[int, int]] = {}
    covered: set[Position] = set()
    for merged in sheet.merged_cells.ranges:
        top_left = (merged.min_row, merged.min_col)
        spans[top_left] = (merged.size["rows"], merged.size["columns"])
        covered.update(
            (r, c)
            for r in range(merged.min_row, merged.max_row + 1)
            for c in range(merged.min_col, merged.max_col + 1)
        )
        covered.discard(top_left)
    blocks = touching_blocks(set(values) | covered | set(spans))
    return [_block_table(block, values, spans, covered) for block in blocks]


def touching_blocks(filled: set[Position]) -> list[set[Position]]:
    """The groups of ``filled`` positions that touch, in reading order."""
    blocks: list[set[Position]] = []
    left = set(filled)
    while left:
        seed = min(left)
        block, frontier = {seed}, [seed]
        left.discard(seed)
        while frontier:
            r, c = frontier.pop()
            for near in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if near in left:
                    left.discard(near)
                    block.add(near)
                    frontier.append(near)
        blocks.append(block)
    return sorted(blocks, key=lambda b: (min(r for r, _ in b), min(c for _, c in b)))


def _block_table(
    block: set[Position],
    values: dict[Position, str],
    spans: dict[Position, tuple[int, int]],
    covered: set[Position],
) -> TableGrid:
    top, left = min(r for r, _ in block), min(c for _, c in block)
    bottom, right = max(r for r, _ in block), max(c for _, c in block)
    cells = [
        Cell(r - top, c - left, normalise_cell(values.get((r, c), "")), *spans.get((r, c), (1, 1)))
        for r in range(top, bottom + 1)
        for c in range(left, right + 1)
        if (r, c) not in covered
    ]
    return TableGrid(bottom - top + 1, right - left + 1, tuple(cells))


def _xlsx_text(value: object) -> str:
    """A cell value as text: whole numbers without a decimal point, dates in ISO form."""
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value).strip()


def openpyxl_installed() -> bool:
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------- HTML and Markdown


def html_file_tables(path: Path) -> list[TableGrid]:
    """The outermost tables of an HTML file, by lxml (which finds the encoding itself)."""
    data = path.read_bytes()
    return html_tables(data) if b"<table" in data.lower() else []


def markdown_file_tables(path: Path) -> list[TableGrid]:
    """The raw HTML tables of a Markdown file (its pipe tables are the expected truth's
    business: a Markdown file holds no spans to read)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    return html_tables(text) if "<table" in text.lower() else []


_UNREADABLE = (zipfile.BadZipFile, KeyError, OSError, etree.XMLSyntaxError, ValueError)

_READERS = {
    ".docx": ("DOCX XML", docx_tables),
    ".xlsx": ("openpyxl", xlsx_tables),
    ".html": ("lxml", html_file_tables),
    ".htm": ("lxml", html_file_tables),
    ".md": ("lxml", markdown_file_tables),
}
