"""Large tables through the ``extract`` operation: every row of a 20,000-row CSV (and of a
smaller XLSX of the same rows) in every output, held as rows rather than cell objects.

The files are written by the benchmark's writers (``bench/large_tables.py``); the
figures of time and memory are the benchmark's (``bench/big_tables.py``), not these tests'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.large_tables import HEADER, cell_text, row, write_csv, write_xlsx
from docworker.document import RowCells
from docworker.formats.base import ParseContext
from docworker.formats.registry import parse_path
from docworker.operations.base import InputFile, OperationContext
from docworker.operations.extract import ExtractOperation, ExtractParams

CSV_ROWS = 20_000
XLSX_ROWS = 5_000


def extract(path: Path, **params: Any) -> dict[str, Any]:
    result = ExtractOperation().run(
        OperationContext(), InputFile(path=path, name=path.name), ExtractParams(**params)
    )
    return result.payload


def expected_rows(count: int) -> list[list[str]]:
    return [list(HEADER)] + [[cell_text(value) for value in row(i)] for i in range(count)]


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("tables") / "big.csv", CSV_ROWS)


@pytest.fixture(scope="module")
def big_xlsx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_xlsx(tmp_path_factory.mktemp("tables") / "big.xlsx", XLSX_ROWS)


def test_every_row_of_a_large_csv_is_in_the_text(big_csv: Path) -> None:
    content = extract(big_csv, output="text")["content"]
    assert content == "\n".join("\t".join(cells) for cells in expected_rows(CSV_ROWS)) + "\n"


def test_every_row_of_a_large_csv_is_in_the_markdown(big_csv: Path) -> None:
    lines = extract(big_csv, output="markdown")["content"].splitlines()
    rows = expected_rows(CSV_ROWS)
    assert len(lines) == len(rows) + 1
    assert lines[0] == "| " + " | ".join(HEADER) + " |"
    assert lines[1] == "|" + "|".join([" --- "] * len(HEADER)) + "|"
    assert lines[2:] == ["| " + " | ".join(cells) + " |" for cells in rows[1:]]


def test_a_large_csv_in_json_lists_every_cell(big_csv: Path) -> None:
    payload = extract(big_csv, output="json")
    content = payload["content"]
    table = content["blocks"][0]["table"]
    assert (table["n_rows"], table["n_cols"]) == (CSV_ROWS + 1, len(HEADER))
    # Every cell of the generated rows is filled, so every cell is listed, in reading order.
    assert len(table["cells"]) == (CSV_ROWS + 1) * len(HEADER)
    assert table["cells"][0] == {
        "row": 0,
        "col": 0,
        "text": "id",
        "row_span": 1,
        "col_span": 1,
        "header": True,
    }
    last = table["cells"][-1]
    assert (last["row"], last["col"], last["text"], last["header"]) == (
        CSV_ROWS,
        7,
        cell_text(row(CSV_ROWS - 1)[7]),
        False,
    )
    # Held as rows while it was read; the round trip of the JSON is tested on small tables
    # (tests/unit/test_document_tables.py).
    document = parse_path(big_csv, ParseContext())
    assert isinstance(document.blocks[0].table.cells, RowCells)  # type: ignore[union-attr]


def test_counts_of_a_large_csv_are_those_of_its_cells(big_csv: Path) -> None:
    metadata = extract(big_csv, output="text")["metadata"]
    cells = [text for cells in expected_rows(CSV_ROWS) for text in cells]
    assert metadata["word_count"] == sum(len(text.split()) for text in cells)
    assert metadata["char_count"] == sum(map(len, cells))
    assert (metadata["extra"]["rows"], metadata["extra"]["columns"]) == (CSV_ROWS + 1, 8)


def test_a_large_sheet_gives_the_csv_text_of_the_same_rows(big_xlsx: Path) -> None:
    content = extract(big_xlsx, output="text", sheet_names=False)["content"]
    assert content == "\n".join("\t".join(cells) for cells in expected_rows(XLSX_ROWS)) + "\n"
    markdown = extract(big_xlsx, output="markdown")["content"].splitlines()
    assert markdown[0] == "## Orders"
    assert markdown[2] == "| " + " | ".join(HEADER) + " |"
    assert len(markdown) == 2 + XLSX_ROWS + 2
