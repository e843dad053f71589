"""Word field instructions that run commands or reach outside the document.

The same fields live in DOCX (``w:instrText``, ``w:fldSimple``), legacy ``.doc``
(between the field characters 0x13 and 0x14 of the text) and RTF (``\\fldinst``):
``DDE``/``DDEAUTO`` start a program through dynamic data exchange;
``INCLUDEPICTURE``, ``INCLUDETEXT``, ``INCLUDE``, ``IMPORT`` and ``LINK`` make the
word processor read a file or fetch a URL when the fields are updated.
"""

from __future__ import annotations

import re

from docworker.config import FindingKind
from docworker.guard.findings import FindingSet, quote

#: Longest field instruction kept; real ones are far shorter.
MAX_INSTRUCTION = 4000

_FIELD = re.compile(
    r"^\s*(DDEAUTO|DDE|INCLUDEPICTURE|INCLUDETEXT|INCLUDE|IMPORT|LINK)\b\s*(.*)$",
    re.IGNORECASE | re.DOTALL,
)
_TARGET = re.compile(r"\"([^\"]*)\"|(\S+)")


def check_field(found: FindingSet, instruction: str, location: str | None) -> None:
    """Note a field instruction that runs a program or reaches outside the document."""
    match = _FIELD.match(instruction[:MAX_INSTRUCTION])
    if match is None:
        return
    keyword, rest = match.group(1).upper(), match.group(2)
    if keyword.startswith("DDE"):
        found.note(
            FindingKind.OFFICE_DDE,
            f"{keyword} field: {quote(instruction.strip())}",
            location,
        )
        return
    target = _TARGET.search(rest)
    where = (target.group(1) or target.group(2)) if target else ""
    if keyword == "LINK":
        # LINK's first argument is the OLE class; the file comes second.
        targets = _TARGET.findall(rest)
        where = (targets[1][0] or targets[1][1]) if len(targets) > 1 else where
    # Word doubles the backslashes of paths in field instructions.
    where = where.replace("\\\\", "\\") or "a file"
    found.note(FindingKind.EXTERNAL_REFERENCE, f"{keyword} field reads {quote(where)}", location)
