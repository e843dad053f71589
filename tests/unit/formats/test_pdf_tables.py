"""Tables and captions of PDF pages, on the corpus and on made-up geometry."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from corpus_scoring import CORPUS, corpus_f1, needs_corpus

from docworker.document import Block, BlockKind, Document, Table
from docworker.formats.base import PageSelection, ParseContext, Source
from docworker.formats.pdf.graphics import PageGraphics
from docworker.formats.pdf.layout import Line, TextBlock, cut_out, is_caption
from docworker.formats.pdf.parser import PdfParser
from docworker.formats.pdf.tables import _cell_boxes, _crossings, numeric

PDF = CORPUS / "pdf"
MIME = "application/pdf"
#: Borderless tables written by LibreOffice (see the README beside them).
MADE = Path(__file__).resolve().parents[2] / "fixtures" / "pdf"


def parse(name: str, folder: Path = PDF, **context: Any) -> Document:
    return PdfParser().parse(Source(folder / f"{name}.pdf", MIME), ParseContext(**context))


def kinds(doc: Document, kind: BlockKind) -> list[Block]:
    return [b for b in doc.blocks if b.kind == kind]


def table_of(block: Block) -> Table:
    assert block.table is not None
    return block.table


@pytest.fixture(scope="module")
def paper() -> Document:
    return parse("paper-page-with-table")


@pytest.fixture(scope="module")
def redbook() -> Document:
    return parse("ibm-redbook-sampled", pages=PageSelection.parse("7-12"))


# -- the corpus --------------------------------------------------------------------


@needs_corpus
def test_an_open_sided_table_keeps_its_outer_columns_and_spans(paper: Document) -> None:
    [block] = kinds(paper, BlockKind.TABLE)
    table = table_of(block)
    assert (table.n_rows, table.n_cols, table.header_rows()) == (6, 8, 2)
    grid = table.grid()
    assert grid[0] == [
        "# enc-layers",
        "# dec-layers",
        "Language",
        "TEDs",
        "TEDs",
        "TEDs",
        "mAP (0.75)",
        "Inference time (secs)",
    ]
    assert grid[1][3:6] == ["simple", "complex", "all"]
    assert grid[2] == [
        "6",
        "6",
        "OTSL HTML",
        "0.965 0.969",
        "0.934 0.927",
        "0.955 0.955",
        "0.88 0.857",
        "2.73 5.39",
    ]
    assert [row[0] for row in grid[2:]] == ["6", "4", "2", "4"]


@needs_corpus
def test_table_text_is_not_repeated_and_the_table_keeps_its_place(paper: Document) -> None:
    kinds_in_order = [b.kind for b in paper.blocks]
    table_at = kinds_in_order.index(BlockKind.TABLE)
    assert kinds_in_order[table_at - 1] == BlockKind.CAPTION
    assert paper.blocks[table_at + 1].text.startswith("5.2 Quantitative Results")
    text = " ".join(b.text for b in paper.blocks)
    assert "0.965" not in text and "OTSL HTML" not in text


@needs_corpus
def test_tables_raise_the_papers_score() -> None:
    # 0.975 with the table as lines of text, 0.991 as a table.
    assert corpus_f1(PdfParser(), "pdf/paper-page-with-table.pdf", MIME) >= 0.985


@needs_corpus
def test_the_redbooks_ruled_tables_are_found_and_its_figure_is_not(redbook: Document) -> None:
    tables = kinds(redbook, BlockKind.TABLE)
    assert [(b.page, table_of(b).n_rows, table_of(b).n_cols) for b in tables] == [
        (8, 5, 3),
        (9, 13, 6),
        (11, 4, 2),
        (12, 10, 3),
    ]
    assert all(table_of(b).header_rows() == 1 for b in tables)
    comparison = table_of(tables[1]).grid()
    # The header's column names are set sideways; pdfium reads them in order.
    assert comparison[0] == [
        "User action",
        "*JOBCTL",
        "QIBM_DB_SECADM",
        "QIBM_DB_SQLADM",
        "QIBM_DB_SYSMON",
        "No Authority",
    ]
    assert comparison[1] == ["SET CURRENT DEGREE (SQL statement)", "X", "", "X", "", ""]
    # Page 10 draws a figure of boxes inside boxes: its text stays paragraphs.
    assert any(b.page == 10 and "CREATE PERMISSION" in b.text for b in redbook.blocks)


@needs_corpus
def test_a_korean_table_with_open_sides_is_whole() -> None:
    doc = parse("korean-report", pages=PageSelection.parse("2"))
    [block] = kinds(doc, BlockKind.TABLE)
    grid = table_of(block).grid()
    assert grid[0] == ["구분", "개정전", "개정후"]
    assert grid[1] == ["분류", "1군 감염병", "1급 감염병"]
    [caption] = kinds(doc, BlockKind.CAPTION)
    assert caption.text == "[표 1] 감염병예방법 제2조제2호 개정전·후 비교"


@needs_corpus
def test_captions_sit_by_their_figures_and_tables(redbook: Document) -> None:
    captions = [(b.page, b.text) for b in kinds(redbook, BlockKind.CAPTION)]
    assert captions == [
        (7, "Figure 1-2 Existing row and column controls"),
        (8, "Table 2-1 FUNCTION_USAGE view"),
        (9, "Table 2-2 Comparison of the different function usage IDs and *JOBCTL authority"),
        (10, "Figure 3-1 CREATE PERMISSION SQL statement"),
        (11, "Table 3-1 Special registers and their corresponding values"),
        (11, "Figure 3-5 Special registers and adopted authority"),
        (12, "Table 3-2 Built-in global variables"),
    ]
    # Sentences that refer to a table are no captions.
    assert any(b.text.startswith("Table 2-2 shows") for b in kinds(redbook, BlockKind.PARAGRAPH))


@needs_corpus
def test_plain_text_looks_for_no_tables_and_keeps_every_word(paper: Document) -> None:
    plain = parse("paper-page-with-table", structure=False)
    assert {b.kind for b in plain.blocks} == {BlockKind.PARAGRAPH}
    structured = Counter(" ".join(paper.text_of(b) for b in paper.blocks).split())
    flat = Counter(" ".join(b.text for b in plain.blocks).split())
    # The table's cells hold the words its lines held; spanning cells repeat theirs.
    assert not flat - structured


# -- tables without rulings ----------------------------------------------------------


@needs_corpus
def test_a_table_ruled_across_only_is_found_by_its_alignment() -> None:
    doc = parse("latex-multicolumn", pages=PageSelection.parse("3"))
    [block] = kinds(doc, BlockKind.TABLE)
    table = table_of(block)
    assert (table.n_rows, table.n_cols, table.header_rows()) == (6, 5, 1)
    grid = table.grid()
    assert grid[0] == [
        "Country",
        "Population (millions)",
        "Area (km2)",
        "Capital",
        "Official Language",
    ]
    assert grid[3] == ["Czech Republic", "10.7", "78,866", "Prague", "Czech"]
    assert grid[5] == ["Finland", "5.5", "338,424", "Helsinki", "Finnish, Swedish"]
    # The caption above stays a caption; no cell's text is repeated as a paragraph.
    assert [b.text for b in kinds(doc, BlockKind.CAPTION)] == ["Table 1: EU Countries Information"]
    assert not any("Helsinki" in b.text for b in kinds(doc, BlockKind.PARAGRAPH))


def test_a_borderless_table_with_a_multi_line_cell_and_empty_cells() -> None:
    doc = parse("borderless-inventory", MADE)
    [block] = kinds(doc, BlockKind.TABLE)
    table = table_of(block)
    assert (table.n_rows, table.n_cols, table.header_rows()) == (6, 5, 1)
    assert table.grid() == [
        ["Item", "Description", "Quantity", "Unit cost", "Value"],
        ["A-100", "Steel bolts, M8", "1,200", "0.15", "180.00"],
        [
            "A-220",
            "Hex nuts for the M8 bolts, zinc plated, sold in boxes of one hundred",
            "35",
            "4.20",
            "147.00",
        ],
        ["B-310", "Washers, flat", "", "0.02", ""],
        ["C-045", "Cable ties, black", "800", "0.05", "40.00"],
        ["D-500", "Wood screws", "2,500", "0.03", "75.00"],
    ]
    # The paragraphs around it stay paragraphs, in their places.
    texts = [b.text for b in doc.blocks]
    assert texts[0].startswith("The warehouse counted") and texts[-1].startswith("Values are")


def test_a_heading_over_two_columns_is_a_spanning_header_cell() -> None:
    doc = parse("borderless-statement", MADE)
    [block] = kinds(doc, BlockKind.TABLE)
    table = table_of(block)
    assert (table.n_rows, table.n_cols, table.header_rows()) == (11, 4, 2)
    [spanning] = [cell for cell in table.cells if cell.col_span > 1]
    assert (spanning.row, spanning.col, spanning.col_span) == (0, 2, 2)
    assert spanning.text == "Year ended 31 December"
    grid = table.grid()
    # "Note" sits beside the heading, over its own column: it spans both header rows.
    assert grid[0] == ["", "Note", "Year ended 31 December", "Year ended 31 December"]
    assert grid[1] == ["", "Note", "2024", "2023"]
    assert grid[2] == ["Revenue", "3", "12,480", "11,902"]
    assert grid[7] == ["Other income", "", "96", ""]
    assert grid[10] == ["Profit before tax", "", "1,708", "1,386"]


@needs_corpus
@pytest.mark.parametrize(
    ("name", "pages"),
    [
        ("multi-column-2p", None),
        ("latex-multicolumn", "1-2"),
        ("multi-page-article", None),
        ("copy-protected", None),
        ("code-and-formula", None),
        # A booklet in two columns of prose; page 18 has a ruled table under them.
        ("broken-failure-after-repair", "11,14,18,19"),
    ],
)
def test_prose_in_columns_lists_and_code_make_no_table(name: str, pages: str | None) -> None:
    selection = {"pages": PageSelection.parse(pages)} if pages else {}
    doc = parse(name, **selection)
    tables = kinds(doc, BlockKind.TABLE)
    ruled = {"broken-failure-after-repair": [18]}.get(name, [])
    assert [b.page for b in tables] == ruled


@needs_corpus
def test_code_listings_in_columns_make_no_table(redbook: Document) -> None:
    # Page 8 lists SQL whose keywords and arguments are aligned in columns.
    assert not any(
        "function_usage" in table_of(b).grid()[0] for b in kinds(redbook, BlockKind.TABLE)
    )
    assert any("FROM function_usage" in b.text for b in redbook.blocks if b.page == 8)


# -- made-up geometry --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,200", True),
        ("-0.5%", True),
        ("(7,310)", True),
        ("€ 96", True),
        ("2024", True),
        ("Note", False),
        ("3–6 months", False),
        ("(a)", False),
        ("", False),
    ],
)
def test_amounts_are_told_from_words(text: str, expected: bool) -> None:
    assert numeric(text) is expected


def test_a_grid_needs_rules_crossing_into_two_columns_on_three_rules() -> None:
    ruled = PageGraphics(
        across=[(y, 100.0, 300.0) for y in (100.0, 120.0, 140.0)],
        down=[(x, 100.0, 140.0) for x in (100.0, 200.0, 300.0)],
    )
    assert ruled.has_grid()
    # Rules across and one vertical in the middle: the rules' ends close the sides.
    open_sided = PageGraphics(across=ruled.across, down=[(200.0, 100.0, 140.0)])
    assert open_sided.has_grid()
    # A photo's frame: its rules are crossed at their ends only.
    frame = PageGraphics(
        across=[(100.0, 100.0, 300.0), (300.0, 100.0, 300.0)],
        down=[(100.0, 100.0, 300.0), (300.0, 100.0, 300.0)],
    )
    assert not frame.has_grid()
    # Bars standing on an axis: only the axis is crossed in its middle.
    tops = [(380.0, 100.0, 130.0), (360.0, 200.0, 230.0), (340.0, 300.0, 330.0)]
    bars = PageGraphics(
        across=[(500.0, 50.0, 550.0), *tops],
        down=[(x, y, 500.0) for y, left, right in tops for x in (left, right)],
    )
    assert not bars.has_grid()


def _edge(x0: float, top: float, x1: float, bottom: float) -> dict[str, Any]:
    orientation = "h" if bottom - top < x1 - x0 else "v"
    width, height = x1 - x0, bottom - top
    edge: dict[str, Any] = {"x0": x0, "x1": x1, "top": top, "bottom": bottom}
    return edge | {"width": width, "height": height, "orientation": orientation}


def test_crossings_and_cells_are_pdfplumbers() -> None:
    """The finder's own crossing and cell steps give what pdfplumber's give, cell for cell."""
    from pdfplumber.table import edges_to_intersections, intersections_to_cells

    grid = [_edge(100, y, 300, y) for y in (100, 120, 140, 160)]
    grid += [_edge(x, 100, x, 160) for x in (100, 150, 200.5, 300)]
    # A rule ending short of the grid (a spanning cell), one crossing it within the
    # tolerance only, a box beside the grid, and a rule crossed by nothing.
    grid += [_edge(250, 100, 250, 121), _edge(98, 130, 302.5, 130), _edge(400, 100, 420, 100)]
    grid += [_edge(400, 100, 400, 130), _edge(420, 100, 420, 130), _edge(400, 130, 420, 130)]
    grid += [_edge(500, 500, 600, 500)]
    for edges in (grid, grid[::-1], grid[:5]):
        theirs = edges_to_intersections(edges, 3.0, 3.0)
        ours = _crossings(edges)
        assert sorted(ours) == sorted(theirs)
        assert _cell_boxes(ours) == intersections_to_cells(theirs)


def block(*rows: tuple[str, float, float, float]) -> TextBlock:
    made = TextBlock()
    for text, x0, y0, x1 in rows:
        made.add(Line(text, x0, y0, x1, y0 + 10))
    return made


def test_lines_inside_a_table_are_cut_out_and_the_table_takes_their_place() -> None:
    before = block(("Before the table.", 72, 100, 300))
    straddling = block(("A last line above,", 72, 130, 300), ("then a row.", 72, 150, 300))
    rows = block(("1 2 3", 72, 170, 300))
    after = block(("After it.", 72, 300, 300))
    items = cut_out([before, straddling, rows, after], [(70.0, 145.0, 310.0, 190.0)])
    assert [item if isinstance(item, int) else item.text for item in items] == [
        "Before the table.",
        "A last line above,",
        0,
        "After it.",
    ]
    # A table whose lines no block held goes before the first block below its top.
    placed = cut_out([before, after], [(70.0, 200.0, 310.0, 250.0)])
    assert [item if isinstance(item, int) else item.text for item in placed] == [
        "Before the table.",
        0,
        "After it.",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Figure 3-1 CREATE PERMISSION SQL statement", True),
        ("Fig. 2: Results on the test set.", True),
        ("Table 1. HPO performed in OTSL and HTML", True),
        ("Tabelle 4: Ergebnisse", True),
        ("[표 1] 감염병예방법 비교", True),
        ("Table 2-2 shows a comparison of the function usage IDs", False),
        ("Figures are drawn below.", False),
        ("Tables 1 and 2", False),
    ],
)
def test_captions_name_and_number_a_figure_or_table(text: str, expected: bool) -> None:
    figure = (72.0, 200.0, 400.0, 400.0)
    below = block((text, 72, 405, 380))
    assert is_caption(below, [figure]) is expected


def test_a_caption_must_be_next_to_its_figure() -> None:
    figure = (72.0, 200.0, 400.0, 400.0)
    caption = "Figure 7 The pipeline"
    assert is_caption(block((caption, 72, 180, 300)), [figure])  # above it
    assert not is_caption(block((caption, 72, 500, 300)), [figure])  # far below
    assert not is_caption(block((caption, 420, 405, 550)), [figure])  # beside it
    assert not is_caption(block((caption, 72, 405, 300)), [])  # no figure on the page
