"""RTF: fields, linked objects and remote templates, read from the raw stream.

- Field instructions (``{\\*\\fldinst ...}``): DDE and the INCLUDE/LINK fields
  (:mod:`.fields`), with RTF's control words and braces taken out, so that an
  instruction split over groups is read as Word reads it.
- Linked OLE objects: ``\\objautlink`` (updated from its source when the document
  opens) and ``\\objlink``, and OLE2Link objects (the remote-object trick of
  CVE-2017-0199), named as class or hex-encoded in the object data.
- A remote template: ``{\\*\\template http://...}``.
"""

from __future__ import annotations

import re
from pathlib import Path

from docworker.config import FindingKind
from docworker.guard.fields import MAX_INSTRUCTION, check_field
from docworker.guard.findings import Budget, FindingSet, quote
from docworker.guard.streams import file_chunks, iter_matches

#: A field instruction is captured by a lookahead, so that what follows it is searched too.
_TOKENS = re.compile(
    rb"\\fldinst\b(?=(?P<field>[^\x00]{0,%d}))" % MAX_INSTRUCTION
    + rb"|\\(?P<link>objautlink|objlink)\b"
    + rb"|\\\*\s*\\template\s*(?P<template>[^{}\\]{1,2000})"
    + rb"|(?P<ole2link>OLE2Link|4f4c45324c696e6b)",
    re.IGNORECASE,
)
_FIELD_END = re.compile(rb"\\fldrslt\b|\}\s*\}")
_CONTROL = re.compile(
    rb"\\([a-z]{1,32})(-?\d{1,10})? ?|\\'([0-9a-f]{2})|\\([^a-z])|[{}\r\n]", re.IGNORECASE
)


def _plain(raw: bytes) -> str:
    """RTF text with its control words and groups taken out, escapes decoded."""

    def replace(match: re.Match[bytes]) -> bytes:
        if match.group(3):
            return bytes([int(match.group(3), 16)])
        if match.group(4):
            return match.group(4) if match.group(4) in b"\\{}" else b""
        return b""

    return _CONTROL.sub(replace, raw).decode("latin-1")


def check_rtf(found: FindingSet, path: Path, budget: Budget) -> None:
    """Note the fields, linked objects and remote templates of an RTF file."""
    for match in iter_matches(file_chunks(path, budget), _TOKENS, keep=2 * MAX_INSTRUCTION):
        if match.group("field") is not None:
            raw = match.group("field")
            end = _FIELD_END.search(raw)
            check_field(found, _plain(raw[: end.start()] if end else raw), "\\fldinst")
        elif match.group("link"):
            word = match.group("link").decode().lower()
            what = (
                "an OLE object linked to a file, updated when the document opens"
                if word == "objautlink"
                else "an OLE object linked to a file"
            )
            found.note(FindingKind.EXTERNAL_REFERENCE, what, f"\\{word}")
        elif match.group("template"):
            target = _plain(match.group("template")).strip()
            found.note(
                FindingKind.REMOTE_TEMPLATE,
                f"the document names its template: {quote(target)}",
                "\\template",
            )
        else:
            found.note(
                FindingKind.EXTERNAL_REFERENCE,
                "an OLE2Link object, which fetches its content from a URL when opened",
                "\\objdata",
            )
