"""OOXML packages (DOCX, XLSX, PPTX and their macro-enabled kin): what reaches outside.

- Relationships with ``TargetMode="External"``: a remote template
  (``attachedTemplate``, the template-injection trick), linked OLE objects, linked
  pictures, frames, sub-documents, external workbooks. Hyperlinks are left out:
  they are followed only when clicked.
- Word fields in the document, headers, footers, notes and comments: DDE and the
  INCLUDE/LINK fields (:mod:`.fields`), assembled across runs the way Word does.
- Excel: macro sheets (XLM) and DDE links (``ddeLink`` in an external link part).
- A DOCTYPE in any XML part (OOXML never has one: :mod:`.xxe`).

VBA projects (``vbaProject.bin``) are olevba's, called by :mod:`.scan` for packages
whose OLE parts name a VBA project (:func:`may_hold_vba`).
"""

from __future__ import annotations

import html
import re
import zipfile
from pathlib import PurePosixPath

from lxml import etree

from docworker.config import FindingKind
from docworker.guard.fields import MAX_INSTRUCTION, check_field
from docworker.guard.findings import FindingSet, quote
from docworker.guard.streams import Package, contains_any, iter_matches
from docworker.guard.xxe import check_prolog

#: What is read of a relationships part; real ones are a few kilobytes.
RELS_BYTES = 1024 * 1024
#: What is read of each XML part to find a DOCTYPE in its prolog.
PROLOG_BYTES = 16 * 1024

#: Relationship type (its last path segment) → what an external target of that type is.
_EXTERNAL_TYPES = {
    "oleObject": "a linked OLE object",
    "image": "a linked picture",
    "frame": "a frame",
    "subDocument": "a sub-document",
    "externalLinkPath": "an external workbook",
    "xlExternalLinkPath": "an external workbook",
    "package": "a linked package",
    "video": "a linked video",
    "audio": "a linked sound",
    "media": "a linked media file",
    "customXml": "linked custom XML",
}
_NOT_FETCHED = {"hyperlink"}
_TEMPLATE = "attachedTemplate"

_WORD_STORY = re.compile(
    r"^word/(document|header\d*|footer\d*|footnotes|endnotes|comments|glossary/document)\.xml$"
)
_FIELD_TOKENS = re.compile(
    (
        r'<(?:\w+:)?fldChar\b[^>]{0,1000}?fldCharType="(begin|separate|end)"'
        rf"|<(?:\w+:)?instrText\b[^>]{{0,1000}}>([^<]{{0,{MAX_INSTRUCTION}}})<"
        rf'|<(?:\w+:)?fldSimple\b[^>]{{0,1000}}?instr="([^"]{{0,{MAX_INSTRUCTION}}})"'
    ).encode()
)
_DDE_LINK = re.compile(rb"<(?:\w+:)?ddeLink\b[^>]{0,2000}", re.IGNORECASE)
_ATTRIBUTE = re.compile(rb"(\w+)=\"([^\"]{0,500})\"")
_MACROSHEET_TYPES = ("ms-excel.macrosheet", "ms-excel.intlmacrosheet")
_XML_PART = re.compile(r"\.(xml|rels|vml)$", re.IGNORECASE)


#: What the directory of an OLE compound file holding macros names, as it writes names
#: (UTF-16LE, ended by a null): a ``VBA`` storage (a VBA project's, wherever it is in
#: the file), or PowerPoint 97's document stream (whose VBA is stored compressed).
_VBA_ENTRIES = ("VBA\0".encode("utf-16-le"), "PowerPoint Document".encode("utf-16-le"))


def may_hold_vba(package: Package) -> bool:
    """Whether a binary part of the package (where VBA projects and OLE objects live)
    may hold a VBA project: its bytes name one (:data:`_VBA_ENTRIES`). Only then does
    olevba look, which parses every OLE object whole (an embedded 1.4 MB object costs
    it 10 ms); a name in a stream's content, not the directory, only costs that look."""
    return any(
        info.filename.lower().endswith(".bin") and contains_any(package.chunks(info), _VBA_ENTRIES)
        for info in package.parts
    )


def check_ooxml(found: FindingSet, package: Package) -> None:
    """Note what an OOXML package reaches outside itself with, and its macro sheets."""
    for info in package.parts:
        name = info.filename
        if name.lower().endswith(".rels"):
            _relationships(found, package, info)
        if _XML_PART.search(name):
            head = package.head(info, PROLOG_BYTES)
            if head:
                check_prolog(found, head, name)
        if _WORD_STORY.match(name):
            _word_fields(found, package, info)
        elif name.startswith("xl/externalLinks/") and name.endswith(".xml"):
            _dde_links(found, package, info)
        elif name.startswith(("xl/macrosheets/", "xl/intlMacrosheets/")):
            found.note(FindingKind.OFFICE_XLM_MACROS, "an Excel 4.0 (XLM) macro sheet", name)
    _declared_macrosheets(found, package)


def _relationships(found: FindingSet, package: Package, info: zipfile.ZipInfo) -> None:
    data = package.head(info, RELS_BYTES)
    if not data:
        return
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return
    for element in root:
        if not isinstance(element.tag, str) or not element.tag.endswith("Relationship"):
            continue
        if (element.get("TargetMode") or "").lower() != "external":
            continue
        kind = (element.get("Type") or "").rsplit("/", 1)[-1]
        target = element.get("Target") or ""
        if kind == _TEMPLATE:
            found.note(
                FindingKind.REMOTE_TEMPLATE,
                f"the document's template is outside it, at {quote(target)}",
                info.filename,
            )
        elif kind not in _NOT_FETCHED:
            what = _EXTERNAL_TYPES.get(kind, f"an external '{kind}' relationship")
            found.note(FindingKind.EXTERNAL_REFERENCE, f"{what}: {quote(target)}", info.filename)


def _word_fields(found: FindingSet, package: Package, info: zipfile.ZipInfo) -> None:
    """Field instructions as Word reads them: the ``instrText`` runs between a field's
    begin and separator, joined, fields nested in fields included."""
    open_fields: list[list[str]] = []
    location = info.filename
    for match in iter_matches(package.chunks(info), _FIELD_TOKENS, keep=2 * MAX_INSTRUCTION):
        char_type, text, simple = match.groups()
        if simple is not None:
            check_field(found, html.unescape(simple.decode("utf-8", "replace")), location)
        elif text is not None:
            if open_fields and sum(len(t) for t in open_fields[-1]) < MAX_INSTRUCTION:
                open_fields[-1].append(html.unescape(text.decode("utf-8", "replace")))
        elif char_type == b"begin":
            open_fields.append([])
        elif open_fields:
            instruction = "".join(open_fields[-1])
            if char_type == b"separate":
                open_fields[-1] = []  # the instruction is over; the result is not read
            else:
                open_fields.pop()
            if instruction:
                check_field(found, instruction, location)


def _dde_links(found: FindingSet, package: Package, info: zipfile.ZipInfo) -> None:
    data = package.head(info, RELS_BYTES)
    if not data:
        return
    for match in _DDE_LINK.finditer(data):
        attributes = {
            k.decode(): v.decode("utf-8", "replace") for k, v in _ATTRIBUTE.findall(match.group(0))
        }
        service, topic = attributes.get("ddeService", "?"), attributes.get("ddeTopic", "?")
        found.note(
            FindingKind.OFFICE_DDE,
            f"a DDE link to {quote(html.unescape(service))} | {quote(html.unescape(topic))}",
            info.filename,
        )


def _declared_macrosheets(found: FindingSet, package: Package) -> None:
    """Macro sheets declared in ``[Content_Types].xml`` under any part name."""
    info = next((i for i in package.parts if i.filename == "[Content_Types].xml"), None)
    if info is None or FindingKind.OFFICE_XLM_MACROS in found:
        return
    data = package.head(info, RELS_BYTES) or b""
    for match in re.finditer(rb"PartName=\"([^\"]+)\"[^>]*?ContentType=\"([^\"]+)\"", data):
        if any(t in match.group(2).decode("ascii", "replace") for t in _MACROSHEET_TYPES):
            part = str(PurePosixPath(match.group(1).decode("utf-8", "replace")))
            found.note(FindingKind.OFFICE_XLM_MACROS, "an Excel 4.0 (XLM) macro sheet", part)
