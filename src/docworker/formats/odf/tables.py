"""OpenDocument tables as grids: repeated rows and cells expanded, spans kept, under a budget.

ODF writes a run of equal rows or cells once with a repeat count, and a
spreadsheet pads every sheet to its full size that way (a million empty rows
is an ordinary ``number-rows-repeated``). So empty cells and rows are only
counted, and written out only when something filled follows them: trailing
empties never cost anything. Every cell written out, gaps included, counts
against the caller's budget (``ParseLimits.max_cells``), checked before the
cells are made, so a hostile repeat count fails fast with
:class:`~docworker.errors.LimitExceeded`. Covered cells (``table:covered-table-cell``)
hold the places a spanning cell covers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from lxml import etree

from docworker.document import Table, TableCell
from docworker.errors import LimitExceeded

TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_CELL = f"{TABLE}table-cell"
_COVERED = f"{TABLE}covered-table-cell"
_ROW = f"{TABLE}table-row"
_HEADER_ROWS = f"{TABLE}table-header-rows"
#: Elements that hold rows (or more such elements).
_ROW_GROUPS = frozenset({f"{TABLE}table-rows", f"{TABLE}table-row-group", _HEADER_ROWS})


#: What every empty row is: one shared list, never changed, however many empty rows.
_EMPTY_ROW: list[str] = []


@dataclass
class Grid:
    """A table's cell texts, row by row, and where its spanning cells start."""

    #: Cell texts; each row stops at its last filled cell, an empty row is ``[]``.
    rows: list[list[str]] = field(default_factory=list)
    #: (row, column, rows spanned, columns spanned) of each spanning cell.
    spans: list[tuple[int, int, int, int]] = field(default_factory=list)
    #: How many leading rows the table marks as its header.
    header_rows: int = 0
    #: Cells written out so far, empty gaps included.
    size: int = 0


@dataclass
class _Row:
    texts: list[str] = field(default_factory=list)
    spans: list[tuple[int, int, int]] = field(default_factory=list)


def read_grid(
    table: etree._Element, cell_text: Callable[[etree._Element], str], budget: int
) -> Grid:
    """The grid of a ``table:table``; ``cell_text`` gives a cell's text.

    Raises :class:`LimitExceeded` once more than ``budget`` cells would be written out.
    """
    grid = Grid()
    pending = 0  # empty rows seen since the last filled one
    for row, header in _rows(table):
        repeat = _number(row, "number-rows-repeated")
        content = _read_row(row, cell_text, budget - grid.size)
        if not content.texts:
            pending += repeat
            continue
        needed = grid.size + pending + repeat * len(content.texts)
        if needed > budget:
            raise LimitExceeded("cells", needed, budget)
        if header and not pending and len(grid.rows) == grid.header_rows:
            grid.header_rows += repeat
        grid.rows.extend([_EMPTY_ROW] * pending)
        for _ in range(repeat):
            top = len(grid.rows)
            grid.spans.extend((top, col, rows, cols) for col, rows, cols in content.spans)
            # Repeated rows are equal: they share one list, which is never changed.
            grid.rows.append(content.texts)
        grid.size = needed
        pending = 0
    return grid


def _rows(element: etree._Element, header: bool = False) -> Iterator[tuple[etree._Element, bool]]:
    """The table's rows in order, each with whether it is a header row."""
    for child in element:
        if child.tag == _ROW:
            yield child, header
        elif child.tag in _ROW_GROUPS:
            yield from _rows(child, header or child.tag == _HEADER_ROWS)


def _read_row(row: etree._Element, cell_text: Callable[[etree._Element], str], budget: int) -> _Row:
    content = _Row()
    pending = 0  # empty cells seen since the last filled one
    for cell in row:
        if cell.tag not in {_CELL, _COVERED}:
            continue
        repeat = _number(cell, "number-columns-repeated")
        text = cell_text(cell) if cell.tag == _CELL else ""
        rows = _number(cell, "number-rows-spanned") if cell.tag == _CELL else 1
        cols = _number(cell, "number-columns-spanned") if cell.tag == _CELL else 1
        if not text and rows == 1 and cols == 1:
            pending += repeat
            continue
        needed = len(content.texts) + pending + repeat
        if needed > budget:
            raise LimitExceeded("cells", needed, budget)
        content.texts.extend("" for _ in range(pending))
        pending = 0
        for _ in range(repeat):
            if rows > 1 or cols > 1:
                content.spans.append((len(content.texts), rows, cols))
            content.texts.append(text)
    return content


def _number(element: etree._Element, name: str) -> int:
    """A repeat or span count: at least 1, and 1 when malformed."""
    value = element.get(f"{TABLE}{name}")
    if not value:
        return 1
    try:
        return max(int(value), 1)
    except ValueError:
        return 1


def grid_table(grid: Grid, budget: int) -> Table:
    """The grid as a :class:`Table`, spans cut to the table's edges.

    A text table is drawn whole, so its full rectangle counts against ``budget``.
    """
    n_rows = len(grid.rows)
    n_cols = max((len(row) for row in grid.rows), default=0)
    if n_rows * n_cols > budget:
        raise LimitExceeded("cells", n_rows * n_cols, budget)
    origins: dict[tuple[int, int], tuple[int, int]] = {}
    covered: set[tuple[int, int]] = set()
    spanned = 0
    for row, col, down, across in grid.spans:
        if (row, col) in covered or col >= n_cols:
            continue
        rows, cols = min(down, n_rows - row), min(across, n_cols - col)
        # Spans that do not overlap cover at most the table; overlapping ones could
        # make this loop quadratic.
        spanned += rows * cols
        if spanned > budget:
            raise LimitExceeded("cells", spanned, budget)
        origins[(row, col)] = (rows, cols)
        covered.update((r, c) for r in range(row, row + rows) for c in range(col, col + cols))
        covered.discard((row, col))
    cells = [
        TableCell(
            row=r,
            col=c,
            text=texts[c] if c < len(texts) else "",
            row_span=origins.get((r, c), (1, 1))[0],
            col_span=origins.get((r, c), (1, 1))[1],
            header=r < grid.header_rows and n_rows > 1,
        )
        for r, texts in enumerate(grid.rows)
        for c in range(n_cols)
        if (r, c) not in covered
    ]
    return Table(n_rows=n_rows, n_cols=n_cols, cells=cells)
