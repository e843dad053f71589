"""XML findings: external entities and external DTDs (XXE), and entity declarations.

A document type declaration has to come before the root element, so only the
prolog of each XML input or part is read. An external entity (``<!ENTITY x SYSTEM
"file:///etc/passwd">``) or an external DTD on a non-public address makes a
careless parser read files or fetch URLs (XXE); internal entity declarations are the
stuff of entity-expansion bombs (billion laughs). The service's own parsers refuse
both; the finding says the input tried.
"""

from __future__ import annotations

import re
from pathlib import Path

from docworker.config import FindingKind
from docworker.guard.findings import FindingSet, quote

#: What is read of an XML input to find its prolog.
PROLOG_BYTES = 256 * 1024

_DOCTYPE = re.compile(r"<!DOCTYPE\s+([\w.:-]+)(\s+(?:SYSTEM|PUBLIC)\b[^\[>]*)?", re.IGNORECASE)
_EXTERNAL_ENTITY = re.compile(
    r"<!ENTITY\s+(%\s*)?([\w.:-]+)\s+(?:SYSTEM|PUBLIC)\s+(\"[^\"]*\"|'[^']*')"
    r"(?:\s+(\"[^\"]*\"|'[^']*'))?",
    re.IGNORECASE,
)
_ENTITY = re.compile(r"<!ENTITY\s+(%\s*)?([\w.:-]+)\s", re.IGNORECASE)
_LITERAL = re.compile(r"\"([^\"]*)\"|'([^']*)'")
#: Hosts of well-known public DTDs (XHTML, SVG, EPUB 2's NCX), which are not attacks.
_PUBLIC_DTD = re.compile(
    r"^https?://(www\.)?(w3\.org|daisy\.org|idpf\.org|openoffice\.org|oasis-open\.org)/",
    re.IGNORECASE,
)
#: A system id that leaves the document's folder: a URL, an absolute or a UNC path. A
#: relative one ("JATS-archivearticle1.dtd") names the DTD a publisher ships beside it.
_ABSOLUTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|/|\\\\)", re.IGNORECASE)


def prolog_text(data: bytes) -> str:
    """Bytes of an XML prolog as text, whatever the encoding family."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    if data[:4] in {b"<\x00?\x00", b"<\x00!\x00"}:
        return data.decode("utf-16-le", errors="replace")
    if data[:4] in {b"\x00<\x00?", b"\x00<\x00!"}:
        return data.decode("utf-16-be", errors="replace")
    return data.decode("latin-1")


def check_prolog(found: FindingSet, data: bytes, location: str | None) -> None:
    """Note the XXE attempts and entity declarations in the start of an XML document."""
    text = prolog_text(data)
    doctype = _DOCTYPE.search(text)
    if doctype is None:
        return
    external_dtd = doctype.group(2)
    if external_dtd:
        literals = [a or b for a, b in _LITERAL.findall(external_dtd)]
        system_id = literals[-1] if literals else ""
        if _ABSOLUTE.match(system_id) and not _PUBLIC_DTD.match(system_id):
            found.note(
                FindingKind.XXE,
                f"an external DTD is named: {quote(system_id or external_dtd)}",
                location,
            )
    subset = text[doctype.end() :]
    external = {m.group(2) for m in _EXTERNAL_ENTITY.finditer(subset)}
    for match in _EXTERNAL_ENTITY.finditer(subset):
        target = (match.group(4) or match.group(3))[1:-1]  # the system id, unquoted
        kind = "parameter entity" if match.group(1) else "entity"
        found.note(
            FindingKind.XXE,
            f"an external {kind} '{match.group(2)}' points at {quote(target)}",
            location,
        )
    internal = [m.group(2) for m in _ENTITY.finditer(subset) if m.group(2) not in external]
    if internal:
        found.note(
            FindingKind.XML_ENTITIES,
            f"{len(internal)} entity declarations ({', '.join(internal[:5])}), "
            "the material of entity-expansion bombs",
            location,
        )


def check_xml_file(found: FindingSet, path: Path) -> None:
    """Note XXE attempts in an XML input (XML, SVG, TTML, XHTML)."""
    with path.open("rb") as fh:
        check_prolog(found, fh.read(PROLOG_BYTES), None)
