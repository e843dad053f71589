"""VBA macros in Office files, found and described by oletools' olevba.

olevba reads the VBA project of legacy files (``.doc``, ``.xls``, ``.ppt``) and of
OOXML packages (``vbaProject.bin`` in ``.docm``, ``.xlsm``, ``.pptm``, and OLE
objects embedded in them). The finding names the modules, the macros that run by
themselves (``AutoOpen``, ``Document_Open``, ``Workbook_Open``) and the suspicious
calls olevba knows (``Shell``, ``CreateObject``, downloads).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import ModuleType

from docworker.config import FindingKind
from docworker.guard.findings import FindingSet

#: VBA source longer than this (all modules) is not analysed for keywords, only counted.
MAX_ANALYSED_CODE = 2 * 1024 * 1024
_KEYWORDS_SHOWN = 6


def olevba() -> ModuleType:
    """oletools' olevba, imported on first use.

    Its pyparsing grammar uses names that current pyparsing deprecates; the warnings
    come at import, say nothing about the input, and are silenced there.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from oletools import olevba as module
    return module  # type: ignore[no-any-return]


def check_vba(found: FindingSet, path: Path) -> None:
    """Note the VBA macros of the Office file at ``path``, if it has any."""
    vba = olevba()
    try:
        parser = vba.VBA_Parser(str(path))
    except vba.FileOpenError:
        return  # not a file olevba reads (an encrypted package, a damaged one)
    try:
        if not parser.detect_vba_macros():
            return
        modules: list[str] = []
        code: list[str] = []
        for _container, stream_path, _name, source in parser.extract_macros():
            modules.append(str(stream_path))
            code.append(source if isinstance(source, str) else str(source))
    finally:
        parser.close()
    detail = f"VBA macros in {len(modules)} module(s)"
    source = "\n".join(code)
    if len(source) <= MAX_ANALYSED_CODE:
        detail += _keywords(vba, source)
    location = ", ".join(modules[:5]) + (", …" if len(modules) > 5 else "")
    found.note(FindingKind.OFFICE_MACROS, detail, location or None)


def _keywords(vba: ModuleType, source: str) -> str:
    """What olevba's scanner says of the code: macros that run by themselves, and
    suspicious calls."""
    results = vba.VBA_Scanner(source).scan(False, False)
    auto = sorted({str(k) for kind, k, _ in results if kind == "AutoExec"})
    suspicious = sorted({str(k) for kind, k, _ in results if kind == "Suspicious"})
    text = ""
    if auto:
        text += f"; runs by itself: {', '.join(auto[:_KEYWORDS_SHOWN])}"
    if suspicious:
        text += f"; suspicious: {', '.join(suspicious[:_KEYWORDS_SHOWN])}"
    return text
