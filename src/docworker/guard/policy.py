"""What follows a finding: the policy of its kind for the job's tenant.

``allow`` drops the finding, ``report`` lists it in the result's ``security``
section, ``refuse`` lists it and fails the job with
:class:`~docworker.errors.ContentRefused` (422), naming it. The policies come from
``guard.policy``, over the built-in defaults, and ``guard.tenants`` over both.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from docworker.config import GuardPolicy, GuardSettings
from docworker.errors import ContentRefused
from docworker.guard.findings import Finding, SecurityReport
from docworker.guard.scan import scan_file


def apply_policy(
    report: SecurityReport, settings: GuardSettings, tenant: str | None = None
) -> tuple[SecurityReport, list[Finding]]:
    """The report without the allowed findings, and the findings to refuse."""
    kept: list[Finding] = []
    refused: list[Finding] = []
    for finding in report.findings:
        policy = settings.policy_for(finding.kind, tenant)
        if policy is GuardPolicy.ALLOW:
            continue
        kept.append(finding)
        if policy is GuardPolicy.REFUSE:
            refused.append(finding)
    return report.with_findings(tuple(kept)), refused


def security_section(
    files: Sequence[tuple[Path, str | None, str | None]],
    settings: GuardSettings,
    tenant: str | None = None,
) -> dict[str, Any]:
    """The ``security`` section of a job's result: the scan of its input (``files[0]``:
    path, claimed name, claimed type) under the tenant's policy, with the scans of its
    further inputs as ``others``. Raises :class:`ContentRefused` when the policy refuses
    a finding of any of them."""
    sections: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    for index, (path, name, mime) in enumerate(files):
        report, refusals = apply_policy(scan_file(path, name, mime, settings), settings, tenant)
        sections.append(report.as_dict())
        for finding in refusals:
            entry = finding.as_dict()
            if index:
                entry["file"] = name or f"input {index + 1}"
            refused.append(entry)
    if refused:
        raise ContentRefused(refused)
    section = sections[0]
    if len(sections) > 1:
        section["others"] = sections[1:]
    return section
