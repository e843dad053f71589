"""Table structure on the corpus: TEDS, TEDS-S and cell precision/recall/F1, per tool.

``python -m bench.tables`` reads the tables every corpus document should give
(:mod:`bench.table_truths`: its Markdown ground truth, and the cells the file
itself holds for DOCX, XLSX, HTML and Markdown files), has each tool extract the
document, and scores the tables found against each truth:

- **TEDS** and **TEDS-S** (:mod:`bench.teds`): tree-edit-distance similarity of
  the document's tables, with cell texts and structure only.
- **cell P/R/F1** (:mod:`bench.table_cells`): cells matched by row, column and
  normalised text.

Ours is the ``extract`` operation as a job runs it, JSON output (the document
model's tables, with their spans); MarkItDown's, Docling's and Unstructured's
tables are read from their Markdown (or Unstructured's HTML), each measured only
where it is installed. Against a Markdown truth, which cannot say a cell spans,
the tables found are compared written out as grids, as the truth writes them.
A truth a peer exported does not count for that peer. Where the truth has no
table, the tables a tool found anyway are listed apart.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.extractors import extract_payload, markitdown_extractor
from bench.scoring import corpus_root, documents
from bench.table_cells import (
    Cell,
    CellScore,
    TableGrid,
    cell_score,
    markdown_tables,
    normalise_cell,
)
from bench.table_truths import TableTruth, expected_truths, file_truths, openpyxl_installed
from bench.teds import teds
from docworker.document import Table
from docworker.operations.extract import ExtractParams
from docworker.telemetry import configure_logging

TableExtractor = Callable[[Path], list[TableGrid]]
#: A truth's document and source, which tell it apart.
TruthKey = tuple[str, str]
_NOT_RUN = "—"


def grid_of(table: Table) -> TableGrid:
    """A document-model table as a :class:`TableGrid`, spans kept, texts normalised."""
    cells = tuple(
        Cell(c.row, c.col, normalise_cell(c.text), c.row_span, c.col_span) for c in table.cells
    )
    return TableGrid(table.n_rows, table.n_cols, cells)


def docworker_tables(path: Path) -> list[TableGrid]:
    """The tables of the ``extract`` operation's JSON output, as a job runs it (the
    service's settings, OCR where needed, LibreOffice for legacy Office files)."""
    model: dict[str, Any] = extract_payload(path, ExtractParams(output="json"))["content"]
    return [
        grid_of(Table.model_validate(block["table"]))
        for block in model["blocks"]
        if block["kind"] == "table" and block.get("table")
    ]


def markitdown_tables() -> TableExtractor | None:
    """The tables of MarkItDown's Markdown, or None when it is not installed."""
    convert = markitdown_extractor()
    if convert is None:
        return None
    return lambda path: markdown_tables(convert(path))


def docling_tables() -> TableExtractor | None:
    """The tables of Docling's Markdown export, or None when it is not installed."""
    try:
        from docling.document_converter import (  # type: ignore[import-not-found,unused-ignore]
            DocumentConverter,
        )
    except ImportError:
        return None
    converter = DocumentConverter()
    return lambda path: markdown_tables(converter.convert(path).document.export_to_markdown())


def unstructured_tables() -> TableExtractor | None:
    """The HTML of Unstructured's ``Table`` elements (``fast`` strategy, as PEERS.md ran
    it), or None when it is not installed."""
    try:
        from unstructured.partition.auto import (  # type: ignore[import-not-found,unused-ignore]
            partition,
        )
    except ImportError:
        return None

    def extract(path: Path) -> list[TableGrid]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            elements = partition(filename=str(path), strategy="fast")
        markup = [
            getattr(e.metadata, "text_as_html", None) or ""
            for e in elements
            if e.category == "Table"
        ]
        return markdown_tables("\n\n".join(markup))

    return extract


@dataclass
class Found:
    """One tool on one document: the tables it found, or the error it raised."""

    tables: list[TableGrid] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class Scores:
    teds: float
    teds_s: float
    cells: CellScore


def score(found: Found, truth: TableTruth) -> Scores:
    """The tables ``found`` against ``truth``: as grids when the truth cannot hold spans;
    a failed extraction scores 0."""
    if found.error is not None:
        return Scores(0.0, 0.0, CellScore(0.0, 0.0, 0.0))
    predicted = found.tables if truth.spans else [t.as_grid() for t in found.tables]
    return Scores(
        teds(predicted, truth.tables),
        teds(predicted, truth.tables, structure_only=True),
        cell_score(predicted, truth.tables),
    )


def run(extract: TableExtractor, paths: Sequence[str]) -> dict[str, Found]:
    """What ``extract`` finds in each corpus path, timed."""
    results: dict[str, Found] = {}
    for path in paths:
        start = time.perf_counter()
        try:
            found = Found(tables=extract(corpus_root() / path))
        except Exception as exc:  # noqa: BLE001 - a failure is a figure here, not a crash
            found = Found(error=" ".join(f"{type(exc).__name__}: {exc}".split())[:100])
        found.seconds = time.perf_counter() - start
        results[path] = found
    return results


#: The peers, each measured where it is installed.
PEERS: dict[str, Callable[[], TableExtractor | None]] = {
    "MarkItDown": markitdown_tables,
    "Docling": docling_tables,
    "Unstructured": unstructured_tables,
}


def select(
    truths: list[TableTruth], folders: Sequence[str], names: Sequence[str]
) -> list[TableTruth]:
    """The truths of documents in ``folders`` whose path holds one of ``names`` (each
    filter applies only when given)."""
    return [
        t
        for t in truths
        if (not folders or t.folder in folders)
        and (not names or any(n in t.document for n in names))
    ]


def _mean(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f}" if values else _NOT_RUN


def print_folders(truths: list[TableTruth], results: dict[str, dict[TruthKey, Scores]]) -> None:
    print("\n| folder | tool | truths | TEDS | TEDS-S | cell P | cell R | cell F1 |")
    print("|---|---|---|---|---|---|---|---|")
    for folder in sorted({t.folder for t in truths}):
        for tool, scores in results.items():
            chosen = [scores[_key(t)] for t in truths if t.folder == folder and _key(t) in scores]
            print(
                f"| {folder} | {tool} | {len(chosen)} | {_mean([s.teds for s in chosen])} | "
                f"{_mean([s.teds_s for s in chosen])} | "
                f"{_mean([s.cells.precision for s in chosen])} | "
                f"{_mean([s.cells.recall for s in chosen])} | "
                f"{_mean([s.cells.f1 for s in chosen])} |"
            )


def print_files(
    truths: list[TableTruth],
    found: dict[str, dict[str, Found]],
    results: dict[str, dict[TruthKey, Scores]],
) -> None:
    print(
        "\n| file | truth | tables | tool | found | TEDS | TEDS-S | cell P | cell R | cell F1 "
        "| note |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for truth in truths:
        for tool, scores in results.items():
            got = found[tool][truth.document]
            s = scores.get(_key(truth))
            if s is None:
                figures = f"{_NOT_RUN} | " * 5
                note = f"truth exported by {truth.produced_by}"
            else:
                figures = (
                    f"{s.teds:.3f} | {s.teds_s:.3f} | {s.cells.precision:.3f} | "
                    f"{s.cells.recall:.3f} | {s.cells.f1:.3f} | "
                )
                note = got.error or ""
            print(
                f"| {truth.document} | {truth.source} | {len(truth.tables)} | {tool} | "
                f"{len(got.tables)} | {figures}{note} |"
            )


def print_spurious(empty: list[TableTruth], found: dict[str, dict[str, Found]]) -> None:
    rows = [
        (truth, tool, len(results[truth.document].tables))
        for truth in empty
        for tool, results in found.items()
        if results[truth.document].tables
    ]
    print(f"\nTables found where the truth has none ({len(empty)} truths without a table):")
    if not rows:
        print("  none")
    for truth, tool, count in rows:
        print(f"  {truth.document} ({truth.source}): {tool} found {count}")


def _key(truth: TableTruth) -> TruthKey:
    return truth.document, truth.source


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging(level="WARNING")
    parser = argparse.ArgumentParser(prog="python -m bench.tables", description=__doc__)
    parser.add_argument(
        "--folder",
        action="append",
        default=[],
        help="only the documents of this corpus folder (pdf, office, web, images); repeatable",
    )
    parser.add_argument(
        "--file", action="append", default=[], help="only documents whose path holds this text"
    )
    parser.add_argument("--no-peers", action="store_true", help="measure docworker alone")
    args = parser.parse_args(argv)

    truths = select(expected_truths() + list(file_truths(documents())), args.folder, args.file)
    with_tables = sorted((t for t in truths if t.tables), key=_key)
    empty = [t for t in truths if not t.tables]
    paths = sorted({t.document for t in truths})

    tools: dict[str, TableExtractor] = {"docworker": docworker_tables}
    missing: list[str] = []
    if not args.no_peers:
        for name, make in PEERS.items():
            extractor = make()
            if extractor is None:
                missing.append(name)
            else:
                tools[name] = extractor
    found = {name: run(extract, paths) for name, extract in tools.items()}

    start = time.perf_counter()
    results: dict[str, dict[TruthKey, Scores]] = {
        name: {
            _key(t): score(found[name][t.document], t) for t in with_tables if t.counts_for(name)
        }
        for name in tools
    }
    scoring = time.perf_counter() - start

    print(
        f"Table structure on {len(paths)} corpus documents: {len(with_tables)} truths with "
        f"{sum(len(t.tables) for t in with_tables)} tables"
    )
    print(f"Tools: {', '.join(tools)}" + "".join(f"; {n}: not installed" for n in missing))
    if not openpyxl_installed():
        print("openpyxl: not installed (the bench extra) — the workbooks' own cells are left out")
    print_folders(with_tables, results)
    print_files(with_tables, found, results)
    print_spurious(empty, found)
    extraction = ", ".join(
        f"{name} {sum(f.seconds for f in per_file.values()):.1f} s"
        for name, per_file in found.items()
    )
    print(f"\nExtraction: {extraction}; scoring: {scoring:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
