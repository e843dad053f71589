"""What the ``convert`` operation reads: an HTML site in a zip, unpacked safely, and
whether an office file is encrypted.

A site is a zip holding ``index.html`` with the images, style sheets and fonts it
refers to by relative URLs. It is unpacked into the job's own folder under
limits (entries, total bytes, the unpacked-to-packed ratio of each entry), with
every name checked (no absolute path, no ``..``, no symbolic link, no device) and
every byte counted as it is written — the sizes a zip declares are not trusted.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

import msoffcrypto
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree

from docworker.config import ConvertSettings
from docworker.errors import CorruptDocument, HostileInput, InvalidParameter, LimitExceeded
from docworker.formats.detect import Detection
from docworker.formats.ooxml.encrypted import ENCRYPTED_OOXML_MIME

#: Entries smaller than this are not held to the ratio limit (a small file of one
#: repeated byte compresses far, harmlessly).
_RATIO_FLOOR = 1024 * 1024
_CHUNK = 64 * 1024
_ODF_FORMATS = frozenset({"odt", "ods", "odp", "odg"})
_LEGACY_FORMATS = frozenset({"doc", "xls", "ppt"})


def unpack_site(archive: Path, folder: Path, limits: ConvertSettings) -> Path:
    """Unpack the zip ``archive`` into ``folder`` and return its ``index.html`` (at the
    top, or in the one folder everything is in; else the only HTML file at the top)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            entries = zf.infolist()
            if len(entries) > limits.max_zip_entries:
                raise LimitExceeded("zip entries", len(entries), limits.max_zip_entries)
            declared = sum(entry.file_size for entry in entries)
            if declared > limits.max_zip_bytes:
                raise LimitExceeded("unpacked zip bytes", declared, limits.max_zip_bytes)
            written = 0
            for entry in entries:
                written += _unpack_entry(zf, entry, folder, limits, limits.max_zip_bytes - written)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise CorruptDocument("zip", str(exc)) from None
    except RuntimeError as exc:  # an encrypted entry
        raise CorruptDocument("zip", f"an entry cannot be read ({exc})") from None
    return _index(folder)


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if not path.parts or path.is_absolute() or ".." in path.parts or ":" in path.parts[0]:
        raise HostileInput(f"the zip entry '{name[:200]}' points outside the folder")
    return path


def _unpack_entry(
    zf: zipfile.ZipFile,
    entry: zipfile.ZipInfo,
    folder: Path,
    limits: ConvertSettings,
    budget: int,
) -> int:
    """Write one entry below ``folder``; the bytes written."""
    name = _safe_name(entry.filename)
    kind = stat.S_IFMT(entry.external_attr >> 16)
    if kind and kind not in {stat.S_IFREG, stat.S_IFDIR}:
        raise HostileInput(f"the zip entry '{entry.filename[:200]}' is not a plain file")
    target = folder.joinpath(*name.parts)
    if entry.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return 0
    if entry.file_size > _RATIO_FLOOR and entry.file_size > limits.max_zip_ratio * max(
        entry.compress_size, 1
    ):
        ratio = entry.file_size / max(entry.compress_size, 1)
        raise LimitExceeded("zip entry compression ratio", round(ratio), limits.max_zip_ratio)
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(entry) as source, target.open("xb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > budget or written > entry.file_size:
                raise LimitExceeded("unpacked zip bytes", written, min(budget, entry.file_size))
            out.write(chunk)
    return written


def _index(folder: Path) -> Path:
    top = folder
    children = [child for child in folder.iterdir() if not child.name.startswith("__MACOSX")]
    if len(children) == 1 and children[0].is_dir():
        top = children[0]
    for name in ("index.html", "index.htm"):
        if (top / name).is_file():
            return top / name
    pages = [p for p in top.iterdir() if p.suffix.lower() in {".html", ".htm"} and p.is_file()]
    if len(pages) == 1:
        return pages[0]
    raise InvalidParameter("file", "the zip holds no index.html at its top to convert")


def copy_page(page: Path, folder: Path) -> Path:
    """A single uploaded page, copied into ``folder`` (the only files its URLs may reach)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "index.html"
    shutil.copyfile(page, target)
    return target


def is_encrypted(path: Path, detection: Detection) -> bool:
    """Whether the office file at ``path`` needs a password to be opened."""
    if detection.mime == ENCRYPTED_OOXML_MIME:
        return True
    if detection.format in _ODF_FORMATS:
        return _odf_encrypted(path)
    if detection.format in _LEGACY_FORMATS:
        try:
            with path.open("rb") as fh:
                return bool(msoffcrypto.OfficeFile(fh).is_encrypted())
        except Exception:  # noqa: BLE001 - an unreadable header: LibreOffice will say so
            return False
    return False


def _odf_encrypted(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = zf.read("META-INF/manifest.xml")
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError):
        return False
    try:
        root = SafeElementTree.fromstring(manifest)
    except (SafeElementTree.ParseError, DefusedXmlException):
        return False
    return any(element.tag.endswith("encryption-data") for element in root.iter())
