"""DelimitedParser: dialect sniffing, ragged rows, header rows, encodings and limits."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from corpus_scoring import CORPUS, corpus_f1, needs_corpus, parse

from docworker.document import BlockKind, Document, Table
from docworker.errors import CorruptDocument, LimitExceeded
from docworker.formats.base import ParseContext, ParseLimits
from docworker.formats.text.delimited import DelimitedParser, count_delimiter, sniff_dialect

PARSER = DelimitedParser()


def the_table(doc: Document) -> Table:
    assert [b.kind for b in doc.blocks] == [BlockKind.TABLE]
    table = doc.blocks[0].table
    assert table is not None
    return table


def parse_csv(tmp_path: Path, content: str, mime: str = "text/csv", **limits: int) -> Document:
    path = tmp_path / "data.csv"
    path.write_text(content, encoding="utf-8")
    return parse(PARSER, path, mime, ParseContext(limits=ParseLimits(**limits)))


@needs_corpus
@pytest.mark.parametrize(("name", "delimiter"), [("comma.csv", ","), ("semicolon.csv", ";")])
def test_customer_tables_are_read_whole_with_their_header(name: str, delimiter: str) -> None:
    doc = parse(PARSER, CORPUS / "web" / name, "text/csv")
    table = the_table(doc)
    assert (table.n_rows, table.n_cols, table.header_rows()) == (6, 12, 1)
    grid = table.grid()
    assert grid[0][:3] == ["Index", "Customer Id", "First Name"]
    assert grid[1][-1] == "http://www.stephenson.com/"
    assert doc.metadata.extra["delimiter"] == delimiter
    assert doc.metadata.extra["header"] is True


@needs_corpus
def test_a_quoted_comma_stays_inside_its_cell() -> None:
    grid = the_table(parse(PARSER, CORPUS / "web/comma.csv", "text/csv")).grid()
    assert grid[2][3] == "Lozano, Dr"


@needs_corpus
def test_ragged_rows_are_padded_to_the_widest() -> None:
    table = the_table(parse(PARSER, CORPUS / "web/ragged-too-many-columns.csv", "text/csv"))
    assert (table.n_rows, table.n_cols) == (5, 5)
    assert table.grid()[0] == ["1", "2", "3", "4", ""]
    assert table.grid()[2] == ["a", "b", "c", "d", "e"]
    # A first row of numbers over rows of letters is data, not a header.
    assert table.header_rows() == 0


@needs_corpus
def test_utf16_csv_with_a_title_row() -> None:
    doc = parse(PARSER, CORPUS / "web/utf16.csv", "text/csv")
    table = the_table(doc)
    assert doc.metadata.encoding == "utf-16-be"
    assert table.grid()[0] == ["Stanley Cups", "", ""]
    assert table.grid()[-1] == ["Maple Leafs", "TOR", "13"]


@needs_corpus
@pytest.mark.parametrize("name", ["comma.csv", "semicolon.csv", "ragged-too-many-columns.csv"])
def test_tables_match_their_ground_truth(name: str) -> None:
    # Measured 1.000 on all three, as the best peer.
    assert corpus_f1(PARSER, f"web/{name}", "text/csv") == pytest.approx(1.0)


def test_tsv_is_split_on_tabs_whatever_the_commas(tmp_path: Path) -> None:
    doc = parse_csv(tmp_path, "name\tnote\nann\ta, b, c\nbob\td, e\n", "text/tab-separated-values")
    assert the_table(doc).grid() == [["name", "note"], ["ann", "a, b, c"], ["bob", "d, e"]]


def test_pipes_are_found_when_the_sniffer_gives_up(tmp_path: Path) -> None:
    grid = the_table(parse_csv(tmp_path, "a|b|c\n1|2\n3|4|5|6\n")).grid()
    assert grid == [["a", "b", "c", ""], ["1", "2", "", ""], ["3", "4", "5", "6"]]


def test_count_delimiter_prefers_the_one_on_every_line() -> None:
    sample = "name;comment\nann;hello, world\nbob;fine\ncy;ok, then, more\n"
    assert count_delimiter(sample) == ";"


def test_sniff_dialect_falls_back_to_counting() -> None:
    assert sniff_dialect("x|y\n1|2|3\n", "text/csv").delimiter == "|"
    assert sniff_dialect("a,b\n", "text/tab-separated-values").delimiter == "\t"


def test_sniff_dialect_finds_the_quote_and_the_space_after_delimiters() -> None:
    single = sniff_dialect("name, note\n'ann', 'a, b, c'\n'bob', 'd'\n", "text/csv")
    assert (single.delimiter, single.quotechar, single.skipinitialspace) == (",", "'", True)
    double = sniff_dialect('a;"b;c;d"\n1;"2;3"\n4;5\n', "text/csv")
    assert (double.delimiter, double.quotechar, double.skipinitialspace) == (";", '"', False)


def test_quoted_fields_after_a_space_stay_whole(tmp_path: Path) -> None:
    grid = the_table(parse_csv(tmp_path, 'name, note\nann, "a, b"\nbob, "c"\n')).grid()
    assert grid == [["name", "note"], ["ann", "a, b"], ["bob", "c"]]


def test_a_header_may_hold_numbers_when_a_column_below_is_numeric(tmp_path: Path) -> None:
    table = the_table(parse_csv(tmp_path, "rank,2020\n1,ann\n2,bob\n"))
    assert table.header_rows() == 1
    assert [c.text for c in table.cells if c.header] == ["rank", "2020"]


def test_all_numbers_means_no_header(tmp_path: Path) -> None:
    assert the_table(parse_csv(tmp_path, "1,2\n3,4\n5,6\n")).header_rows() == 0


def test_quoted_newlines_and_blank_lines(tmp_path: Path) -> None:
    grid = the_table(parse_csv(tmp_path, 'k,v\n\n"multi\nline",x\n\n')).grid()
    assert grid == [["k", "v"], ["multi\nline", "x"]]


def test_too_many_cells_is_a_limit_error(tmp_path: Path) -> None:
    rows = "\n".join(f"{i},{i * 2},{i * 3}" for i in range(100))
    with pytest.raises(LimitExceeded) as caught:
        parse_csv(tmp_path, rows, max_cells=50)
    assert caught.value.fields["limit"] == "cells"
    assert caught.value.fields["maximum"] == 50


def test_a_field_past_the_csv_module_limit_is_a_corrupt_document(tmp_path: Path) -> None:
    huge = "x" * (csv.field_size_limit() + 1)
    with pytest.raises(CorruptDocument, match="row 3: field larger than field limit"):
        parse_csv(tmp_path, f'a,b\n1,2\n"{huge}",3\n')


def test_an_empty_file_is_an_empty_document(tmp_path: Path) -> None:
    doc = parse_csv(tmp_path, "\n\n")
    assert doc.blocks == []
    assert [w.code for w in doc.warnings] == ["empty"]
