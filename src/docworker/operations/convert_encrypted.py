"""Whether an office file the ``convert`` operation is given is encrypted (OOXML in
its encrypted package, OpenDocument with encrypted parts, legacy binary files with
their encryption flag), so that its password can be asked for before LibreOffice
opens it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import msoffcrypto
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree

from docworker.formats.detect import Detection
from docworker.formats.ooxml.encrypted import ENCRYPTED_OOXML_MIME

_ODF_FORMATS = frozenset({"odt", "ods", "odp", "odg"})
_LEGACY_FORMATS = frozenset({"doc", "xls", "ppt"})


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
