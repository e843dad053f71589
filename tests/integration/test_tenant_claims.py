"""Tenants sharing the job store, on SQLite and PostgreSQL: the cap on a tenant's active
jobs at admission, and claims shared fairly across tenants."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from docworker.auth import Principal
from docworker.errors import ActiveJobsLimit
from docworker.jobs.queue import JobInput
from docworker.jobs.store import ClaimPolicy, JobStatus, JobStore, _claim_candidate
from tests.integration.test_job_store import add, new_job, run_together
from tests.integration.test_local_executor import SMALL_TEXT, Harness, _done, _settings

FAIR = ClaimPolicy()


def claim_tenants(store: JobStore, count: int, policy: ClaimPolicy = FAIR) -> list[str]:
    """The tenants of the next ``count`` claims ('-' for none left, 'open' for no tenant)."""
    found = []
    for _ in range(count):
        job = store.claim_next("w", policy=policy)
        found.append("-" if job is None else job.tenant or "open")
    return found


# -- fair claims ----------------------------------------------------------------------


def test_a_tenant_running_more_waits_for_the_others(store: JobStore) -> None:
    add(store, 6, tenant="a")
    add(store, 3, tenant="b")
    # b's jobs are younger, yet each free worker goes to the tenant running fewer.
    assert claim_tenants(store, 10) == ["a", "b", "a", "b", "a", "b", "a", "a", "a", "-"]


def test_one_worker_alternates_between_tenants(store: JobStore) -> None:
    add(store, 3, tenant="a")
    add(store, 2, tenant="b")
    served = []
    # One worker: each job ends before the next is claimed, so no tenant is running;
    # the tenant served least recently goes first.
    while (job := store.claim_next("w")) is not None:
        served.append(job.tenant)
        store.mark_succeeded(job.id, {"uri": "r"})
    assert served == ["a", "b", "a", "b", "a"]


def test_without_fairness_claims_go_by_priority_and_age(store: JobStore) -> None:
    add(store, 3, tenant="a")
    add(store, 2, tenant="b")
    plain = ClaimPolicy(fair=False)
    assert claim_tenants(store, 6, plain) == ["a", "a", "a", "b", "b", "-"]


def test_priority_and_age_order_each_tenant_and_break_ties(store: JobStore) -> None:
    (a_low,) = add(store, tenant="a")
    (a_high,) = add(store, tenant="a", priority=5)
    (b_high,) = add(store, tenant="b", priority=9)
    order = [store.claim_next("w") for _ in range(3)]
    assert [job.id if job else None for job in order] == [b_high.id, a_high.id, a_low.id]


def test_jobs_of_no_tenant_are_a_tenant_of_their_own(store: JobStore) -> None:
    add(store, 3)
    add(store, 2, tenant="a")
    assert claim_tenants(store, 6) == ["open", "a", "open", "a", "open", "-"]


def test_retried_jobs_wait_their_turn(store: JobStore) -> None:
    (early,) = add(store, tenant="a")
    store.claim_next("w")
    store.mark_failed(early.id, {"code": "engine-failed"}, retry_delay=3600)
    add(store, tenant="a")
    assert claim_tenants(store, 2) == ["a", "-"]
    assert store.claim_next("w", operations={"convert"}) is None


def test_max_running_per_tenant(store: JobStore) -> None:
    add(store, 4, tenant="a")
    add(store, tenant="b")
    capped = ClaimPolicy(max_running=2)
    first = store.claim_next("w", policy=capped)
    assert first is not None
    # a runs two, b ran its one: a's other jobs wait although workers are free.
    assert claim_tenants(store, 3, capped) == ["b", "a", "-"]
    store.mark_succeeded(first.id, {"uri": "r"})
    assert claim_tenants(store, 2, capped) == ["a", "-"]
    # The cap holds without fairness too.
    assert claim_tenants(store, 1, ClaimPolicy(fair=False, max_running=2)) == ["-"]


def test_parts_count_for_their_tenant(store: JobStore) -> None:
    add(store, 2, tenant="b")
    assert claim_tenants(store, 1) == ["b"]
    add(store, tenant="a")
    job = store.claim_next("w")
    assert job is not None and job.tenant == "a"
    store.split(job.id, [{"params": {"pages": str(n)}} for n in (1, 2, 3)])
    claimed = [store.claim_next("w") for _ in range(5)]
    # The job waiting for its parts runs nowhere: a runs none and b one, so a part goes
    # first (were the job counted, both would run one and b, served longer ago, would
    # go first). Then each running part counts for a: b's job comes in between.
    assert [(c.tenant, c.part) if c else None for c in claimed] == [
        ("a", 0),
        ("b", None),
        ("a", 1),
        ("a", 2),
        None,
    ]


def test_the_claim_is_one_walk_of_indexes(store: JobStore, database_url: str) -> None:
    """Whatever the queue's length, the claim seeks in indexes: it never reads the whole
    jobs table nor sorts all queued jobs (only the one candidate of each tenant)."""
    add(store, 3, tenant="a")
    candidate = _claim_candidate(frozenset({"extract"}), ClaimPolicy(max_running=3))
    candidate = candidate.params(at=datetime.now(UTC))
    with store.transaction() as session:
        compiled = candidate.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
        if database_url.startswith("sqlite"):
            plan = [row[3] for row in session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
            assert not [step for step in plan if step.startswith("SCAN") and "jobs" in step]
            seeks = [step for step in plan if step.startswith("SEARCH")]
            assert all("INDEX" in step for step in seeks), plan
        else:
            # A table this small would be read whole by choice: forbid it, and see that
            # the plan needs no table scan anyway.
            session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = [row[0] for row in session.execute(text(f"EXPLAIN {compiled}"))]
            assert not [step for step in plan if "Seq Scan" in step], plan
    for index in ("ix_jobs_claim_tenant", "ix_jobs_tenant_started"):
        assert any(index in step for step in plan), plan


def test_a_claim_looks_past_a_job_another_claimer_holds(store: JobStore, database_url: str) -> None:
    """PostgreSQL skips the rows other claimers hold, and the fair claim weighs one job per
    tenant: with the tenant's first job held, its next ones must still be given (a claim
    that found nothing would spend a Celery message's turn on no job)."""
    held, following = add(store, 2, tenant="a")
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite claims one at a time: no row is held while another claims")
    engine = create_engine(database_url)
    try:
        with engine.connect() as holder:
            lock = text("SELECT id FROM jobs WHERE id = :id FOR UPDATE")
            holder.execute(lock, {"id": held.id})
            released = threading.Timer(0.05, holder.rollback)
            released.start()
            job = store.claim_next("w")
            released.join()
    finally:
        engine.dispose()
    assert job is not None and job.id in {held.id, following.id}
    assert store.claim_next("w") is not None and store.claim_next("w") is None


# -- the cap on active jobs -------------------------------------------------------------


def test_the_cap_on_active_jobs_holds_under_concurrent_submissions(store: JobStore) -> None:
    def submit(index: int) -> str:
        try:
            store.create(new_job(tenant="busy"), max_active=5)
        except ActiveJobsLimit as refused:
            assert refused.fields["max_active_jobs"] == 5
            assert refused.fields["retry_after"] >= 1
            return "refused"
        return "queued"

    outcomes = run_together(20, submit)
    assert outcomes.count("queued") == 5 and outcomes.count("refused") == 15
    # Another tenant is not held back by this one.
    assert store.create(new_job(tenant="calm"), max_active=5)[1]


def test_the_cap_counts_queued_and_running_jobs_not_parts(store: JobStore) -> None:
    add(store, 2, tenant="t")
    job = store.claim_next("w")
    assert job is not None
    store.split(job.id, [{"params": {"pages": str(n)}} for n in (1, 2, 3)])
    # One job waits for its three parts, one is queued: two active jobs.
    with pytest.raises(ActiveJobsLimit) as refused:
        store.create(new_job(tenant="t"), max_active=2)
    assert refused.value.fields["active_jobs"] == 2
    assert "at most 2" in refused.value.detail
    assert store.create(new_job(tenant="t"), max_active=3)[1]
    # The same request again is its first job, even at the cap; a job that ended frees
    # its place.
    (keyed,) = add(store, tenant="u", idempotency_key="k")
    assert store.create(new_job(tenant="u", idempotency_key="k"), max_active=1) == (keyed, False)
    store.request_cancel(keyed.id)
    assert store.create(new_job(tenant="u"), max_active=1)[1]


# -- the local executor -------------------------------------------------------------------


def test_the_local_executor_serves_tenants_in_turn(tmp_path: Path) -> None:
    """One worker, real processes: the jobs of two tenants, all queued before it starts,
    run in turn although one tenant's were all submitted first."""
    harness = Harness(_settings(tmp_path))
    blob = harness.blobs.put_file(SMALL_TEXT)
    submitted = []
    for tenant, count in (("a", 3), ("b", 2)):
        caller = Principal(tenant=tenant, key_id=None, scopes=frozenset({"submit"}))
        for _ in range(count):
            record, _ = harness.queue.submit(
                "extract", {"output": "text"}, JobInput(blob, name="a.txt"), caller=caller
            )
            submitted.append(record.id)
    harness.executor.start()
    try:
        done = [harness.wait_until(job_id, _done) for job_id in submitted]
    finally:
        harness.executor.stop()
        harness.store.close()
    assert all(job.status is JobStatus.SUCCEEDED for job in done)
    in_order = sorted(done, key=lambda job: job.started_at or job.created_at)
    assert [job.tenant for job in in_order] == ["a", "b", "a", "b", "a"]
