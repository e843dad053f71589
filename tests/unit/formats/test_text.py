"""TextParser on every file of the corpus's text/ folder and on edge cases."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from corpus_scoring import CORPUS, corpus_f1, needs_corpus, parse

from docworker.document import BlockKind
from docworker.formats.text.plain import TextParser, split_paragraphs

PARSER = TextParser()

FAKE_TEXT_PARAGRAPHS = [
    "This is a test document to use for unit tests.",
    "Doylestown, PA 18901",
    "Important points:",
    "- Hamburgers are delicious\n- Dogs are the best\n- I love fuzzy blankets",
]


def parse_text(path: Path) -> list[str]:
    doc = parse(PARSER, path, "text/plain")
    assert all(block.kind == BlockKind.PARAGRAPH for block in doc.blocks)
    return [block.text for block in doc.blocks]


@needs_corpus
@pytest.mark.parametrize(
    ("name", "encoding"),
    [
        ("plain-utf8.txt", "utf-8"),
        ("utf16le.txt", "utf-16-le"),
        ("utf16be.txt", "utf-16-be"),
        ("utf32.txt", "utf-32-le"),
    ],
)
def test_the_same_text_in_four_encodings_gives_the_same_paragraphs(
    name: str, encoding: str
) -> None:
    doc = parse(PARSER, CORPUS / "text" / name, "text/plain")
    assert [b.text for b in doc.blocks] == FAKE_TEXT_PARAGRAPHS
    assert doc.metadata.encoding == encoding
    assert doc.warnings == []


@needs_corpus
@pytest.mark.parametrize(
    ("name", "encoding", "phrase"),
    [
        ("cp1252.txt", "cp1252", "These smart quotes are the trigger"),
        ("russian-cp866.txt", "cp866", "Однажды, в студеную зимнюю пору,\nЯ из лесу вышел"),
        ("ebcdic-cp500.txt", "cp500", "IntelliStation POWER"),
        ("hebrew-iso8859-8i.txt", "utf-8", "8uPr5e8gVGVzbGEgLSDw4"),
        ("norwich-city.txt", "utf-8", "Roberts celebrating after scoring a goal"),
    ],
)
def test_legacy_encodings_are_read_into_paragraphs(name: str, encoding: str, phrase: str) -> None:
    doc = parse(PARSER, CORPUS / "text" / name, "text/plain")
    assert doc.metadata.encoding == encoding
    assert doc.metadata.extra["encoding_detected_by"] in {"utf-8", "guess", "shape", "bom"}
    text = "\n\n".join(b.text for b in doc.blocks)
    assert phrase in text
    assert "\ufffd" not in text
    assert doc.metadata.word_count == len(text.split())


@needs_corpus
def test_ebcdic_lines_become_paragraphs_without_carriage_returns() -> None:
    texts = parse_text(CORPUS / "text/ebcdic-cp500.txt")
    assert texts[:3] == ["IntelliStation POWER", "Hardware", "Graphics"]
    assert not any("\r" in text for text in texts)


@needs_corpus
def test_udhr_in_hundreds_of_scripts_matches_its_ground_truth() -> None:
    # Measured 1.000; the bar set by the peers is 0.999.
    assert corpus_f1(PARSER, "text/udhr-multilingual.txt", "text/plain") >= 0.999


@needs_corpus
@pytest.mark.parametrize("name", ["empty.txt", "all-whitespace.txt"])
def test_a_file_without_text_is_an_empty_document_with_a_warning(name: str) -> None:
    doc = parse(PARSER, CORPUS / "text" / name, "text/plain")
    assert doc.blocks == []
    assert [w.code for w in doc.warnings] == ["empty"]
    assert doc.metadata.word_count == 0


def test_line_breaks_inside_a_paragraph_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "address.txt"
    path.write_bytes(
        b"Jane Roe\r\n12 High Street  \r\nSpringfield\r\n\r\n \t \r\nNext paragraph.\n"
    )
    assert parse_text(path) == ["Jane Roe\n12 High Street\nSpringfield", "Next paragraph."]


def test_a_byte_order_mark_is_not_part_of_the_text(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(codecs.BOM_UTF8 + "Ünïcode first.".encode())
    doc = parse(PARSER, path, "text/plain")
    assert [b.text for b in doc.blocks] == ["Ünïcode first."]
    assert doc.metadata.encoding == "utf-8"
    assert doc.metadata.extra["encoding_detected_by"] == "bom"


def test_split_paragraphs_removes_common_indentation_only() -> None:
    text = "    indented block\n      deeper line\n\n\n\nlast"
    assert split_paragraphs(text) == ["indented block\n  deeper line", "last"]


def test_old_mac_line_endings_split_too() -> None:
    assert split_paragraphs("one\rtwo\r\rthree") == ["one\ntwo", "three"]
