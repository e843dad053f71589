"""The v1 API's pure pieces: Go encodings, state mapping, router rules, result shapes,
Markdown clean-up and the cache folder."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from docworker.api.v1.encoding import GO_ZERO_TIME, go_duration, nanoseconds, v1_time
from docworker.api.v1.errors import ResultRefused
from docworker.api.v1.extraction import (
    full_result,
    one_line,
    range_result,
    source_kind,
)
from docworker.api.v1.http import V1Router, is_v1_path
from docworker.api.v1.jobs import failed_attempts, v1_state
from docworker.api.v1.markdown_text import kind_of, markdown_of, tidy
from docworker.cache import FileCache
from docworker.config import load_settings, parse_go_bool
from docworker.jobs.store import JobRecord, JobStatus

NOW = datetime(2025, 8, 26, 15, 1, 51, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (1e-9, "1ns"),
        (0.000999, "999µs"),
        (0.0015, "1.5ms"),
        (59.999, "59.999s"),
        (60, "1m0s"),
        (3600, "1h0m0s"),
        (90 * 60, "1h30m0s"),
        (7 * 86400, "168h0m0s"),
        (-1.5, "-1.5s"),
    ],
)
def test_go_duration_strings(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_times_print_as_go_prints_them() -> None:
    assert v1_time(NOW) == "2025-08-26T15:01:51.123456Z"
    assert v1_time(NOW.replace(microsecond=500000)) == "2025-08-26T15:01:51.5Z"
    assert v1_time(NOW.replace(microsecond=0)) == "2025-08-26T15:01:51Z"
    east = NOW.astimezone(UTC).replace(tzinfo=None)
    assert v1_time(NOW.astimezone(UTC)) == v1_time(east.replace(tzinfo=UTC))
    assert GO_ZERO_TIME == "0001-01-01T00:00:00Z"
    assert nanoseconds(2.5) == 2_500_000_000 and isinstance(nanoseconds(0.1), int)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (JobStatus.QUEUED, "pending"),
        (JobStatus.RUNNING, "processing"),
        (JobStatus.SUCCEEDED, "completed"),
        (JobStatus.PARTIAL, "completed"),
        (JobStatus.FAILED, "failed"),
        (JobStatus.DEAD, "failed"),
        (JobStatus.CANCELLED, "failed"),
    ],
)
def test_v2_states_map_to_v1_states(status: JobStatus, state: str) -> None:
    assert v1_state(status) == state


def _record(status: JobStatus, attempts: int, **changes: Any) -> JobRecord:
    fields: dict[str, Any] = {
        "id": "0b6c3f2e-8d6e-4b7e-9a35-2f4f7e2d9a10",
        "operation": "extract",
        "params": {},
        "status": status,
        "priority": 0,
        "input": None,
        "idempotency_key": None,
        "attempts": attempts,
        "max_attempts": 3,
        "error": None,
        "result": None,
        "progress": 0.0,
        "progress_message": None,
        "created_at": NOW,
        "updated_at": NOW,
        "started_at": NOW,
        "finished_at": NOW + timedelta(seconds=2),
        "run_after": None,
        "worker": None,
        "heartbeat_at": None,
        "cancel_requested": False,
    }
    return JobRecord(**(fields | changes))


@pytest.mark.parametrize(
    ("status", "attempts", "failed"),
    [
        (JobStatus.QUEUED, 0, 0),
        (JobStatus.QUEUED, 1, 1),  # waiting to be retried
        (JobStatus.RUNNING, 2, 1),
        (JobStatus.SUCCEEDED, 1, 0),
        (JobStatus.SUCCEEDED, 3, 2),
        (JobStatus.DEAD, 3, 3),
        (JobStatus.FAILED, 1, 1),
    ],
)
def test_retry_count_is_the_failed_attempts(status: JobStatus, attempts: int, failed: int) -> None:
    assert failed_attempts(_record(status, attempts)) == failed


def test_router_rules() -> None:
    router = V1Router(["/api/v1/job/{id}", "/api/v1/queue/stats", "/health/liveness"])
    assert router.canonical("/API/V1/Queue/Stats/") == "/api/v1/queue/stats"
    assert router.canonical("/api/v1/JOB/AbC-1") == "/api/v1/job/AbC-1"
    assert router.canonical("/Health/Liveness") == "/health/liveness"
    assert router.canonical("/api/v1/job/") is None  # an empty parameter matches nothing
    assert router.canonical("/api/v1/queue/stats//") is None  # only one slash is ignored
    assert is_v1_path("/API/v1/x") and is_v1_path("/metrics/")
    assert not is_v1_path("/api/v2/jobs") and not is_v1_path("/api/v10/x")


def test_go_booleans_and_v1_cache_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_go_bool("T") and not parse_go_bool("False")
    with pytest.raises(ValueError):
        parse_go_bool("yes")
    monkeypatch.setenv("CACHE_ENABLED", "0")
    monkeypatch.setenv("CACHE_TTL", "1h30m")
    monkeypatch.setenv("CACHE_MAX_SIZE_MB", "2")
    monkeypatch.setenv("CACHE_CLEANUP_AGE", "2h")
    monkeypatch.setenv("CACHE_DIRECTORY", "/var/cache/dw")
    v1 = load_settings().v1
    assert v1.cache_enabled is False and v1.cache_ttl == 5400
    assert v1.cache_max_size == 2 * 1024 * 1024 and v1.cache_cleanup_age == 7200
    assert v1.cache_directory == Path("/var/cache/dw")
    monkeypatch.setenv("CACHE_MAX_SIZE", "1000")
    assert load_settings().v1.cache_max_size == 1000  # bytes win over MiB


def test_source_kinds_and_normalisation() -> None:
    assert source_kind("application/pdf") == "pdf"
    assert source_kind("application/msword") == "office"
    assert source_kind("application/vnd.oasis.opendocument.text") == "office"
    assert source_kind("text/csv") == "text"
    assert source_kind("image/png") is None
    assert one_line("  a\n\tb\x07  c \r\n") == "a b c"


def test_extraction_results_follow_v1() -> None:
    record = _record(JobStatus.SUCCEEDED, 1)
    pdf = {"mime": "application/pdf", "content": "Été\n\nline two", "metadata": {"page_count": 3}}
    result = full_result(pdf, "a.pdf", record)
    assert result["text"] == "Été line two" and result["char_count"] == 14
    assert result["duration"] == 2_000_000_000 and result["page_count"] == 3
    assert result["metadata"]["pdf_info"] == {"pages": 3}
    plain = {"mime": "text/plain", "content": " kept\n as is \n", "metadata": {}}
    assert full_result(plain, "a.txt", record)["text"] == " kept\n as is \n"
    with pytest.raises(ResultRefused, match="unsupported file type: image/png"):
        full_result({"mime": "image/png", "content": ""}, "a.png", record)
    with pytest.raises(ResultRefused, match=r"exceeds document pages \(3\)"):
        range_result(pdf, "a.pdf", 2, 4, record)


def test_markdown_keeps_v1_page_separators_and_clean_up() -> None:
    payload = {
        "mime": "application/pdf",
        "content": "",
        "pages": [
            {"page": 1, "content": "# Title\nText"},
            {"page": 2, "content": "  "},
            {"page": 3, "content": "| a |\n| - |\nafter"},
        ],
    }
    assert markdown_of(payload) == "# Title\n\nText\n\n---\n\n*Page 3*\n\n| a |\n| - |\n\nafter"
    assert tidy("a\n\n\n\n\nb") == "a\n\nb"
    assert kind_of("application/pdf") == "pdf"
    assert kind_of("application/vnd.openxmlformats-officedocument.wordprocessingml.document") == (
        "office"
    )
    assert kind_of("text/plain") is None


def test_cache_folder_size_clear_and_sweep(tmp_path: Path) -> None:
    cache = FileCache(tmp_path / "cache", max_size=250, cleanup_age=3600)
    assert cache.size() == 0
    cache.ensure()
    now = time.time()
    ages = {"old.bin": 7200, "older-kept.bin": 300, "new.bin": 10, "newest.bin": 1}
    for name, age in ages.items():
        path = cache.directory / "d" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x" * 100)
        os.utime(path, (now - age, now - age))
    assert cache.size() == 400
    report = cache.sweep(now)
    assert (report.removed_old, report.removed_for_size, report.size_after) == (1, 1, 200)
    assert sorted(p.name for p in cache.directory.rglob("*.bin")) == ["new.bin", "newest.bin"]
    assert cache.writable() is None
    assert cache.clear() == 2 and list(cache.directory.iterdir()) == []


def test_batch_plans_stay_under_the_root_and_the_file_limit(tmp_path: Path) -> None:
    from docworker.api.v1.errors import V1Error
    from docworker.api.v1.markdown_batch import BatchRequest

    root = tmp_path / "root"
    (root / "in" / "deep").mkdir(parents=True)
    pdf = b"%PDF-1.4\n%%EOF\n"
    for name in ("a.pdf", "deep/b.pdf", "deep/c.pdf"):
        (root / "in" / name).write_bytes(pdf)
    (root / "in" / "notes.txt").write_text("not converted")
    (tmp_path / "outside.pdf").write_bytes(pdf)
    (root / "in" / "link.pdf").symlink_to(tmp_path / "outside.pdf")

    plan = BatchRequest(input_directory="in").plan(root, 10)
    assert plan.target == (root / "in_markdown").resolve()
    names = sorted(path.name for path, _ in plan.files)
    assert names == ["a.pdf", "b.pdf", "c.pdf"]  # the link leads outside: left out
    with pytest.raises(V1Error, match="Batch conversion failed") as too_many:
        BatchRequest(input_directory="in").plan(root, 2)
    assert "more than 2 files" in str(too_many.value.details)
    for spec in (
        BatchRequest(input_directory=str(tmp_path)),
        BatchRequest(input_directory="../"),
        BatchRequest(input_directory="in", output_directory=str(tmp_path / "out")),
        BatchRequest(input_directory="missing"),
    ):
        with pytest.raises(V1Error) as refused:
            spec.plan(root, 10)
        assert refused.value.status == 500 and refused.value.error == "Batch conversion failed"
