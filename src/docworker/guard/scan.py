"""One input's scan: its type detected, then the scanners its family calls for.

Every input is checked for its type against its claim (:mod:`.filetype`), the
EICAR string and the YARA rules (:mod:`.signatures`); then by family: PDF actions
(:mod:`.pdf`), ZIP containers (bombs first, then :mod:`.ooxml`, :mod:`.odf`, XML
parts), legacy Office files (:mod:`.macros`, :mod:`.legacy`), RTF (:mod:`.rtf`),
XML inputs (:mod:`.xxe`) and gzip bombs (:mod:`.bombs`).

A scanner that fails or runs out of budget never fails the scan: its failure is a
``scan_error`` finding and the other scanners go on.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from docworker.config import FindingKind, GuardSettings
from docworker.formats.detect import Detection, detect
from docworker.guard.bombs import check_gzip_bomb, check_zip_bomb
from docworker.guard.filetype import check_runnable_names, check_type, claimed_mime
from docworker.guard.findings import Budget, FindingSet, ScanLimit, SecurityReport
from docworker.guard.legacy import check_doc_fields, check_xls_globals
from docworker.guard.macros import check_vba
from docworker.guard.odf import check_odf
from docworker.guard.ooxml import check_ooxml, may_hold_vba
from docworker.guard.pdf import check_pdf
from docworker.guard.rtf import check_rtf
from docworker.guard.signatures import YaraUnavailable, check_eicar, check_eicar_parts, check_yara
from docworker.guard.streams import PART_ERRORS, Package
from docworker.guard.xxe import check_prolog, check_xml_file

log = structlog.get_logger(__name__)

_OOXML = {"docx", "xlsx", "pptx"}
_ODF = {"odt", "ods", "odp", "odg"}
_CONTAINERS = _OOXML | _ODF | {"epub", "zip"}
_LEGACY = {"doc", "xls", "ppt"}
_XML_TYPES = {"application/xml", "image/svg+xml", "application/ttml+xml", "application/xhtml+xml"}
#: What is read of each part of an EPUB or a ZIP to find a DOCTYPE.
_PART_PROLOG = 16 * 1024
_XML_PART_SUFFIXES = (".xml", ".opf", ".ncx", ".xhtml", ".svg", ".rels")


def scan_file(
    path: Path, name: str | None, mime: str | None, settings: GuardSettings
) -> SecurityReport:
    """Everything the guard finds in the file at ``path``, before any policy.

    ``name`` and ``mime`` are what the client claimed the file is.
    """
    found = FindingSet()
    budget = Budget(settings.timeout, settings.max_inflate_bytes)
    run = _Runner(found)
    detection = _detect(found, path, name)
    run("type", check_type, found, path, detection, name, mime)
    run("eicar", check_eicar, found, path, budget)
    run("yara", check_yara, found, path, settings)
    _by_family(run, found, path, detection, budget, settings)
    return SecurityReport(
        detected_mime=detection.mime,
        detected_format=detection.format,
        claimed_name=name,
        claimed_mime=claimed_mime(name, mime),
        findings=tuple(found.findings()),
    )


def _detect(found: FindingSet, path: Path, name: str | None) -> Detection:
    """The input's type; ``application/octet-stream`` (and a finding) when detection fails."""
    try:
        return detect(path, name)
    except Exception as exc:  # noqa: BLE001 - the scan goes on with what it can still check
        log.warning("type detection failed in the guard", error=repr(exc)[:500])
        found.note(
            FindingKind.SCAN_ERROR, f"the type could not be detected ({_named(exc)})", "type"
        )
        return Detection("application/octet-stream", "binary", "error")


class _Runner:
    """Runs one scanner; its failure becomes a ``scan_error`` finding."""

    def __init__(self, found: FindingSet) -> None:
        self.found = found

    def __call__(self, what: str, scanner: Callable[..., None], *args: Any) -> None:
        try:
            scanner(*args)
        except ScanLimit as exc:
            self.found.note(FindingKind.SCAN_ERROR, str(exc), what)
        except YaraUnavailable as exc:
            self.found.note(FindingKind.SCAN_ERROR, str(exc), what)
        except Exception as exc:  # noqa: BLE001 - a scanner failing on odd input is a finding
            log.warning("guard scanner failed", scanner=what, error=repr(exc)[:500])
            self.found.note(FindingKind.SCAN_ERROR, f"the {what} scan failed ({_named(exc)})", what)


def _named(exc: BaseException) -> str:
    """An exception's class as a reader can place it: ``zlib.error``, ``ValueError``."""
    cls = type(exc)
    module = cls.__module__.split(".", 1)[0]
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _by_family(
    run: _Runner,
    found: FindingSet,
    path: Path,
    detection: Detection,
    budget: Budget,
    settings: GuardSettings,
) -> None:
    family = detection.format
    if family == "pdf":
        run("pdf", check_pdf, found, path, budget, settings.max_pdf_objects)
    elif family in _CONTAINERS:
        run("container", _container, run, found, path, family, budget, settings)
    elif family in _LEGACY:
        run("macros", check_vba, found, path)
        if family == "doc":
            run("fields", check_doc_fields, found, path, budget)
        elif family == "xls":
            run("workbook", check_xls_globals, found, path)
    elif family == "rtf":
        run("rtf", check_rtf, found, path, budget)
    elif family == "gzip":
        run("gzip", check_gzip_bomb, found, path, settings)
    elif detection.mime in _XML_TYPES:
        run("xml", check_xml_file, found, path)


def _container(
    run: _Runner,
    found: FindingSet,
    path: Path,
    family: str,
    budget: Budget,
    settings: GuardSettings,
) -> None:
    """A ZIP container: bombs from its directory first, then, unless it is one, its parts."""
    try:
        archive = zipfile.ZipFile(path)
    except PART_ERRORS as exc:
        found.note(FindingKind.SCAN_ERROR, f"the ZIP container cannot be read ({exc})", "container")
        return
    with archive:
        package = Package(archive, budget, settings.max_parts)
        run("bomb", check_zip_bomb, found, package, path.stat().st_size, settings)
        if FindingKind.DECOMPRESSION_BOMB in found:
            return  # nothing is decompressed from a bomb
        if package.truncated:
            found.note(
                FindingKind.SCAN_ERROR,
                f"only the first {len(package.parts)} of {package.part_count} parts were scanned",
                "container",
            )
        run("eicar", check_eicar_parts, found, package)
        if family in _OOXML:
            run("ooxml", check_ooxml, found, package)
            if may_hold_vba(package):
                run("macros", check_vba, found, path)
        elif family in _ODF:
            run("odf", check_odf, found, package)
        else:
            run("xml", _xml_parts, found, package)
            if family == "zip":
                check_runnable_names(found, [info.filename for info in package.parts])


def _xml_parts(found: FindingSet, package: Package) -> None:
    """XXE attempts in the XML parts of an EPUB or a ZIP."""
    for info in package.parts:
        if info.filename.lower().endswith(_XML_PART_SUFFIXES):
            head = package.head(info, _PART_PROLOG)
            if head:
                check_prolog(found, head, info.filename)
