"""Office files through LibreOffice, for the ``convert`` operation: → PDF with its
options, and between office formats (legacy .doc/.xls/.ppt → OOXML, OOXML ↔ ODF).

The input is handed to LibreOffice under the extension of its detected type (a
misnamed file is opened as what it is). An encrypted OOXML package is decrypted
first with msoffcrypto (as the extract operation reads it); other encrypted
files (OpenDocument, legacy Office) are opened by LibreOffice with the password.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pypdfium2

from docworker.document import Warning
from docworker.engines.libreoffice import Converter, ExportOptions, FilterValue
from docworker.errors import (
    CorruptDocument,
    DependencyDown,
    InvalidParameter,
    PasswordRequired,
    WrongPassword,
)
from docworker.formats.base import PageSelection
from docworker.formats.detect import Detection, detect
from docworker.formats.ooxml.encrypted import ENCRYPTED_OOXML_MIME, decrypt_package
from docworker.operations.base import OperationContext
from docworker.operations.convert_encrypted import is_encrypted

if TYPE_CHECKING:
    from docworker.operations.convert import ConvertParams

_TEXT = frozenset({"doc", "docx", "odt", "rtf"})
_SHEETS = frozenset({"xls", "xlsx", "ods"})
_SLIDES = frozenset({"ppt", "pptx", "odp", "odg"})
#: The formats LibreOffice converts here (``encrypted-ooxml`` once decrypted).
OFFICE_FORMATS = _TEXT | _SHEETS | _SLIDES | {"encrypted-ooxml"}
#: Office targets, and the input formats that can become them.
_FAMILIES = {
    "docx": _TEXT,
    "odt": _TEXT,
    "xlsx": _SHEETS,
    "ods": _SHEETS,
    "pptx": _SLIDES,
    "odp": _SLIDES,
}
#: LibreOffice's PDF export ``SelectPdfVersion`` for each PDF/A level.
_PDFA_VERSIONS = {"1b": 1, "2b": 2}


def convert_office(
    ctx: OperationContext,
    path: Path,
    detection: Detection,
    params: ConvertParams,
    ext: str,
    target: Path,
) -> dict[str, Any]:
    """Convert the office file ``path`` to ``ext`` at ``target``; the engine and warnings."""
    if ctx.convert is None:
        raise DependencyDown("LibreOffice does not run here", engine="LibreOffice")
    assert ctx.workdir is not None
    password = params.secret
    if detection.mime == ENCRYPTED_OOXML_MIME:
        path, detection = _decrypted(path, params, ctx.workdir)
        password = None
    elif not is_encrypted(path, detection):
        password = None
    elif not password:
        raise PasswordRequired(detection.format)
    fmt = detection.format
    warnings = _check_target(fmt, ext, params)
    options = ExportOptions(
        password=password,
        landscape=params.landscape and ext == "pdf",
        filter_data=_pdf_filter_data(params) if ext == "pdf" else {},
    )
    named = ctx.workdir / f"input.{fmt}"
    shutil.copyfile(path, named)
    ctx.progress(0.1, "converting with LibreOffice")
    try:
        converted = _run(ctx.convert, named, ext, options, encrypted=password is not None)
    finally:
        named.unlink(missing_ok=True)
    shutil.move(converted, target)
    return {"engine": "libreoffice", "warnings": warnings}


def _run(
    convert: Converter, path: Path, ext: str, options: ExportOptions, *, encrypted: bool
) -> Path:
    """The converted file; a failure told apart: a wrong password, a page range that
    names no page (LibreOffice stores nothing then), or a document it cannot open."""
    try:
        return convert(path, ext, options=options)
    except CorruptDocument:
        fmt = path.suffix.lstrip(".")
        if encrypted:
            raise WrongPassword(fmt) from None
        if "PageRange" not in options.filter_data:
            raise
    whole = dict(options.filter_data)
    asked = whole.pop("PageRange")
    # Converted whole only to tell the two failures apart; the result is not kept.
    converted = convert(path, ext, options=replace(options, filter_data=whole))
    with pypdfium2.PdfDocument(str(converted)) as pdf:
        count = len(pdf)
    converted.unlink(missing_ok=True)
    raise InvalidParameter("pages", f"'{asked}' names none of the document's {count} pages")


def _check_target(fmt: str, ext: str, params: ConvertParams) -> list[Warning]:
    """What the options do to this input: refusals for what cannot be, warnings for
    what is left as it is."""
    if ext != "pdf":
        if fmt not in _FAMILIES.get(ext, frozenset()):
            raise InvalidParameter(
                "to",
                f"the input ({fmt}) cannot be converted to {ext}: convert it to pdf, or to "
                "an office format of its kind (text, spreadsheet, presentation)",
            )
        if params.pages:
            raise InvalidParameter("pages", f"applies to PDF outputs only, not to {ext}")
        if params.pdfa_level:
            raise InvalidParameter("pdfa", f"applies to PDF outputs only, not to {ext}")
        return []
    if params.landscape and fmt in _SLIDES:
        return [
            Warning(
                code="landscape-not-applied",
                message="presentations keep their own slide size; landscape was not applied",
            )
        ]
    return []


def _pdf_filter_data(params: ConvertParams) -> dict[str, FilterValue]:
    data: dict[str, FilterValue] = {"ExportFormFields": params.export_form_fields}
    if params.pages:
        data["PageRange"] = str(PageSelection.parse(params.pages))
    level = params.pdfa_level
    if level:
        data["SelectPdfVersion"] = _PDFA_VERSIONS[level]
    return data


def _decrypted(path: Path, params: ConvertParams, workdir: Path) -> tuple[Path, Detection]:
    """An encrypted OOXML package decrypted into ``workdir``, and its real type."""
    if not params.password:
        raise PasswordRequired("office")
    plain = workdir / "decrypted"
    decrypt_package(path, params.password.get_secret_value(), plain)
    detection = detect(plain)
    if detection.format not in OFFICE_FORMATS - {"encrypted-ooxml"}:
        raise CorruptDocument("office", "the decrypted package is not an office document")
    return plain, detection
