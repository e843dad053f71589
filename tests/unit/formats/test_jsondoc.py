"""JsonParser: JSON kept whole as code, NDJSON per record, clear errors for bad input."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest
from corpus_scoring import CORPUS, needs_corpus, parse

from docworker.document import BlockKind, Document
from docworker.errors import CorruptDocument
from docworker.formats.text.jsondoc import JsonParser, outline

PARSER = JsonParser()


def parse_json(tmp_path: Path, data: bytes, mime: str = "application/json") -> Document:
    path = tmp_path / "data.json"
    path.write_bytes(data)
    return parse(PARSER, path, mime)


@needs_corpus
def test_a_json_file_is_one_pretty_printed_code_block_that_round_trips() -> None:
    path = CORPUS / "web/simple.json"
    doc = parse(PARSER, path, "application/json")
    assert [(b.kind, b.language) for b in doc.blocks] == [(BlockKind.CODE, "json")]
    original = json.loads(path.read_text(encoding="utf-8"))
    assert json.loads(doc.blocks[0].text) == original
    assert doc.blocks[0].text.startswith('[\n  {\n    "element_id"')
    assert doc.metadata.extra == {"json_type": "array", "items": len(original)}
    assert "These are a few of my favorite things:" in doc.blocks[0].text


def test_an_object_lists_its_keys_in_the_metadata(tmp_path: Path) -> None:
    doc = parse_json(tmp_path, b'{"title": "Report", "pages": 3, "tags": ["a"]}')
    assert doc.metadata.extra == {"json_type": "object", "keys": ["title", "pages", "tags"]}


def test_non_ascii_text_stays_readable(tmp_path: Path) -> None:
    doc = parse_json(tmp_path, '{"name": "Zoë \\u00e9t\\u00e9 日本"}'.encode())
    assert '"Zoë été 日本"' in doc.blocks[0].text


@pytest.mark.parametrize(
    "data",
    [codecs.BOM_UTF8 + b'{"a": 1}', '{"a": 1}'.encode("utf-16"), '{"a": 1}'.encode("utf-16-le")],
)
def test_boms_and_utf16_are_decoded_first(tmp_path: Path, data: bytes) -> None:
    assert parse_json(tmp_path, data).blocks[0].text == '{\n  "a": 1\n}'


def test_ndjson_gives_one_block_per_record(tmp_path: Path) -> None:
    doc = parse_json(tmp_path, b'{"a": 1}\n\n{"b": [1, 2]}\n', "application/x-ndjson")
    assert [json.loads(b.text) for b in doc.blocks] == [{"a": 1}, {"b": [1, 2]}]
    assert doc.metadata.extra == {"json_type": "records", "records": 2}


def test_ndjson_is_recognised_under_the_plain_json_type(tmp_path: Path) -> None:
    doc = parse_json(tmp_path, b'{"a": 1}\n{"a": 2}\n{"a": 3}\n')
    assert len(doc.blocks) == 3
    assert doc.metadata.extra["json_type"] == "records"


def test_invalid_json_names_the_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(CorruptDocument) as caught:
        parse_json(tmp_path, b'{\n  "a": 1,\n  "b": \n}')
    assert "line 4 column 1" in caught.value.detail
    assert caught.value.fields == {"format": "json"}


def test_invalid_ndjson_names_the_line_of_the_bad_record(tmp_path: Path) -> None:
    with pytest.raises(CorruptDocument, match="line 3 column"):
        parse_json(tmp_path, b'{"a": 1}\n{"a": 2}\n{"a": }\n', "application/x-ndjson")


def test_extra_data_that_is_not_ndjson_reports_the_first_error(tmp_path: Path) -> None:
    with pytest.raises(CorruptDocument, match="Extra data at line 3 column 1"):
        parse_json(tmp_path, b'{\n "a": 1}\n{"b":\n 2}\n')


@pytest.mark.parametrize("data", [b"", b"  \n\t"])
def test_an_empty_file_is_not_json(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(CorruptDocument, match="empty"):
        parse_json(tmp_path, data)


def test_absurd_nesting_is_a_corrupt_document_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(CorruptDocument, match="nested too deeply"):
        parse_json(tmp_path, b"[" * 100_000 + b"]" * 100_000)


def test_outline_of_scalars() -> None:
    assert outline("x") == {"json_type": "string"}
    assert outline(True) == {"json_type": "boolean"}
    assert outline(None) == {"json_type": "null"}
    assert outline(1.5) == {"json_type": "number"}
