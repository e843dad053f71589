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
from collections.abc import AsyncIterator
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
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=18,
            description="The id of the last event received: only later ones are sent.",
        ),
    ] = None,
) -> StreamingResponse:
    """The job's events from the first (or after ``Last-Event-ID``), each with its
    ``id``; the stream ends after the job's final event, at once when the client has
    seen it already, and when the service begins to drain (reconnect with
    ``Last-Event-ID``). ``progress`` and ``part`` events are coalesced: a client that
    resumes gets the latest of each, not every one it missed."""
    after = _event_id(last_event_id)
    record = await anyio.to_thread.run_sync(services.queue.get, job_id, caller)
    events = services.settings.events
    drain: Drain = request.app.state.drain
    lines = _stream(services.store, services.queue.events, record.id, after, events, drain)
    return StreamingResponse(
        lines,
        media_type=EVENT_STREAM,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _event_id(header: str | None) -> int:
    text = (header or "").strip()
    if not text:
        return 0
    if not (text.isascii() and text.isdigit()):
        raise InvalidParameter("Last-Event-ID", "must be the id of an event of this job's stream")
    return int(text)


async def _stream(
    store: JobStore,
    bus: JobEventBus,
    job_id: str,
    after: int,
    config: EventSettings,
    drain: Drain,
) -> AsyncIterator[bytes]:
    """The stream's bytes: see the module."""
    yield f"retry: {config.retry_ms}\n\n".encode()
    started = said = time.monotonic()
    # Subscribed before each read, so an event between a read and the wait is not missed.
    with bus.subscribe(job_id) as heard:
        while True:
            try:
                read = partial(store.events_after, job_id, after, limit=READ_BATCH)
                status, events = await anyio.to_thread.run_sync(read)
            except NotFound:  # deleted meanwhile: nothing more will happen
                return
            for event in events:
                yield _frame(event)
                after, said = event.seq, time.monotonic()
                if event.kind in FINAL_EVENTS:
                    return
            if not events and status in TERMINAL_STATUSES:
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


def _frame(event: JobEventRecord) -> bytes:
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
