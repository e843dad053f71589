"""Tables as cells, read out of Markdown and HTML, and their cell-level precision and recall.

A :class:`TableGrid` is what every side of the table benchmark is brought to:
a grid of cells, a spanning cell listed once at its top-left with its spans, as
in the document model (:class:`docworker.document.Table`). Cell texts are
normalised once, when read (:func:`normalise_cell`), so that every comparison
sees the same forms: Markdown's emphasis and escapes, entities, case and runs of
white space do not count.

Markdown tables are GitHub pipe tables (a header row, a delimiter row, rows
until a line without a pipe); raw HTML tables inside Markdown (Unstructured's
exports write them) are read as HTML. A Markdown table cannot say that a cell
spans: Docling writes a merged cell's text in every position it covers, which
is what :meth:`TableGrid.as_grid` makes of a table that knows its spans.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import lxml.html
from lxml import etree


@dataclass(frozen=True)
class Cell:
    row: int
    col: int
    text: str
    row_span: int = 1
    col_span: int = 1


@dataclass(frozen=True)
class TableGrid:
    """A table: its size and its cells, a spanning cell once, at its top-left."""

    n_rows: int
    n_cols: int
    cells: tuple[Cell, ...]

    @classmethod
    def from_rows(cls, rows: Iterable[Iterable[str]]) -> TableGrid:
        """A table without spans, from rows of (raw) cell texts; short rows are filled out
        with empty cells, as a Markdown table's are."""
        texts = [[normalise_cell(text) for text in row] for row in rows]
        n_cols = max((len(row) for row in texts), default=0)
        cells = tuple(
            Cell(r, c, row[c] if c < len(row) else "")
            for r, row in enumerate(texts)
            for c in range(n_cols)
        )
        return cls(len(texts) if n_cols else 0, n_cols, cells)

    def as_grid(self) -> TableGrid:
        """The same table as a Markdown table writes it: a cell at every position, a
        spanning cell's text in each position it covers, a position no cell covers empty."""
        texts = [[""] * self.n_cols for _ in range(self.n_rows)]
        for cell in self.cells:
            for r in range(cell.row, min(cell.row + cell.row_span, self.n_rows)):
                for c in range(cell.col, min(cell.col + cell.col_span, self.n_cols)):
                    texts[r][c] = cell.text
        cells = tuple(Cell(r, c, text) for r, row in enumerate(texts) for c, text in enumerate(row))
        return TableGrid(self.n_rows, self.n_cols, cells)


_MARKUP = re.compile(r"[*_`\\]")
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
# A list item's bullet inside a cell: Docling writes a cell's list as "- a - b".
_BULLET = re.compile(r"(?:^|(?<=\s))[-•▪◦]\s+(?=\S)")


def normalise_cell(text: str) -> str:
    """A cell's text as compared: NFKC, entities decoded, ``<br>``, list bullets
    (``- ``, ``• ``) and Markdown's emphasis and escape characters (``* _ ` \\``)
    turned to spaces, case folded, white space collapsed."""
    text = html.unescape(_BREAK.sub(" ", text)).strip()
    text = unicodedata.normalize("NFKC", _BULLET.sub(" ", _MARKUP.sub(" ", text)))
    return " ".join(text.casefold().split())


# ---------------------------------------------------------------- Markdown


_DELIMITER_ROW = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_HTML_TABLE = re.compile(r"<table\b.*?</table\s*>", re.IGNORECASE | re.DOTALL)
# A pipe not escaped by a backslash.
_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")


def markdown_tables(text: str) -> list[TableGrid]:
    """Every table of a Markdown text, pipe tables and raw HTML tables, in order."""
    # Comments, then HTML tables, become blanks of the same length (offsets stay true):
    # a table inside a comment is no table.
    text = _HTML_COMMENT.sub(_blank, text)
    found: list[tuple[int, TableGrid]] = []
    for match in _HTML_TABLE.finditer(text):
        found.extend((match.start(), table) for table in html_tables(match.group(0)))
    found.extend(_pipe_tables(_HTML_TABLE.sub(_blank, text)))
    return [table for _, table in sorted(found, key=lambda item: item[0])]


def _blank(match: re.Match[str]) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def _pipe_tables(text: str) -> Iterator[tuple[int, TableGrid]]:
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    index = 0
    while index < len(lines) - 1:
        line = lines[index]
        if "|" in line and _DELIMITER_ROW.match(lines[index + 1]) and "|" in lines[index + 1]:
            rows = [split_row(line)]
            end = index + 2
            while end < len(lines) and "|" in lines[end] and lines[end].strip():
                rows.append(split_row(lines[end]))
                end += 1
            yield offsets[index], TableGrid.from_rows(rows)
            index = end
        else:
            index += 1


def split_row(line: str) -> list[str]:
    """The raw cell texts of a pipe-table row (outer pipes optional, ``\\|`` a pipe)."""
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [part.replace("\\|", "|") for part in _CELL_SEPARATOR.split(line)]


# ---------------------------------------------------------------- HTML


def html_tables(markup: str | bytes) -> list[TableGrid]:
    """Every outermost table of an HTML text, in order; a nested table's text stays in
    the cell holding it (as Docling and our reader flatten it)."""
    try:
        root = lxml.html.fromstring(markup)
    except (etree.ParserError, ValueError):
        return []
    # Scripts and styles are no text a reader sees (an element's text keeps them).
    for hidden in list(root.iter("script", "style")):
        if isinstance(hidden, lxml.html.HtmlElement):
            hidden.drop_tree()
    # A line break or a block boundary separates words (an element's text joins them).
    for boundary in root.iter(*_BLOCK_TAGS):
        boundary.text = " " + (boundary.text or "")
        boundary.tail = " " + (boundary.tail or "")
    tables = [root] if root.tag == "table" else []
    tables += root.iter("table")
    return [_html_table(t) for t in dict.fromkeys(tables) if not _inside_table(t)]


_BLOCK_TAGS = ("br", "p", "div", "li", "ul", "ol", "td", "th", "tr", "table", "h1", "h2", "h3")


def _inside_table(element: etree._Element) -> bool:
    return any(ancestor.tag == "table" for ancestor in element.iterancestors())


def _own(element: etree._Element, tag: str, table: etree._Element) -> list[etree._Element]:
    """``tag`` descendants of ``element`` whose nearest table is ``table``."""
    return [
        found for found in element.iter(tag) if next(found.iterancestors("table"), None) is table
    ]


def _html_table(table: etree._Element) -> TableGrid:
    """The table's cells placed as HTML's table model places them (spans taken, each
    cell at the first column its row has free)."""
    taken: set[tuple[int, int]] = set()
    cells: list[Cell] = []
    for r, row in enumerate(_own(table, "tr", table)):
        c = 0
        for element in row:
            if element.tag not in ("td", "th"):
                continue
            while (r, c) in taken:
                c += 1
            rows, cols = _span(element.get("rowspan")), _span(element.get("colspan"))
            text = normalise_cell(
                etree.tostring(element, method="text", encoding="unicode", with_tail=False)
            )
            cells.append(Cell(r, c, text, rows, cols))
            taken.update((r + dr, c + dc) for dr in range(rows) for dc in range(cols))
            c += cols
    n_rows = max((cell.row + cell.row_span for cell in cells), default=0)
    n_cols = max((cell.col + cell.col_span for cell in cells), default=0)
    return TableGrid(n_rows, n_cols, tuple(cells))


def _span(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 1000))
    except ValueError:
        return 1


# ---------------------------------------------------------------- cell scores


@dataclass(frozen=True)
class CellScore:
    """Cell-level precision, recall and F1 of a document's tables against the truth's."""

    precision: float
    recall: float
    f1: float


def cell_positions(tables: Iterable[TableGrid]) -> Counter[tuple[int, int, str]]:
    """The multiset of (row, column, text) of every non-empty grid position of ``tables``.

    Positions are counted within each table, so a missed table does not shift the
    others; spans are written out (:meth:`TableGrid.as_grid`), as Markdown writes them.
    """
    return Counter(
        (cell.row, cell.col, cell.text)
        for table in tables
        for cell in table.as_grid().cells
        if cell.text
    )


def cell_score(predicted: Iterable[TableGrid], truth: Iterable[TableGrid]) -> CellScore:
    """Precision, recall and F1 of the cells of ``predicted`` that match a truth cell in
    row, column and normalised text. Two documents without cells agree perfectly."""
    found, meant = cell_positions(predicted), cell_positions(truth)
    if not found and not meant:
        return CellScore(1.0, 1.0, 1.0)
    common = sum((found & meant).values())
    precision = common / sum(found.values()) if found else 0.0
    recall = common / sum(meant.values()) if meant else 0.0
    f1 = 2 * precision * recall / (precision + recall) if common else 0.0
    return CellScore(precision, recall, f1)
