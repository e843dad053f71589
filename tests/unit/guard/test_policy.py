"""Policies: allow, report or refuse per kind of finding, per tenant, from the settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from docworker.config import FindingKind, GuardPolicy, GuardSettings, load_settings
from docworker.errors import AfterFailure, ContentRefused, error_from_dict
from docworker.guard import Finding, SecurityReport, apply_policy, security_section
from tests.unit.guard import hostile_files as build

K = FindingKind

REPORT = SecurityReport(
    "application/pdf",
    "pdf",
    "a.pdf",
    "application/pdf",
    (
        Finding(K.PDF_URI_ACTIONS, "2 URI action(s)", "object 3", 2),
        Finding(K.PDF_JAVASCRIPT, "JavaScript", "object 4"),
        Finding(K.EICAR, "the EICAR anti-malware test string", "byte 0"),
    ),
)


def test_defaults_report_everything_but_eicar_and_yara_which_they_refuse() -> None:
    settings = GuardSettings()
    refused = {k for k in K if settings.policy_for(k) is GuardPolicy.REFUSE}
    assert refused == {K.EICAR, K.YARA}


def test_allow_drops_report_keeps_and_refuse_keeps_and_names() -> None:
    settings = GuardSettings(policy={"pdf_uri_actions": "allow"})
    report, refused = apply_policy(REPORT, settings)
    assert [f.kind for f in report.findings] == [K.PDF_JAVASCRIPT, K.EICAR]
    assert [f.kind for f in refused] == [K.EICAR]
    # A kind the settings leave out keeps its default (eicar: refuse).
    assert settings.policy_for(K.EICAR) is GuardPolicy.REFUSE


def test_a_tenant_override_wins_for_that_tenant_only() -> None:
    settings = GuardSettings(
        policy={"pdf_javascript": "refuse"},
        tenants={"lab": {"eicar": "report", "pdf_javascript": "allow"}},
    )
    lab, lab_refused = apply_policy(REPORT, settings, "lab")
    assert [f.kind for f in lab.findings] == [K.PDF_URI_ACTIONS, K.EICAR]
    assert lab_refused == []
    other, other_refused = apply_policy(REPORT, settings, "someone-else")
    assert [f.kind for f in other_refused] == [K.PDF_JAVASCRIPT, K.EICAR]
    assert len(other.findings) == 3
    _, no_tenant = apply_policy(REPORT, settings, None)
    assert [f.kind for f in no_tenant] == [K.PDF_JAVASCRIPT, K.EICAR]


def test_unknown_kinds_and_policies_are_refused_in_the_settings() -> None:
    with pytest.raises(ValidationError):
        GuardSettings(policy={"eicr": "allow"})
    with pytest.raises(ValidationError):
        GuardSettings(tenants={"lab": {"eicar": "ignore"}})


def test_policies_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCWORKER_GUARD__POLICY__EICAR", "allow")
    monkeypatch.setenv("DOCWORKER_GUARD__TENANTS", '{"Lab": {"office_macros": "refuse"}}')
    guard = load_settings().guard
    assert guard.policy_for(K.EICAR) is GuardPolicy.ALLOW
    assert guard.policy_for(K.YARA) is GuardPolicy.REFUSE  # left out: its default
    assert guard.policy_for(K.OFFICE_MACROS, "Lab") is GuardPolicy.REFUSE
    assert guard.policy_for(K.OFFICE_MACROS) is GuardPolicy.REPORT


def test_a_refusal_names_the_refused_findings_and_survives_a_job_row(tmp_path: Path) -> None:
    eicar = tmp_path / "eicar.txt"
    eicar.write_bytes(build.EICAR)
    actions = build.pdf_with_actions(tmp_path / "actions.pdf")
    files = [(actions, "actions.pdf", None), (eicar, "eicar.txt", None)]
    with pytest.raises(ContentRefused) as caught:
        security_section(files, GuardSettings())
    error = caught.value
    assert error.code == "content-refused"
    assert error.after_failure is AfterFailure.FAILED
    assert "eicar" in error.detail
    [refused] = error.fields["findings"]
    assert refused["kind"] == "eicar"
    assert refused["file"] == "eicar.txt"  # a further input names its file
    rebuilt = error_from_dict(error.to_dict())
    assert isinstance(rebuilt, ContentRefused)
    assert rebuilt.fields == error.fields


def test_the_section_lists_further_inputs_as_others(tmp_path: Path) -> None:
    first = build.plain_pdf(tmp_path / "first.pdf")
    second = build.pdf_with_actions(tmp_path / "second.pdf")
    section = security_section(
        [(first, "first.pdf", None), (second, "second.pdf", None)], GuardSettings()
    )
    assert section["findings"] == []
    assert section["claimed"] == {"name": "first.pdf", "mime": "application/pdf"}
    [other] = section["others"]
    assert other["claimed"]["name"] == "second.pdf"
    assert {f["kind"] for f in other["findings"]} >= {"pdf_javascript", "pdf_launch_action"}
