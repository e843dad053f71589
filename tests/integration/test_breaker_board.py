"""Engine breakers posted in the job store: a breaker one process opens refuses work in
every other process until it half-opens, shows in their health, and is taken down when
it closes. Two sets of breakers over one database stand for two processes (an API and
a Celery worker process, or two API replicas)."""

from __future__ import annotations

import pytest

from docworker.config import BreakerSettings
from docworker.engines.breaker import Breakers, BreakerState
from docworker.errors import EngineUnavailable
from docworker.jobs import breaker_board
from docworker.jobs.breaker_board import StoreBreakerBoard
from docworker.jobs.store import JobStore

CRASH = {"code": "engine-failed", "engine": "LibreOffice", "detail": "soffice crashed"}
OFFICE = frozenset({"libreoffice", "storage"})


class Clock:
    """A monotonic clock the test moves (the breakers' cool-down)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def fresh_readings(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every reading of the board made afresh: the test sees each change at once.
    monkeypatch.setattr(breaker_board, "READING_AGE", 0.0)


def process(store: JobStore, name: str, clock: Clock, cooldown: float = 30.0) -> Breakers:
    settings = BreakerSettings(threshold=2, cooldown=cooldown)
    return Breakers(settings, clock=clock, board=StoreBreakerBoard(store, name=name))


def test_a_breaker_opened_in_one_process_refuses_work_in_another(store: JobStore) -> None:
    clock = Clock()
    worker, api = process(store, "worker-1", clock), process(store, "api-1", clock)
    worker.ended(OFFICE, CRASH)
    api.check(OFFICE)  # one failure: closed everywhere
    worker.ended(OFFICE, CRASH)
    assert worker.state("libreoffice") is BreakerState.OPEN
    with pytest.raises(EngineUnavailable) as refused:
        api.check(OFFICE)
    assert refused.value.fields["engine"] == "LibreOffice"
    assert 25 <= refused.value.fields["retry_after"] <= 30
    with pytest.raises(EngineUnavailable):
        api.begin(OFFICE)  # the executor of the other process holds its jobs back too
    api.check({"tesseract", "storage"})  # other engines go on
    health = api.status()["libreoffice"]
    assert health["state"] == "open" and health["opened_by"] == "worker-1"
    assert health["failures"] == 2 and health["last_error"] == "soffice crashed"
    # The process that opened it half-opens after its cool-down, tries, and succeeds:
    # the breaker is taken down, and the engine works everywhere again.
    clock.now += 31
    assert worker.begin(OFFICE)
    worker.ended(OFFICE)
    api.check(OFFICE)
    assert api.status()["libreoffice"]["state"] == "closed"


def test_a_post_is_refused_no_longer_once_due_to_half_open(store: JobStore) -> None:
    clock = Clock()
    worker, api = process(store, "w", clock, cooldown=0.2), process(store, "a", clock)
    worker.ended(OFFICE, CRASH)
    worker.ended(OFFICE, CRASH)
    with pytest.raises(EngineUnavailable):
        api.check(OFFICE)
    # Past its time the post refuses nothing, though its process has not tried again.
    StoreBreakerBoard(store).post("libreoffice", -1.0, 2, None)
    api.check(OFFICE)


def test_without_a_readable_board_each_process_judges_alone(tmp_path: object) -> None:
    unreachable = JobStore("postgresql://postgres@127.0.0.1:9/none?connect_timeout=1")
    clock = Clock()
    alone = Breakers(
        BreakerSettings(threshold=1, cooldown=30.0),
        clock=clock,
        board=StoreBreakerBoard(unreachable, name="alone"),
    )
    alone.check(OFFICE)  # nothing read: nothing refused
    alone.ended(OFFICE, CRASH)  # the post fails quietly; the breaker opens here
    with pytest.raises(EngineUnavailable):
        alone.check(OFFICE)
    assert alone.status()["libreoffice"]["state"] == "open"
    unreachable.close()
