"""Plain text files: decoding them and cutting them into paragraphs.

A paragraph is a run of lines between blank lines; the line breaks inside it
are kept, because in plain text they often carry meaning (addresses, verse,
lists typed by hand). A file with no text at all is not an error: it gives an
empty document with a warning, so a batch goes on.
"""

from __future__ import annotations

import re
import textwrap
from typing import ClassVar

from docworker.document import BlockKind, Document, DocumentBuilder, Metadata
from docworker.formats.base import ParseContext, Source
from docworker.formats.encoding import decode_text

#: A blank line: a line break, then only horizontal whitespace, then another.
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs of ``text``: blank-line separated, common indentation removed.

    Line endings are normalised to ``\\n`` and trailing spaces dropped, so the
    result does not depend on the platform that wrote the file.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs: list[str] = []
    for chunk in _BLANK_LINE.split(text):
        lines = [line.rstrip() for line in chunk.split("\n")]
        paragraph = textwrap.dedent("\n".join(lines)).strip("\n")
        if paragraph.strip():
            paragraphs.append(paragraph)
    return paragraphs


class TextParser:
    """``text/plain`` in any encoding :func:`decode_text` can tell."""

    name: ClassVar[str] = "text"
    media_types: ClassVar[frozenset[str]] = frozenset({"text/plain"})

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        decoded = decode_text(source.path.read_bytes())
        metadata = Metadata(encoding=decoded.encoding)
        metadata.extra["encoding_detected_by"] = decoded.how
        builder = DocumentBuilder(self.name, source.mime, metadata, limits=ctx.limits)
        paragraphs = split_paragraphs(decoded.text)
        if not paragraphs:
            builder.warn("empty", "the file holds no text")
        for paragraph in paragraphs:
            builder.add(BlockKind.PARAGRAPH, paragraph)
        ctx.progress(1.0, f"{len(paragraphs)} paragraphs")
        return builder.finish()
