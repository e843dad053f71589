"""The ``unpack`` operation on corpus archives: the tree of entries, each file an artifact
with the bytes of the entry, and the entries refused or failed as the result's errors."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from bench.scoring import corpus_root
from docworker.config import ArchiveSettings, Settings
from docworker.errors import UnsupportedFormat
from docworker.operations import get_operation, validate_params
from docworker.operations.base import InputFile, OperationContext, Result

CORPUS = corpus_root()
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="test corpus not present")
OPERATION = get_operation("unpack")


def run(tmp_path: Path, path: Path, settings: Settings | None = None, **params: Any) -> Result:
    workdir = tmp_path / f"job-{path.name}"
    workdir.mkdir()
    ctx = OperationContext(workdir=workdir, settings=settings or Settings())
    return OPERATION.run(ctx, InputFile(path, path.name), validate_params(OPERATION, params))


def test_every_file_is_an_artifact_named_in_its_entry(tmp_path: Path) -> None:
    result = run(tmp_path, CORPUS / "archives/zip-of-zip.zip")
    entries = result.payload["entries"]
    assert [(e["path"], e["depth"], e.get("artifact")) for e in entries] == [
        ("html-within-zip.zip", 1, None),
        ("html-within-zip.zip/text.html", 2, "2-text.html"),
    ]
    (artifact,) = result.artifacts
    assert (artifact.name, artifact.mime) == ("2-text.html", "text/html")
    assert artifact.path.parent == tmp_path / "job-zip-of-zip.zip"
    assert hashlib.sha256(artifact.path.read_bytes()).hexdigest() == entries[1]["sha256"]
    assert result.errors == []
    assert result.payload["counts"] == {"ok": 2, "refused": 0, "failed": 0}


def test_artifact_names_are_ascii_whatever_the_entry(tmp_path: Path) -> None:
    result = run(tmp_path, CORPUS / "archives/gbk-filenames.zip")
    (entry,) = result.payload["entries"]
    assert entry["path"].startswith("审计压缩包文件检索测试/")
    assert entry["artifact"].isascii() and entry["artifact"].endswith("_V4.0.doc")


def test_refused_and_failed_entries_are_errors_of_a_partial_result(tmp_path: Path) -> None:
    result = run(tmp_path, CORPUS / "hostile/zip-slip.zip")
    assert [a.name for a in result.artifacts] == ["1-good.txt"]
    (error,) = result.errors
    assert error["code"] == "hostile-input" and error["path"].endswith("tmp/evil.txt")
    written = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert written == {result.artifacts[0].path}
    locked = run(tmp_path, CORPUS / "archives/encrypted.zip")
    assert [e["code"] for e in locked.errors] == ["password-required"]


def test_the_password_opens_a_7z(tmp_path: Path) -> None:
    result = run(tmp_path, CORPUS / "archives/encrypted-password-Tika.7z", password="Tika")
    assert result.errors == []
    assert result.artifacts[0].path.read_bytes().startswith(b"TEST DATA FOR TIKA.")


def test_limits_come_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(archives=ArchiveSettings(max_depth=1))
    result = run(tmp_path, CORPUS / "archives/zip-of-zip.zip", settings)
    (entry,) = result.payload["entries"]
    assert (entry["status"], entry["code"]) == ("refused", "limit-exceeded")
    assert result.errors[0]["code"] == "limit-exceeded"


def test_what_is_no_archive_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormat):
        run(tmp_path, CORPUS / "hostile/eicar.txt")
