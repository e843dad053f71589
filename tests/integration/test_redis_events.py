"""The job event bus between processes: Redis pub/sub with a real Redis server. Two
buses stand for two processes (an API replica and a worker); the job store announces
what it commits through one, and waiters on the other wake."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import redis

from docworker.jobs.events import RedisJobEvents
from docworker.jobs.store import JobStore, NewJob

pytestmark = pytest.mark.redis

INPUT = {"uri": "blob://inputs/ab", "sha256": "ab" * 32, "size": 10}


@pytest.fixture
def buses(redis_url: str) -> Iterator[tuple[RedisJobEvents, RedisJobEvents]]:
    channel = f"docworker-test:{uuid.uuid4().hex}"
    here, there = RedisJobEvents(redis_url, channel), RedisJobEvents(redis_url, channel)
    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 10
    # Both listeners subscribed: pub/sub keeps nothing for those who come later.
    while dict(client.pubsub_numsub(channel)).get(channel.encode(), 0) < 2:
        assert time.monotonic() < deadline, "the listeners did not subscribe"
        time.sleep(0.02)
    client.close()
    yield here, there
    here.close()
    there.close()


def test_a_change_committed_in_one_process_wakes_the_waiters_of_another(
    buses: tuple[RedisJobEvents, RedisJobEvents], tmp_path: Path
) -> None:
    here, there = buses
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.migrate()
    store.journal.on_event = here.announce
    job = store.create(NewJob("extract", {}, INPUT))[0]

    async def wait_for_the_claim() -> tuple[bool, bool]:
        with there.subscribe(job.id) as waiter, here.subscribe(job.id) as own:
            await anyio.to_thread.run_sync(store.claim_next, "worker-1")
            heard = await waiter.wait(10)
            # A process's own changes reach its waiters through publish, not Redis.
            here.publish(job.id)
            return heard, await own.wait(10)

    assert anyio.run(wait_for_the_claim) == (True, True)
    store.close()


def test_announcements_name_the_job_and_skip_their_own_process(
    buses: tuple[RedisJobEvents, RedisJobEvents],
) -> None:
    here, there = buses

    async def exchange() -> list[bool]:
        with there.subscribe("job-a") as a, there.subscribe("job-b") as b:
            here.announce("job-b")
            heard_b = await b.wait(10)
            return [heard_b, await a.wait(0)]

    assert anyio.run(exchange) == [True, False]


def test_without_redis_nothing_waits_and_the_process_s_own_waiters_still_wake() -> None:
    bus = RedisJobEvents("redis://127.0.0.1:1/0", "docworker-test:none")

    async def alone() -> bool:
        with bus.subscribe("job-1") as waiter:
            for _ in range(100):
                bus.announce("job-1")  # queued for a sender that cannot reach Redis
            bus.publish("job-1")
            return await waiter.wait(5)

    assert anyio.run(alone) is True
    bus.close()
