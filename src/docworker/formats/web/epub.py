"""EPUB books (2 and 3): the spine's chapters in reading order, one page each.

``META-INF/container.xml`` names the package document (OPF), whose manifest
lists the files and whose spine gives the reading order. Each spine item is
an XHTML chapter, read by the HTML reader's :class:`~docworker.formats.web.html.HtmlWalker`
into the same document, and becomes one :class:`~docworker.document.Page`:
an e-book has no fixed pages, and a chapter is the unit readers navigate by,
so ``ctx.pages`` selects chapters. A page is labelled with the chapter's entry
in the table of contents (EPUB 3 navigation document, else the EPUB 2 NCX),
else with the chapter's own ``<title>``. Items the spine marks non-linear
(pop-up notes, answer keys) follow the linear ones; the navigation document is
read only where the spine places it, so a table of contents is not repeated
as text. Pictures inside the book keep their alt text, not their path in the
package, which means nothing outside it.

Metadata comes from the OPF's Dublin Core elements. A book whose content
documents are encrypted (DRM; ``META-INF/encryption.xml``) is refused with
:class:`~docworker.errors.UnsupportedFormat`; obfuscated fonts alone are not
DRM and are ignored.
"""

from __future__ import annotations

import posixpath
import zipfile
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar
from urllib.parse import unquote, urldefrag

from lxml import etree

from docworker.document import BlockKind, Document, DocumentBuilder, Metadata
from docworker.errors import CorruptDocument, UnsupportedFormat
from docworker.formats.base import HtmlContent, ParseContext, Source
from docworker.formats.ooxml.package import parse_xml, translate_errors
from docworker.formats.web.html import (
    HtmlWalker,
    decode_html,
    flat_text,
    parse_page,
    walk_page,
)

EPUB_MIME = "application/epub+zip"

_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF = "{http://www.idpf.org/2007/opf}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_NCX = "{http://www.daisy.org/z3986/2005/ncx/}"
_XENC = "{http://www.w3.org/2001/04/xmlenc#}"
_OPS = "{http://www.idpf.org/2007/ops}"
_CHAPTER_TYPES = frozenset({"application/xhtml+xml", "text/html", "application/x-dtbook+xml"})
#: Font obfuscation (IDPF and Adobe): fonts mangled against copying, not DRM.
_FONT_OBFUSCATION = frozenset(
    {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
)


@dataclass(frozen=True)
class _Item:
    """A manifest entry: its path in the zip, media type and properties."""

    path: str
    media_type: str
    properties: frozenset[str]


class EpubParser:
    """EPUB 2 and 3 books."""

    name: ClassVar[str] = "epub"
    media_types: ClassVar[frozenset[str]] = frozenset({EPUB_MIME})

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        with translate_errors(self.name, source.path), zipfile.ZipFile(source.path) as zf:
            opf_path = _package_path(zf)
            opf = parse_xml(zf.read(opf_path))
            items = _manifest(opf, posixpath.dirname(opf_path))
            _refuse_drm(zf, {item.path for item in items.values()})
            chapters = _reading_order(opf, items)
            titles = _toc_titles(zf, items)
            builder = DocumentBuilder(self.name, source.mime, _metadata(opf), limits=ctx.limits)
            builder.metadata.page_count = len(chapters)
            reader = _ChapterReader(zf, builder, ctx.limits.max_cells, ctx.html_content)
            for number in ctx.each_page(ctx.select_pages(len(chapters)), len(chapters)):
                reader.read(chapters[number - 1], number, titles)
            if not builder.document.blocks:
                builder.warn("empty", "the book holds no visible text")
            return builder.finish()


class _ChapterReader:
    """Reads chapters into one builder, each as a page, sharing one cell budget."""

    def __init__(
        self,
        zf: zipfile.ZipFile,
        builder: DocumentBuilder,
        max_cells: int,
        content: HtmlContent = "full",
    ) -> None:
        self.zf = zf
        self.builder = builder
        self.max_cells = max_cells
        self.content = content

    def read(self, path: str, number: int, titles: dict[str, str]) -> None:
        root = None
        if path in self.zf.NameToInfo:
            text, _ = decode_html(self.zf.read(path))
            try:
                root = parse_page(text)
            except CorruptDocument as exc:
                raise CorruptDocument(self.builder.document.format, exc.detail) from exc
        title = root.find("head/title") if root is not None else None
        label = titles.get(path) or (flat_text(title) if title is not None else "") or None
        self.builder.add_page(number, label=label)
        if root is None:
            return
        start = len(self.builder.document.blocks)
        if self.content == "main":
            self.max_cells -= walk_page(self.builder, root, self.max_cells, "main")
        else:
            body = root.find("body")
            walker = HtmlWalker(self.builder, self.max_cells)
            walker.walk(body if body is not None else root)
            self.max_cells -= walker.cells
        for block in self.builder.document.blocks[start:]:
            # The walker reads pages without page numbers: the chapter is this page.
            block.page = number
            if block.kind is BlockKind.IMAGE:
                block.links = [link for link in block.links if "://" in link.url]


def _package_path(zf: zipfile.ZipFile) -> str:
    """The OPF's path, from ``META-INF/container.xml`` (else the first ``.opf`` file)."""
    if "META-INF/container.xml" in zf.NameToInfo:
        container = parse_xml(zf.read("META-INF/container.xml"))
        for rootfile in container.iter(f"{_CONTAINER}rootfile"):
            path = rootfile.get("full-path", "")
            if path in zf.NameToInfo:
                return path
    fallback = next((n for n in zf.namelist() if n.lower().endswith(".opf")), None)
    if fallback is None:
        raise CorruptDocument("epub", "no package document (container.xml names none)")
    return fallback


def _manifest(opf: etree._Element, folder: str) -> dict[str, _Item]:
    items: dict[str, _Item] = {}
    for item in opf.iter(f"{_OPF}item"):
        href = unquote(urldefrag(item.get("href", "")).url)
        items[item.get("id", "")] = _Item(
            path=posixpath.normpath(posixpath.join(folder, href)).lstrip("/"),
            media_type=item.get("media-type", ""),
            properties=frozenset((item.get("properties") or "").split()),
        )
    return items


def _reading_order(opf: etree._Element, items: dict[str, _Item]) -> list[str]:
    """Chapter paths: the linear spine, then the non-linear items but the navigation."""
    linear: list[str] = []
    auxiliary: list[str] = []
    for itemref in opf.iter(f"{_OPF}itemref"):
        item = items.get(itemref.get("idref", ""))
        if item is None or item.media_type not in _CHAPTER_TYPES:
            continue
        if itemref.get("linear", "yes") != "no":
            linear.append(item.path)
        elif "nav" not in item.properties:
            auxiliary.append(item.path)
    return linear + [path for path in auxiliary if path not in linear]


def _refuse_drm(zf: zipfile.ZipFile, manifest_paths: set[str]) -> None:
    """UnsupportedFormat when a book's content (not only its fonts) is encrypted."""
    if "META-INF/encryption.xml" not in zf.NameToInfo:
        return
    encryption = parse_xml(zf.read("META-INF/encryption.xml"))
    for data in encryption.iter(f"{_XENC}EncryptedData"):
        method = data.find(f"{_XENC}EncryptionMethod")
        if method is not None and method.get("Algorithm") in _FONT_OBFUSCATION:
            continue
        reference = data.find(f"{_XENC}CipherData/{_XENC}CipherReference")
        uri = unquote(reference.get("URI", "")) if reference is not None else ""
        if uri.lstrip("/") in manifest_paths or uri.lstrip("/") in zf.NameToInfo:
            raise UnsupportedFormat(
                EPUB_MIME,
                "the EPUB's content is encrypted (DRM): it can be read only by the reading "
                "system it was licensed to",
            )


def _toc_titles(zf: zipfile.ZipFile, items: dict[str, _Item]) -> dict[str, str]:
    """Chapter path → its title in the table of contents (entries without a #fragment)."""
    nav = next((i for i in items.values() if "nav" in i.properties), None)
    ncx = next((i for i in items.values() if i.media_type == "application/x-dtbncx+xml"), None)
    entries: list[tuple[str, str]] = []
    if nav is not None and nav.path in zf.NameToInfo:
        entries = _nav_entries(zf.read(nav.path), posixpath.dirname(nav.path))
    elif ncx is not None and ncx.path in zf.NameToInfo:
        entries = _ncx_entries(parse_xml(zf.read(ncx.path)), posixpath.dirname(ncx.path))
    titles: dict[str, str] = {}
    for href, label in entries:
        path, fragment = urldefrag(href)
        if not fragment and label:
            titles.setdefault(path, label)
    return titles


def _nav_entries(data: bytes, folder: str) -> list[tuple[str, str]]:
    text, _ = decode_html(data)
    root = parse_page(text)
    if root is None:
        return []
    toc = next(
        (
            n
            for n in root.iter("nav")
            if "toc" in (n.get(f"{_OPS}type") or n.get("epub:type") or "")
        ),
        None,
    )
    anchors = (toc if toc is not None else root).iter("a")
    return [(_resolve(folder, a.get("href", "")), flat_text(a)) for a in anchors if a.get("href")]


def _ncx_entries(ncx: etree._Element, folder: str) -> list[tuple[str, str]]:
    entries = []
    for point in ncx.iter(f"{_NCX}navPoint"):
        content, label = point.find(f"{_NCX}content"), point.find(f"{_NCX}navLabel")
        text = _element_text(label) if label is not None else ""
        if content is not None and content.get("src"):
            entries.append((_resolve(folder, content.get("src", "")), text))
    return entries


def _resolve(folder: str, href: str) -> str:
    path, fragment = urldefrag(unquote(href))
    resolved = posixpath.normpath(posixpath.join(folder, path)).lstrip("/")
    return f"{resolved}#{fragment}" if fragment else resolved


def _metadata(opf: etree._Element) -> Metadata:
    """Title, creators, language, dates, subjects, publisher and description from the OPF."""
    metadata_element = opf.find(f"{_OPF}metadata")
    if metadata_element is None:
        return Metadata()

    def texts(tag: str) -> list[str]:
        found = (_element_text(e) for e in metadata_element.iter(f"{_DC}{tag}"))
        return list(dict.fromkeys(text for text in found if text))

    titles, subjects = texts("title"), texts("subject")
    metadata = Metadata(
        title=titles[0] if titles else None,
        authors=texts("creator"),
        language=next(iter(texts("language")), None),
        keywords=subjects,
        subject=subjects[0] if subjects else None,
        created=_date(next(iter(texts("date")), None)),
    )
    for meta in metadata_element.iter(f"{_OPF}meta"):
        if meta.get("property") == "dcterms:modified":
            metadata.modified = _date(meta.text)
    for tag, key in (
        ("publisher", "publisher"),
        ("description", "description"),
        ("identifier", "identifier"),
    ):
        values = texts(tag)
        if values:
            metadata.extra[key] = values[0]
    return metadata


def _element_text(element: etree._Element) -> str:
    return " ".join("".join(str(t) for t in element.itertext()).split())


def _date(value: str | None) -> datetime | None:
    """An OPF date: a full timestamp, or only a year or year and month."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    for candidate in (text, f"{text}-01", f"{text}-01-01"):
        try:
            return datetime.fromisoformat(candidate)
        except ValueError:
            continue
    return None
