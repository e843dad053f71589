"""YARA rules from the settings: a file or a folder, compiled once, matched per input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from docworker.config import FindingKind, GuardSettings
from docworker.guard import YaraUnavailable, load_rules, scan_file

MARKER = b"DOCWORKER-TEST-MARKER-7f3a"
RULE = """
rule docworker_marker : test {
    meta:
        description = "the marker of the guard's tests"
    strings:
        $marker = "DOCWORKER-TEST-MARKER-7f3a"
    condition:
        $marker
}
"""


def _input(tmp_path: Path, marked: bool) -> Path:
    path = tmp_path / ("marked.txt" if marked else "plain.txt")
    path.write_bytes(b"some text\n" + (MARKER if marked else b"") + b"\nmore text\n")
    return path


def test_no_rules_no_yara_scan(tmp_path: Path) -> None:
    report = scan_file(_input(tmp_path, True), "marked.txt", None, GuardSettings())
    assert report.findings == ()


def test_a_rules_file_matches_what_it_describes(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yar"
    rules.write_text(RULE)
    settings = GuardSettings(yara_rules=rules)
    marked = scan_file(_input(tmp_path, True), "marked.txt", None, settings)
    [finding] = marked.findings
    assert finding.kind is FindingKind.YARA
    assert finding.location == "docworker_marker"
    assert "tags: test" in finding.detail
    assert "the marker of the guard's tests" in finding.detail
    assert scan_file(_input(tmp_path, False), "plain.txt", None, settings).findings == ()


def test_a_rules_folder_compiles_each_file_in_its_own_namespace(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "markers.yara").write_text(RULE)
    (folder / "other.yar").write_text('rule never { strings: $a = "NEVER-SEEN-9q" condition: $a }')
    (folder / "notes.txt").write_text("not a rule")
    settings = GuardSettings(yara_rules=folder)
    [finding] = scan_file(_input(tmp_path, True), "marked.txt", None, settings).findings
    assert finding.location == "markers.docworker_marker"


def test_rules_are_compiled_once_and_again_when_they_change(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yar"
    rules.write_text(RULE)
    first = load_rules(rules)
    assert load_rules(rules) is first
    rules.write_text(RULE.replace("docworker_marker", "renamed_marker"))
    stat = rules.stat()
    os.utime(rules, (stat.st_atime, stat.st_mtime + 10))
    assert load_rules(rules) is not first


def test_rules_that_do_not_compile_are_a_clear_error_and_a_scan_error(tmp_path: Path) -> None:
    rules = tmp_path / "broken.yar"
    rules.write_text("rule broken { condition: nonsense_identifier }")
    with pytest.raises(YaraUnavailable, match=r"guard\.yara_rules"):
        load_rules(rules)
    report = scan_file(_input(tmp_path, True), "marked.txt", None, GuardSettings(yara_rules=rules))
    [finding] = report.findings
    assert finding.kind is FindingKind.SCAN_ERROR
    assert "guard.yara_rules" in finding.detail


def test_a_rules_path_that_does_not_exist_is_refused_in_the_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        GuardSettings(yara_rules=tmp_path / "missing.yar")


def test_an_empty_rules_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(YaraUnavailable, match=r"no \*\.yar"):
        load_rules(tmp_path)
