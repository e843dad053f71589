"""OpenDocument packages (ODT, ODS, ODP, ODG): macros, DDE and what reaches outside.

- Macros: Basic modules (``Basic/<library>/<module>.xml``), scripts (``Scripts/``)
  and event listeners bound to scripts (``script:event-listener``), which can run
  when the document is opened.
- DDE: ``office:dde-source``, ``text:dde-connection-decl`` and ``table:dde-link``.
- External references: pictures, objects, frames, linked sections and tables whose
  ``xlink:href`` is a URL, a UNC path or a path out of the package. Hyperlinks
  (``text:a``, ``draw:a``) are left out: they are followed only when clicked.
- A DOCTYPE in any XML part (:mod:`.xxe`).
"""

from __future__ import annotations

import html
import re
import zipfile

from docworker.config import FindingKind
from docworker.guard.findings import FindingSet, quote
from docworker.guard.streams import Package, iter_matches
from docworker.guard.xxe import check_prolog

PROLOG_BYTES = 16 * 1024

#: A Basic module: any XML file in a library folder but the library's own index files.
_BASIC_MODULE = re.compile(
    r"^(?:.+/)?Basic/[^/]+/(?!script-l[bc]\.xml$|dialog-l[bc]\.xml$)[^/]+\.xml$"
)
_SCRIPT = re.compile(r"^(?:.+/)?Scripts/.+[^/]$")
_CONTENT = re.compile(r"^(?:.+/)?(content|styles)\.xml$")
#: An element's attributes are searched this far back from its xlink:href.
_TAG_REACH = 4000
_TOKENS = re.compile(
    rb'xlink:href="(?P<href>[^"]{1,2000})"'
    rb"|<(?P<dde>office:dde-source|text:dde-connection-decl|table:dde-link)\b(?P<attrs>[^>]{0,4000})"
)
_TAG = re.compile(rb"<([\w-]+:[\w-]+)\b([^<>]*)$")
_EVENT_NAME = re.compile(rb"script:event-name=\"([^\"]{1,200})\"")
_DDE_APP = re.compile(rb"office:dde-(?:application|topic|item)=\"([^\"]{0,500})\"")
_LINKS = {b"text:a", b"draw:a", b"office:document"}
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|\\\\|//|/|\.\./)", re.IGNORECASE)
_PACKAGE_SCHEMES = re.compile(r"^(?:vnd\.sun\.star\.|#)", re.IGNORECASE)


def check_odf(found: FindingSet, package: Package) -> None:
    """Note the macros, DDE links and external references of an OpenDocument package."""
    for info in package.parts:
        name = info.filename
        if _BASIC_MODULE.match(name):
            found.note(FindingKind.OFFICE_MACROS, "a Basic macro module", name)
        elif _SCRIPT.match(name):
            found.note(FindingKind.OFFICE_MACROS, "a script", name)
        if name.endswith(".xml"):
            head = package.head(info, PROLOG_BYTES)
            if head:
                check_prolog(found, head, name)
        if _CONTENT.match(name):
            _content(found, package, info)


def _content(found: FindingSet, package: Package, info: zipfile.ZipInfo) -> None:
    for match in iter_matches(package.chunks(info), _TOKENS, keep=2 * _TAG_REACH):
        if match.group("dde"):
            values = _DDE_APP.findall(match.group("attrs"))
            text = " | ".join(html.unescape(v.decode("utf-8", "replace")) for v in values)
            found.note(FindingKind.OFFICE_DDE, f"a DDE link: {quote(text)}", info.filename)
            continue
        # The element the attribute belongs to: the last tag opened before it.
        before = match.string[max(match.start() - _TAG_REACH, 0) : match.start()]
        element = _TAG.search(before)
        if element is None:
            continue
        after = match.string[match.end() : match.end() + _TAG_REACH].split(b">", 1)[0]
        tag, attrs = element.group(1), element.group(2) + after
        target = html.unescape(match.group("href").decode("utf-8", "replace"))
        if tag == b"script:event-listener":
            event = _EVENT_NAME.search(attrs)
            what = event.group(1).decode("utf-8", "replace") if event else "an event"
            found.note(
                FindingKind.OFFICE_MACROS,
                f"a script bound to {quote(what)}: {quote(target)}",
                info.filename,
            )
        elif tag not in _LINKS and _REMOTE.match(target) and not _PACKAGE_SCHEMES.match(target):
            found.note(
                FindingKind.EXTERNAL_REFERENCE,
                f"{tag.decode()} reads {quote(target)}",
                info.filename,
            )
