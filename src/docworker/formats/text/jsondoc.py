"""JSON and NDJSON documents, kept whole as pretty-printed code blocks.

A JSON file's meaning is its structure, and any prose rendering of it loses
some; so the document holds the value itself, re-indented, as a ``json`` code
block (one per record for NDJSON), and the metadata says what the top level
is: its type, its keys or its length. Invalid JSON is a corrupt document whose
reason names the line and column of the first error.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from docworker.document import BlockKind, Document, DocumentBuilder, Metadata
from docworker.errors import CorruptDocument
from docworker.formats.base import ParseContext, Source
from docworker.formats.encoding import decode_text

_NDJSON = "application/x-ndjson"
#: How many top-level keys the metadata lists; enough to see what the file is.
_MAX_KEYS = 50
_TOO_DEEP = "the value is nested too deeply"


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    return "null" if value is None else "number"


def _loads(text: str, line_offset: int = 0) -> Any:
    """``json.loads`` with its errors turned into CorruptDocument."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno + line_offset} column {exc.colno}"
        raise CorruptDocument("json", f"{exc.msg} at {where}") from exc
    except RecursionError as exc:
        raise CorruptDocument("json", _TOO_DEEP) from exc


def parse_records(text: str) -> list[Any]:
    """The values of an NDJSON text, one per non-blank line."""
    records: list[Any] = []
    for number, line in enumerate(text.splitlines()):
        if line.strip():
            records.append(_loads(line, line_offset=number))
    return records


def parse_values(text: str, ndjson: bool) -> tuple[list[Any], bool]:
    """The JSON values in ``text`` and whether it was read as NDJSON.

    A text that is not one value because more follows the first is tried as
    one value per line; if that fails too, the first error is the one reported.
    """
    if ndjson:
        return parse_records(text), True
    try:
        return [_loads(text)], False
    except CorruptDocument as exc:
        cause = exc.__cause__
        if not (isinstance(cause, json.JSONDecodeError) and cause.msg == "Extra data"):
            raise
        try:
            return parse_records(text), True
        except CorruptDocument:
            raise exc from cause


def outline(value: Any) -> dict[str, Any]:
    """What the top-level value is: its type, and its keys or its length."""
    summary: dict[str, Any] = {"json_type": _json_type(value)}
    if isinstance(value, dict):
        summary["keys"] = list(value)[:_MAX_KEYS]
    elif isinstance(value, list):
        summary["items"] = len(value)
    return summary


def pretty(value: Any) -> str:
    """``value`` indented by two spaces, non-ASCII text left readable."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False)
    except RecursionError as exc:
        # The indenting encoder recurses in Python, a little less deep than the parser.
        raise CorruptDocument("json", _TOO_DEEP) from exc


class JsonParser:
    """``application/json`` and NDJSON: the value kept whole as code blocks."""

    name: ClassVar[str] = "json"
    media_types: ClassVar[frozenset[str]] = frozenset({"application/json", _NDJSON})

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        decoded = decode_text(source.path.read_bytes())
        text = decoded.text
        metadata = Metadata(encoding=decoded.encoding)
        builder = DocumentBuilder(self.name, source.mime, metadata, limits=ctx.limits)
        if not text.strip():
            raise CorruptDocument("json", "the file is empty")
        records, ndjson = parse_values(text, source.mime == _NDJSON)
        if ndjson:
            metadata.extra.update(json_type="records", records=len(records))
        else:
            metadata.extra.update(outline(records[0]))
        for record in records:
            builder.add(BlockKind.CODE, pretty(record), language="json")
        ctx.progress(1.0, f"{len(records)} JSON values")
        return builder.finish()
