"""The API's side of the celery executor: what it publishes, and a broker that does not
answer (a submission refused with 503, leaving no job behind)."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bench.scoring import corpus_root
from docworker.auth import Principal
from docworker.config import load_settings
from docworker.engines.breaker import Breakers
from docworker.errors import DependencyDown
from docworker.jobs.distributed import CeleryDispatch, broker_priority
from docworker.jobs.events import JobEvents
from docworker.jobs.models import NewJob
from docworker.jobs.queue import JobInput, JobQueue
from docworker.jobs.store import JobStatus, JobStore
from docworker.sealing import SecretKeys
from docworker.storage import BlobStore

SMALL_TEXT = corpus_root() / "text" / "plain-utf8.txt"


def test_priorities_become_the_brokers_levels() -> None:
    # RabbitMQ takes its highest level first, Redis its lowest.
    levels = [broker_priority(p, redis=False) for p in (-100, -4, -1, 0, 1, 5, 100)]
    assert levels == [0, 0, 3, 4, 5, 9, 9]
    assert [broker_priority(p, redis=True) for p in (-1, 0, 1)] == [6, 5, 4]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(params=["redis", "amqp"])
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobQueue]:
    port = _closed_port()
    broker = (
        f"redis://127.0.0.1:{port}/0"
        if request.param == "redis"
        else f"amqp://guest:guest@127.0.0.1:{port}//"
    )
    settings = load_settings(
        data_dir=tmp_path, executor={"kind": "celery"}, celery={"broker_url": broker}
    )
    store = JobStore(settings.database_url)
    store.migrate()
    keys = SecretKeys.from_settings(settings)
    dispatch = CeleryDispatch(settings)
    try:
        yield JobQueue(
            store, BlobStore(settings.storage_url), dispatch, JobEvents(), max_attempts=3, keys=keys
        )
    finally:
        dispatch.stop()
        store.close()


def test_a_broker_down_refuses_the_submission_and_leaves_no_job(queue: JobQueue) -> None:
    blob = queue.blobs.put_file(SMALL_TEXT)
    with pytest.raises(DependencyDown) as refused:
        queue.submit(
            "extract",
            {"output": "text"},
            JobInput(blob, name=SMALL_TEXT.name),
            caller=Principal.open(),
            idempotency_key="key-1",
        )
    assert refused.value.code == "dependency-down"  # 503 (api/errors.py)
    assert refused.value.to_dict()["dependency"] == "broker"
    assert queue.store.list(include_parts=True) == ([], None)
    assert queue.store.by_idempotency_key("key-1") is None


def test_a_broker_down_refuses_a_batch_and_leaves_none_of_its_children_to_run(
    queue: JobQueue,
) -> None:
    stored = [JobInput(queue.blobs.put_file(SMALL_TEXT), name=SMALL_TEXT.name).as_dict()] * 2
    with pytest.raises(DependencyDown):
        queue.submit_batch("extract", {"output": "text"}, stored, caller=Principal.open())
    children, _ = queue.store.list(include_parts=True)
    assert len(children) == 2 and children[0].batch_id is not None
    assert {child.status for child in children} == {JobStatus.CANCELLED}
    assert queue.store.get_batch(children[0].batch_id).state == "cancelled"


def test_the_brokers_breaker_refuses_at_once_and_closes_when_it_answers(
    tmp_path: Path, redis_url: str
) -> None:
    """After ``breaker.threshold`` publishes failed in a row, the next are refused without
    trying the broker, until the cool-down; then one tries, and its success closes it."""
    clock = [1000.0]
    settings = load_settings(
        data_dir=tmp_path,
        executor={"kind": "celery"},
        celery={"broker_url": f"redis://127.0.0.1:{_closed_port()}/0"},
        breaker={"threshold": 2, "broker_cooldown": 5},
    )
    breakers = Breakers(settings.breaker, clock=lambda: clock[0])
    down = CeleryDispatch(settings, breakers=breakers)
    store = JobStore(settings.database_url)
    store.migrate()
    record, _ = store.create(NewJob("extract", {}, None))
    try:
        for _ in range(2):
            with pytest.raises(DependencyDown, match="does not answer"):
                down.publish(record)
        assert breakers.status()["broker"]["state"] == "open"
        started = time.monotonic()
        with pytest.raises(DependencyDown, match="not tried again for 5 s") as refused:
            down.publish(record)
        assert time.monotonic() - started < 0.1
        assert refused.value.to_dict()["dependency"] == "broker"
        # The broker back (the same breakers, a broker that answers), past the cool-down.
        clock[0] += 6
        prefix = f"test-{uuid.uuid4().hex}-"
        up = CeleryDispatch(
            load_settings(
                data_dir=tmp_path,
                executor={"kind": "celery"},
                celery={"broker_url": redis_url, "queue_prefix": prefix},
            ),
            breakers=breakers,
        )
        up.publish(record)
        assert breakers.status()["broker"]["state"] == "closed"
        up.stop()
        client = redis.Redis.from_url(redis_url)
        client.delete(*client.scan_iter(match=f"{prefix}*"))
        client.close()
    finally:
        down.stop()
        store.close()
