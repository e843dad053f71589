"""The table benchmark's metrics (TEDS, cell precision/recall) and its readers of truths."""

from __future__ import annotations

import pytest

from bench.scoring import corpus_root
from bench.table_cells import (
    Cell,
    TableGrid,
    cell_score,
    html_tables,
    markdown_tables,
    normalise_cell,
    split_row,
)
from bench.table_truths import TableTruth, docx_tables, touching_blocks
from bench.tables import Found, score
from bench.teds import Node, teds, tree_edit_distance

CORPUS = corpus_root()
needs_corpus = pytest.mark.skipif(
    not (CORPUS / "MANIFEST.tsv").is_file(), reason=f"corpus not found at {CORPUS}"
)

THREE_BY_THREE = TableGrid.from_rows([["a", "b", "c"], ["1", "2", "3"], ["4", "5", "6"]])


def by_tag(a: Node, b: Node) -> float:
    return 0.0 if a.tag == b.tag else 1.0


def tree(text: str) -> Node:
    """A tree from ``tag(child child)`` notation, one letter a tag."""
    stack = [Node("root")]
    for char in text.replace(" ", ""):
        if char == "(":
            stack.append(stack[-1].children[-1])
        elif char == ")":
            stack.pop()
        else:
            stack[-1].children.append(Node(char))
    return stack[0].children[0]


def test_zhang_shasha_gives_the_distance_of_the_papers_example() -> None:
    # Zhang and Shasha's figure: delete c, insert c above d and b: 2 operations.
    assert tree_edit_distance(tree("f(d(a c(b)) e)"), tree("f(c(d(a b)) e)"), by_tag) == 2


@pytest.mark.parametrize(
    ("one", "two", "distance"),
    [
        ("a", "a", 0),
        ("a", "b", 1),
        ("a(b c)", "a(b)", 1),
        ("a(b c)", "a(c b)", 2),
        ("a(b(c d))", "a(c d)", 1),
        ("a", "a(b(c) d)", 3),
    ],
)
def test_tree_edit_distance_of_small_trees(one: str, two: str, distance: int) -> None:
    assert tree_edit_distance(tree(one), tree(two), by_tag) == distance
    assert tree_edit_distance(tree(two), tree(one), by_tag) == distance


def test_identical_tables_score_one() -> None:
    assert teds([THREE_BY_THREE], [THREE_BY_THREE]) == 1.0
    assert teds([THREE_BY_THREE], [THREE_BY_THREE], structure_only=True) == 1.0
    assert cell_score([THREE_BY_THREE], [THREE_BY_THREE]).f1 == 1.0


def test_a_dropped_column_costs_its_cells() -> None:
    two_columns = TableGrid.from_rows([["a", "b"], ["1", "2"], ["4", "5"]])
    # The truth has 13 nodes (table, 3 rows, 9 cells); three cells are deleted.
    assert teds([two_columns], [THREE_BY_THREE]) == pytest.approx(1 - 3 / 13)
    assert teds([two_columns], [THREE_BY_THREE], structure_only=True) == pytest.approx(1 - 3 / 13)
    cells = cell_score([two_columns], [THREE_BY_THREE])
    assert (cells.precision, cells.recall) == (1.0, pytest.approx(6 / 9))


def test_a_merged_cell_read_as_two_costs_a_rename_and_an_insertion() -> None:
    merged = TableGrid(2, 2, (Cell(0, 0, "a", col_span=2), Cell(1, 0, "b"), Cell(1, 1, "c")))
    split = TableGrid.from_rows([["a", ""], ["b", "c"]])
    # 7 nodes in the split table; the spans differ (1) and one cell is extra (1).
    assert teds([split], [merged]) == pytest.approx(1 - 2 / 7)
    assert teds([split], [merged], structure_only=True) == pytest.approx(1 - 2 / 7)
    # Written out as a grid, the merged cell is in both positions, as Markdown writes it.
    assert merged.as_grid() == TableGrid.from_rows([["a", "a"], ["b", "c"]])
    assert cell_score([split], [merged]).recall == pytest.approx(3 / 4)


def test_a_cell_text_changed_costs_its_normalised_edit_distance() -> None:
    truth = TableGrid.from_rows([["abcd"]])
    found = TableGrid.from_rows([["abce"]])
    assert teds([found], [truth]) == pytest.approx(1 - 0.25 / 3)
    assert teds([found], [truth], structure_only=True) == 1.0
    assert cell_score([found], [truth]).f1 == 0.0


def test_tables_missed_or_invented_score_zero() -> None:
    assert teds([], [THREE_BY_THREE]) == 0.0
    assert teds([THREE_BY_THREE], []) == 0.0
    assert teds([], []) == 1.0
    assert cell_score([], [THREE_BY_THREE]).recall == 0.0


def test_a_missed_table_costs_its_nodes_among_the_documents() -> None:
    small = TableGrid.from_rows([["x"]])  # 3 nodes: table, row, cell
    assert teds([THREE_BY_THREE], [THREE_BY_THREE, small]) == pytest.approx(1 - 3 / 16)


def test_markdown_pipe_tables_are_read_in_order_with_html_tables() -> None:
    text = (
        "Intro | not a table\n\n<!-- <table><tr><td>hidden</td></tr></table> -->\n"
        "| Name | Value |\n|:-----|------:|\n| **a** | `b\\|c` |\n| short |\n\n"
        "Between.\n\n"
        "<table><tr><td rowspan='2'>x</td><td>y</td></tr><tr><td>z</td></tr></table>\n\n"
        "a | b\n--- | ---\n1 | 2\n"
    )
    first, second, third = markdown_tables(text)
    assert first == TableGrid.from_rows([["Name", "Value"], ["a", "b|c"], ["short", ""]])
    assert second == TableGrid(
        2, 2, (Cell(0, 0, "x", row_span=2), Cell(0, 1, "y"), Cell(1, 1, "z"))
    )
    assert third == TableGrid.from_rows([["a", "b"], ["1", "2"]])


def test_a_row_splits_on_unescaped_pipes_only() -> None:
    assert split_row("| a | b \\| c |  |") == [" a ", " b | c ", "  "]
    assert split_row("a|b") == ["a", "b"]


def test_html_cells_are_placed_past_the_spans_above_them() -> None:
    (table,) = html_tables(
        "<table><tr><th colspan=2>h</th><td rowspan=2>r</td></tr>"
        "<tr><td>a<br>b</td><td><table><tr><td>in</td></tr></table></td></tr>"
        "<tr><td><script>x()</script>s</td></tr></table>"
    )
    assert table == TableGrid(
        3,
        3,
        (
            Cell(0, 0, "h", col_span=2),
            Cell(0, 2, "r", row_span=2),
            Cell(1, 0, "a b"),
            Cell(1, 1, "in"),
            Cell(2, 0, "s"),
        ),
    )


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("  **Total**  ", "total"),
        ("A&amp;B<br/>C", "a&b c"),
        ("- class1 - class2", "class1 class2"),
        (" - ", "-"),
        ("snake\\_case", "snake case"),
        ("ﬁ  Ⅳ", "fi iv"),
    ],
)
def test_cell_texts_are_normalised(raw: str, normal: str) -> None:
    assert normalise_cell(raw) == normal


@needs_corpus
def test_docx_tables_are_read_with_their_spans_from_the_xml() -> None:
    tables = docx_tables(CORPUS / "office" / "word-tables.docx")
    assert len(tables) == 7
    horizontal, vertical, late = tables[1], tables[3], tables[5]
    assert Cell(1, 1, "merged cell 1.1 1.2", col_span=2) in horizontal.cells
    assert Cell(1, 1, "merged cell 1.1 2.1", row_span=2) in vertical.cells
    # A row starting late (w:gridBefore) leaves its first position to no cell.
    assert late == TableGrid(2, 2, (*late.cells[:2], Cell(1, 1, "cell 1.1")))


def test_worksheet_blocks_are_cells_that_touch_in_reading_order() -> None:
    filled = {(1, 1), (1, 2), (2, 1), (5, 7), (5, 8), (1, 7), (2, 2), (3, 3)}
    assert touching_blocks(filled) == [
        {(1, 1), (1, 2), (2, 1), (2, 2)},
        {(1, 7)},
        {(3, 3)},
        {(5, 7), (5, 8)},
    ]


def test_a_markdown_truth_is_compared_with_the_spans_written_out() -> None:
    merged = TableGrid(2, 2, (Cell(0, 0, "a", col_span=2), Cell(1, 0, "b"), Cell(1, 1, "c")))
    written_out = TableTruth("x.docx", "x.expected.md", (merged.as_grid(),), spans=False)
    from_the_file = TableTruth("x.docx", "DOCX XML", (merged,), spans=True)
    found = Found(tables=[merged])
    assert score(found, written_out).teds == score(found, from_the_file).teds == 1.0
    assert score(Found(error="boom"), from_the_file).cells.f1 == 0.0
