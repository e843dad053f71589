"""What a scan found: findings, the report of one input, and the budget a scan runs in.

A :class:`Finding` is one kind of hostile or suspicious content seen in an input,
with a human ``detail``, where it is (``location``) and how many times it was seen.
Scanners note occurrences in a :class:`FindingSet`, which folds them into one
finding per kind, so a PDF with 300 links gives one ``pdf_uri_actions`` finding.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from docworker.config import FindingKind

#: Occurrences described in a finding's detail and location; the rest are counted only.
SHOWN = 3
LOCATIONS_SHOWN = 5
#: Longest text quoted from an input (a URL, a field instruction) in a detail.
QUOTE_CHARS = 200


def quote(text: str) -> str:
    """``text`` on one line, cut to :data:`QUOTE_CHARS`, for a finding's detail."""
    flat = " ".join(text.split())
    return flat if len(flat) <= QUOTE_CHARS else flat[: QUOTE_CHARS - 1] + "…"


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    detail: str
    location: str | None = None
    count: int = 1

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind.value, "detail": self.detail}
        if self.location:
            data["location"] = self.location
        data["count"] = self.count
        return data


@dataclass
class _Tally:
    count: int = 0
    #: Occurrences that the details describe one by one (a finding added whole counts all).
    described: int = 0
    details: list[str] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)


class FindingSet:
    """Occurrences noted by scanners, folded into one finding per kind."""

    def __init__(self) -> None:
        self._tallies: dict[FindingKind, _Tally] = {}

    def note(self, kind: FindingKind, detail: str, location: str | None = None) -> None:
        tally = self._tallies.setdefault(kind, _Tally())
        tally.count += 1
        if detail not in tally.details and len(tally.details) < SHOWN:
            tally.details.append(detail)
            tally.described += 1
        if location and location not in tally.locations and len(tally.locations) < 50:
            tally.locations.append(location)

    def add(self, finding: Finding) -> None:
        """A finding made whole by its scanner; counted as ``finding.count`` occurrences."""
        tally = self._tallies.setdefault(finding.kind, _Tally())
        tally.count += finding.count
        if finding.detail not in tally.details and len(tally.details) < SHOWN:
            tally.details.append(finding.detail)
            tally.described += finding.count
        if finding.location and finding.location not in tally.locations:
            tally.locations.append(finding.location)

    def __contains__(self, kind: FindingKind) -> bool:
        return kind in self._tallies

    def findings(self) -> list[Finding]:
        found = []
        for kind, tally in self._tallies.items():
            detail = "; ".join(tally.details)
            if tally.count > tally.described:
                more = " …" if len(tally.details) == SHOWN else ""
                detail = f"{tally.count} found: {detail}{more}"
            shown = tally.locations[:LOCATIONS_SHOWN]
            location = ", ".join(shown) if shown else None
            if location and len(tally.locations) > LOCATIONS_SHOWN:
                location += ", …"
            found.append(Finding(kind, detail, location, tally.count))
        return found


@dataclass(frozen=True)
class SecurityReport:
    """The ``security`` section of a job's result, for one input file."""

    detected_mime: str
    detected_format: str
    claimed_name: str | None
    claimed_mime: str | None
    findings: tuple[Finding, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "detected": {"mime": self.detected_mime, "format": self.detected_format},
            "claimed": {"name": self.claimed_name, "mime": self.claimed_mime},
            "findings": [f.as_dict() for f in self.findings],
        }

    def with_findings(self, findings: tuple[Finding, ...]) -> SecurityReport:
        return SecurityReport(
            self.detected_mime,
            self.detected_format,
            self.claimed_name,
            self.claimed_mime,
            findings,
        )


class ScanLimit(Exception):
    """The scan reached its time or size budget; what was found so far stands."""


class Budget:
    """The time and decompression budget of one input's scan, shared by its scanners."""

    def __init__(self, seconds: float, inflate_bytes: int) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.inflate_limit = inflate_bytes
        self.inflated = 0

    def check(self) -> None:
        """Raise :class:`ScanLimit` once the time is up."""
        if time.monotonic() > self.deadline:
            raise ScanLimit(f"the scan stopped at its time limit of {self.seconds:g} s")

    def take(self, size: int) -> None:
        """Count ``size`` decompressed bytes; raise :class:`ScanLimit` past the limit."""
        self.inflated += size
        if self.inflated > self.inflate_limit:
            raise ScanLimit(
                f"the scan stopped at its limit of {self.inflate_limit} decompressed bytes"
            )
        self.check()
