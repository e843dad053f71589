"""Delimited text tables (CSV, TSV and their semicolon and pipe cousins).

The file is decoded like any text file, its dialect is sniffed from a sample (in
one pass, whatever the sample holds), and it becomes one table block: rows padded
to the widest row, the first row marked as header cells when it looks like one.
The cell count is checked against ``ctx.limits.max_cells`` while reading, before
the table is built.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from typing import ClassVar

from docworker.document import BlockKind, Document, DocumentBuilder, Metadata, Table
from docworker.errors import CorruptDocument, LimitExceeded
from docworker.formats.base import ParseContext, Source
from docworker.formats.encoding import decode_text

_TSV = "text/tab-separated-values"
_DELIMITERS = ",;\t|"
#: Enough lines for the sniffer to see the pattern, few enough to keep it fast.
_SAMPLE_CHARS = 64 * 1024
#: Rows below the first compared with it to tell a header row.
_HEADER_PROBE_ROWS = 50
#: A quote opening a field: at a line's start or after a candidate delimiter (and a space).
_FIELD_QUOTE = re.compile(r"(?:^|[,;\t|]) ?([\"'])", re.MULTILINE)
_NUMBER = re.compile(r"^[-+]?[\d.,]+(?:[eE][-+]?\d+)?%?$")


def _sample(text: str) -> str:
    """The first lines of ``text``, cut at a line end so no row is torn."""
    if len(text) <= _SAMPLE_CHARS:
        return text
    cut = text.rfind("\n", 0, _SAMPLE_CHARS)
    return text[: cut if cut > 0 else _SAMPLE_CHARS]


def count_delimiter(sample: str) -> str:
    """The candidate delimiter that appears most consistently, line by line.

    For each candidate the most common per-line count is taken; a candidate
    scores by how many lines share that count (and how large it is), so a
    comma inside free text loses to a semicolon on every line.
    """
    lines = [line for line in sample.splitlines() if line.strip()][:200]
    best, best_score = ",", (0, 0)
    for delimiter in _DELIMITERS:
        counts = Counter(line.count(delimiter) for line in lines)
        common, lines_agreeing = max(counts.items(), key=lambda kv: (kv[1], kv[0]), default=(0, 0))
        score = (lines_agreeing if common else 0, common)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def sniff_dialect(sample: str, mime: str) -> type[csv.Dialect]:
    """The dialect of ``sample``: tab for TSV; else its quote character, then the
    delimiter counted outside quoted fields, and whether a space follows each.

    Every step is one pass over the sample: csv.Sniffer's regular expressions
    backtrack without end on a long run of quotes (a few kilobytes hang it).
    """
    if mime == _TSV:
        return csv.excel_tab
    starts = Counter(_FIELD_QUOTE.findall(sample))
    quote = "'" if starts["'"] > starts['"'] else '"'
    unquoted = re.sub(f"{quote}[^{quote}\n]*{quote}", "", sample)
    delimiter = count_delimiter(unquoted)
    spaced = unquoted.count(delimiter + " ") >= 0.8 * max(1, unquoted.count(delimiter))
    return type(
        "Sniffed",
        (csv.excel,),
        {"delimiter": delimiter, "quotechar": quote, "skipinitialspace": spaced},
    )


def _is_number(value: str) -> bool:
    return bool(_NUMBER.match(value.strip()))


def looks_like_header(rows: list[list[str]]) -> bool:
    """Whether the first row names the columns.

    It does when it holds no number at all, or when some column is numeric
    below it but not in it (the test ``csv.Sniffer.has_header`` makes, done
    on the rows already read rather than on a re-sniffed sample).
    """
    if len(rows) < 2:
        return False
    first = rows[0]
    filled = [cell for cell in first if cell]
    if filled and not any(_is_number(cell) for cell in filled):
        return True
    below = rows[1:_HEADER_PROBE_ROWS]
    for col, name in enumerate(first):
        column = [row[col] for row in below if col < len(row) and row[col]]
        if name and not _is_number(name) and column and all(_is_number(v) for v in column):
            return True
    return False


def read_rows(text: str, dialect: type[csv.Dialect], max_cells: int) -> list[list[str]]:
    """The non-empty rows of ``text``, stopping with LimitExceeded past ``max_cells``."""
    rows: list[list[str]] = []
    cells = 0
    try:
        for row in csv.reader(io.StringIO(text, newline=""), dialect):
            if not any(field.strip() for field in row):
                continue
            cells += len(row)
            if cells > max_cells:
                raise LimitExceeded(
                    "cells", cells, max_cells, f"the table has more than {max_cells} cells"
                )
            rows.append([field.strip() for field in row])
    except csv.Error as exc:
        raise CorruptDocument("csv", f"row {len(rows) + 1}: {exc}") from exc
    return rows


def build_table(rows: list[list[str]], header: bool) -> Table:
    """A table of ``rows``, held as rows (a large CSV is the common case): short rows
    stand for empty cells up to the widest, and an empty cell is listed only in the
    header row, up to that row's own length."""
    return Table.from_rows(rows, header_rows=1 if header else 0, empty_listed=False)


class DelimitedParser:
    """CSV and TSV files: one table block, dialect and header found from the data."""

    name: ClassVar[str] = "csv"
    media_types: ClassVar[frozenset[str]] = frozenset({"text/csv", _TSV})

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        decoded = decode_text(source.path.read_bytes())
        text = decoded.text
        sample = _sample(text)
        dialect = sniff_dialect(sample, source.mime)
        rows = read_rows(text, dialect, ctx.limits.max_cells)
        header = looks_like_header(rows)
        table = build_table(rows, header)
        metadata = Metadata(encoding=decoded.encoding)
        metadata.extra.update(
            delimiter=dialect.delimiter,
            rows=table.n_rows,
            columns=table.n_cols,
            header=header,
        )
        builder = DocumentBuilder(self.name, source.mime, metadata, limits=ctx.limits)
        if rows:
            builder.add(BlockKind.TABLE, table=table)
        else:
            builder.warn("empty", "the file holds no rows")
        ctx.progress(1.0, f"{table.n_rows} rows")
        return builder.finish()
