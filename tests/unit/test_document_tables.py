"""A table held as rows (``Table.from_rows``) is the table built cell by cell: the same
cells, grid, header rows, counts, renderings and JSON, and the JSON reads back equal."""

from __future__ import annotations

import json

import pytest

from docworker.document import (
    Block,
    BlockKind,
    Document,
    DocumentBuilder,
    RowCells,
    Table,
    TableCell,
)
from docworker.render.document import render_html, render_json, render_markdown, render_text


def cell(
    row: int, col: int, text: str, rows: int = 1, cols: int = 1, header: bool = False
) -> TableCell:
    return TableCell(row=row, col=col, text=text, row_span=rows, col_span=cols, header=header)


#: Each case: the table held as rows, and the same table built cell by cell.
CASES = {
    "sheet with a header": (
        Table.from_rows([["name", "n"], ["a b", "1"], ["", "2"]], header_rows=1),
        Table(
            n_rows=3,
            n_cols=2,
            cells=[
                cell(0, 0, "name", header=True),
                cell(0, 1, "n", header=True),
                cell(1, 0, "a b"),
                cell(1, 1, "1"),
                cell(2, 0, ""),
                cell(2, 1, "2"),
            ],
        ),
    ),
    "csv: empty cells left out, short rows": (
        Table.from_rows([["x", ""], ["", "y", "z"], ["w"]], header_rows=1, empty_listed=False),
        Table(
            n_rows=3,
            n_cols=3,
            cells=[
                cell(0, 0, "x", header=True),
                cell(0, 1, "", header=True),
                cell(1, 1, "y"),
                cell(1, 2, "z"),
                cell(2, 0, "w"),
            ],
        ),
    ),
    "spans and odd texts": (
        Table.from_rows(
            [["a|b", "<i>", "  c  d "], ["t\tu", "", ""], ["1", "2", "3"]],
            spans=[cell(0, 2, "  c  d ", rows=2), cell(1, 0, "t\tu", cols=2)],
        ),
        Table(
            n_rows=3,
            n_cols=3,
            cells=[
                cell(0, 0, "a|b"),
                cell(0, 1, "<i>"),
                cell(0, 2, "  c  d ", rows=2),
                cell(1, 0, "t\tu", cols=2),
                cell(2, 0, "1"),
                cell(2, 1, "2"),
                cell(2, 2, "3"),
            ],
        ),
    ),
    "places covered from outside": (
        Table.from_rows([["a", "hidden"], ["b", "c"]], covered={(0, 1)}),
        Table(n_rows=2, n_cols=2, cells=[cell(0, 0, "a"), cell(1, 0, "b"), cell(1, 1, "c")]),
    ),
}


def document_of(table: Table) -> Document:
    builder = DocumentBuilder("csv", "text/csv")
    builder.add(BlockKind.TABLE, table=table)
    return builder.finish()


@pytest.mark.parametrize("name", CASES)
def test_a_table_held_as_rows_is_the_table_built_cell_by_cell(name: str) -> None:
    rows, cells = CASES[name]
    assert isinstance(rows.cells, RowCells)
    assert list(rows.cells) == cells.cells
    assert len(rows.cells) == len(cells.cells)
    assert rows.cells[-1] == cells.cells[-1]
    assert rows.grid() == cells.grid()
    assert rows.header_rows() == cells.header_rows()
    assert rows.text_size() == len("\n".join("\t".join(line) for line in cells.grid()))
    assert rows.text_counts() == cells.text_counts()
    assert rows == cells and cells == rows
    assert rows.model_dump() == cells.model_dump()


@pytest.mark.parametrize("name", CASES)
def test_its_renderings_and_json_are_the_same(name: str) -> None:
    rows, cells = (document_of(table) for table in CASES[name])
    for renderer in (render_text, render_markdown, render_html):
        assert renderer(rows) == renderer(cells)
    assert rows.metadata == cells.metadata
    dumped = json.dumps(render_json(rows))
    assert dumped == json.dumps(render_json(cells))
    assert Document.model_validate(json.loads(dumped)) == rows


def test_a_header_row_wholly_covered_lists_no_cell_and_is_no_header() -> None:
    table = Table.from_rows(
        [["top", ""], ["", ""]],
        header_rows=1,
        spans=[cell(0, 0, "top", rows=2, cols=2, header=True)],
    )
    assert table.header_rows() == 1
    covered = Table.from_rows([["a"], ["b"]], header_rows=1, covered={(0, 0)})
    assert covered.header_rows() == 0
    assert list(covered.cells) == [cell(1, 0, "b")]


def test_a_block_keeps_the_table_held_as_rows() -> None:
    table = Table.from_rows([["a", "b"]])
    block = Block(id="b1", kind=BlockKind.TABLE, table=table)
    assert block.table is table
