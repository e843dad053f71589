"""What a PDF says about itself: its information dictionary, dates, permissions and form fields.

Everything here is read through pdfium without reading the pages' text.
Form fields are read from the widget annotations of the pages asked for,
through pdfium's form API (:class:`FormFields`).
"""

from __future__ import annotations

import ctypes
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pypdfium2.raw as pdfium_c

from docworker.document import Metadata
from docworker.formats.pdf.text import printable

_PERMISSIONS = {
    "print": 1 << 2,
    "modify": 1 << 3,
    "copy": 1 << 4,
    "annotate": 1 << 5,
    "fill_forms": 1 << 8,
    "extract_for_accessibility": 1 << 9,
    "assemble": 1 << 10,
    "print_high_quality": 1 << 11,
}
_FORM_TYPES = {
    pdfium_c.FORMTYPE_ACRO_FORM: "acroform",
    pdfium_c.FORMTYPE_XFA_FULL: "xfa",
    pdfium_c.FORMTYPE_XFA_FOREGROUND: "xfa-foreground",
}
_FIELD_TYPES = {
    pdfium_c.FPDF_FORMFIELD_PUSHBUTTON: "button",
    pdfium_c.FPDF_FORMFIELD_CHECKBOX: "checkbox",
    pdfium_c.FPDF_FORMFIELD_RADIOBUTTON: "radio",
    pdfium_c.FPDF_FORMFIELD_COMBOBOX: "combobox",
    pdfium_c.FPDF_FORMFIELD_LISTBOX: "listbox",
    pdfium_c.FPDF_FORMFIELD_TEXTFIELD: "text",
    pdfium_c.FPDF_FORMFIELD_SIGNATURE: "signature",
}
#: The entries of the information dictionary read, as pypdfium2's ``get_metadata_dict`` reads them.
_INFO_KEYS = (
    "Title",
    "Author",
    "Subject",
    "Keywords",
    "Creator",
    "Producer",
    "CreationDate",
    "ModDate",
)
#: A form with more fields than this is listed up to it: the list is metadata, not content.
_MAX_FIELDS = 1000
_PDF_DATE = re.compile(
    r"\s*(?:D\s*:)?\s*(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?"
    r"\s*(?:([Zz+-])\s*(\d{1,2})?\s*'?\s*(\d{2})?)?"
)


def read_metadata(pdf: Any) -> Metadata:
    """The document information dictionary, the page count and a few cheap facts."""
    buffer = _InfoBuffer()
    info = {key: _clean(value) for key in _INFO_KEYS if (value := buffer.read(pdf, key))}
    encrypted = pdfium_c.FPDF_GetSecurityHandlerRevision(pdf.raw) != -1
    extra: dict[str, Any] = {}
    version = pdf.get_version()
    if version:
        extra["pdf_version"] = f"{version // 10}.{version % 10}"
    if pdf.is_tagged():
        extra["tagged"] = True
    form = _FORM_TYPES.get(pdf.get_formtype())
    if form:
        extra["form"] = form
    if encrypted:
        granted = pdfium_c.FPDF_GetDocPermissions(pdf.raw)
        extra["permissions"] = {name: bool(granted & bit) for name, bit in _PERMISSIONS.items()}
    return Metadata(
        title=info.get("Title") or None,
        authors=_authors(info.get("Author")),
        subject=info.get("Subject") or None,
        keywords=_split(info.get("Keywords"), ",;"),
        creator=info.get("Creator") or None,
        producer=info.get("Producer") or None,
        created=parse_pdf_date(info.get("CreationDate")),
        modified=parse_pdf_date(info.get("ModDate")),
        encrypted=encrypted,
        page_count=len(pdf),
        extra=extra,
    )


class _InfoBuffer:
    """Reads entries of the information dictionary, each in one call into pdfium.

    pypdfium2's ``get_metadata_value`` asks each entry's size, then reads it into a
    buffer made for it: two calls and a ctypes array type per entry. Most entries
    fit this buffer, made once per document; a longer one is read again at its size.
    """

    #: Bytes: 511 UTF-16 units and the terminating NUL.
    SIZE = 1024

    def __init__(self) -> None:
        self.buffer = bytearray(self.SIZE)
        self.start = ctypes.byref(ctypes.c_char.from_buffer(self.buffer))

    def read(self, pdf: Any, key: str) -> str:
        """One entry, "" if there is none."""
        name = _INFO_NAMES[key]
        size = pdfium_c.FPDF_GetMetaText(pdf.raw, name, self.start, self.SIZE)
        buffer = self.buffer
        if size > self.SIZE:
            buffer = bytearray(size)
            start = ctypes.byref(ctypes.c_char.from_buffer(buffer))
            pdfium_c.FPDF_GetMetaText(pdf.raw, name, start, size)
        # Strict, as pypdfium2 decodes it; the terminating NUL left out.
        return buffer[: max(size - 2, 0)].decode("utf-16-le")


_INFO_NAMES = {key: f"{key}\x00".encode() for key in _INFO_KEYS}


def _clean(value: str) -> str:
    return " ".join(printable(value).split())


def _split(value: str | None, separators: str) -> list[str]:
    if not value:
        return []
    return [part.strip() for part in re.split(f"[{separators}]", value) if part.strip()]


def _authors(value: str | None) -> list[str]:
    """Names from an Author entry: split on semicolons, or on commas and "and" when
    every part is a full name (so "Smith, John" stays one author)."""
    names = _split(value, ";")
    if len(names) == 1:
        parts = [p.strip() for p in re.split(r",\s*(?:and\s+)?|\s+and\s+", names[0]) if p.strip()]
        if len(parts) > 1 and all(len(part.split()) > 1 for part in parts):
            return parts
    return names


def parse_pdf_date(value: str | None) -> datetime | None:
    """A PDF date (``D:YYYYMMDDHHmmSS+HH'mm'``, any tail missing) or None if it is garbage.

    Dates without a zone are returned naive, since the PDF does not say where they are.
    """
    match = _PDF_DATE.match(value or "")
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups()[:6])
    sign, zone_hours, zone_minutes = match.group(7, 8, 9)
    try:
        zone: timezone | None = None
        if sign in ("Z", "z"):
            zone = UTC
        elif sign:
            offset = timedelta(hours=int(zone_hours or 0), minutes=int(zone_minutes or 0))
            zone = timezone(-offset if sign == "-" else offset)
        return datetime(year, month or 1, day or 1, hour, minute, second, tzinfo=zone)
    except ValueError:
        return None


# -- form fields -------------------------------------------------------------------------


class FormFields:
    """The AcroForm fields of the pages read: name, type, value and page of each.

    pdfium's form environment must be open before pages are loaded for their
    widgets to be read, so it is opened with the document (only if it has an
    AcroForm: costs nothing otherwise) and each page's fields are read as the
    page is, so no page is loaded twice. A field shown by several widgets (a
    radio group, a field repeated on every page) is listed once, at its first.
    """

    def __init__(self, pdf: Any) -> None:
        self.pdf = pdf
        self.fields: dict[str, dict[str, Any]] = {}
        self._open = pdf.get_formtype() == pdfium_c.FORMTYPE_ACRO_FORM and pdf.init_forms()

    def read(self, page: Any, number: int) -> None:
        """Note the fields whose widgets ``page`` (page ``number``, loaded since) shows."""
        if not self._open or len(self.fields) >= _MAX_FIELDS:
            return
        form = self.pdf.formenv.raw
        for index in range(pdfium_c.FPDFPage_GetAnnotCount(page.raw)):
            annot = pdfium_c.FPDFPage_GetAnnot(page.raw, index)
            if not annot:
                continue
            try:
                if pdfium_c.FPDFAnnot_GetSubtype(annot) == pdfium_c.FPDF_ANNOT_WIDGET:
                    self._note(form, annot, number)
            finally:
                pdfium_c.FPDFPage_CloseAnnot(annot)

    def close(self) -> list[dict[str, Any]]:
        """Close the form environment (every page read is closed) and return the fields."""
        if self._open:
            self.pdf.close_forms()
            self._open = False
        return list(self.fields.values())

    def _note(self, form: Any, annot: Any, number: int) -> None:
        name = _annot_text(pdfium_c.FPDFAnnot_GetFormFieldName, form, annot)
        if name and name not in self.fields:
            kind = pdfium_c.FPDFAnnot_GetFormFieldType(form, annot)
            self.fields[name] = {
                "name": name,
                "type": _FIELD_TYPES.get(kind, "unknown"),
                "value": _annot_text(pdfium_c.FPDFAnnot_GetFormFieldValue, form, annot),
                "page": number,
            }


def _annot_text(getter: Any, form: Any, annot: Any) -> str:
    """A string pdfium returns through a UTF-16 buffer, sized by a first call."""
    size = getter(form, annot, None, 0)
    if size <= 2:
        return ""
    buffer = (ctypes.c_ushort * (size // 2))()
    getter(form, annot, buffer, size)
    return _clean(bytes(memoryview(buffer)[:-1]).decode("utf-16-le", "replace"))
