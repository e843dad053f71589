"""Content-based type detection: what a file is, decided from its bytes, not its name.

Evidence is weighed in this order, each step reading only a bounded part of the file:

1. Container structure. A ZIP is opened through its central directory only and
   told apart as OOXML (by ``[Content_Types].xml`` and the main part's content
   type, so macro-enabled and template packages keep their own types), ODF or
   EPUB (by the ``mimetype`` entry) or a plain archive. An OLE2 compound file is
   classified by the names of its top-level streams (see :mod:`.cfb`).
2. libmagic on the first 64 KB, plus the PDF header anywhere in the first KB
   (readers accept junk before it).
3. For everything libmagic calls text, a sniff of the first 8 KB decoded with
   :func:`~docworker.formats.encoding.decode_text`: e-mail headers, subtitles,
   markup, JSON, delimited rows and Markdown. The filename's extension only breaks
   ties between text types that the content allows; content that proves a type
   (a doctype, an XML declaration, JSON that parses) wins over the name.

Empty and whitespace-only files are ``text/plain``: they are valid text files
whose extraction is empty text (with a warning), not unknown binaries.
Anything undecided is ``application/octet-stream``, as Tika answers.
"""

from __future__ import annotations

import os
import re
import threading
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from xml.etree.ElementTree import ParseError

import magic
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree

from docworker.formats import cfb
from docworker.formats.text_sniff import sniff_text

#: What libmagic is shown; enough for every signature it knows that sits near the start.
HEAD_BYTES = 64 * 1024
#: What the text sniff decodes.
TEXT_HEAD_BYTES = 8 * 1024
#: A member read to classify a ZIP (``mimetype``, ``[Content_Types].xml``) is cut here.
_ZIP_MEMBER_LIMIT = 512 * 1024

_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
_PDF_HEADER = re.compile(rb"(?:^|[\r\n])%PDF-\d\.\d")
_OCTET = "application/octet-stream"
_PDF = "application/pdf"


@dataclass(frozen=True)
class Detection:
    """A file's type: its media type, the short family name parsers are keyed by, and
    which evidence decided (``signature``, ``zip-structure``, ``cfb-structure``,
    ``magic``, ``text-sniff`` or ``extension``)."""

    mime: str
    format: str
    how: str


def detect(path: Path, name: str | None = None) -> Detection:
    """Detect the type of the file at ``path`` from its content.

    ``name`` is the client's filename when it differs from ``path``'s; its
    extension is only a tie-breaker between text types.
    """
    with path.open("rb") as fh:
        return detect_stream(fh, name if name is not None else path.name)


def detect_stream(fh: IO[bytes], name: str | None = None) -> Detection:
    """Detect the type of the seekable binary stream ``fh`` (a local file, or a blob
    read by ranges) from its content; ``name``'s extension breaks ties between text
    types. Reads a bounded part of it, as :func:`detect` does."""
    extension = Path(name or "").suffix.lower().lstrip(".")
    head = fh.read(HEAD_BYTES)
    if not head:
        return Detection("text/plain", "text", "text-sniff")
    structural = _structure(fh, head)
    if structural is not None:
        return structural
    mime = _MAGIC.mime(head)
    if mime == _PDF or _is_textlike(mime):
        if _has_late_pdf_header(head[:1024]):
            return Detection(_PDF, "pdf", "signature")
        if mime == _PDF:  # libmagic takes "%PDF-" anywhere near the start, even mid-sentence
            mime = _OCTET
    mime = _MAGIC_ALIASES.get(mime, mime)
    if mime in _SPECIFIC_TEXT:
        return Detection(mime, format_of(mime), "magic")
    if _is_textlike(mime):
        text = sniff_text(
            head[:TEXT_HEAD_BYTES],
            extension,
            whole=len(head) <= TEXT_HEAD_BYTES,
            need_proof=mime == _OCTET,
        )
        if text is not None:
            return Detection(text.mime, format_of(text.mime), text.how)
    return Detection(mime, format_of(mime), "magic")


def format_of(mime: str) -> str:
    """The short family name for a media type; ``binary`` for types no family claims."""
    exact = _FORMATS.get(mime)
    if exact is not None:
        return exact
    major = mime.split("/", 1)[0]
    if major in {"image", "audio", "video"}:
        return major
    return _ooxml_family(mime) or _odf_family(mime) or "binary"


def _has_late_pdf_header(start: bytes) -> bool:
    """A PDF header after a prefix, which readers accept within the first KB.

    After a text prefix it must begin a line, so that prose quoting ``%PDF-1.7``
    stays text; after binary junk it may sit anywhere.
    """
    at = start.find(b"%PDF-")
    if at < 0:
        return False
    prefix = start[:at]
    return _PDF_HEADER.search(start) is not None or any(b < 9 or 13 < b < 32 for b in prefix)


# -- containers -------------------------------------------------------------------------


def _structure(fh: IO[bytes], head: bytes) -> Detection | None:
    if head.startswith(_ZIP_SIGNATURES):
        return _zip_structure(fh)
    if head.startswith(cfb.SIGNATURE):
        return _cfb_structure(fh)
    if head.startswith(b"%PDF-"):
        return Detection(_PDF, "pdf", "signature")
    return None


def _zip_structure(fh: IO[bytes]) -> Detection | None:
    """OOXML, ODF, EPUB or a plain ZIP; None when the ZIP cannot be read (magic decides)."""
    try:
        with zipfile.ZipFile(fh) as zf:
            names = {info.filename for info in zf.infolist()}
            mime: str | None = None
            if "[Content_Types].xml" in names:
                mime = _ooxml_mime(zf, names)
            if mime is None and "mimetype" in names:
                mime = _declared_zip_mime(zf)
    # NotImplementedError: a zip format version that zipfile does not read.
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        EOFError,
        ValueError,
        NotImplementedError,
    ):
        return None
    mime = mime or "application/zip"
    return Detection(mime, format_of(mime), "zip-structure")


def _read_member(zf: zipfile.ZipFile, name: str) -> bytes | None:
    """At most ``_ZIP_MEMBER_LIMIT`` bytes of a member; None when it cannot be read."""
    try:
        with zf.open(name) as member:
            return member.read(_ZIP_MEMBER_LIMIT)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, zlib.error):
        # RuntimeError: the member is encrypted; NotImplementedError: unknown compression.
        return None


def _declared_zip_mime(zf: zipfile.ZipFile) -> str | None:
    """The type an ODF or EPUB package states in its ``mimetype`` member, if it is one."""
    data = _read_member(zf, "mimetype")
    if data is None:
        return None
    declared = data[:200].decode("ascii", errors="replace").strip()
    if declared == "application/epub+zip" or _odf_family(declared):
        return declared
    return None


_OOXML_MAIN_PARTS = {
    "word/document.xml": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/workbook.xml": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xl/workbook.bin": "application/vnd.ms-excel.sheet.binary.macroEnabled.12",
    "ppt/presentation.xml": (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    ),
}


def _ooxml_mime(zf: zipfile.ZipFile, names: set[str]) -> str | None:
    """The package type from its main part's content type, else from the main part's name."""
    lower_names = {n.lower() for n in names}
    for part, content_type in _content_type_overrides(zf).items():
        if part.lstrip("/").lower() not in lower_names:
            continue
        mime = _package_mime(content_type)
        if mime is not None and _ooxml_family(mime):
            return mime
    for part, mime in _OOXML_MAIN_PARTS.items():
        if part in lower_names:
            return mime
    return None


def _content_type_overrides(zf: zipfile.ZipFile) -> dict[str, str]:
    data = _read_member(zf, "[Content_Types].xml")
    if data is None:
        return {}
    try:
        root = SafeElementTree.fromstring(data)
    except (ParseError, DefusedXmlException, LookupError, ValueError):
        # LookupError: an XML declaration naming an encoding Python does not know.
        return {}
    overrides: dict[str, str] = {}
    for element in root:
        if str(element.tag).endswith("Override"):
            part, content_type = element.get("PartName"), element.get("ContentType")
            if part and content_type:
                overrides[str(part)] = str(content_type)
    return overrides


def _package_mime(main_content_type: str) -> str | None:
    """``...wordprocessingml.document.main+xml`` → the package's own type.

    OOXML names a package after its main part's type; the macro-enabled types
    (``application/vnd.ms-*``) carry a ``.12`` suffix instead of ``.main+xml``.
    """
    for suffix in (".main+xml", ".main"):
        if main_content_type.endswith(suffix):
            base = main_content_type.removesuffix(suffix)
            if base.startswith("application/vnd.ms-"):
                return base.replace("macroEnabledTemplate", "macroEnabled") + ".12"
            return base
    return None


def _ooxml_family(mime: str) -> str | None:
    for marker, family in (
        ("wordprocessingml", "docx"),
        ("ms-word.", "docx"),
        ("spreadsheetml", "xlsx"),
        ("ms-excel.", "xlsx"),
        ("presentationml", "pptx"),
        ("ms-powerpoint.", "pptx"),
    ):
        if marker in mime:
            return family
    return None


def _odf_family(mime: str) -> str | None:
    prefix = "application/vnd.oasis.opendocument."
    if not mime.startswith(prefix):
        return None
    kind = mime.removeprefix(prefix).split("-", 1)[0]
    return {"text": "odt", "spreadsheet": "ods", "presentation": "odp", "graphics": "odg"}.get(kind)


def _cfb_structure(fh: IO[bytes]) -> Detection | None:
    """An OLE2 file by its top-level stream names; None when unreadable (magic decides)."""
    names = cfb.root_entry_names(fh)
    if names is None:
        return None
    if {"EncryptionInfo", "EncryptedPackage"} <= names:
        mime = "application/x-encrypted-ooxml"
    elif any(n.startswith("__substg1.0_") for n in names):
        mime = "application/vnd.ms-outlook"
    elif "WordDocument" in names:
        mime = "application/msword"
    elif names & {"Workbook", "Book"}:
        mime = "application/vnd.ms-excel"
    elif "PowerPoint Document" in names:
        mime = "application/vnd.ms-powerpoint"
    else:
        return None
    return Detection(mime, format_of(mime), "cfb-structure")


# -- libmagic ---------------------------------------------------------------------------


class _Magic:
    """One libmagic handle per process, made on first use.

    A libmagic handle is not thread-safe, so every call holds the lock; a forked
    child drops the parent's handle and lock, which another thread may have held.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handle: magic.Magic | None = None

    def reset(self) -> None:
        self._lock = threading.Lock()
        self._handle = None

    def mime(self, data: bytes) -> str:
        with self._lock:
            if self._handle is None:
                self._handle = magic.Magic(mime=True)
            try:
                return str(self._handle.from_buffer(data))
            except magic.MagicException:
                return _OCTET


_MAGIC = _Magic()
os.register_at_fork(after_in_child=_MAGIC.reset)

#: libmagic's names for types that have a more usual one.
_MAGIC_ALIASES = {
    "text/rtf": "application/rtf",
    "text/xml": "application/xml",
    "application/x-gzip": "application/gzip",
    "application/x-zip-compressed": "application/zip",
    "application/x-empty": "text/plain",
    "inode/x-empty": "text/plain",
}

#: Text types libmagic recognises reliably; the text sniff would only lose them.
_SPECIFIC_TEXT = frozenset(
    {"application/rtf", "message/rfc822", "text/vtt", "application/x-subrip"}
)

_TEXTLIKE = frozenset({"application/json", "application/xml", "application/x-ndjson", _OCTET})


def _is_textlike(mime: str) -> bool:
    """Types the text sniff should look at: text, and what libmagic cannot name."""
    return mime.startswith("text/") or mime in _TEXTLIKE


_FORMATS = {
    "application/pdf": "pdf",
    "application/msword": "doc",
    "application/vnd.ms-excel": "xls",
    "application/vnd.ms-powerpoint": "ppt",
    "application/vnd.ms-outlook": "msg",
    "message/rfc822": "eml",
    "application/rtf": "rtf",
    "application/epub+zip": "epub",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/xml": "xml",
    "application/json": "json",
    "application/x-ndjson": "json",
    "text/csv": "csv",
    "text/tab-separated-values": "csv",
    "text/markdown": "markdown",
    "text/plain": "text",
    "text/vtt": "subtitles",
    "application/x-subrip": "subtitles",
    "application/ttml+xml": "subtitles",
    "application/zip": "zip",
    "application/x-tar": "tar",
    "application/gzip": "gzip",
    "application/x-bzip2": "bzip2",
    "application/x-xz": "xz",
    "application/x-7z-compressed": "7z",
    "application/x-encrypted-ooxml": "encrypted-ooxml",
    "application/ogg": "audio",
}
