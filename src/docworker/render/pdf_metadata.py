"""A PDF's metadata read and written, the Info dictionary and XMP kept in step.

Metadata is written to the document information dictionary and copied into the XMP
packet through pikepdf's mapping (title → dc:title, author → dc:creator, …), so
readers of either see the same values; custom keys go to the Info dictionary and to
XMP under Adobe's ``pdfx`` namespace, as Acrobat stores custom properties.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pikepdf
from pikepdf.models.metadata import decode_pdf_date, encode_pdf_date

from docworker.errors import InvalidParameter

#: Metadata names → the Info dictionary keys they are written to.
STANDARD_KEYS: dict[str, str] = {
    "title": "/Title",
    "author": "/Author",
    "subject": "/Subject",
    "keywords": "/Keywords",
    "creator": "/Creator",
    "producer": "/Producer",
    "creation_date": "/CreationDate",
    "modification_date": "/ModDate",
}
_DATE_KEYS = {"/CreationDate", "/ModDate"}
_CUSTOM_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def read_metadata(pdf: pikepdf.Pdf) -> dict[str, Any]:
    """The document's metadata as JSON: ``metadata`` (the standard fields by name, dates in
    ISO 8601), ``custom`` (other Info keys), ``xmp`` (every XMP property) and ``pdfa``
    (the PDF/A part and conformance the document declares, if any)."""
    info = {str(key)[1:]: _info_value(str(key), value) for key, value in pdf.docinfo.items()}
    standard = {name: info.get(key[1:]) for name, key in STANDARD_KEYS.items() if key[1:] in info}
    custom = {key: value for key, value in info.items() if f"/{key}" not in _STANDARD_INFO}
    meta = pdf.open_metadata()
    xmp = {_short_name(str(key)): _xmp_value(value) for key, value in meta.items()}
    part = xmp.get("pdfaid:part")
    conformance = xmp.get("pdfaid:conformance")
    return {
        "metadata": standard,
        "custom": custom,
        "xmp": xmp,
        "pdfa": f"{part}{str(conformance or '').lower()}" if part else None,
    }


_STANDARD_INFO = set(STANDARD_KEYS.values())
#: XMP namespaces shown by their usual prefix ('dc:title'); others keep '{uri}name'.
_PREFIXES = {
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://ns.adobe.com/pdf/1.3/": "pdf",
    "http://ns.adobe.com/xap/1.0/": "xmp",
    "http://ns.adobe.com/xap/1.0/mm/": "xmpMM",
    "http://ns.adobe.com/pdfx/1.3/": "pdfx",
    "http://www.aiim.org/pdfa/ns/id/": "pdfaid",
    "http://www.aiim.org/pdfua/ns/id/": "pdfuaid",
}


def _short_name(qualified: str) -> str:
    uri, _, name = qualified[1:].partition("}")
    prefix = _PREFIXES.get(uri)
    return f"{prefix}:{name}" if prefix and qualified.startswith("{") else qualified


def _info_value(key: str, value: Any) -> Any:
    text = str(value)
    if key in _DATE_KEYS:
        try:
            return decode_pdf_date(text).isoformat()
        except ValueError:
            return text
    return text


def _xmp_value(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(str(v) for v in value)
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value)


def check_metadata(values: dict[str, str | None]) -> None:
    """Refuse names that are neither standard nor usable as custom keys, and dates
    that are not ISO 8601 (:class:`InvalidParameter` names the key)."""
    for name, value in values.items():
        if name in STANDARD_KEYS:
            if STANDARD_KEYS[name] in _DATE_KEYS and value is not None:
                _parse_date(name, value)
        elif not _CUSTOM_KEY.match(name):
            raise InvalidParameter(
                f"set_metadata.{name}",
                "a custom key is a letter then up to 63 letters, digits, '_', '.' or '-'",
            )


def _parse_date(name: str, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameter(
            f"set_metadata.{name}", f"'{value}' is not an ISO 8601 date and time"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def write_metadata(pdf: pikepdf.Pdf, values: dict[str, str | None]) -> None:
    """Set (or, with None, remove) metadata: the standard names of :data:`STANDARD_KEYS`
    and custom keys, in the Info dictionary and the XMP packet alike."""
    check_metadata(values)
    docinfo = pdf.docinfo
    for name, value in values.items():
        key = STANDARD_KEYS.get(name, f"/{name}")
        if value is None:
            if key in docinfo:
                del docinfo[key]
        elif key in _DATE_KEYS:
            docinfo[key] = pikepdf.String(encode_pdf_date(_parse_date(name, value)))
        else:
            docinfo[key] = pikepdf.String(value)
    sync_xmp(pdf, {name: value for name, value in values.items() if name not in STANDARD_KEYS})


def sync_xmp(pdf: pikepdf.Pdf, custom: dict[str, str | None]) -> None:
    """Bring the XMP packet in line with the Info dictionary's standard keys, and set or
    remove ``custom`` keys under ``pdfx:``."""
    standard = {key: str(value) for key, value in pdf.docinfo.items() if str(key) in _STANDARD_INFO}
    with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
        meta.load_from_docinfo(standard, delete_missing=True, raise_failure=False)
        for name, value in custom.items():
            key = f"pdfx:{name}"
            if value is None:
                if key in meta:
                    del meta[key]
            else:
                meta[key] = value
