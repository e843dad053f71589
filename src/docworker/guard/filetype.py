"""Type findings: the content against the claimed name and type, polyglots, programs.

The type is what :func:`~docworker.formats.detect.detect` makes of the content. It
is compared with the family the file's extension (or the claimed media type) stands
for: a ``.odt`` that is plain text, a ``.pdf`` that is a Windows program. A polyglot
is a file that is read as one type but is also valid as another, so that a second
reader (a browser, a Java runtime, an archive tool) sees something else: a PDF or an
image that is also a ZIP or JAR, a file whose first kilobyte a browser would render
as HTML, a JPEG whose header segments hold another format.
"""

from __future__ import annotations

import mimetypes
import re
import zipfile
from pathlib import Path, PurePosixPath

from docworker.config import FindingKind
from docworker.formats.detect import Detection, format_of
from docworker.guard.findings import Finding, FindingSet, quote

_TEXT = ("text", "markdown", "csv", "json", "xml", "subtitles", "eml", "html")
_ZIP_FAMILIES = frozenset({"zip", "docx", "xlsx", "pptx", "odt", "ods", "odp", "odg", "epub"})

#: (extensions, the detected families that honour them). Other extensions claim nothing.
_CLAIM_GROUPS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("pdf",), ("pdf",)),
    (("docx", "docm", "dotx", "dotm"), ("docx", "encrypted-ooxml")),
    (("xlsx", "xlsm", "xltx", "xltm", "xlsb", "xlam"), ("xlsx", "encrypted-ooxml")),
    (("pptx", "pptm", "potx", "potm", "ppsx", "ppsm"), ("pptx", "encrypted-ooxml")),
    (("doc", "dot"), ("doc",)),
    (("xls", "xlt"), ("xls",)),
    (("ppt", "pot", "pps"), ("ppt",)),
    (("odt", "ott"), ("odt",)),
    (("ods", "ots"), ("ods",)),
    (("odp", "otp"), ("odp",)),
    (("odg",), ("odg",)),
    (("rtf",), ("rtf",)),
    (("epub",), ("epub",)),
    (("msg",), ("msg",)),
    (("eml",), ("eml", "text")),
    (("html", "htm", "xhtml"), ("html", "xml")),
    (("xml",), ("xml", "subtitles", "html")),
    (("json",), ("json", "text")),
    (("csv", "tsv"), ("csv", "text")),
    (("md", "markdown"), ("markdown", "text")),
    (("txt", "text", "log"), _TEXT),
    (("srt", "vtt", "ttml"), ("subtitles", "text", "xml")),
    (("zip",), tuple(_ZIP_FAMILIES)),
    (("tar",), ("tar",)),
    (("gz", "tgz"), ("gzip",)),
    (("7z",), ("7z",)),
    (
        ("png", "jpg", "jpeg", "gif", "tif", "tiff", "webp", "bmp", "heic", "heif", "avif"),
        ("image",),
    ),
    (("svg",), ("image", "xml")),
    (("mp3", "wav", "flac", "ogg", "oga", "m4a", "aac", "opus"), ("audio", "video")),
    (("mp4", "m4v", "mov", "webm", "mkv", "avi", "mpeg", "mpg"), ("video", "audio")),
)
_CLAIMS = {ext: frozenset(families) for exts, families in _CLAIM_GROUPS for ext in exts}

#: Media types of programs, as libmagic names them.
_PROGRAMS = {
    "application/x-dosexec": "a Windows program (PE)",
    "application/vnd.microsoft.portable-executable": "a Windows program (PE)",
    "application/x-msdownload": "a Windows program (PE)",
    "application/x-executable": "an ELF program",
    "application/x-pie-executable": "an ELF program",
    "application/x-sharedlib": "an ELF shared library",
    "application/x-mach-binary": "a macOS program (Mach-O)",
    "application/x-msi": "a Windows installer",
    "application/java-archive": "a Java archive",
}
#: Names in an archive that run when opened on a desktop.
_RUNNABLE = re.compile(
    r"\.(exe|scr|com|pif|bat|cmd|ps1|vbs|vbe|js|jse|wsf|wsh|hta|lnk|msi|jar|dll|cpl|reg)$",
    re.IGNORECASE,
)

_EOCD = b"PK\x05\x06"
_ZIP_TAIL = 65536 + 22
_HTML_SNIFF = re.compile(rb"<(?:html|script|iframe|body|object|embed|svg)[\s>/]", re.IGNORECASE)
#: Families a browser sniffing the first bytes could take for HTML without it being meant.
_MARKUP = frozenset({*_TEXT, "rtf"})


def claimed_mime(name: str | None, mime: str | None) -> str | None:
    """The media type the client claimed: the one it gave, else the one its file name
    stands for."""
    if mime:
        return mime
    if name:
        guessed, _ = mimetypes.guess_type(name, strict=False)
        return guessed
    return None


def check_type(
    found: FindingSet, path: Path, detection: Detection, name: str | None, mime: str | None
) -> None:
    """Note a type mismatch, a polyglot or a program in the file at ``path``."""
    _mismatch(found, detection, name, mime)
    with path.open("rb") as fh:
        head = fh.read(65536)
        size = fh.seek(0, 2)
        fh.seek(max(size - _ZIP_TAIL, 0))
        tail = fh.read(_ZIP_TAIL)
    _also_zip(found, path, detection, tail)
    _also_pdf_or_html(found, detection, head)
    if head.startswith(b"\xff\xd8\xff"):
        _jpeg_segments(found, head)
    program = _PROGRAMS.get(detection.mime)
    if program:
        found.note(FindingKind.EXECUTABLE, f"the content is {program}")


def _mismatch(found: FindingSet, detection: Detection, name: str | None, mime: str | None) -> None:
    extension = PurePosixPath(name or "").suffix.lower().lstrip(".")
    families = _CLAIMS.get(extension)
    claim = f"named '.{extension}'"
    if families is None and mime and mime != "application/octet-stream":
        family = format_of(mime.split(";", 1)[0].strip().lower())
        if family != "binary":
            families = frozenset({family, *(_TEXT if family in _TEXT else ())})
            claim = f"declared as {mime}"
    if families is None or detection.format in families:
        return
    found.note(
        FindingKind.TYPE_MISMATCH,
        f"{claim} but the content is {detection.mime} ({detection.format})",
    )


def _ends_with_zip_directory(tail: bytes) -> bool:
    """Whether the file ends with a ZIP's end-of-directory record (and its comment), as
    an appended ZIP does; a ZIP stored inside another format (an OLE object) does not."""
    at = tail.rfind(_EOCD)
    while at >= 0:
        if at + 22 <= len(tail):
            comment = int.from_bytes(tail[at + 20 : at + 22], "little")
            if at + 22 + comment == len(tail):
                return True
        at = tail.rfind(_EOCD, 0, at)
    return False


def _also_zip(found: FindingSet, path: Path, detection: Detection, tail: bytes) -> None:
    """A ZIP (or JAR) whose directory ends the file of another type."""
    if detection.format in _ZIP_FAMILIES or not _ends_with_zip_directory(tail):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return
    if not names:
        return
    jar = any(n.upper() == "META-INF/MANIFEST.MF" or n.endswith(".class") for n in names)
    what = "a Java archive (JAR)" if jar else "a ZIP archive"
    found.note(
        FindingKind.POLYGLOT,
        f"read as {detection.format}, and also {what} of {len(names)} entries",
        "end of file",
    )
    if jar:
        found.note(FindingKind.EXECUTABLE, "a Java archive (JAR) is hidden in the file")
    check_runnable_names(found, names)


def check_runnable_names(found: FindingSet, names: list[str]) -> None:
    """Note the archive entries that a desktop runs when they are opened."""
    runnable = [n for n in names if _RUNNABLE.search(n)]
    if runnable:
        shown = ", ".join(quote(n) for n in runnable[:3]) + (", …" if len(runnable) > 3 else "")
        found.add(
            Finding(
                FindingKind.EXECUTABLE,
                f"{len(runnable)} archive entries that run when opened: {shown}",
                "archive entries",
                len(runnable),
            )
        )


def _also_pdf_or_html(found: FindingSet, detection: Detection, head: bytes) -> None:
    start = head[:1024]
    if detection.format != "pdf" and b"%PDF-" in start:
        found.note(
            FindingKind.POLYGLOT,
            f"read as {detection.format}, and also a PDF (its header is in the first 1024 bytes)",
            f"byte {start.find(b'%PDF-')}",
        )
    if detection.format not in _MARKUP:
        match = _HTML_SNIFF.search(head[:1024])
        if match:
            tag = match.group(0).decode("latin-1").strip("<>/ \t\r\n")
            found.note(
                FindingKind.POLYGLOT,
                f"read as {detection.format}, and a browser would render it as HTML "
                f"(a <{tag}> tag in the first 1024 bytes)",
                f"byte {match.start()}",
            )


_JPEG_HIDDEN = (
    (b"%PDF-", "a PDF"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"ID3", "MP3 audio"),
    (b"MZ", "a Windows program"),
    (b"<html", "HTML"),
    (b"<script", "HTML with a script"),
)


def _jpeg_segments(found: FindingSet, head: bytes) -> None:
    """Another format at the start of a JPEG header segment (APPn, COM), where readers of
    that format find it while JPEG readers skip it."""
    at = 2
    while at + 4 <= len(head) and head[at] == 0xFF:
        marker = head[at + 1]
        if marker == 0xDA:  # start of scan: the header segments are over
            return
        length = int.from_bytes(head[at + 2 : at + 4], "big")
        payload = head[at + 4 : at + 2 + length]
        what = _hidden_format(payload)
        if what and (0xE0 <= marker <= 0xEF or marker == 0xFE):
            found.note(
                FindingKind.POLYGLOT,
                f"a JPEG whose header segment holds {what}",
                f"segment 0x{marker:02X} at byte {at}",
            )
            return
        if length < 2:
            return
        at += 2 + length


def _hidden_format(payload: bytes) -> str | None:
    for signature, what in _JPEG_HIDDEN:
        if payload[: len(signature)].lower() == signature.lower():
            return what
    # An MPEG audio frame header: 11 sync bits, a valid version and layer.
    if len(payload) >= 4 and payload[0] == 0xFF and payload[1] & 0xE0 == 0xE0:
        version, layer = (payload[1] >> 3) & 3, (payload[1] >> 1) & 3
        bitrate = payload[2] >> 4
        if version != 1 and layer != 0 and bitrate not in {0, 15}:
            return "MPEG audio (an MP3 frame)"
    return None
