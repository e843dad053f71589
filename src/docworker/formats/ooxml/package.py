"""What the Office Open XML parsers (docx, pptx, xlsx) share: the package itself.

An OOXML file is a zip of XML parts tied together by relationship parts. This
module opens that package safely, refuses what is not one (an encrypted file is an
OLE compound file wrapping the real package), translates the libraries' errors
into :class:`~docworker.errors.CorruptDocument`, reads the core and extended
properties into :class:`~docworker.document.Metadata`, and reads the embedded
objects the document shows through the embedded-document dispatch, listing the
other embedded files as :class:`~docworker.document.Attachment` records
(:func:`append_embedded_parts`, or page by page with :class:`EmbeddedParts`).
"""

from __future__ import annotations

import hashlib
import mimetypes
import posixpath
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from lxml import etree

from docworker.document import Attachment, DocumentBuilder, Metadata
from docworker.errors import CorruptDocument, PasswordRequired
from docworker.formats import cfb
from docworker.formats.base import ParseContext
from docworker.formats.embedded import append_ole_object, within_budget

#: The streams MS-OFFCRYPTO puts in the compound file that wraps an encrypted package.
_ENCRYPTION_STREAMS = frozenset({"EncryptionInfo", "EncryptedPackage"})
#: The note Office appends to image descriptions that a vision model wrote for it.
_GENERATED_ALT = re.compile(
    r"Description automatically generated|AI-generated content may be incorrect", re.IGNORECASE
)

_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
_CORE_REL = "/metadata/core-properties"
_APP_REL = "/extended-properties"
#: Relationships from a part's markup to an object embedded in it: an OLE object, a package.
OBJECT_RELS = ("/oleObject", "/package")
_NS = {
    "cp": "http://schemas.openxmlformats.org/package/2006/metadata/core-properties",
    "dc": "http://purl.org/dc/elements/1.1/",
    "dcterms": "http://purl.org/dc/terms/",
    "ep": "http://schemas.openxmlformats.org/officeDocument/2006/extended-properties",
}

#: What a damaged package makes the zip, XML and OOXML libraries raise.
PACKAGE_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    # zipfile seeking to a member's offset before the start of the file.
    OSError,
    # KeyError (a part named but absent), IndexError, an XML encoding Python does not know.
    LookupError,
    ValueError,
    TypeError,
    AttributeError,
    NotImplementedError,
    # zipfile: a member encrypted with a password; RecursionError: markup nested too deep.
    RuntimeError,
    etree.LxmlError,
)


def xml_parser() -> etree.XMLParser:
    """An XML parser that resolves no entities and fetches nothing (XXE-safe)."""
    return etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)


def parse_xml(data: bytes) -> etree._Element:
    """The root of an XML part, without entity references (:func:`drop_entity_references`)."""
    return drop_entity_references(etree.fromstring(data, xml_parser()))


def drop_entity_references(element: etree._Element) -> etree._Element:
    """``element`` with the entity references in it removed, the text around them kept.

    The parsers resolve no entity, so a reference a part's DTD declares stays in
    the tree as a node whose text follows it as its tail; readers that take an
    element's own text would lose that tail (``A &xxe; B`` would read "A").
    Removing the nodes joins the text on both sides: the entity itself is never
    expanded, and the content scan reports its declaration.
    """
    etree.strip_tags(element, etree.Entity)
    return element


def local_name(element: etree._Element) -> str:
    """The tag without its namespace; comments and processing instructions give ''."""
    tag = element.tag
    # String slicing: etree.QName would cost more than the rest of a run's reading.
    return tag[tag.rfind("}") + 1 :] if isinstance(tag, str) else ""


def child(element: etree._Element | None, *tags: str) -> etree._Element | None:
    """The first child tagged ``tags[0]``, then its first child tagged ``tags[1]``, ...

    Equivalent to ``element.find("a/b")`` but several times faster: lxml's ``find``
    goes through its path machinery, which dominates the reading of large documents.
    """
    found = element
    for tag in tags:
        if found is None:
            return None
        parent, found = found, None
        for node in parent:
            if node.tag == tag:
                found = node
                break
    return found


def clean_alt_text(text: str) -> str:
    """An image description on one line; '' for one Office generated itself.

    Office marks the descriptions its vision model guessed; those are not the
    author's words and are often wrong, so they are not taken as document text.
    """
    return "" if _GENERATED_ALT.search(text) else " ".join(text.split())


def refuse_non_package(path: Path, fmt: str) -> None:
    """Raise unless ``path`` may be a zip package.

    An encrypted OOXML file is a compound file (CFB) holding ``EncryptionInfo``
    and ``EncryptedPackage``: that is :class:`PasswordRequired` (decrypting it is
    not supported yet). Any other compound file is a legacy binary document.
    """
    with path.open("rb") as handle:
        if handle.read(len(cfb.SIGNATURE)) != cfb.SIGNATURE:
            return
        names = cfb.root_entry_names(handle) or set()
    if names >= _ENCRYPTION_STREAMS:
        raise PasswordRequired(fmt)
    raise CorruptDocument(
        fmt, "an OLE compound file (a legacy binary document?), not a zip package"
    )


@contextmanager
def translate_errors(fmt: str, path: Path, *library_errors: type[Exception]) -> Iterator[None]:
    """Turn what a broken package makes the libraries raise into CorruptDocument.

    The file's local path is cut out of the libraries' messages: it means
    nothing to the client and tells it about the server.
    """
    try:
        yield
    except (*PACKAGE_ERRORS, *library_errors) as exc:
        reason = (str(exc) or type(exc).__name__).replace(str(path), path.name)
        if isinstance(exc, RecursionError):
            reason = "the document is nested too deeply"
        raise CorruptDocument(fmt, reason) from exc


def relationships(zf: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """The relationships of ``part``: id → (type, target part name or external URL).

    ``part`` is a part name without a leading slash; ``""`` is the package itself.
    """
    folder, base = posixpath.split(part)
    rels_name = posixpath.join(folder, "_rels", f"{base}.rels")
    if rels_name not in zf.NameToInfo:
        return {}
    found: dict[str, tuple[str, str]] = {}
    for rel in parse_xml(zf.read(rels_name)).iter(f"{{{_REL_NS}}}Relationship"):
        target = rel.get("Target", "")
        if rel.get("TargetMode") != "External":
            target = resolve_target(folder, target)
        found[rel.get("Id", "")] = (rel.get("Type", ""), target)
    return found


def resolve_target(folder: str, target: str) -> str:
    """The part name a relative (or package-absolute) relationship target points to."""
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(folder, target)).lstrip("/")


def read_metadata(zf: zipfile.ZipFile) -> Metadata:
    """Core properties (title, author, dates, ...) and the producing application."""
    metadata = Metadata()
    for rel_type, target in relationships(zf, "").values():
        if target not in zf.NameToInfo:
            continue
        if rel_type.endswith(_CORE_REL):
            _read_core(parse_xml(zf.read(target)), metadata)
        elif rel_type.endswith(_APP_REL):
            _read_app(parse_xml(zf.read(target)), metadata)
    return metadata


def _text(root: etree._Element, path: str) -> str | None:
    found = root.find(path, _NS)
    if found is None or not (found.text or "").strip():
        return None
    return (found.text or "").strip()


def _read_core(root: etree._Element, metadata: Metadata) -> None:
    metadata.title = _text(root, "dc:title")
    metadata.subject = _text(root, "dc:subject")
    metadata.language = _text(root, "dc:language")
    author = _text(root, "dc:creator")
    metadata.authors = [author] if author else []
    keywords = _text(root, "cp:keywords")
    metadata.keywords = [k.strip() for k in re.split(r"[,;]", keywords or "") if k.strip()]
    metadata.created = _date(_text(root, "dcterms:created"))
    metadata.modified = _date(_text(root, "dcterms:modified"))
    last_author = _text(root, "cp:lastModifiedBy")
    if last_author:
        metadata.extra["last_modified_by"] = last_author


def _read_app(root: etree._Element, metadata: Metadata) -> None:
    metadata.producer = _text(root, "ep:Application")
    # Word's page count as of the last save: the file itself has no fixed pages.
    pages = _text(root, "ep:Pages")
    if pages and pages.isdigit():
        metadata.page_count = int(pages)


def _date(value: str | None) -> datetime | None:
    """A W3CDTF date; a malformed one is dropped rather than failing the parse."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def content_types(zf: zipfile.ZipFile) -> tuple[dict[str, str], dict[str, str]]:
    """The package's declared media types: (by part name, by extension)."""
    if "[Content_Types].xml" not in zf.NameToInfo:
        return {}, {}
    root = parse_xml(zf.read("[Content_Types].xml"))
    overrides = {
        o.get("PartName", "").lstrip("/"): o.get("ContentType", "")
        for o in root.iter(f"{{{_CT_NS}}}Override")
    }
    defaults = {
        d.get("Extension", "").lower(): d.get("ContentType", "")
        for d in root.iter(f"{{{_CT_NS}}}Default")
    }
    return overrides, defaults


def append_embedded_parts(
    builder: DocumentBuilder,
    zf: zipfile.ZipFile,
    folder: str,
    shown: list[str],
    ctx: ParseContext,
) -> None:
    """Read the parts in ``shown`` through the dispatch, then list the rest of ``folder``.

    ``shown`` names, in reading order, the parts the document's text shows as
    objects (its ``oleObject`` and ``package`` relationships): each is read as
    an embedded document, an OLE object unwrapped first, under the count, byte
    and depth limits. The other parts under ``folder`` (a chart's workbook,
    say) are listed only, as :meth:`EmbeddedParts.list_rest` lists them. A part
    that cannot be unpacked is a warning; the document goes on.
    """
    objects = EmbeddedParts(builder, zf, folder, ctx)
    objects.append(shown)
    objects.list_rest()


def shown_objects(rels: dict[str, tuple[str, str]], shown_ids: Iterable[str]) -> list[str]:
    """The objects a part shows: those its markup names by ``shown_ids``, in order, then the rest.

    The rest are the part's other relationships to objects, by name: an object
    whose markup was not read (an unknown shape, say) is still the part's.
    """
    mine = {rid: target for rid, (kind, target) in rels.items() if kind.endswith(OBJECT_RELS)}
    in_order = [mine[rid] for rid in shown_ids if rid in mine]
    return list(dict.fromkeys([*in_order, *sorted(mine.values())]))


class EmbeddedParts:
    """A package's embedded objects, read where the document shows them, then the rest listed.

    A part shown more than once (on two slides, say) is read once, where it is
    first shown. Everything :func:`append_embedded_parts` says of limits and
    damage holds.
    """

    def __init__(
        self, builder: DocumentBuilder, zf: zipfile.ZipFile, folder: str, ctx: ParseContext
    ) -> None:
        self.builder = builder
        self.zf = zf
        self.folder = folder
        self.ctx = ctx
        self.shown: set[str] = set()

    def append(self, parts: Iterable[str], page: int | None = None) -> None:
        """Read each of ``parts`` not read before, its blocks and warnings on ``page``."""
        for part in parts:
            if part not in self.shown:
                self.shown.add(part)
                self._append(part, page)

    def list_rest(self) -> None:
        """List the parts under the folder that were not shown, reading none of them.

        Each has the media type the package declares for it, else a guess from
        its name; an OLE object stays as its ``.bin`` container. Listing counts
        against the count and byte limits as reading does: a part past them is
        left out, with the limit's warning.
        """
        overrides, defaults = content_types(self.zf)
        for info in _parts_under(self.zf, self.folder):
            if info.filename in self.shown or not within_budget(
                self.builder, info.file_size, self.ctx
            ):
                continue
            self.builder.attach(_part_attachment(self.zf, info, overrides, defaults))

    def _append(self, part: str, page: int | None) -> None:
        builder, ctx = self.builder, self.ctx
        info = self.zf.NameToInfo.get(part)
        if info is None or ctx.cancelled() or not within_budget(builder, info.file_size, ctx):
            return
        name = posixpath.basename(part)
        try:
            data = self.zf.read(info)
        except PACKAGE_ERRORS as exc:
            builder.warn("attachment-unreadable", f"{name} could not be unpacked: {exc}", page)
            return
        append_ole_object(builder, data, name, ctx, path=part, page=page)


def _parts_under(zf: zipfile.ZipFile, folder: str) -> list[zipfile.ZipInfo]:
    return [i for i in zf.infolist() if i.filename.startswith(folder) and not i.is_dir()]


def _part_attachment(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    overrides: dict[str, str],
    defaults: dict[str, str],
) -> Attachment:
    """A part listed with its declared (else guessed) type, its size and its digest."""
    name = posixpath.basename(info.filename)
    extension = posixpath.splitext(name)[1].lstrip(".").lower()
    mime = overrides.get(info.filename) or defaults.get(extension)
    mime = mime or mimetypes.guess_type(name)[0] or "application/octet-stream"
    digest = hashlib.sha256()
    size = 0
    with zf.open(info) as member:
        while chunk := member.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return Attachment(
        name=name, mime=mime, size=size, sha256=digest.hexdigest(), path=info.filename
    )
