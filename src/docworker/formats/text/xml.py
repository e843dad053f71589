"""XML documents: parsed safely, read as JATS articles, XHTML or generic XML.

Parsing is where XML attacks live, so the parser is built to refuse them:
``resolve_entities=False`` leaves entity references as unexpanded nodes (no
entity expansion, no external entity reading files or URLs: XXE), ``load_dtd``
and ``no_network`` keep it from fetching DTDs, and ``huge_tree=False`` keeps
libxml2's limits on depth and text size. This is what ``defusedxml.lxml`` did
before it was deprecated. Declarations that would amplify past libxml2's
factor (billion laughs) are refused by libxml2 itself, and reported here as
hostile input. Text is then always gathered from element text and tails,
never by serialising, because serialising would expand the entities.

A JATS article (``article`` with ``front``/``body``/``back``, the format of
PubMed Central and most journals) becomes title, authors, affiliations,
abstract, sections as headings by depth, paragraphs, lists, tables, figure
captions and the reference list. XHTML goes to the HTML walker. Any other XML
becomes one paragraph per element that holds text directly (its text and that
of its inline children).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import ClassVar

from lxml import etree

from docworker.document import BlockKind, Document, DocumentBuilder, Link, Metadata
from docworker.errors import CorruptDocument, HostileInput, LimitExceeded
from docworker.formats.base import ParseContext, Source
from docworker.formats.web.html import HtmlWalker, build_table, raw_text

_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_LOCATION_IN_MESSAGE = re.compile(r",? line \d+, column \d+$")

#: JATS elements that hold a titled run of content.
_SECTIONS = frozenset(
    {"sec", "abstract", "trans-abstract", "ack", "app", "notes", "glossary", "boxed-text", "bio"}
)
#: JATS elements that may sit inside a paragraph but are blocks of their own.
_BLOCKS_IN_P = frozenset(
    {
        "list",
        "table-wrap",
        "fig",
        "disp-formula",
        "disp-quote",
        "preformat",
        "code",
        "boxed-text",
        "def-list",
        "fig-group",
        "table-wrap-group",
    }
)
#: Elements whose text is not part of the reading text where they appear.
_NOT_TEXT = frozenset({"title", "label", "object-id", "alt-text", "caption"})
_DEFAULT_TITLES = {"abstract": "Abstract", "ack": "Acknowledgments", "ref-list": "References"}


def safe_parser() -> etree.XMLParser:
    """An lxml parser that expands no entity and loads nothing (see the module docstring)."""
    return etree.XMLParser(
        resolve_entities=False,  # entity references stay nodes: no expansion, no XXE
        no_network=True,  # nothing is ever fetched
        load_dtd=False,  # no external DTD, so no entities or defaults from one
        huge_tree=False,  # libxml2's depth and node-size limits stay on
        remove_comments=True,
        remove_pis=True,
    )


def parse_xml(data: bytes) -> etree._Element:
    """The root element of ``data``; lxml reads the BOM and the XML declaration itself."""
    if not data.strip():
        raise CorruptDocument("xml", "the file is empty")
    try:
        root = etree.fromstring(data, safe_parser())
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        message = _LOCATION_IN_MESSAGE.sub("", str(exc.msg))
        if "amplification" in message:
            # libxml2 measured the entity declarations themselves as a bomb.
            raise HostileInput(
                "the xml document declares entities that expand without bound", format="xml"
            ) from exc
        raise CorruptDocument("xml", f"{message} at line {line} column {column}") from exc
    if root is None:
        raise CorruptDocument("xml", "no root element")
    return root


def local(element: etree._Element) -> str:
    """The element's name without namespace; '' for entities and other nodes."""
    tag = element.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def text_of(element: etree._Element, skip: frozenset[str] = frozenset()) -> str:
    """The element's text with inline children, whitespace normalised.

    Children named in ``skip`` are left out (their tails stay); entity nodes
    contribute nothing, which is what leaving them unexpanded means.
    """
    parts: list[str] = []

    def visit(node: etree._Element) -> None:
        parts.append(node.text or "")
        for child in node:
            if local(child) and local(child) not in skip:
                visit(child)
            parts.append(child.tail or "")

    visit(element)
    return " ".join("".join(parts).split())


def _own_text(element: etree._Element) -> bool:
    """Whether text sits directly in ``element`` rather than only in its children."""
    if element.text and element.text.strip():
        return True
    return any(child.tail and child.tail.strip() for child in element)


def generic_blocks(builder: DocumentBuilder, element: etree._Element) -> None:
    """One paragraph per element holding text directly, in document order."""
    if _own_text(element) or (len(element) == 0 and element.text):
        builder.add(BlockKind.PARAGRAPH, text_of(element))
        return
    for child in element:
        if local(child):
            generic_blocks(builder, child)


def is_jats(root: etree._Element) -> bool:
    return local(root) == "article" and any(local(c) in {"front", "body"} for c in root)


def _child_text(element: etree._Element, name: str) -> str:
    child = element.find(name)
    return text_of(child) if child is not None else ""


def _person(name: etree._Element) -> str:
    """A JATS ``name`` as it is read: given names, then surname."""
    parts = (_child_text(name, "given-names"), _child_text(name, "surname"))
    return " ".join(part for part in parts if part) or text_of(name)


def jats_metadata(root: etree._Element) -> Metadata:
    """Title, authors, keywords, language, publication date, DOI and journal."""
    meta = root.find("front/article-meta")
    metadata = Metadata(language=root.get(_XML_LANG))
    if meta is None:
        return metadata
    title = meta.find("title-group/article-title")
    metadata.title = text_of(title) if title is not None else None
    authors = meta.findall(".//contrib[@contrib-type='author']/name")
    metadata.authors = [_person(name) for name in authors]
    metadata.keywords = [text_of(k) for k in meta.iter("kwd") if text_of(k)]
    metadata.created = _pub_date(meta)
    doi = meta.find("article-id[@pub-id-type='doi']")
    if doi is not None:
        metadata.extra["doi"] = text_of(doi)
    journal = root.find("front/journal-meta//journal-title")
    if journal is not None:
        metadata.extra["journal"] = text_of(journal)
    return metadata


def _pub_date(meta: etree._Element) -> datetime | None:
    date = meta.find("pub-date")
    if date is None:
        return None
    parts = [date.findtext(name) or "" for name in ("year", "month", "day")]
    try:
        return datetime(int(parts[0]), int(parts[1] or 1), int(parts[2] or 1))
    except ValueError:
        return None


class JatsReader:
    """Adds the blocks of a JATS article to a builder, front to back."""

    def __init__(self, builder: DocumentBuilder, max_cells: int) -> None:
        self.builder = builder
        self.max_cells = max_cells
        self.cells = 0

    def read(self, root: etree._Element) -> None:
        front = root.find("front/article-meta")
        if front is not None:
            self.front(front)
        for part in ("body", "back", "floats-group"):
            for element in root.findall(part):
                self.blocks(element, depth=2)

    def front(self, meta: etree._Element) -> None:
        """Title, the authors' names, their affiliations, then the abstracts."""
        title = meta.find("title-group/article-title")
        if title is not None:
            self.builder.add(BlockKind.TITLE, text_of(title))
        authors = meta.findall(".//contrib[@contrib-type='author']")
        names = [_person(name) for c in authors if (name := c.find("name")) is not None]
        self.builder.add(BlockKind.PARAGRAPH, ", ".join(names))
        # Only the authors' affiliations: editors and reviewers have theirs too.
        cited = {
            x.get("rid") for c in authors for x in c.iter("xref") if x.get("ref-type") == "aff"
        }
        affiliations = [a for a in meta.iter("aff") if not cited or a.get("id") in cited]
        texts = [text_of(a, skip=frozenset({"label"})) for a in affiliations]
        self.builder.add(BlockKind.PARAGRAPH, "; ".join(t for t in texts if t))
        for abstract in meta.findall("abstract"):
            self.section(abstract, depth=2)

    def section(self, element: etree._Element, depth: int) -> None:
        """A heading (its title, or a default for the kind) and the content under it."""
        title = element.find("title")
        heading = text_of(title) if title is not None else _DEFAULT_TITLES.get(local(element), "")
        self.builder.add(BlockKind.HEADING, heading, level=min(depth, 6))
        self.blocks(element, depth + 1)

    def blocks(self, element: etree._Element, depth: int) -> None:
        """The blocks of ``element``'s children."""
        for child in element:
            self.block(child, depth)

    def block(self, element: etree._Element, depth: int) -> None:
        tag = local(element)
        if not tag or tag in _NOT_TEXT:
            return
        if tag in _SECTIONS:
            self.section(element, depth)
        elif tag in {"p", "statement"}:
            self.paragraph(element, BlockKind.PARAGRAPH)
        elif tag == "ref-list":
            self.references(element, depth)
        elif tag in _BLOCKS_IN_P:
            self.inner_block(element, depth)
        elif tag in {"fn", "fn-group", "table-wrap-foot"}:
            self.footnotes(element)
        elif _own_text(element):
            self.paragraph(element, BlockKind.PARAGRAPH)
        else:
            self.blocks(element, depth)

    def inner_block(self, element: etree._Element, depth: int, level: int = 1) -> None:
        """A block that may also appear inside a paragraph."""
        tag = local(element)
        if tag == "list":
            self.list(element, level)
        elif tag == "table-wrap":
            self.table_wrap(element)
        elif tag == "fig":
            self.figure(element)
        elif tag == "disp-formula":
            self.builder.add(BlockKind.FORMULA, text_of(element, skip=frozenset({"label"})))
        elif tag == "disp-quote":
            for child in element:
                if local(child) == "p":
                    self.paragraph(child, BlockKind.QUOTE)
        elif tag in {"preformat", "code"}:
            self.builder.add(BlockKind.CODE, raw_text(element).strip("\n"))
        else:
            self.blocks(element, depth)

    def paragraph(
        self,
        element: etree._Element,
        kind: BlockKind,
        level: int | None = None,
        ordered: bool | None = None,
    ) -> None:
        """Inline text as one block, split where a block (list, table, figure) sits inside."""
        parts = [element.text or ""]
        links: list[Link] = []

        def flush() -> None:
            text = " ".join("".join(parts).split())
            self.builder.add(kind, text, level=level, ordered=ordered, links=list(links))
            parts.clear()
            links.clear()

        for child in element:
            tag = local(child)
            if tag in _BLOCKS_IN_P:
                flush()
                self.inner_block(child, depth=0, level=(level or 0) + 1)
            elif tag:
                parts.append(text_of(child) if child.text or len(child) else "")
                if tag in {"ext-link", "uri"} and child.get(_XLINK_HREF):
                    links.append(Link(text=text_of(child), url=child.get(_XLINK_HREF, "")))
            parts.append(child.tail or "")
        flush()

    def list(self, element: etree._Element, level: int) -> None:
        ordered = element.get("list-type", "") in {
            "order",
            "alpha-lower",
            "alpha-upper",
            "roman-lower",
            "roman-upper",
        }
        for item in element.findall("list-item"):
            for child in item:
                if local(child) == "p":
                    self.paragraph(child, BlockKind.LIST_ITEM, level, ordered)
                elif local(child) == "list":
                    self.list(child, level + 1)

    def caption(self, element: etree._Element) -> None:
        """A table's or figure's label and caption as one caption block."""
        label = element.find("label")
        caption = element.find("caption")
        parts = [text_of(label) if label is not None else ""]
        if caption is not None:
            parts.extend(text_of(child) for child in caption if local(child))
        self.builder.add(BlockKind.CAPTION, " ".join(p for p in parts if p))

    def table_wrap(self, element: etree._Element) -> None:
        self.caption(element)
        for table in element.iter("table"):
            grid = build_table(table, self.max_cells - self.cells)
            self.cells += grid.n_rows * grid.n_cols
            if self.cells > self.max_cells:
                raise LimitExceeded("cells", self.cells, self.max_cells)
            self.builder.add(BlockKind.TABLE, table=grid)
        for foot in element.findall("table-wrap-foot"):
            self.footnotes(foot)

    def figure(self, element: etree._Element) -> None:
        self.caption(element)
        for graphic in element.iter("graphic"):
            href = graphic.get(_XLINK_HREF)
            alt = graphic.find("alt-text")
            alt_text = text_of(alt) if alt is not None else ""
            links = [Link(text=alt_text or href, url=href)] if href else []
            self.builder.add(BlockKind.IMAGE, alt_text, links=links)

    def footnotes(self, element: etree._Element) -> None:
        for p in element.iter("p"):
            self.paragraph(p, BlockKind.FOOTNOTE)

    def references(self, element: etree._Element, depth: int) -> None:
        """The reference list: a heading, then one list item per reference."""
        title = element.find("title")
        heading = text_of(title) if title is not None else _DEFAULT_TITLES["ref-list"]
        self.builder.add(BlockKind.HEADING, heading, level=min(depth, 6))
        for ref in element.iter("ref"):
            text = text_of(ref, skip=frozenset({"label"}))
            self.builder.add(BlockKind.LIST_ITEM, text, level=1, ordered=False)


class XmlParser:
    """``application/xml``: JATS articles by their structure, other XML by its text."""

    name: ClassVar[str] = "xml"
    media_types: ClassVar[frozenset[str]] = frozenset({"application/xml", "text/xml"})

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        root = parse_xml(source.path.read_bytes())
        jats = is_jats(root)
        metadata = jats_metadata(root) if jats else Metadata(language=root.get(_XML_LANG))
        metadata.encoding = root.getroottree().docinfo.encoding
        metadata.extra["root"] = local(root)
        builder = DocumentBuilder(self.name, source.mime, metadata, limits=ctx.limits)
        if jats:
            metadata.extra["schema"] = "jats"
            JatsReader(builder, ctx.limits.max_cells).read(root)
        elif local(root) == "html":
            # XHTML sent as plain XML: the HTML walker matches elements by local name.
            body = next((c for c in root if local(c) == "body"), root)
            HtmlWalker(builder, ctx.limits.max_cells).walk(body)
        else:
            generic_blocks(builder, root)
        if not builder.document.blocks:
            builder.warn("empty", "the document holds no text")
        ctx.progress(1.0, f"{len(builder.document.blocks)} blocks")
        return builder.finish()
