"""Office packages for the tests: corpus packages rewritten with objects embedded in them.

:func:`rewrite_package` copies a corpus package, adding or replacing parts and
putting markup into others (an object's frame into a slide, its relationship
into the slide's relationships); :func:`embedded_pdf_object` gives a real OLE
object to embed.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import olefile
from corpus_scoring import CORPUS

OFFICE = CORPUS / "office"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
OLE_OBJECT_MIME = "application/vnd.openxmlformats-officedocument.oleObject"
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Text of the PDF that the corpus Word document's OLE objects wrap.
PDF_TEXT = "Eliahu David"
#: A paragraph of the corpus Word document ``word-sample.docx``.
WORD_TEXT = "Let’s swim!"
#: The content types PowerPoint and Excel declare for embedded objects and packages.
EMBEDDED_TYPES = (
    f'<Default Extension="bin" ContentType="{OLE_OBJECT_MIME}"/>'
    f'<Default Extension="docx" ContentType="{DOCX_MIME}"/>'
    f'<Default Extension="xlsx" ContentType="{XLSX_MIME}"/>'
)


def embedded_pdf_object() -> bytes:
    """A real OLE object: the Acrobat object wrapping a PDF in the corpus Word document."""
    with zipfile.ZipFile(OFFICE / "docx-with-embedded-pdf.docx") as zf:
        return zf.read("word/embeddings/oleObject1.bin")


def pdf_in(ole_object: bytes) -> bytes:
    """The PDF an Acrobat OLE object wraps, read with olefile directly."""
    with olefile.OleFileIO(io.BytesIO(ole_object)) as ole:
        return bytes(ole.openstream("CONTENTS").read())


def relationship(rid: str, kind: str, target: str) -> str:
    return f'<Relationship Id="{rid}" Type="{REL}/{kind}" Target="{target}"/>'


def rewrite_package(
    source: Path,
    target: Path,
    parts: dict[str, bytes],
    insert: dict[str, list[tuple[str, str]]],
) -> Path:
    """``source`` with ``parts`` added or replaced and markup put into other parts.

    Each ``insert`` entry ``part: [(before, markup), ...]`` puts ``markup``
    into ``part`` just before the first ``before``; ``[Content_Types].xml``
    always gets :data:`EMBEDDED_TYPES`.
    """
    insert = {**insert, "[Content_Types].xml": [("</Types>", EMBEDDED_TYPES)]}
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            if info.filename in parts:
                continue
            data = src.read(info)
            for before, markup in insert.get(info.filename, []):
                at = data.index(before.encode())
                data = data[:at] + markup.encode() + data[at:]
            dst.writestr(info, data)
        for name, content in parts.items():
            dst.writestr(name, content)
    return target
