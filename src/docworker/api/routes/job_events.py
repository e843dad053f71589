"""``/api/v2/jobs/{id}/events`` and ``/webhooks``: following a job as it moves on.

The event stream is Server-Sent Events, written here by hand: each of the job's events
(from the job store's ``job_events``, so any replica serves any job and a restart loses
nothing) as ``id:``, ``event:`` and ``data:`` lines; a comment line when nothing
happened for ``events.keepalive`` seconds; the end of the stream after the job's final
event. A client that reconnects sends the last id it saw as ``Last-Event-ID`` and gets
only the events after it. The stream wakes on the event bus (an event of this process)
and reads the store at least every second (one of another process). A stream ends
when the service begins to drain, so that it holds no shutdown: its client reconnects
(to another replica) with ``Last-Event-ID`` and misses nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from docworker.api.auth import CallerDep
from docworker.api.deps import ServicesDep
from docworker.api.errors import problem_responses
from docworker.api.schemas import WebhookDeliveryList, WebhookDeliveryPublic
from docworker.config import EventSettings
from docworker.errors import InvalidParameter, NotFound
from docworker.jobs.admission import Drain
from docworker.jobs.events import JobEventBus
from docworker.jobs.journal import FINAL_EVENTS
from docworker.jobs.models import JobEventRecord
from docworker.jobs.queue import STORE_POLL
from docworker.jobs.store import TERMINAL_STATUSES, JobStore

router = APIRouter(prefix="/api/v2", tags=["jobs"])

EVENT_STREAM = "text/event-stream"
#: The header a client that reconnects sends: the last event it received.
LastEventIdHeader = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        max_length=18,
        description="The id of the last event received: only later ones are sent.",
    ),
]
#: Events read from the store at a time.
READ_BATCH = 100

EVENTS_EXAMPLE = (
    "retry: 2000\n\n"
    "id: 1\nevent: queued\n"
    'data: {"id":1,"type":"queued","at":"2026-12-07T10:00:00.1Z","job_id":"0b6c…",'
    '"status":"queued","attempts":0,"progress":0.0}\n\n'
    "id: 2\nevent: started\n"
    'data: {"id":2,"type":"started","at":"2026-12-07T10:00:00.2Z","job_id":"0b6c…",'
    '"status":"running","attempts":1,"progress":0.0}\n\n'
    ": keep-alive\n\n"
    "id: 3\nevent: succeeded\n"
    'data: {"id":3,"type":"succeeded","at":"2026-12-07T10:00:09.8Z","job_id":"0b6c…",'
    '"status":"succeeded","attempts":1,"progress":1.0}\n\n'
)


@router.get(
    "/jobs/{job_id}/events",
    operation_id="get_job_events",
    summary="Follow a job's events (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The job's events as they happen, until its final one: "
            "queued, started, progress, part, succeeded, partial, failed, cancelled, dead",
            "content": {EVENT_STREAM: {"schema": {"type": "string"}, "example": EVENTS_EXAMPLE}},
        },
        **problem_responses(404, 422),
    },
)
async def get_job_events(
    job_id: str,
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    last_event_id: LastEventIdHeader = None,
) -> StreamingResponse:
    """The job's events from the first (or after ``Last-Event-ID``), each with its
    ``id``; the stream ends after the job's final event, at once when the client has
    seen it already, and when the service begins to drain (reconnect with
    ``Last-Event-ID``). ``progress`` and ``part`` events are coalesced: a client that
    resumes gets the latest of each, not every one it missed."""
    after = event_id(last_event_id, "this job's stream")
    record = await anyio.to_thread.run_sync(services.queue.get, job_id, caller)
    drain: Drain = request.app.state.drain
    read = partial(_job_events, services.store, record.id)
    lines = event_stream(
        services.queue.events, record.id, read, after, services.settings.events, drain
    )
    return StreamingResponse(
        lines,
        media_type=EVENT_STREAM,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def event_id(header: str | None, stream: str) -> int:
    """The ``Last-Event-ID`` header as the number of an event of ``stream`` (0: none)."""
    text = (header or "").strip()
    if not text:
        return 0
    if not (text.isascii() and text.isdigit()):
        raise InvalidParameter("Last-Event-ID", f"must be the id of an event of {stream}")
    return int(text)


#: Reads a stream's events after a number: those to send (at most :data:`READ_BATCH`),
#: and whether the stream ends once they are sent. Blocking: run in a worker thread.
ReadEvents = Callable[[int], tuple[list[JobEventRecord], bool]]


async def event_stream(
    bus: JobEventBus,
    key: str,
    read: ReadEvents,
    after: int,
    config: EventSettings,
    drain: Drain,
) -> AsyncIterator[bytes]:
    """A Server-Sent Events stream (see the module): the events ``read`` gives after
    ``after``, woken by the bus's publications of ``key`` and reading the store at least
    every :data:`~docworker.jobs.queue.STORE_POLL` seconds, a keep-alive comment when
    nothing happened for ``events.keepalive`` seconds, until ``read`` says it ended, the
    stream's time is up or the service drains."""
    yield f"retry: {config.retry_ms}\n\n".encode()
    started = said = time.monotonic()
    # Subscribed before each read, so an event between a read and the wait is not missed.
    with bus.subscribe(key) as heard:
        while True:
            try:
                events, ended = await anyio.to_thread.run_sync(read, after)
            except NotFound:  # deleted meanwhile: nothing more will happen
                return
            for event in events:
                yield _frame(event)
                after, said = event.seq, time.monotonic()
            if ended:
                return
            if len(events) == READ_BATCH:
                continue
            now = time.monotonic()
            if now - started >= config.stream_timeout or drain.active:
                return
            if now - said >= config.keepalive:
                yield b": keep-alive\n\n"
                said = now
            left = min(STORE_POLL, config.keepalive - (now - said))
            await heard.wait(max(left, 0.0))


def _job_events(store: JobStore, job_id: str, after: int) -> tuple[list[JobEventRecord], bool]:
    """The job's events after ``after`` up to its final one, and whether it ended: a
    final event among them, or none left and the job over."""
    status, events = store.events_after(job_id, after, limit=READ_BATCH)
    for index, event in enumerate(events):
        if event.kind in FINAL_EVENTS:
            return list(events[: index + 1]), True
    return list(events), not events and status in TERMINAL_STATUSES


def _frame(event: JobEventRecord) -> bytes:
    """One event as the stream writes it."""
    at = event.at.isoformat().replace("+00:00", "Z")
    data = json.dumps({"id": event.seq, "type": event.kind, "at": at, **event.data})
    return f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n".encode()


@router.get(
    "/jobs/{job_id}/webhooks",
    operation_id="list_job_webhooks",
    summary="List a job's webhook deliveries",
    response_model=WebhookDeliveryList,
    responses=problem_responses(404),
)
async def list_job_webhooks(
    job_id: str, services: ServicesDep, caller: CallerDep
) -> WebhookDeliveryList:
    """Every webhook sent or to send for the job's events (its own webhook's and the
    configured subscriptions'), with the log of each attempt: when, the receiver's HTTP
    status or the error, how long it took."""
    record = await anyio.to_thread.run_sync(services.queue.get, job_id, caller)
    deliveries = await anyio.to_thread.run_sync(services.outbox.of_job, record.id)
    return WebhookDeliveryList(deliveries=[WebhookDeliveryPublic.of(d) for d in deliveries])
