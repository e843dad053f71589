"""Capacity planning on each database: jobs with known times run through the job store's
own transitions (a clock set by the test stands in for the store's), then the figures,
the route (keys, scopes, bad parameters) and the command's output are checked."""

from __future__ import annotations

import io
import json
import statistics
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import func, inspect, select
from typer.testing import CliRunner

from docworker.api.app import create_app
from docworker.api.deps import Services
from docworker.cli import app as cli_app
from docworker.cli_capacity import render
from docworker.config import Settings, load_settings
from docworker.jobs import store as store_module
from docworker.jobs.capacity import check_query, measure, read_history
from docworker.jobs.capacity_history import ERROR_FACTOR, bucket_of
from docworker.jobs.models import CapacityBucket, CapacityHour, JobStatus, ServedResult
from docworker.jobs.retention import purge_expired
from docworker.jobs.store import JobRecord, JobStore, NewJob
from docworker.storage import BlobStore

SECRET = "k7Hq2Lx9Vd3Rt8Wz1Mb6Np4Fs0Gc5Jy7Ae2Ku9"
CRASH = {"code": "engine-failed", "detail": "crashed"}


class Clock:
    """The job store's time, set by the test."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    now = Clock()
    monkeypatch.setattr(store_module, "_now", now)
    return now


def _run(
    store: JobStore, clock: Clock, operation: str, created: datetime, wait: float, service: float
) -> JobRecord:
    """A job created at ``created`` that waits ``wait`` seconds, then runs ``service``."""
    clock.at = created
    job, _ = store.create(NewJob(operation=operation, params={}, input=None))
    started = store.claim(job.id, "host:1:w", now=created + timedelta(seconds=wait))
    assert started is not None
    clock.at = created + timedelta(seconds=wait + service)
    return store.mark_succeeded(job.id, {"uri": "blob://results/x"})


def _known_history(store: JobStore, clock: Clock, base: datetime) -> None:
    """Within the hour from ``base``: six extract jobs of 2, 4 .. 12 s that waited 1 .. 6 s.
    An hour later: an extract job retried once (3 s, then 5 s after a 10 s pause), and an
    ocr job split in two parts of 4 and 6 s (its own split and merge: 1 s each). Also a
    job answered from the cache, one cancelled before it ran, and one that ended before
    the window: none of them counts."""
    for index in range(6):
        _run(store, clock, "extract", base + timedelta(minutes=index), index + 1, 2 * (index + 1))
    retried_at = base + timedelta(hours=1, minutes=30)
    clock.at = retried_at
    job, _ = store.create(NewJob(operation="extract", params={}, input=None, max_attempts=3))
    assert store.claim(job.id, "w", now=retried_at + timedelta(seconds=1)) is not None
    clock.at = retried_at + timedelta(seconds=4)
    store.mark_failed(job.id, CRASH, retry_delay=10)
    assert store.claim(job.id, "w", now=retried_at + timedelta(seconds=20)) is not None
    clock.at = retried_at + timedelta(seconds=25)
    assert store.mark_succeeded(job.id, {"uri": "x"}).attempts == 2

    split_at = base + timedelta(hours=1, minutes=40)
    clock.at = split_at
    parent, _ = store.create(NewJob(operation="ocr", params={}, input=None))
    assert store.claim(parent.id, "w", now=split_at + timedelta(seconds=2)) is not None
    clock.at = split_at + timedelta(seconds=3)
    _, parts = store.split(parent.id, [{"params": {"pages": "1"}}, {"params": {"pages": "2"}}])
    for part, start, length in zip(parts, (5, 9), (4, 6), strict=True):
        assert store.claim(part.id, "w", now=split_at + timedelta(seconds=start)) is not None
        clock.at = split_at + timedelta(seconds=start + length)
        store.mark_succeeded(part.id, {"uri": "x"})
    assert store.get(parent.id).status is JobStatus.QUEUED
    assert store.claim(parent.id, "w", now=split_at + timedelta(seconds=16)) is not None
    clock.at = split_at + timedelta(seconds=17)
    assert store.mark_succeeded(parent.id, {"uri": "x"}).status is JobStatus.SUCCEEDED

    clock.at = base + timedelta(hours=1, minutes=50)
    store.create(
        NewJob(operation="extract", params={}, input=None),
        served=ServedResult(job_id=str(uuid.uuid4()), result={"uri": "x"}),
    )
    cancelled, _ = store.create(NewJob(operation="extract", params={}, input=None))
    store.request_cancel(cancelled.id)
    _run(store, clock, "extract", base - timedelta(days=2), 1, 100)


def _settings(**changes: Any) -> Settings:
    return load_settings(executor={"workers": 4, "job_retention": 10 * 86400}, **changes)


def _by(items: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {item[key]: item for item in items}


def test_figures_of_known_jobs(store: JobStore, clock: Clock) -> None:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    base = now - timedelta(hours=3)
    _known_history(store, clock, base)
    settings = _settings()
    found = measure(store, check_query(settings.capacity, days=1), settings, now=now).to_dict()
    assert found["window_seconds"] == 86400 and not found["limited_by_retention"]
    assert found["exact"] and found["configured_workers"] == 4
    operations = _by(found["operations"], "operation")
    assert set(operations) == {"extract", "ocr"}

    extract = operations["extract"]["figures"]
    assert operations["extract"]["family"] == "documents"
    assert (extract["jobs"], extract["submitted"]) == (7, 7)
    # 2 + 4 + .. + 12 s, and the retried job's 3 + 5 s: its pause is not service.
    assert extract["busy_seconds"] == pytest.approx(50, abs=1e-3)
    assert extract["service_mean"] == pytest.approx(50 / 7, abs=1e-3)
    assert extract["service_p50"] == pytest.approx(8, abs=1e-3)
    assert extract["service_p95"] == pytest.approx(11.4, abs=1e-3)
    times = [2, 4, 6, 8, 8, 10, 12]
    cv2 = statistics.variance(times) / statistics.mean(times) ** 2
    assert extract["service_cv2"] == pytest.approx(cv2, abs=1e-4)
    # Waits 1 .. 6 s, and the retried job's first one (1 s).
    assert extract["wait_mean"] == pytest.approx(22 / 7, abs=1e-3)
    assert extract["arrival_rate"] == pytest.approx(7 / 86400)
    assert extract["busy_workers"] == pytest.approx(50 / 86400, rel=1e-4)
    assert extract["throughput_per_worker"] == pytest.approx(7 / 50, rel=1e-4)
    assert extract["utilisation"] == pytest.approx(50 / 86400 / 4, rel=1e-4)
    assert extract["peak_rate"] == pytest.approx(6 / 3600)
    assert extract["peak_hour"] == base.strftime("%Y-%m-%dT%H")
    assert extract["sampled"] == 7
    assert sum(day["jobs"] for day in extract["daily"]) == 7

    ocr = operations["ocr"]["figures"]
    # The parent (1 s split + 1 s merge, not its 11 s waiting for the parts) and its parts.
    assert (ocr["jobs"], ocr["submitted"]) == (3, 1)
    assert ocr["busy_seconds"] == pytest.approx(12, abs=1e-3)
    assert ocr["service_mean"] == pytest.approx(4, abs=1e-3)
    assert ocr["wait_mean"] == pytest.approx(2, abs=1e-3)

    families = _by(found["families"], "family")
    assert set(families) == {"documents", "ocr", "all"}
    assert families["all"]["figures"]["jobs"] == 10
    assert families["all"]["figures"]["busy_seconds"] == pytest.approx(62, abs=1e-3)


def test_workers_needed_for_a_known_case(store: JobStore, clock: Clock) -> None:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    _known_history(store, clock, now - timedelta(hours=3))
    settings = _settings()
    # Mean service 50/7 s: a rate of 0.28 jobs/s offers 2 erlangs. For no wait at the
    # median, C(c, 2) ≤ 0.5: C(2, 2) = 1, C(3, 2) = 4/9, so 3 workers.
    query = check_query(
        settings.capacity, days=1, operations=["extract"], rate=0.28, wait=0, wait_percentile=50
    )
    found = measure(store, query, settings, now=now).to_dict()
    (documents,) = [f for f in found["families"] if f["family"] == "documents"]
    sizing = documents["sizing"]
    assert sizing["target_rate"] == pytest.approx(0.28)
    assert sizing["offered_load"] == pytest.approx(2.0, abs=1e-4)
    assert sizing["workers"] == 3
    assert sizing["wait_probability"] == pytest.approx(4 / 9, abs=1e-4)
    assert sizing["utilisation"] == pytest.approx(2 / 3, abs=1e-4)
    assert [o["operation"] for o in found["operations"]] == ["extract"]

    # The busiest hour × 2: 12 jobs/h of 50/7 s.
    peak = check_query(settings.capacity, days=1, growth=2, basis="peak", wait=30)
    sized = _by(measure(store, peak, settings, now=now).to_dict()["families"], "family")
    plan = sized["documents"]["sizing"]
    assert plan["target_rate"] == pytest.approx(12 / 3600)
    assert plan["offered_load"] == pytest.approx(12 / 3600 * 50 / 7, rel=1e-4)
    assert plan["workers"] == 1


def test_daily_buckets_and_their_trend(store: JobStore, clock: Clock) -> None:
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    for day, count, service in ((8, 2, 2.0), (9, 4, 4.0), (10, 1, 6.0)):
        for index in range(count):
            created = datetime(2026, 3, day, 1 + index, tzinfo=UTC)
            _run(store, clock, "convert", created, 1, service)
    settings = _settings()
    found = measure(store, check_query(settings.capacity, days=3), settings, now=now).to_dict()
    figures = found["operations"][0]["figures"]
    daily = figures["daily"]
    assert [d["day"] for d in daily] == ["2026-03-07", "2026-03-08", "2026-03-09", "2026-03-10"]
    assert [d["jobs"] for d in daily] == [0, 2, 4, 1]
    assert [d["whole"] for d in daily] == [False, True, True, False]
    # The first and last days are halves of days: 1 job in 12 h is 2 a day.
    rates = [d["arrival_rate"] * 86400 for d in daily]
    assert rates == pytest.approx([0, 2, 4, 2])
    # The trend is drawn over the whole days only: 2 then 4 jobs a day, of 2 then 4 s.
    assert figures["trend"]["arrivals_per_day"] * 86400 == pytest.approx(2.0)
    assert figures["trend"]["service_per_day"] == pytest.approx(2.0, abs=1e-3)
    assert found["operations"][0]["family"] == "convert"


def test_bounded_reads_say_so(store: JobStore, clock: Clock) -> None:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    _known_history(store, clock, now - timedelta(hours=3))
    settings = _settings()
    narrow = settings.capacity.model_copy(update={"max_detail_rows": 1, "sample_per_operation": 2})
    history = read_history(store, now - timedelta(days=1), now, None, narrow)
    # Two jobs of several attempts: the newest (the split ocr job) is read, not the other.
    assert history.unread_detail == 1
    assert {op: len(s) for op, s in history.service_samples.items()} == {"extract": 2, "ocr": 2}
    # The newest two extract jobs: the retried one (8 s) and the last of the six (12 s).
    assert sorted(history.service_samples["extract"]) == pytest.approx([8, 12], abs=1e-3)


def test_the_window_stops_at_the_history_retention(store: JobStore, clock: Clock) -> None:
    now = datetime.now(UTC)
    settings = load_settings(
        executor={"job_retention": 3600}, capacity={"history_retention": 2 * 86400}
    )
    found = measure(store, check_query(settings.capacity, days=7), settings, now=now)
    assert found.limited_by_retention and found.window_seconds == 2 * 86400
    assert found.operations == [] and found.families == []


# -- the route --------------------------------------------------------------------------


def _client(tmp_path: Path, database_url: str | None = None) -> TestClient:
    settings = load_settings(
        data_dir=tmp_path,
        database={"url": database_url},
        auth={"enabled": True, "secret": SECRET},
        executor={"workers": 2},
    )
    return TestClient(create_app(settings, start_executor=False))


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app on each database."""
    with _client(tmp_path, database_url) as test_client:
        yield test_client


@pytest.fixture
def sqlite_client(tmp_path: Path) -> Iterator[TestClient]:
    """The app on its default database, for what does not depend on the database."""
    with _client(tmp_path) as test_client:
        yield test_client


def _services(client: TestClient) -> Services:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    return services


def _key(client: TestClient, tenant: str, *scopes: str) -> dict[str, str]:
    _, token = _services(client).keys.create(tenant, scopes)
    return {"X-API-Key": token}


def test_the_route_answers_admin_keys_only(client: TestClient, clock: Clock) -> None:
    now = datetime.now(UTC)
    _known_history(_services(client).store, clock, now - timedelta(hours=3))
    admin = _key(client, "ops", "admin")
    answer = client.get("/api/v2/capacity", headers=admin, params={"days": 1})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    extract = _by(body["operations"], "operation")["extract"]["figures"]
    assert extract["jobs"] == 7 and extract["busy_seconds"] == pytest.approx(50, abs=1e-3)
    assert (extract["percentiles"], extract["rolled_up"], extract["sampled"]) == ("sample", 0, 7)
    assert body["target"] == {
        "basis": "peak",
        "growth": 1.0,
        "rate": None,
        "wait": 30.0,
        "percentile": 95.0,
    }
    filtered = client.get(
        "/api/v2/capacity",
        headers=admin,
        params={"operation": "extract", "rate": 0.28, "wait": 0, "percentile": 50, "days": 1},
    ).json()
    assert _by(filtered["families"], "family")["documents"]["sizing"]["workers"] == 3

    assert client.get("/api/v2/capacity").status_code == 401
    reader = client.get("/api/v2/capacity", headers=_key(client, "acme", "read", "submit"))
    assert reader.status_code == 403
    assert reader.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"days": 0}, "days"),
        ({"days": 401}, "days"),
        ({"days": "a week"}, "days"),
        ({"growth": 2, "rate": 1}, "rate"),
        ({"growth": -1}, "growth"),
        ({"rate": 0}, "rate"),
        ({"wait": -1}, "wait"),
        ({"percentile": 10}, "percentile"),
        ({"basis": "median"}, "basis"),
        ({"operation": "teleport"}, "operation"),
    ],
)
def test_bad_parameters_are_422_naming_them(
    sqlite_client: TestClient, params: dict[str, Any], named: str
) -> None:
    admin = _key(sqlite_client, "ops", "admin")
    answer = sqlite_client.get("/api/v2/capacity", headers=admin, params=params)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert named in answer.text


def test_the_route_is_documented(sqlite_client: TestClient) -> None:
    operation = sqlite_client.get("/openapi.json").json()["paths"]["/api/v2/capacity"]["get"]
    assert {"200", "401", "403", "422"} <= set(operation["responses"])
    assert {p["name"] for p in operation["parameters"]} >= {
        "days",
        "operation",
        "basis",
        "growth",
        "rate",
        "wait",
        "percentile",
    }


# -- the command ------------------------------------------------------------------------


def test_the_command_reads_the_configured_store(
    database_url: str, clock: Clock, tmp_path: Path
) -> None:
    store = JobStore(database_url)
    store.migrate()
    now = datetime.now(UTC)
    try:
        _known_history(store, clock, now - timedelta(hours=3))
    finally:
        store.close()
    env = {
        "DOCWORKER_DATA_DIR": str(tmp_path),
        "DOCWORKER_DATABASE__URL": database_url,
        "DOCWORKER_EXECUTOR__WORKERS": "2",
        "COLUMNS": "160",
    }
    runner = CliRunner()
    shown = runner.invoke(cli_app, ["capacity", "--days", "1", "--growth", "2"], env=env)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    (extract,) = [line for line in lines if line.startswith("│ extract")]
    cells = [cell.strip() for cell in extract.strip("│").split("│")]
    assert cells[:3] == ["extract", "documents", "7"]
    assert cells[5] == "7.1 s"  # 50/7 s
    assert "Workers needed: the peak rate × 2" in shown.output
    assert "Configured workers (executor.workers): 2" in shown.output
    # The bar chart of jobs per day: the busiest day has the full bar.
    chart = lines[lines.index("Jobs per day (all):") + 1 :]
    assert sum(int(line.split()[-3] if "█" in line else line.split()[-2]) for line in chart) == 10
    assert any("█" * 40 in line for line in chart)

    as_json = runner.invoke(cli_app, ["capacity", "--days", "1", "--json"], env=env)
    assert as_json.exit_code == 0
    assert json.loads(as_json.output)["families"][-1]["figures"]["jobs"] == 10

    refused = runner.invoke(cli_app, ["capacity", "--days", "999"], env=env)
    assert refused.exit_code == 1
    assert "parameter 'days': must be more than 0 and at most 400" in refused.output


# -- the capacity history ------------------------------------------------------------------


def _figures_of(store: JobStore, now: datetime, settings: Settings) -> dict[str, Any]:
    found = measure(store, check_query(settings.capacity, days=1), settings, now=now).to_dict()
    assert found["exact"]
    return {
        **{f"op:{o['operation']}": o["figures"] for o in found["operations"]},
        **{f"family:{f['family']}": f["figures"] for f in found["families"]},
    }


EXACT = ("jobs", "submitted", "busy_seconds", "service_mean", "wait_mean", "peak_rate")
ESTIMATED = ("service_p50", "service_p95", "wait_p50", "wait_p95")


def _same_within_the_bound(rows: dict[str, Any], history: dict[str, Any]) -> None:
    assert set(rows) == set(history)
    for name, before in rows.items():
        after = history[name]
        for figure in EXACT:
            # The rows' sums are taken in SQL (julianday on SQLite: within a millisecond).
            assert after[figure] == pytest.approx(before[figure], abs=1e-3), (name, figure)
        assert [d["jobs"] for d in after["daily"]] == [d["jobs"] for d in before["daily"]]
        assert after["service_cv2"] == pytest.approx(before["service_cv2"], abs=1e-4)
        for figure in ESTIMATED:
            if before[figure] is None:
                assert after[figure] is None
                continue
            assert before[figure] / ERROR_FACTOR <= after[figure] <= before[figure] * ERROR_FACTOR
        assert before["percentiles"] == "sample"
        assert after["percentiles"] == ("histogram" if after["rolled_up"] else "sample")


def test_the_history_keeps_the_figures_of_purged_jobs(store: JobStore, clock: Clock) -> None:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    base = now - timedelta(hours=3)
    _known_history(store, clock, base)
    settings = _settings()
    rows = _figures_of(store, now, settings)
    assert rows["op:extract"]["rolled_up"] == 0 and rows["op:extract"]["sampled"] == 7

    # The first hour's six jobs go: that hour is read from the history, the next from rows.
    deleted = store.delete_finished_before(base + timedelta(hours=1))
    assert {r.operation for r in deleted} == {"extract"} and len(deleted) == 7
    mixed = _figures_of(store, now, settings)
    _same_within_the_bound(rows, mixed)
    assert mixed["op:extract"]["rolled_up"] == 6 and mixed["op:ocr"]["percentiles"] == "sample"

    # Every row goes (the jobs that never ran are not counted, as before).
    store.delete_finished_before(now)
    assert store.counts() == dict.fromkeys(JobStatus, 0)
    history = _figures_of(store, now, settings)
    _same_within_the_bound(rows, history)
    assert history["family:all"]["rolled_up"] == 10 and history["family:all"]["sampled"] == 0

    printed = io.StringIO()
    found = measure(store, check_query(settings.capacity, days=1), settings, now=now)
    render(found.to_dict(), Console(file=printed, width=200))
    assert "Percentiles of extract, ocr estimated from the capacity history" in printed.getvalue()


def test_a_deleted_job_is_rolled_up_too(store: JobStore, clock: Clock) -> None:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    job = _run(store, clock, "convert", now - timedelta(hours=2), 3, 5)
    assert store.delete_job(job.id) is not None
    with store.transaction() as session:
        (row,) = session.scalars(select(CapacityHour)).all()
        buckets = {(b.measure, b.bucket): b.jobs for b in session.scalars(select(CapacityBucket))}
    assert (row.operation, row.family, row.jobs, row.submitted) == ("convert", "convert", 1, 1)
    assert (row.busy, row.busy_sq, row.waited, row.wait) == pytest.approx((5, 25, 1, 3))
    assert buckets == {("s", bucket_of(5)): 1, ("w", bucket_of(3)): 1}


def test_the_history_has_a_retention_of_its_own(
    store: JobStore, clock: Clock, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    for days in (30, 3):
        _run(store, clock, "extract", now - timedelta(days=days), 1, 2)
    blobs = BlobStore((tmp_path / "blobs").as_uri())
    assert purge_expired(store, blobs, retention=86400, history_retention=10 * 86400) == 2
    with store.transaction() as session:
        kept = session.scalars(select(CapacityHour.hour)).all()
        kept_buckets = set(session.scalars(select(CapacityBucket.hour)).all())
    assert kept == [(now - timedelta(days=3)).strftime("%Y-%m-%dT%H")]
    assert kept_buckets == set(kept)
    settings = _settings()
    month = measure(store, check_query(settings.capacity, days=40), settings, now=now)
    assert [o.figures.jobs for o in month.operations] == [1]


def test_the_migration_adds_the_history_to_a_database_in_use(
    database_url: str, clock: Clock
) -> None:
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    store = JobStore(database_url)
    try:
        for path in store.files()[:1]:
            path.parent.mkdir(parents=True, exist_ok=True)
        config = Config()
        config.set_main_option("script_location", str(store_module._MIGRATIONS))
        # The revision before the capacity history's (its number may change at a merge).
        (history,) = [
            rev
            for rev in ScriptDirectory.from_config(config).walk_revisions()
            if rev.path.endswith("_capacity_history.py")
        ]
        assert isinstance(history.down_revision, str)
        with store._engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, history.down_revision)
        with store._engine.connect() as connection:
            assert not inspect(connection).has_table("capacity_hours")
        # A job that ran and ended before the upgrade (the jobs table is the same).
        job = _run(store, clock, "extract", clock.at - timedelta(hours=2), 1, 4)
        store.migrate()
        with store._engine.connect() as connection:
            assert {"capacity_hours", "capacity_buckets"} <= set(
                inspect(connection).get_table_names()
            )
        assert store.get(job.id).status is JobStatus.SUCCEEDED
        assert store.delete_job(job.id) is not None
        with store.transaction() as session:
            assert session.scalar(select(func.sum(CapacityHour.jobs))) == 1
            assert session.scalar(select(func.sum(CapacityHour.busy))) == pytest.approx(4)
    finally:
        store.close()
