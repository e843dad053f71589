"""Telling text types apart: e-mail, subtitles, HTML, XML, JSON, CSV, Markdown, plain text.

libmagic calls most of these ``text/plain`` (or guesses ``text/html`` from a tag
deep in a Markdown file), so the head of the file is decoded and looked at here.
Evidence comes in two strengths. *Proof* — an e-mail header block, a ``WEBVTT``
line, an HTML doctype or root, an XML declaration, JSON that parses — decides
whatever the filename says. *Hints* — a root element of unknown vocabulary,
delimiter counts that agree, Markdown syntax — are weaker than the extension, so
a ``.md`` file that opens with ``<div>`` stays Markdown and a ``.csv`` file with
ragged rows stays CSV. Without a text extension the hints decide, and prose with
a few commas or a stray ``#`` stays ``text/plain``.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass

from docworker.formats.encoding import bom_encoding, decode_text

HTML, XML, JSON, NDJSON = "text/html", "application/xml", "application/json", "application/x-ndjson"
CSV, TSV, MARKDOWN, PLAIN = "text/csv", "text/tab-separated-values", "text/markdown", "text/plain"
EMAIL, VTT, SUBRIP = "message/rfc822", "text/vtt", "application/x-subrip"
TTML = "application/ttml+xml"

_BY_EXTENSION = {
    "html": HTML,
    "htm": HTML,
    "xhtml": HTML,
    "xml": XML,
    "nxml": XML,
    "json": JSON,
    "ndjson": NDJSON,
    "jsonl": NDJSON,
    "csv": CSV,
    "tsv": TSV,
    "tab": TSV,
    "md": MARKDOWN,
    "markdown": MARKDOWN,
    "mkd": MARKDOWN,
    "txt": PLAIN,
    "text": PLAIN,
    "eml": EMAIL,
    "ttml": TTML,
    "dfxp": TTML,
}


@dataclass(frozen=True)
class Sniffed:
    mime: str
    #: ``text-sniff`` when the content decided, ``extension`` when the name broke a tie.
    how: str


def sniff_text(
    head: bytes, extension: str, whole: bool, need_proof: bool = False
) -> Sniffed | None:
    """The text type of a file from its first bytes ``head`` (all of it when ``whole``).

    ``extension`` is the lower-case filename extension without the dot. With
    ``need_proof`` (libmagic saw no text) the bytes must decode by a byte-order
    mark, a UTF-16/32 or EBCDIC shape or as UTF-8 into printable text; otherwise
    the answer is None: not text.
    """
    text = _decode(head if whole else _without_cut_character(head), need_proof)
    if text is None:
        return None
    lead = text.lstrip("\ufeff \t\r\n\f\v")
    if not lead:
        return Sniffed(PLAIN, "text-sniff")
    proven = _proof(lead, whole)
    if proven == XML and _BY_EXTENSION.get(extension) == TTML and _allows(TTML, lead):
        # Early DFXP files declare no namespace on their <tt>; the name says what they are.
        proven = TTML
    if proven is not None:
        return Sniffed(proven, "text-sniff")
    named = _BY_EXTENSION.get(extension)
    if named is not None and _allows(named, lead):
        return Sniffed(named, "extension")
    return Sniffed(_hinted(lead, whole), "text-sniff")


def _decode(head: bytes, need_proof: bool) -> str | None:
    """The head as text, or None when ``need_proof`` and it does not prove to be text.

    Text that libmagic vouches for and that is neither UTF-8 nor marked by a BOM
    is read as cp1252: every marker looked for is ASCII and reads the same in any
    8-bit code page, and a statistical guess of the code page costs tens of ms.
    """
    if not need_proof and bom_encoding(head) is None and head.count(0) < len(head) // 8:
        try:
            return head.decode("utf-8")
        except UnicodeDecodeError:
            return head.decode("cp1252", errors="replace")
    decoded = decode_text(head)
    if need_proof and (decoded.how in {"guess", "declared"} or not _printable(decoded.text)):
        return None
    return decoded.text


def _without_cut_character(head: bytes) -> bytes:
    """Drop a UTF-8 sequence cut by the end of the head, so strict UTF-8 still decodes."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data":
            return head[: exc.start]
    return head


def _printable(text: str) -> bool:
    controls = sum(1 for ch in text if (ch < " " and ch not in "\t\n\r\f\v") or ch == "\ufffd")
    return controls <= len(text) // 100


def _proof(lead: str, whole: bool) -> str | None:
    if _is_email(lead):
        return EMAIL
    if lead.startswith("WEBVTT"):
        return VTT
    if _SUBRIP.match(lead):
        return SUBRIP
    markup = _markup(lead)
    if markup is not None and markup[1]:
        return markup[0]
    return _json(lead, whole)


def _allows(mime: str, lead: str) -> bool:
    """Whether content is at least shaped like the type its extension names."""
    if mime in {HTML, XML}:
        return lead.startswith("<")
    if mime in {JSON, NDJSON}:
        return lead[0] in "{["
    if mime == EMAIL:
        return _HEADER_FIELD.match(lead) is not None
    if mime == TTML:
        return _root(lead)[0] == "tt"
    return True


def _hinted(lead: str, whole: bool) -> str:
    markup = _markup(lead)
    if markup is not None:
        return markup[0]
    lines = lead.splitlines()
    if not whole:
        lines = lines[:-1]  # the last line may be cut short
    return _delimited(lines) or (MARKDOWN if _markdown_signals(lines) >= 2 else PLAIN)


# -- e-mail and subtitles ----------------------------------------------------------------

_HEADER_FIELD = re.compile(r"([!-9;-~]+):")
_MAIL_FIELDS = frozenset(
    {
        "from",
        "to",
        "cc",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "received",
        "return-path",
        "reply-to",
        "sender",
        "delivered-to",
        "content-type",
        "x-mailer",
    }
)
#: Fields that other "Name: value" texts (YAML, HTTP, notes) rarely start with.
_MAIL_PROOF = frozenset(
    {"from", "received", "message-id", "mime-version", "return-path", "delivered-to"}
)
_SUBRIP = re.compile(r"\d+[ \t]*\r?\n\d{1,2}:\d{2}:\d{2}[,.]\d{1,3}[ \t]+-->")


def _is_email(lead: str) -> bool:
    """An RFC 5322 header block: only ``Field: value`` and continuation lines, mail fields."""
    fields: list[str] = []
    for line in lead.splitlines():
        if not line.strip():
            break
        if line[0] in " \t" and fields:
            continue
        match = _HEADER_FIELD.match(line)
        if match is None:
            return False
        fields.append(match.group(1).lower())
    known = _MAIL_FIELDS.intersection(fields)
    return len(known) >= 2 and bool(known & _MAIL_PROOF)


# -- markup ------------------------------------------------------------------------------

_PROLOG_ITEM = re.compile(
    r"\s*(?:<\?.*?\?>|<!--.*?-->|<!doctype\s++([\w:.-]*+)[^>\[]*+(?:\[[^\]]*+\])?[^>]*+>)",
    re.IGNORECASE | re.DOTALL,
)
_ROOT = re.compile(r"\s*<([A-Za-z_][\w:.-]*)")
_HTML_ROOTS = frozenset({"html", "head", "body"})
_HTML_TAGS = frozenset(
    {
        "a",
        "article",
        "b",
        "blockquote",
        "br",
        "div",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "i",
        "img",
        "link",
        "main",
        "meta",
        "nav",
        "ol",
        "p",
        "pre",
        "script",
        "section",
        "span",
        "style",
        "table",
        "title",
        "ul",
    }
)


#: The namespaces of TTML (and of DFXP, its drafts), declared on a ``tt`` root.
_TTML_NAMESPACE = re.compile(
    r"""xmlns(?::[\w.-]+)?\s*=\s*["']http://www\.w3\.org/(?:ns/ttml|2006/(?:04|10)/ttaf1)["']"""
)


def _root(lead: str) -> tuple[str | None, str | None, str]:
    """The root element's lower-case local name, the doctype's name, and the root's start tag."""
    pos, doctype = 0, None
    while (item := _PROLOG_ITEM.match(lead, pos)) is not None and item.end() > pos:
        doctype = item.group(1).lower() if item.group(1) is not None else doctype
        pos = item.end()
    root_match = _ROOT.match(lead, pos)
    if root_match is None:
        return None, doctype, ""
    root = root_match.group(1).lower().rsplit(":", 1)[-1]
    end = lead.find(">", root_match.end())
    return root, doctype, lead[root_match.start() : end if end >= 0 else len(lead)]


def _markup(lead: str) -> tuple[str, bool] | None:
    """(HTML, XML or TTML, whether proven) for text that opens with markup, else None."""
    root, doctype, start_tag = _root(lead)
    if doctype == "html" or root in _HTML_ROOTS:
        return HTML, True
    if root == "tt" and _TTML_NAMESPACE.search(start_tag):
        return TTML, True
    if lead.startswith("<?xml") or doctype:
        return XML, True
    if root is None:
        return None
    return (HTML if root in _HTML_TAGS else XML), False


# -- JSON --------------------------------------------------------------------------------

#: How a cut-off JSON document opens: an object with a key, or an array of values.
_JSON_OPENING = re.compile(r"(?:\{\s*[\"}]|\[\s*[\[{\"\]])")


def _json(lead: str, whole: bool) -> str | None:
    if lead[0] not in "{[":
        return None
    if whole and _parses(lead):
        return JSON
    lines = [line for line in lead.splitlines()[:6] if line.strip()]
    if not whole:
        lines = lines[:-1]
    if len(lines) >= 2 and all(line.lstrip()[:1] in {"{", "["} and _parses(line) for line in lines):
        return NDJSON
    if not whole and _JSON_OPENING.match(lead):
        return JSON
    return None


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return False
    return True


# -- delimited rows ----------------------------------------------------------------------

_MIN_ROWS = 5


def _delimited(lines: list[str]) -> str | None:
    """CSV or TSV when many rows split into the same number (≥ 2) of short fields.

    ``|`` is not tried: rows of it are far more often Markdown tables.
    """
    rows = [line for line in lines if line.strip()][:20]
    if len(rows) < _MIN_ROWS:
        return None
    for delimiter, mime in (("\t", TSV), (",", CSV), (";", CSV)):
        if _consistent(rows, delimiter):
            return mime
    return None


def _consistent(rows: list[str], delimiter: str) -> bool:
    try:
        records = list(csv.reader(rows, delimiter=delimiter))
    except csv.Error:
        return False
    widths = {len(record) for record in records}
    if len(records) < _MIN_ROWS or len(widths) != 1 or widths.pop() < 2:
        return False
    fields = [field for record in records for field in record]
    # Prose that happens to have one comma a line has long "fields".
    return sum(len(field) for field in fields) / len(fields) <= 40


# -- Markdown ----------------------------------------------------------------------------

_MARKDOWN_SIGNALS = (
    re.compile(r"^#{1,6} \S"),  # ATX heading
    re.compile(r"^(?:```|~~~)"),  # code fence
    re.compile(r"!?\[[^\[\]\n]+\]\([^()\s]+\)"),  # link or image, anywhere
    re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)]) \S"),  # list item
    re.compile(r"^\|.*\|\s*$"),  # pipe table row
    re.compile(r"^\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)+\|?\s*$"),  # table delimiter row
    re.compile(r"^> \S"),  # block quote
)


def _markdown_signals(lines: list[str]) -> int:
    """How many kinds of Markdown syntax appear; list items only count from two lines on.

    A pipe table counts twice (row and delimiter row): nothing else looks like it.
    """
    kinds = 0
    for index, pattern in enumerate(_MARKDOWN_SIGNALS):
        hits = sum(1 for line in lines[:200] if pattern.search(line))
        if hits >= (2 if index == 3 else 1):
            kinds += 1
    return kinds
