"""The Markdown of v1's Markdown routes, from the ``extract`` operation's result.

The operation makes the Markdown (headings from font sizes, bold and italic,
lists, tables); this module adds what v1's converter did around it (§9.2): the
separators between the pages of a PDF (``---`` and ``*Page N*``) and the
clean-up of blank lines around headings and tables.
"""

from __future__ import annotations

import re
from typing import Any

from docworker.formats.detect import format_of

#: Office formats v1's converter took (by its extensions).
OFFICE_FORMATS = frozenset({"docx", "doc", "pptx", "ppt", "xlsx", "xls", "odt", "odp", "ods"})
_PDF = "application/pdf"
PARAMS = {"output": "markdown", "per_page": True}
_NEWLINES = re.compile(r"\n{3,}")
_BLOCK_START = re.compile(r"^(#{1,6} |[-*+] |\d+\. )")


def kind_of(mime: str) -> str | None:
    """``pdf``, ``office`` (a format v1's converter took) or None."""
    if mime == _PDF:
        return "pdf"
    return "office" if format_of(mime) in OFFICE_FORMATS else None


def tidy(markdown: str) -> str:
    """v1's clean-up: blank lines around headings, list items and tables; no run of more
    than one blank line; trimmed."""
    out: list[str] = []
    lines = markdown.split("\n")
    for index, line in enumerate(lines):
        starts_block = bool(_BLOCK_START.match(line))
        is_table = line.startswith("|")
        previous = lines[index - 1] if index else ""
        if (line.startswith("#") and starts_block) or (is_table and not previous.startswith("|")):
            out.append("")
        out.append(line)
        if line.startswith("#") and starts_block:
            out.append("")
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if is_table and not following.startswith("|"):
            out.append("")
    return _NEWLINES.sub("\n\n", "\n".join(out)).strip()


def markdown_of(payload: dict[str, Any]) -> str:
    """The Markdown of an extract result: a PDF's pages with v1's separators between them."""
    if payload.get("mime") != _PDF or not payload.get("pages"):
        return tidy(payload["content"])
    parts: list[str] = []
    for page in payload["pages"]:
        text = page["content"].strip()
        if not text:
            continue
        if parts:
            parts.append(f"\n\n---\n\n*Page {page['page']}*\n\n")
        parts.append(text)
    return tidy("".join(parts))
