"""PDF → PDF/A-1b, 2b or 3b, checked by a validator on the bytes written.

The work is pikepdf's PDF/A support (:mod:`pikepdf.pdfa`, MPL-2.0): ``prepare`` gives
the document what the level asks of its structure without redrawing its content
(the sRGB output intent pikepdf ships, XMP with the ``pdfaid`` identification in step
with the Info dictionary, no document JavaScript, annotation flags, CIDSets for
PDF/A-1, associated files for PDF/A-3), and ``save`` writes it with the level's file
settings, then validates the file it wrote against its rules (the veraPDF rule ids).
That validator is an allowlist: a construct it does not know (shadings, optional
content, some font programs) is reported ``unsupported`` and the verdict is
``not_checked``, never a pass; ``fail`` means a rule is broken.

Before that, this module removes what the level forbids and a reader can do without:
the document's open action and, for PDF/A-1 and 2, embedded files (PDF/A-2 allows
only PDF/A files, which cannot be told here). Each removal is reported. It also drops
a catalog /Version and, for PDF/A-3, completes embedded file specifications.

With ``strict`` (the default) a file that does not pass is refused with the
validator's findings; otherwise it is written all the same (declaring the level it
does not meet) and the findings come back beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pikepdf

from docworker.errors import ProcessingFailed

if TYPE_CHECKING:
    import pikepdf.pdfa

LEVELS = ("1b", "2b", "3b")
#: Findings listed in an error or a payload; the count says how many there were.
_MAX_FINDINGS = 20


@dataclass
class PdfaOutcome:
    """What the conversion made: the validator's verdict, its findings, what was removed."""

    level: str
    verdict: str
    findings: list[dict[str, str]] = field(default_factory=list)
    finding_count: int = 0
    removed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "verdict": self.verdict,
            "validator": f"pikepdf.pdfa {pikepdf.__version__}",
            "finding_count": self.finding_count,
            "findings": self.findings,
            "removed": self.removed,
        }


def write_pdfa(pdf: pikepdf.Pdf, target: Path, level: str, *, strict: bool = True) -> PdfaOutcome:
    """Write ``pdf`` to ``target`` as PDF/A-``level`` ('1b', '2b', '3b') and validate it.

    Raises :class:`ProcessingFailed` (with the findings) when ``strict`` and the file
    written does not pass; nothing is left at ``target`` then."""
    # Imported here: the validator (fontTools, jsonschema) costs every process that
    # loads the registry a sixth of a second, and only pdfa jobs need it.
    import pikepdf.pdfa

    removed = _remove_forbidden(pdf, level)
    try:
        report = pikepdf.pdfa.save(pdf, target, level)
    except pikepdf.pdfa.PdfaError as exc:
        report = exc.report
        outcome = _outcome(level, report, removed)
        if strict:
            first = outcome.findings[0]
            raise ProcessingFailed(
                f"the PDF could not be made PDF/A-{level}: the validator's verdict is "
                f"{report.verdict} with {outcome.finding_count} finding(s), the first: "
                f"{first['message']} ({first['rule']}); pass strict=false to have the "
                "file anyway",
                verdict=report.verdict,
                findings=outcome.findings,
            ) from None
        # prepare() has changed the document in memory: this writes what was validated.
        pdf.save(target, **report.save_kwargs)
        return outcome
    return _outcome(level, report, removed)


def _outcome(level: str, report: pikepdf.pdfa.Report, removed: list[str]) -> PdfaOutcome:
    findings = [
        {"kind": f.kind, "rule": f.rule, "where": f.where, "message": f.message}
        for f in report.findings[:_MAX_FINDINGS]
    ]
    return PdfaOutcome(level, report.verdict, findings, len(report.findings), removed)


def _remove_forbidden(pdf: pikepdf.Pdf, level: str) -> list[str]:
    removed: list[str] = []
    if "/OpenAction" in pdf.Root:
        del pdf.Root["/OpenAction"]
        removed.append("the open action (the page or script run when the file opens)")
    if "/Version" in pdf.Root:
        # The header version the level's settings write is the file's version; a
        # catalog /Version (which overrides it) would claim a later one.
        del pdf.Root["/Version"]
    if level[0] == "3":
        _complete_file_specs(pdf)
    if level[0] in "12":
        for name in list(pdf.attachments):
            removed.append(f"embedded file '{name}' (PDF/A-{level[0]} does not allow it)")
        names = pdf.Root.get("/Names")
        if isinstance(names, pikepdf.Dictionary) and "/EmbeddedFiles" in names:
            del names["/EmbeddedFiles"]
        if "/AF" in pdf.Root:
            del pdf.Root["/AF"]
    return removed


def _complete_file_specs(pdf: pikepdf.Pdf) -> None:
    """PDF/A-3 wants each embedded file's specification an indirect object with both
    /F and /UF names; some writers put them in the name tree directly, or name once."""
    names = pdf.Root.get("/Names")
    tree = names.get("/EmbeddedFiles") if isinstance(names, pikepdf.Dictionary) else None
    pending = [tree] if isinstance(tree, pikepdf.Dictionary) else []
    while pending and len(pending) < 10_000:
        node = pending.pop()
        entries = node.get("/Names")
        if isinstance(entries, pikepdf.Array):
            for index in range(1, len(entries), 2):
                spec = entries[index]
                if not isinstance(spec, pikepdf.Dictionary):
                    continue
                name = spec.get("/UF", spec.get("/F", entries[index - 1]))
                spec.F = spec.get("/F", name)
                spec.UF = spec.get("/UF", name)
                if not spec.is_indirect:
                    entries[index] = pdf.make_indirect(spec)
        pending.extend(kid for kid in node.get("/Kids", []) if isinstance(kid, pikepdf.Dictionary))
