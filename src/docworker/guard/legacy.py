"""Legacy Office files (OLE2 compound files): fields of ``.doc``, sheets and links of ``.xls``.

A ``.doc`` keeps its fields in the text of its ``WordDocument`` stream, between
the field characters 0x13 (begin) and 0x14 (separator) or 0x15 (end), in 8-bit or
UTF-16 text alike. A ``.xls`` lists its sheets (``BOUNDSHEET``: an Excel 4.0 macro
sheet is XLM macros) and its supporting links (``SUPBOOK``: DDE and OLE data sources,
external workbooks) in the workbook globals, the first substream of its ``Workbook``
stream; oletools' xls_parser reads the records, and only that substream is read.
"""

from __future__ import annotations

import re
from pathlib import Path
from struct import unpack
from typing import Any

import olefile
from oletools import xls_parser

from docworker.config import FindingKind
from docworker.guard.fields import MAX_INSTRUCTION, check_field
from docworker.guard.findings import Budget, FindingSet, quote

_DOC_FIELD = re.compile(rb"\x13([^\x14\x15]{1,%d}?)[\x14\x15]" % MAX_INSTRUCTION, re.DOTALL)
#: Records read from a workbook's globals before the scan gives up on finding its end.
_MAX_GLOBAL_RECORDS = 200_000
_BOUNDSHEET = 0x0085
_MACRO_SHEET = 0x01
_HIDDEN = {1: "hidden", 2: "very hidden"}


def check_doc_fields(found: FindingSet, path: Path, budget: Budget) -> None:
    """Note DDE, INCLUDEPICTURE, INCLUDETEXT and LINK fields of a ``.doc``."""
    with olefile.OleFileIO(str(path)) as ole:
        if not ole.exists("WordDocument"):
            return
        size = ole.get_size("WordDocument")
        budget.take(size)
        data = ole.openstream("WordDocument").read()
    for match in _DOC_FIELD.finditer(data):
        # UTF-16 text is ASCII with NULs between for every field keyword and URL.
        instruction = match.group(1).replace(b"\x00", b"").decode("latin-1")
        check_field(found, instruction, "WordDocument")


def check_xls_globals(found: FindingSet, path: Path) -> None:
    """Note Excel 4.0 macro sheets and DDE or external links of a ``.xls``."""
    xls = xls_parser.XlsFile(str(path))
    try:
        for stream in xls.iter_streams():
            if isinstance(stream, xls_parser.WorkbookStream):
                _globals(found, stream)
                return
    finally:
        xls.close()


def _globals(found: FindingSet, stream: Any) -> None:
    supbook = xls_parser.XlsRecordSupBook
    for count, record in enumerate(stream.iter_records(fill_data=True)):
        if isinstance(record, xls_parser.XlsRecordEof) or count > _MAX_GLOBAL_RECORDS:
            return
        if record.type == _BOUNDSHEET and record.data and len(record.data) >= 8:
            _sheet(found, record.data)
        elif isinstance(record, supbook) and record.virt_path:
            target = quote(str(record.virt_path).replace("\u0003", " ").replace("\x00", ""))
            if record.support_link_type == supbook.LINK_TYPE_OLE_DDE:
                found.note(FindingKind.OFFICE_DDE, f"a DDE or OLE data source: {target}", "SUPBOOK")
            elif record.support_link_type == supbook.LINK_TYPE_EXTERNAL:
                found.note(
                    FindingKind.EXTERNAL_REFERENCE, f"an external workbook: {target}", "SUPBOOK"
                )


def _sheet(found: FindingSet, data: bytes) -> None:
    """A BOUNDSHEET record: lbPlyPos (4), hsState (1), dt (1), then the sheet's name."""
    state, sheet_type = data[4] & 0x03, data[5]
    if sheet_type != _MACRO_SHEET:
        return
    length, flags = unpack("<BB", data[6:8])
    raw = data[8 : 8 + (length * 2 if flags & 1 else length)]
    name = raw.decode("utf-16-le" if flags & 1 else "latin-1", errors="replace")
    hidden = f" ({_HIDDEN[state]})" if state in _HIDDEN else ""
    found.note(
        FindingKind.OFFICE_XLM_MACROS,
        f"an Excel 4.0 (XLM) macro sheet '{quote(name)}'{hidden}",
        "Workbook",
    )
