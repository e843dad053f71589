"""EpubParser on the corpus book and on small books built here for edge cases."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from corpus_scoring import CORPUS, corpus_f1, needs_corpus

from docworker.document import BlockKind, Document
from docworker.errors import CorruptDocument, UnsupportedFormat
from docworker.formats.base import PageSelection, ParseContext, Source
from docworker.formats.web.epub import EPUB_MIME, EpubParser

POETRY = CORPUS / "office" / "poetry.epub"


def parse(path: Path, ctx: ParseContext | None = None) -> Document:
    return EpubParser().parse(Source(path, EPUB_MIME), ctx or ParseContext())


def chapter(title: str, body: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
        f"<head><title>{title}</title></head><body>{body}</body></html>"
    )


def build(
    tmp_path: Path,
    chapters: dict[str, str],
    spine: str,
    *,
    manifest_extra: str = "",
    extra: dict[str, str] | None = None,
    container: bool = True,
) -> Path:
    """An EPUB with ``chapters`` (file name → XHTML) under ``OEBPS/`` and the given spine."""
    items = "".join(
        f'<item id="{name}" href="{name}" media-type="application/xhtml+xml"/>' for name in chapters
    )
    opf = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="2.0">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Built</dc:title>'
        "<dc:creator>A. Author</dc:creator><dc:creator>B. Author</dc:creator>"
        "<dc:language>fr</dc:language><dc:date>1999</dc:date></metadata>"
        f"<manifest>{items}{manifest_extra}</manifest><spine toc='ncx'>{spine}</spine></package>"
    )
    path = tmp_path / "book.epub"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", EPUB_MIME)
        if container:
            zf.writestr(
                "META-INF/container.xml",
                '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container" version="1.0">'
                '<rootfiles><rootfile full-path="OEBPS/content.opf"/></rootfiles></container>',
            )
        zf.writestr("OEBPS/content.opf", opf)
        for name, xhtml in chapters.items():
            zf.writestr(f"OEBPS/{name}", xhtml)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


# -- the corpus --------------------------------------------------------------------------


@needs_corpus
def test_text_matches_the_ground_truth() -> None:
    assert corpus_f1(EpubParser(), "office/poetry.epub", EPUB_MIME) >= 0.99


@needs_corpus
def test_one_page_per_chapter_labelled_from_the_table_of_contents() -> None:
    doc = parse(POETRY)
    assert [(p.number, p.label) for p in doc.pages] == [
        (1, "Titlepage"),
        (2, "Imprint"),
        (3, "Poetry"),  # the contents point into this file only at #fragments
        (4, "Colophon"),
        (5, "Uncopyright"),
    ]
    assert {b.page for b in doc.blocks} == {1, 2, 3, 4, 5}
    headings = [b.text for b in doc.blocks if b.kind is BlockKind.HEADING]
    assert headings[:3] == ["Poetry", "Imprint", "The Grave of the Slave"]
    # The navigation document is not in the spine: its list of titles is not text.
    assert "Table of Contents" not in {b.text for b in doc.blocks}


@needs_corpus
def test_metadata_from_the_package_document() -> None:
    metadata = parse(POETRY).metadata
    assert metadata.title == "Poetry"
    assert metadata.authors == ["Sarah Louisa Forten Purvis"]
    assert metadata.language == "en-US"
    assert metadata.keywords[0] == "African American women--Poetry"
    assert metadata.created is not None and metadata.created.year == 2023
    assert metadata.modified is not None and metadata.modified.year == 2026
    assert metadata.extra["publisher"] == "Standard Ebooks"
    assert metadata.page_count == 5


@needs_corpus
def test_images_keep_their_alt_text_but_not_their_path_in_the_book() -> None:
    doc = parse(POETRY)
    logo = next(b for b in doc.blocks if b.kind is BlockKind.IMAGE and b.text)
    assert logo.text == "The Standard Ebooks logo."
    assert logo.links == []


@needs_corpus
def test_chapters_are_selected_as_pages() -> None:
    doc = parse(POETRY, ParseContext(pages=PageSelection.parse("2")))
    assert [p.number for p in doc.pages] == [2]
    assert doc.blocks[0].text == "Imprint"


# -- books built here --------------------------------------------------------------------


def test_spine_order_non_linear_items_last_and_ncx_titles(tmp_path: Path) -> None:
    chapters = {
        "b.xhtml": chapter("B file", "<h1>Second</h1><p>Two</p>"),
        "a.xhtml": chapter("A file", "<h1>First</h1><ul><li>item</li></ul>"),
        "notes.xhtml": chapter("Notes", "<p>A note</p>"),
        "unlisted.xhtml": chapter("Unlisted", "<p>Not in the spine</p>"),
    }
    ncx = (
        '<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/"><navMap>'
        '<navPoint><navLabel><text>Chapter A</text></navLabel><content src="a.xhtml"/></navPoint>'
        "</navMap></ncx>"
    )
    spine = (
        '<itemref idref="notes.xhtml" linear="no"/>'
        '<itemref idref="a.xhtml"/><itemref idref="b.xhtml"/>'
    )
    path = build(
        tmp_path,
        chapters,
        spine,
        manifest_extra='<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>',
        extra={"OEBPS/toc.ncx": ncx},
    )
    doc = parse(path)
    assert [p.label for p in doc.pages] == ["Chapter A", "B file", "Notes"]
    assert [(b.page, b.kind, b.text) for b in doc.blocks] == [
        (1, BlockKind.HEADING, "First"),
        (1, BlockKind.LIST_ITEM, "item"),
        (2, BlockKind.HEADING, "Second"),
        (2, BlockKind.PARAGRAPH, "Two"),
        (3, BlockKind.PARAGRAPH, "A note"),
    ]
    metadata = doc.metadata
    assert (metadata.title, metadata.authors, metadata.language) == (
        "Built",
        ["A. Author", "B. Author"],
        "fr",
    )
    assert metadata.created is not None and metadata.created.year == 1999


def test_a_book_without_container_falls_back_to_its_package_document(tmp_path: Path) -> None:
    chapters = {"c.xhtml": chapter("C", "<p>Found</p>")}
    path = build(tmp_path, chapters, '<itemref idref="c.xhtml"/>', container=False)
    assert [b.text for b in parse(path).blocks] == ["Found"]


def test_drm_encrypted_content_is_refused(tmp_path: Path) -> None:
    encryption = (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        '<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
        '<enc:CipherData><enc:CipherReference URI="OEBPS/c.xhtml"/></enc:CipherData>'
        "</enc:EncryptedData></encryption>"
    )
    path = build(
        tmp_path,
        {"c.xhtml": "\x00\x93 encrypted bytes"},
        '<itemref idref="c.xhtml"/>',
        extra={"META-INF/encryption.xml": encryption},
    )
    with pytest.raises(UnsupportedFormat, match="DRM"):
        parse(path)


def test_obfuscated_fonts_alone_are_not_drm(tmp_path: Path) -> None:
    encryption = (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        '<enc:EncryptionMethod Algorithm="http://www.idpf.org/2008/embedding"/>'
        '<enc:CipherData><enc:CipherReference URI="OEBPS/font.otf"/></enc:CipherData>'
        "</enc:EncryptedData></encryption>"
    )
    path = build(
        tmp_path,
        {"c.xhtml": chapter("C", "<p>Readable</p>")},
        '<itemref idref="c.xhtml"/>',
        extra={"META-INF/encryption.xml": encryption, "OEBPS/font.otf": "x"},
    )
    assert [b.text for b in parse(path).blocks] == ["Readable"]


def test_an_internal_subset_of_a_chapter_doctype_is_not_text(tmp_path: Path) -> None:
    doctype = '<!DOCTYPE html [<!ENTITY nbsp "&#160;">]>'
    xhtml = chapter("C", "<p>Here</p>").replace("?><html", f"?>{doctype}<html", 1)
    path = build(tmp_path, {"c.xhtml": xhtml}, '<itemref idref="c.xhtml"/>')
    assert [b.text for b in parse(path).blocks] == ["Here"]


def test_a_chapter_missing_from_the_zip_leaves_an_empty_page(tmp_path: Path) -> None:
    path = build(
        tmp_path,
        {"c.xhtml": chapter("C", "<p>Here</p>")},
        '<itemref idref="gone"/><itemref idref="c.xhtml"/>',
        manifest_extra='<item id="gone" href="gone.xhtml" media-type="application/xhtml+xml"/>',
    )
    doc = parse(path)
    assert [p.number for p in doc.pages] == [1, 2]
    assert [(b.page, b.text) for b in doc.blocks] == [(2, "Here")]


def test_not_a_book(tmp_path: Path) -> None:
    path = tmp_path / "book.epub"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", EPUB_MIME)
    with pytest.raises(CorruptDocument):
        parse(path)
    path.write_bytes(b"plain text")
    with pytest.raises(CorruptDocument):
        parse(path)
