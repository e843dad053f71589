"""Audit events, job costs and daily quotas in the job store, against SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from docworker.auth import Principal
from docworker.config import AuditSettings
from docworker.errors import PayloadTooLarge, QuotaExceeded
from docworker.jobs.audit import AuditFilter, AuditKind, AuditLog, AuditRecord, RefusalLog
from docworker.jobs.keys import KeyStore
from docworker.jobs.retention import purge_audit
from docworker.jobs.store import JobCost, JobRecord, JobStore, NewJob
from docworker.jobs.usage import QuotaCounters, Quotas, utc_day

INPUT = {"uri": "blob://inputs/ab", "sha256": "ab" * 32, "size": 1000, "name": "a.pdf"}
KEY = "k" * 16


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
    else:
        url = request.getfixturevalue("postgres_db_url")
    job_store = JobStore(url)
    job_store.migrate()
    yield job_store
    job_store.close()


def _new(key_id: str | None = KEY, tenant: str | None = "alpha", **changes: Any) -> NewJob:
    fields: dict[str, Any] = {
        "operation": "extract",
        "params": {},
        "input": INPUT,
        "tenant": tenant,
        "key_id": key_id,
        "client": "10.0.0.7",
    }
    return NewJob(**(fields | changes))


def _running(store: JobStore, **changes: Any) -> JobRecord:
    record, _ = store.create(_new(**changes))
    claimed = store.claim_next("w1")
    assert claimed is not None and claimed.id == record.id
    return claimed


def _event(store: JobStore, job_id: str) -> AuditRecord:
    events, _ = AuditLog(store).list(AuditFilter(job_id=job_id))
    (event,) = events
    return event


# -- audit events of jobs -------------------------------------------------------------------


def test_an_ended_job_leaves_one_audit_event_with_its_cost(store: JobStore) -> None:
    job = _running(store)
    store.mark_succeeded(job.id, {"uri": "x"}, cost=JobCost(cpu_seconds=1.25, pages=7))
    event = _event(store, job.id)
    assert (event.kind, event.outcome, event.operation) == ("job", "succeeded", "extract")
    assert (event.key_id, event.tenant, event.client) == (KEY, "alpha", "10.0.0.7")
    assert (event.input_sha256, event.input_bytes, event.pages) == ("ab" * 32, 1000, 7)
    assert event.cpu_seconds == pytest.approx(1.25)
    assert event.duration is not None and event.duration >= 0
    assert event.detail == {"attempts": 1}
    record = store.get(job.id)
    assert (record.cpu_seconds, record.pages) == (pytest.approx(1.25), 7)


def test_attempts_add_up_and_only_the_final_state_is_audited(store: JobStore) -> None:
    job = _running(store)
    error = {"code": "engine-failed", "detail": "x"}
    store.mark_failed(job.id, error, retry_delay=0, cost=JobCost(cpu_seconds=0.5))
    assert AuditLog(store).list(AuditFilter(job_id=job.id))[0] == []
    assert store.claim_next("w1") is not None
    store.mark_failed(job.id, {"code": "corrupt-document"}, retry_delay=None, cost=JobCost(0.25))
    event = _event(store, job.id)
    assert event.outcome == "failed" and event.cpu_seconds == pytest.approx(0.75)
    assert event.detail == {"attempts": 2, "error": "corrupt-document"}


def test_cancelled_and_dead_jobs_are_audited(store: JobStore) -> None:
    queued, _ = store.create(_new())
    store.request_cancel(queued.id)
    assert _event(store, queued.id).outcome == "cancelled"
    running = _running(store, max_attempts=1)
    store.requeue_worker("w1")
    assert _event(store, running.id).outcome == "dead"


def test_parts_add_up_to_their_parent(store: JobStore) -> None:
    parent = _running(store)
    _, parts = store.split(
        parent.id,
        [{"params": {"pages": "1"}}, {"params": {"pages": "2"}}],
        cost=JobCost(cpu_seconds=0.1),
    )
    for part, cpu in zip(parts, (2.0, 3.0), strict=True):
        claimed = store.claim_next("w1")
        assert claimed is not None and claimed.id == part.id
        store.mark_succeeded(part.id, {"uri": "p"}, cost=JobCost(cpu_seconds=cpu, pages=1))
    # The parts leave no audit events of their own.
    assert AuditLog(store).list(AuditFilter(kind="job"))[0] == []
    merging = store.claim_next("w1")
    assert merging is not None and merging.id == parent.id
    assert merging.cpu_seconds == pytest.approx(5.1) and merging.pages == 2
    store.mark_succeeded(parent.id, {"uri": "m"}, cost=JobCost(cpu_seconds=0.2, pages=2))
    event = _event(store, parent.id)
    assert event.cpu_seconds == pytest.approx(5.3) and event.pages == 2
    assert event.detail == {"attempts": 1, "parts": 2}
    counted = QuotaCounters(store).spent(KEY, utc_day(datetime.now(UTC)))
    assert counted.cpu_seconds == pytest.approx(5.3) and counted.pages == 2


def test_a_part_ending_after_its_cancelled_parent_adds_its_cpu(store: JobStore) -> None:
    parent = _running(store)
    _, (part,) = store.split(parent.id, [{"params": {"pages": "1"}}])
    assert store.claim_next("w1") is not None
    store.request_cancel(parent.id)  # the parent ends now, the running part later
    assert _event(store, parent.id).cpu_seconds == 0
    store.mark_cancelled(part.id, cost=JobCost(cpu_seconds=4.0))
    assert _event(store, parent.id).cpu_seconds == pytest.approx(4.0)
    assert store.get(parent.id).cpu_seconds == pytest.approx(4.0)


# -- quotas ----------------------------------------------------------------------------------


def test_requests_and_bytes_are_counted_when_a_job_is_queued(store: JobStore) -> None:
    quotas = Quotas(requests_per_day=2, bytes_per_day=10_000)
    store.create(_new(), quotas=quotas)
    store.create(_new(), quotas=quotas)
    with pytest.raises(QuotaExceeded) as refused:
        store.create(_new(), quotas=quotas)
    fields = refused.value.fields
    assert (fields["quota"], fields["limit"], fields["used"]) == ("requests_per_day", 2, 2)
    midnight = datetime.combine(utc_day(datetime.now(UTC)) + timedelta(days=1), datetime.min.time())
    left = (midnight.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds()
    assert 0 < fields["retry_after"] <= left + 1
    assert fields["resets_at"].endswith("T00:00:00Z")
    # Nothing was queued for the refused job, nor counted.
    assert sum(store.counts().values()) == 2
    assert QuotaCounters(store).spent(KEY, utc_day(datetime.now(UTC))).requests == 2
    # Another key has a day of its own; a job without a key is not counted.
    store.create(_new(key_id="other" * 3 + "x"), quotas=quotas)
    store.create(_new(key_id=None), quotas=Quotas(requests_per_day=0))


def test_an_input_past_the_bytes_left_is_refused(store: JobStore) -> None:
    quotas = Quotas(bytes_per_day=2500)
    store.create(_new(), quotas=quotas)
    store.create(_new(), quotas=quotas)
    with pytest.raises(QuotaExceeded) as refused:
        store.create(_new(), quotas=quotas)
    assert refused.value.fields["quota"] == "bytes_per_day"
    assert "do not fit" in refused.value.detail
    with pytest.raises(PayloadTooLarge):
        store.create(_new(input=INPUT | {"size": 3000}), quotas=quotas)


def test_pages_and_cpu_admit_while_under_the_quota(store: JobStore) -> None:
    quotas = Quotas(pages_per_day=10, cpu_seconds_per_day=5.0)
    first = _running(store)
    store.mark_succeeded(first.id, {"uri": "x"}, cost=JobCost(cpu_seconds=1.0, pages=9))
    second = _running(store)  # 9 < 10 pages: admitted, and it may pass the quota
    store.mark_succeeded(second.id, {"uri": "x"}, cost=JobCost(cpu_seconds=1.0, pages=30))
    with pytest.raises(QuotaExceeded) as refused:
        store.create(_new(), quotas=quotas)
    assert refused.value.fields["quota"] == "pages_per_day"
    assert refused.value.fields["used"] == 39
    with pytest.raises(QuotaExceeded) as by_cpu:
        store.create(_new(), quotas=Quotas(cpu_seconds_per_day=2.0))
    assert by_cpu.value.fields["quota"] == "cpu_seconds_per_day"


def test_quotas_hold_exactly_under_concurrent_clients(store: JobStore) -> None:
    quotas = Quotas(requests_per_day=7, bytes_per_day=50_000)
    start = threading.Barrier(8)

    def submit(_: int) -> str:
        start.wait()
        outcomes = []
        for _ in range(5):
            try:
                store.create(_new(), quotas=quotas)
                outcomes.append("queued")
            except QuotaExceeded:
                outcomes.append("refused")
        return ",".join(outcomes)

    with ThreadPoolExecutor(8) as pool:
        results = ",".join(pool.map(submit, range(8))).split(",")
    assert results.count("queued") == 7 and results.count("refused") == 33
    spent = QuotaCounters(store).spent(KEY, utc_day(datetime.now(UTC)))
    assert (spent.requests, spent.bytes_in) == (7, 7000)
    assert sum(store.counts().values()) == 7


# -- reading the trail -----------------------------------------------------------------------


def _finished(store: JobStore, operation: str, tenant: str, outcome: str, cpu: float) -> None:
    job = _running(store, operation=operation, tenant=tenant)
    if outcome == "failed":
        store.mark_failed(job.id, {"code": "x"}, retry_delay=None, cost=JobCost(cpu))
    else:
        store.mark_succeeded(job.id, {"uri": "x"}, cost=JobCost(cpu_seconds=cpu, pages=2))


def test_filters_pages_and_usage(store: JobStore) -> None:
    for operation, tenant, outcome, cpu in [
        ("extract", "alpha", "succeeded", 1.0),
        ("extract", "alpha", "failed", 0.5),
        ("ocr", "alpha", "succeeded", 3.0),
        ("extract", "beta", "succeeded", 2.0),
    ]:
        _finished(store, operation, tenant, outcome, cpu)
    audit = AuditLog(store)
    assert len(audit.list(AuditFilter(tenant="alpha"))[0]) == 3
    assert len(audit.list(AuditFilter(tenant="alpha", outcome="failed"))[0]) == 1
    assert len(audit.list(AuditFilter(operation="ocr"))[0]) == 1
    assert audit.list(AuditFilter(since=datetime.now(UTC) + timedelta(seconds=5)))[0] == []
    seen: list[int] = []
    page, cursor = audit.list(AuditFilter(), limit=3)
    seen += [e.id for e in page]
    assert cursor is not None
    rest, last = audit.list(AuditFilter(), limit=3, cursor=cursor)
    seen += [e.id for e in rest]
    assert last is None and len(seen) == len(set(seen)) == 4
    assert seen == sorted(seen, reverse=True)  # newest first

    groups = audit.usage(AuditFilter(), ["tenant", "operation"])
    by_group = {(g.group["tenant"], g.group["operation"]): g.figures for g in groups}
    alpha = by_group[("alpha", "extract")]
    assert alpha.jobs == 2 and alpha.outcomes == {"succeeded": 1, "failed": 1}
    assert alpha.cpu_seconds == pytest.approx(1.5) and alpha.input_bytes == 2000
    assert alpha.pages == 2
    assert by_group[("alpha", "ocr")].cpu_seconds == pytest.approx(3.0)
    (day,) = audit.usage(AuditFilter(tenant="beta"), ["day"])
    assert day.group == {"day": utc_day(datetime.now(UTC)).isoformat()}


def test_old_events_are_purged_per_tenant(store: JobStore) -> None:
    _finished(store, "extract", "alpha", "succeeded", 1.0)
    _finished(store, "extract", "beta", "succeeded", 1.0)
    audit = AuditLog(store)
    later = datetime.now(UTC) + timedelta(hours=2)
    assert audit.purge(3 * 3600, {"beta": 3600}, now=later) == 1
    assert [e.tenant for e in audit.list(AuditFilter())[0]] == ["alpha"]
    assert audit.purge(3600, {}, now=later) == 1
    counters = QuotaCounters(store)
    assert counters.spent(KEY, utc_day(datetime.now(UTC))).cpu_seconds == pytest.approx(2.0)
    kept = purge_audit(audit, counters, AuditSettings(retention=86400))
    assert kept == (0, 0)


# -- refusals and key changes ----------------------------------------------------------------


def test_refusals_are_gathered_and_written_together(store: JobStore) -> None:
    audit = AuditLog(store)
    refusals = RefusalLog(audit, max_events=2)
    for _ in range(50):
        refusals.add(
            AuditKind.INVALID_KEY,
            key_id="x",
            tenant=None,
            client="1.2.3.4",
            status=401,
            method="GET",
            path="/api/v2/jobs",
        )
    refusals.add(
        AuditKind.FORBIDDEN,
        key_id=KEY,
        tenant="alpha",
        client="1.2.3.4",
        status=403,
        method="GET",
        path="/api/v2/keys",
    )
    for path in ("/a", "/b"):  # past the two distinct events the buffer holds
        refusals.add(
            AuditKind.FORBIDDEN, key_id=KEY, tenant="alpha", client=None, status=403, path=path
        )
    assert refusals.flush() == 3
    events = {e.kind: e for e in audit.list(AuditFilter())[0]}
    invalid = events["auth.invalid-key"]
    assert invalid.detail is not None and invalid.detail["count"] == 50
    assert invalid.detail["path"] == "/api/v2/jobs" and invalid.outcome == "refused"
    assert events["audit.dropped"].detail == {"count": 2}
    assert refusals.flush() == 0


def test_key_changes_are_audited_in_their_transaction(store: JobStore) -> None:
    keys = KeyStore(store, b"s" * 40)
    admin = Principal(tenant="ops", key_id="a" * 16, scopes=frozenset({"admin"}), client="::1")
    record, _ = keys.create("alpha", ["read"], name="ci", actor=admin)
    rotated, _ = keys.rotate(record.id, actor=admin)
    keys.revoke(rotated.id, actor=admin)
    keys.revoke(rotated.id, actor=admin)  # already revoked: nothing happens, nothing audited
    events = AuditLog(store).list(AuditFilter(key_id=admin.key_id))[0]
    assert [e.kind for e in reversed(events)] == ["key.create", "key.rotate", "key.revoke"]
    created = events[-1]
    assert created.detail is not None
    assert (created.detail["key"], created.detail["key_tenant"]) == (record.id, "alpha")
    assert created.client == "::1" and created.tenant == "ops"
    assert events[1].detail is not None and events[1].detail["new_key"] == rotated.id
