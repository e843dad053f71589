"""Word documents of a chosen size, written on the fly: a large one, and a bomb.

A document's body is one paragraph repeated (several runs of text, non-ASCII
letters among them), so deflate packs hundreds of megabytes of ``document.xml``
into a few hundred kilobytes. Nothing of the kind is kept in the repository: the
tests and benchmarks that need one write it here, in a temporary folder.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    "</Types>"
)
_PACKAGE_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/>'
    "</Relationships>"
)
_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    "<w:body>"
)
_TAIL = "<w:sectPr/></w:body></w:document>"
#: One run of text: 100 characters, two of them outside ASCII (2 and 3 bytes in UTF-8).
RUN_TEXT = "Zürich and the € sign: " + "the quick brown fox jumps over the lazy dog, " * 2
RUN_TEXT = RUN_TEXT[:100]
#: Runs per paragraph: each paragraph holds 1,000 characters of text.
RUNS = 10
PARAGRAPH_CHARS = len(RUN_TEXT) * RUNS
_RUN = f'<w:r><w:t xml:space="preserve">{RUN_TEXT}</w:t></w:r>'.encode()
#: Paragraphs (or runs) written to the zip at a time.
_BATCH = 1000


def write_docx(path: Path, paragraphs: int, *, runs: int = RUNS) -> Path:
    """Write a DOCX of ``paragraphs`` paragraphs of ``runs`` runs of 100 characters each
    to ``path``; its ``document.xml`` is about 140 bytes per run unpacked."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as package:
        package.writestr("[Content_Types].xml", _CONTENT_TYPES)
        package.writestr("_rels/.rels", _PACKAGE_RELS)
        with package.open("word/document.xml", "w", force_zip64=True) as body:
            body.write(_HEAD.encode())
            for piece in _body(paragraphs, runs):
                body.write(piece)
            body.write(_TAIL.encode())
    return path


def _body(paragraphs: int, runs: int) -> Iterator[bytes]:
    """The paragraphs, a batch of them at a time (or of one's runs, when it has many)."""
    if runs <= _BATCH:
        paragraph = b"<w:p>" + _RUN * runs + b"</w:p>"
        yield from _batches(paragraph, paragraphs)
        return
    for _ in range(paragraphs):
        yield b"<w:p>"
        yield from _batches(_RUN, runs)
        yield b"</w:p>"


def _batches(piece: bytes, count: int) -> Iterator[bytes]:
    while count > 0:
        yield piece * min(count, _BATCH)
        count -= _BATCH


def paragraphs_for(chars: int) -> int:
    """How many paragraphs make at least ``chars`` characters of text."""
    return -(-chars // PARAGRAPH_CHARS)
