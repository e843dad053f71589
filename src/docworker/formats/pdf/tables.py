"""Tables of PDF pages: cells found by pdfplumber's table finder, their text read by pdfium.

pdfplumber's table finder works from the lines a page draws (its "lines"
strategy, ruled tables only: its "text" strategy takes paragraphs in columns
for tables; tables without a grid are found by
:mod:`docworker.formats.pdf.aligned`, which tells them from prose). pdfplumber
would read the page through pdfminer, a hundred times slower than pdfium (some
0.2 s a page), so the finder is given
the page's straight strokes as pdfium reads them
(:func:`~docworker.formats.pdf.graphics.ruling_edges`) and runs its own steps
on them: merge the edges, find their crossings, the cells between crossings,
the tables the cells make. The two middle steps are done here, with the same
comparisons as pdfplumber's but without the work it repeats (:func:`_crossings`,
:func:`_cell_boxes`). It only runs on the pages whose rules cross into a grid
(:meth:`~docworker.formats.pdf.graphics.PageGraphics.has_grid`).

Tables whose sides are open (rules across, no outer verticals: the common
style of papers) get their outer sides from the ends of the rules, so their
first and last columns are not lost. The cells' text comes from pdfium, as the
rest of the page's does. A found table that is mostly empty, made of boxes
inside boxes (a figure), or of long paragraphs (a ruled page layout) is dropped.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from docworker.document import Table, TableCell
from docworker.formats.pdf.graphics import ruling_edges
from docworker.formats.pdf.layout import Box
from docworker.formats.pdf.text import PageFrame, PageText, bounded_text

#: pdfplumber's default tolerances (points): edges this close are snapped and
#: joined into one, and cross when they come this close.
_SNAP = 3.0
_JOIN = 3.0
_CROSS = 3.0
#: Edges shorter than this, once joined, are no rules.
_MIN_EDGE = 3.0
#: A page of more strokes than this is a drawing. A grid of more crossings than this
#: (a sheet of graph paper) is no table either, and would take the finder seconds.
_MAX_EDGES = 3000
_MAX_CROSSINGS = 4000
#: Coordinates closer than this (points) are one row or column boundary.
_SAME_PLACE = 2.0
#: A table needs at least this share of its cells holding text ...
_MIN_FILLED = 0.25
#: ... and this many rows with two cells of text or more.
_MIN_FULL_ROWS = 2
#: Most cells of a table are short: boxes whose middle one holds more characters
#: than this frame paragraphs (a ruled page layout), not cells.
_MAX_MEDIAN_CELL = 200


@dataclass(frozen=True)
class FoundTable:
    """A table and its box on the page."""

    box: Box
    table: Table


def find_tables(page: Any, text: PageText, frame: PageFrame) -> list[FoundTable]:
    """The ruled tables of ``page`` (pdfium's), whose text is ``text``, seen in ``frame``.

    Rows and columns are told in ``frame``: the frame where the text is
    upright keeps the rows of a table set sideways on its page.
    """
    edges = ruling_edges(page, frame)
    if len(edges) > _MAX_EDGES:
        return []
    tables = _cells(edges)
    sides = [line for cells in tables for line in _sides(_around(cells), edges)]
    if sides:
        tables = _cells(edges + sides)
    found = (_table(cells, text, frame) for cells in tables)
    return [table for table in found if table is not None]


def _cells(edges: list[dict[str, Any]]) -> list[list[Box]]:
    """The cell boxes of each table the edges make, as pdfplumber's finder groups them."""
    # Imported on the first ruled page: pdfplumber brings pdfminer, some 25 MB
    # that a worker reading no ruled page never needs.
    from pdfplumber.table import cells_to_tables, merge_edges

    merged = merge_edges(edges, _SNAP, _SNAP, _JOIN, _JOIN)
    rules = [e for e in merged if e["width" if e["orientation"] == "h" else "height"] >= _MIN_EDGE]
    crossings = _crossings(rules)
    if len(crossings) > _MAX_CROSSINGS:
        return []
    return [list(table) for table in cells_to_tables(_cell_boxes(crossings))]


#: A crossing of rules: the boxes (``x0, top, x1, bottom``) of the rules that run
#: down through it, and of those that run across it.
_Crossing = tuple[set[Box], set[Box]]


def _crossings(rules: list[dict[str, Any]]) -> dict[tuple[float, float], _Crossing]:
    """The points where rules cross (within ``_CROSS``), as pdfplumber's
    ``edges_to_intersections`` finds them, each with the rules through it.

    pdfplumber sorts the rules across once for every rule down, and keeps the
    rules of a crossing as lists that its cell finder turns into sets of boxes
    at every comparison; here both are done once.
    """
    across = sorted((e for e in rules if e["orientation"] == "h"), key=itemgetter("top", "x0"))
    down = sorted((e for e in rules if e["orientation"] == "v"), key=itemgetter("x0", "top"))
    across_boxes = [(_bbox(h), h["top"], h["x0"], h["x1"]) for h in across]
    found: dict[tuple[float, float], _Crossing] = {}
    for v in down:
        x, top, bottom, box = v["x0"], v["top"], v["bottom"], _bbox(v)
        for h_box, y, x0, x1 in across_boxes:
            # The very comparisons pdfplumber makes, so that the same points are found.
            if top <= y + _CROSS and bottom >= y - _CROSS and x >= x0 - _CROSS and x <= x1 + _CROSS:
                crossing = found.get((x, y))
                if crossing is None:
                    crossing = found[(x, y)] = (set(), set())
                crossing[0].add(box)
                crossing[1].add(h_box)
    return found


def _bbox(edge: dict[str, Any]) -> Box:
    return edge["x0"], edge["top"], edge["x1"], edge["bottom"]


def _cell_boxes(crossings: dict[tuple[float, float], _Crossing]) -> list[Box]:
    """The smallest cell each crossing is the top-left corner of, as pdfplumber's
    ``intersections_to_cells`` finds them: a crossing below and one to the right
    joined to it by rules, and the crossing that closes the box joined to both."""
    points = sorted(crossings)
    # The crossings after each one in sorted order on the same rule down (x) and across (y).
    down: dict[float, list[int]] = defaultdict(list)
    across: dict[float, list[int]] = defaultdict(list)
    for index, (x, y) in enumerate(points):
        down[x].append(index)
        across[y].append(index)
    cells: list[Box] = []
    for index, point in enumerate(points):
        x, y = point
        rules_down, rules_across = crossings[point]
        below = [points[i] for i in down[x] if i > index and points[i][0] == x]
        right = [points[i] for i in across[y] if i > index and points[i][1] == y]
        cell = _smallest_cell(crossings, point, below, right, rules_down, rules_across)
        if cell is not None:
            cells.append(cell)
    return cells


def _smallest_cell(
    crossings: dict[tuple[float, float], _Crossing],
    point: tuple[float, float],
    below: list[tuple[float, float]],
    right: list[tuple[float, float]],
    rules_down: set[Box],
    rules_across: set[Box],
) -> Box | None:
    for below_point in below:
        if rules_down.isdisjoint(crossings[below_point][0]):
            continue
        for right_point in right:
            if rules_across.isdisjoint(crossings[right_point][1]):
                continue
            corner = crossings.get((right_point[0], below_point[1]))
            if (
                corner is not None
                and not corner[0].isdisjoint(crossings[right_point][0])
                and not corner[1].isdisjoint(crossings[below_point][1])
            ):
                return (point[0], point[1], right_point[0], below_point[1])
    return None


def _around(cells: list[Box]) -> Box:
    return (
        min(cell[0] for cell in cells),
        min(cell[1] for cell in cells),
        max(cell[2] for cell in cells),
        max(cell[3] for cell in cells),
    )


def _sides(box: Box, edges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Vertical lines at the outer ends of a table's rules, from its top to its bottom.

    A table without outer verticals (the style of papers) is found without its
    first and last columns, or with holes in them, but its rules reach out to
    its sides: a line through their ends closes those columns. Where the table
    has its outer verticals already, the lines add nothing: they are merged
    with those.
    """
    x0, top, x1, bottom = box
    ends = [
        (rule["x0"], rule["x1"])
        for rule in edges
        if rule["orientation"] == "h"
        and top - _SAME_PLACE <= rule["top"] <= bottom + _SAME_PLACE
        and rule["x1"] > x0
        and rule["x0"] < x1
    ]
    if not ends:
        return []
    line = {"top": top, "bottom": bottom, "width": 0, "height": bottom - top}
    return [
        {**line, "x0": x, "x1": x, "orientation": "v", "object_type": "line"}
        for x in (min(left for left, _ in ends), max(right for _, right in ends))
    ]


def _table(boxes: list[Box], text: PageText, frame: PageFrame) -> FoundTable | None:
    """A table from its cells' boxes, or None if they do not make one (see _is_table)."""
    columns = _boundaries(x for x0, _, x1, _ in boxes for x in (x0, x1))
    rows = _boundaries(y for _, top, _, bottom in boxes for y in (top, bottom))
    cells = []
    for x0, top, x1, bottom in boxes:
        row, col = _index(rows, top), _index(columns, x0)
        cells.append(
            TableCell(
                row=row,
                col=col,
                row_span=max(_index(rows, bottom) - row, 1),
                col_span=max(_index(columns, x1) - col, 1),
                text=bounded_text(text, frame.user_box(x0, top, x1, bottom)),
            )
        )
    n_rows, n_cols = len(rows) - 1, len(columns) - 1
    if not _is_table(cells, n_rows, n_cols):
        return None
    cells.sort(key=lambda cell: (cell.row, cell.col))
    _mark_header(cells)
    box = (columns[0], rows[0], columns[-1], rows[-1])
    return FoundTable(box, Table(n_rows=n_rows, n_cols=n_cols, cells=cells))


def _boundaries(values: Any) -> list[float]:
    """Sorted distinct coordinates, those closer than ``_SAME_PLACE`` taken as one."""
    merged: list[float] = []
    for value in sorted(values):
        if not merged or value - merged[-1] > _SAME_PLACE:
            merged.append(value)
    return merged


def _index(boundaries: list[float], value: float) -> int:
    """The index of the boundary ``value`` is (within ``_SAME_PLACE``) on."""
    return max(bisect.bisect_right(boundaries, value + _SAME_PLACE) - 1, 0)


def _is_table(cells: list[TableCell], n_rows: int, n_cols: int) -> bool:
    """Whether the cells make a table: a grid of two by two or more, each place in one cell
    (boxes drawn inside boxes make a figure), enough of them holding text, most of it short."""
    if n_rows < 2 or n_cols < 2:
        return False
    covered = sum(cell.row_span * cell.col_span for cell in cells)
    places = {
        (row, col)
        for cell in cells
        for row in range(cell.row, cell.row + cell.row_span)
        for col in range(cell.col, cell.col + cell.col_span)
    }
    if covered != len(places):
        return False
    texts = sorted(len(cell.text) for cell in cells if cell.text)
    if not texts or texts[len(texts) // 2] > _MAX_MEDIAN_CELL:
        return False
    per_row: Counter[int] = Counter(cell.row for cell in cells if cell.text)
    full_rows = sum(1 for count in per_row.values() if count >= 2)
    return len(texts) >= _MIN_FILLED * len(cells) and full_rows >= _MIN_FULL_ROWS


def _mark_header(cells: list[TableCell]) -> None:
    """Make the first row a header when it looks like one: text in every cell, no numbers.

    A first-row cell spanning rows down (a header over a second header row)
    takes the rows it spans into the header.
    """
    first = [cell for cell in cells if cell.row == 0]
    if not all(cell.text and not numeric(cell.text) for cell in first):
        return
    depth = max(cell.row_span for cell in first)
    for cell in cells:
        if cell.row < depth:
            cell.header = True


def numeric(text: str) -> bool:
    """Whether a cell holds one amount: digits with their separators, a sign or a percent
    sign, a currency sign, or in brackets (a cost, as accounts write it)."""
    text = text.strip()
    if text[:1] == "(" and text[-1:] == ")":
        text = text[1:-1]
    text = text.lstrip("-+−–$€£¥").replace(".", "").replace(",", "").replace("%", "")
    return text.strip().isdigit()
