"""The sweep of ``docworker worker``'s own process announces what it changes over the
Redis event bus, as the worker processes do: a waiter in an API replica (another bus on
the same channel, a real Redis server) wakes the moment a job of a lost worker is taken
back, and its batch's waiters with it."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
import redis

from docworker.config import Settings, load_settings
from docworker.jobs.distributed import (
    STALE_AFTER,
    CeleryDispatch,
    _Runtime,
    announce_changes,
    sweep_once,
)
from docworker.jobs.events import RedisJobEvents
from docworker.jobs.journal import batch_key
from docworker.jobs.models import NewBatch
from docworker.jobs.retries import Backoff
from docworker.jobs.store import JobStatus, JobStore
from docworker.sealing import SecretKeys

pytestmark = pytest.mark.redis

INPUT = {"uri": "blob://inputs/ab", "sha256": "ab" * 32, "size": 10, "name": "a.txt"}


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    tag = uuid.uuid4().hex[:8]
    return load_settings(
        data_dir=tmp_path,
        executor={"kind": "celery", "max_attempts": 1},
        celery={"broker_url": redis_url, "queue_prefix": f"test-{tag}-"},
        events={"redis_url": redis_url, "channel": f"docworker-test:{tag}"},
    )


@pytest.fixture
def replica(settings: Settings) -> Iterator[RedisJobEvents]:
    """The bus of an API replica, listening on the channel."""
    assert settings.events.redis_url is not None
    bus = RedisJobEvents(settings.events.redis_url, settings.events.channel)
    client = redis.Redis.from_url(settings.events.redis_url)
    deadline = time.monotonic() + 10
    while (
        dict(client.pubsub_numsub(settings.events.channel)).get(settings.events.channel.encode(), 0)
        < 1
    ):
        assert time.monotonic() < deadline, "the listener did not subscribe"
        time.sleep(0.02)
    client.close()
    yield bus
    bus.close()


def test_the_sweep_announces_the_jobs_it_takes_back(
    settings: Settings, replica: RedisJobEvents
) -> None:
    store = JobStore(settings.database_url, pooled=False)
    store.migrate()
    dispatch = CeleryDispatch(settings)
    runtime = _Runtime(
        settings,
        SecretKeys.from_settings(settings),
        dispatch.app,
        dispatch,
        store,
        os.getpid(),
        Backoff.of(settings.executor),
    )
    bus = announce_changes(runtime)
    assert isinstance(bus, RedisJobEvents)
    batch, _ = store.create_batch(NewBatch("extract", {}, max_attempts=1), [INPUT])
    [child] = store.batch_children(batch.id)
    # Claimed by a worker on another host that stopped sending heartbeats.
    long_ago = datetime.now(UTC) - timedelta(seconds=STALE_AFTER * 3)
    assert store.claim(child.id, "elsewhere:4242:abcd", now=long_ago) is not None

    async def sweep_and_listen() -> tuple[bool, bool]:
        with replica.subscribe(child.id) as job, replica.subscribe(batch_key(batch.id)) as whole:
            taken = await anyio.to_thread.run_sync(sweep_once, runtime)
            assert [record.id for record in taken] == [child.id]
            return await job.wait(10), await whole.wait(10)

    try:
        assert anyio.run(sweep_and_listen) == (True, True)
        assert store.get(child.id).status == JobStatus.DEAD
        assert store.batch_events_after(batch.id, 0)[0] == "batch.failed"
    finally:
        bus.close()
        dispatch.stop()
        store.close()
