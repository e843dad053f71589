"""Word documents (docx, docm): the package's stories, in reading order, as blocks.

The body is read in document order (paragraphs and tables interleaved, text boxes
and pictures where they are anchored); then come what sits outside the flow:
headers before the body and footers after it (each distinct one once, however
many sections repeat it), footnotes and endnotes last. Word documents have no
fixed pages, so a page selection is ignored (with a warning) and
``metadata.page_count`` is Word's own count from the last save.

Objects embedded in the text (OLE objects, embedded packages) are read after
it through the embedded-document dispatch, each under ``Attachment: <name>``;
the other files under ``word/embeddings/`` (a chart's workbook) are listed only.

The package is read with :mod:`zipfile` and lxml rather than python-docx, whose
loader refuses macro-enabled documents and whose object model would be walked
back down to the XML anyway. The main part is streamed: its body is parsed one
child (a paragraph, a table) at a time, each dropped once read, so a document whose
XML unpacks to hundreds of megabytes holds only what it has yielded so far, and its
text is refused at the output limit (``limits.max_output_chars``) as it grows. The
section properties that name the headers come at the end of the body; the headers
are read then and put first, where they belong in reading order.
"""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, ClassVar

from lxml import etree

from docworker.document import BlockKind, Document, DocumentBuilder
from docworker.errors import CorruptDocument
from docworker.formats.base import ParseContext, Source
from docworker.formats.ooxml.package import (
    append_embedded_parts,
    drop_entity_references,
    parse_xml,
    read_metadata,
    refuse_non_package,
    relationships,
    translate_errors,
)
from docworker.formats.ooxml.word_story import BLOCK_HOLDERS, Story, StoryReader
from docworker.formats.ooxml.word_styles import W_NS, ParagraphRoles

WORD_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
WORD_MACRO_MIME = "application/vnd.ms-word.document.macroEnabled.12"

_W = f"{{{W_NS}}}"
_R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_MAIN_REL = "/officeDocument"
#: Relationships from the text to an embedded object: an OLE object, an OOXML package.
_OBJECT_RELS = ("/oleObject", "/package")
_OLE_OBJECT = "{urn:schemas-microsoft-com:office:office}OLEObject"
_STORY_RELS = ("/header", "/footer", "/footnotes", "/endnotes")
_BODY = f"{_W}body"
_HEADER_REF = f"{_W}headerReference"
_FOOTER_REF = f"{_W}footerReference"
#: What the streamed parse looks at: the body's children that are read (what may hold
#: blocks, and what may name headers, footers or objects: section properties, deleted
#: text) and runs' text (``t``), counted as it is parsed. Other elements are dropped
#: with their parent, unseen: the parse costs a few events per paragraph.
_STREAMED = (*BLOCK_HOLDERS, "{*}sectPr", "{*}del", "{*}moveFrom", "{*}t")
_NOTE_KINDS = {"separator", "continuationSeparator", "continuationNotice"}
#: How many blocks are read between two looks at cancellation and progress.
_TICK_EVERY = 64


class _Cancelled(Exception):
    """Raised inside the reader to stop once the job is cancelled."""


@dataclass
class _BodyRefs:
    """What the body names, gathered while it streams past: the relationship ids of its
    headers and footers and of the OLE objects in its text, in document order."""

    headers: list[str] = field(default_factory=list)
    footers: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)

    def gather(self, element: etree._Element) -> None:
        for found in element.iter(_HEADER_REF, _FOOTER_REF, _OLE_OBJECT):
            rid = found.get(_R_ID)
            if rid:
                kind = {_HEADER_REF: self.headers, _FOOTER_REF: self.footers}
                kind.get(found.tag, self.objects).append(rid)


class _Counted:
    """A stream that counts the bytes read from it (the progress through a part)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.count += len(data)
        return data


def body_children(
    stream: IO[bytes] | _Counted, builder: DocumentBuilder
) -> Iterator[etree._Element]:
    """The children of a main part's ``w:body``, each once it has been parsed whole.

    The part is parsed as it streams (entities unresolved, nothing fetched, as
    :func:`~docworker.formats.ooxml.package.xml_parser`); a child is emptied and
    dropped from the tree once the next one is asked for, so the tree never holds
    more than the child being read; it is yielded without entity references
    (:func:`~docworker.formats.ooxml.package.drop_entity_references`). The text of
    its runs is counted as it is parsed, so that one paragraph of millions of runs
    is refused at the output limit (``builder.check_text``) before it is whole.
    Children of other kinds than :data:`_STREAMED` (bookmarks, proofing marks) are
    dropped unseen.
    """
    body: etree._Element | None = None
    pending, room = 0, builder.chars_left()
    events = etree.iterparse(
        stream,
        events=("end",),
        tag=_STREAMED,
        resolve_entities=False,
        no_network=True,
        remove_comments=True,
    )
    for _event, element in events:
        if element.tag.endswith("}t"):
            if len(element):
                drop_entity_references(element)
            pending += len(element.text or "")
            if room is not None and pending > room:
                builder.check_text(pending)
            continue
        parent = element.getparent()
        if parent is None or (parent is not body and parent.tag != _BODY):
            continue
        body = parent
        yield drop_entity_references(element)
        element.clear()
        while element.getprevious() is not None:
            del body[0]
        pending, room = 0, builder.chars_left()


class DocxParser:
    """Word 2007+ documents, macro-enabled ones included."""

    name: ClassVar[str] = "docx"
    media_types: ClassVar[frozenset[str]] = frozenset({WORD_MIME, WORD_MACRO_MIME})

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        refuse_non_package(source.path, self.name)
        with translate_errors(self.name, source.path), zipfile.ZipFile(source.path) as zf:
            return _WordPackage(zf, source.mime, ctx).read()


class _WordPackage:
    """One open Word package and the document being built from it."""

    def __init__(self, zf: zipfile.ZipFile, mime: str, ctx: ParseContext) -> None:
        self.zf = zf
        self.ctx = ctx
        self.main = _main_part(zf)
        self.rels = relationships(zf, self.main)
        self.builder = DocumentBuilder("docx", mime, read_metadata(zf), limits=ctx.limits)
        self._ticks = 0

    def read(self) -> Document:
        styles = self._related("/styles")
        roles = ParagraphRoles.read(styles, self._related("/numbering"))
        self._fill_metadata(styles)
        refs = _BodyRefs()
        with self.zf.open(self.main) as part:
            stream = _Counted(part)
            size = self.zf.getinfo(self.main).file_size
            reader = StoryReader(
                self.builder, roles, self._tick(lambda: stream.count / max(size, 1))
            )
            try:
                self._read_body(reader, stream, refs)
                self._margins(reader, refs.footers, BlockKind.FOOTER)
                for note in ("footnote", "endnote"):
                    self._notes(reader, note)
            except _Cancelled:
                self.builder.warn("cancelled", "reading stopped early: the job was cancelled")
        if self.builder.metadata.title is None:
            titles = (b.text for b in self.builder.document.blocks if b.kind == BlockKind.TITLE)
            self.builder.metadata.title = next(titles, None)
        folder = posixpath.dirname(self.main)
        objects = self._objects(refs.objects)
        append_embedded_parts(self.builder, self.zf, f"{folder}/embeddings/", objects, self.ctx)
        return self.builder.finish()

    def _read_body(self, reader: StoryReader, stream: _Counted, refs: _BodyRefs) -> None:
        """The body, streamed, then its headers, moved before it."""
        story = Story(self.zf, self.rels)
        found = False
        for element in body_children(stream, self.builder):
            found = True
            refs.gather(element)
            reader.read_node(element, story)
        if not found and not _has_body(self.zf, self.main):
            raise CorruptDocument("docx", "the main document part has no body")
        body_blocks = len(self.builder.document.blocks)
        self._margins(reader, refs.headers, BlockKind.HEADER)
        self.builder.move_to_front(body_blocks)

    def _objects(self, in_body: list[str]) -> list[str]:
        """The embedded objects the text shows: the body's in its order, then the rest.

        The rest are the main part's other objects and those of its other
        stories (headers, footers, notes), by name.
        """
        mine = {rid: t for rid, (kind, t) in self.rels.items() if kind.endswith(_OBJECT_RELS)}
        in_order = [mine[rid] for rid in in_body if rid in mine]
        stories = (t for kind, t in self.rels.values() if kind.endswith(_STORY_RELS))
        related = (relationships(self.zf, target) for target in stories)
        elsewhere = {
            t for rels in related for kind, t in rels.values() if kind.endswith(_OBJECT_RELS)
        }
        return list(dict.fromkeys([*in_order, *sorted(mine.values()), *sorted(elsewhere)]))

    def _related(self, rel_suffix: str) -> etree._Element | None:
        """The root of the main part's first related part of a relationship type."""
        for rel_type, target in self.rels.values():
            if rel_type.endswith(rel_suffix) and target in self.zf.NameToInfo:
                return parse_xml(self.zf.read(target))
        return None

    def _fill_metadata(self, styles: etree._Element | None) -> None:
        metadata = self.builder.metadata
        if metadata.language is None and styles is not None:
            lang = styles.find(f"{_W}docDefaults/{_W}rPrDefault/{_W}rPr/{_W}lang")
            metadata.language = lang.get(f"{_W}val") if lang is not None else None
        if self.ctx.pages is not None:
            self.builder.warn(
                "pages-ignored",
                "a Word document has no fixed pages: the page selection was ignored",
            )

    def _tick(self, done: Callable[[], float]) -> Callable[[], None]:
        """Called once per block: looks at cancellation and reports ``done()`` (the
        share of the body read) every few blocks."""

        def tick() -> None:
            self._ticks += 1
            if self._ticks % _TICK_EVERY:
                return
            if self.ctx.cancelled():
                raise _Cancelled
            self.ctx.progress(min(done(), 1.0), "reading the body")

        return tick

    def _margins(self, reader: StoryReader, rids: list[str], kind: BlockKind) -> None:
        """Headers or footers: every distinct one once, in the order sections use them."""
        seen_parts: set[str] = set()
        seen_texts: set[str] = set()
        for rid in rids:
            _, target = self.rels.get(rid, ("", ""))
            if target in seen_parts or target not in self.zf.NameToInfo:
                continue
            seen_parts.add(target)
            story = Story(self.zf, relationships(self.zf, target))
            text = reader.cell_text(parse_xml(self.zf.read(target)), story)
            if text and text not in seen_texts:
                seen_texts.add(text)
                self.builder.add(kind, text)

    def _notes(self, reader: StoryReader, note: str) -> None:
        """Footnotes or endnotes, skipping the separators Word keeps among them: those the
        text refers to first, in the order of their marks and labelled with them."""
        for rel_type, target in self.rels.values():
            if not rel_type.endswith(f"/{note}s") or target not in self.zf.NameToInfo:
                continue
            story = Story(self.zf, relationships(self.zf, target))
            notes = [
                (reader.note_labels.get((note, element.get(f"{_W}id", ""))), element)
                for element in parse_xml(self.zf.read(target)).iterfind(f"{_W}{note}")
                if element.get(f"{_W}type") not in _NOTE_KINDS
            ]
            order = {label: i for i, label in enumerate(reader.note_labels.values())}
            notes.sort(key=lambda pair: order.get(pair[0], len(order)) if pair[0] else len(order))
            for label, element in notes:
                text = reader.cell_text(element, story)
                self.builder.add(BlockKind.FOOTNOTE, text, label=label)


def _has_body(zf: zipfile.ZipFile, part: str) -> bool:
    """Whether a main part without block content has a ``w:body`` at all (an empty
    body is a document without text; no body at all is a broken one)."""
    with zf.open(part) as stream:
        for _event, element in etree.iterparse(
            stream, events=("start",), resolve_entities=False, no_network=True
        ):
            if element.tag == _BODY:
                return True
    return False


def _main_part(zf: zipfile.ZipFile) -> str:
    for rel_type, target in relationships(zf, "").values():
        if rel_type.endswith(_MAIN_REL) and target in zf.NameToInfo:
            return target
    raise CorruptDocument("docx", "the package has no main document part")
