"""``/api/v2/batches/{id}/events`` and ``/webhooks``: following a batch as it moves on.

A batch's events (``batch_events``, written in the transactions of its children's
ends: :mod:`docworker.jobs.journal`) are streamed as Server-Sent Events with the framing,
keep-alives, ``Last-Event-ID`` resumption and drain behaviour of a job's stream
(:mod:`docworker.api.routes.job_events`). The stream ends after a final event of the
batch (``batch.succeeded``, ``batch.partial``, ``batch.failed``, ``batch.cancelled``);
a retry of the batch writes events after it, which a client gets by reconnecting with
``Last-Event-ID``. Also here: the ``webhook_*`` fields of ``POST /api/v2/batches``, and
the ``wait`` of ``GET /api/v2/batches/{id}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from docworker.api.auth import CallerDep
from docworker.api.deps import ServicesDep
from docworker.api.errors import problem_responses
from docworker.api.routes.job_events import (
    EVENT_STREAM,
    READ_BATCH,
    LastEventIdHeader,
    event_id,
    event_stream,
)
from docworker.api.schemas import WEBHOOK_SIGNING, WebhookDeliveryList, WebhookDeliveryPublic
from docworker.jobs.admission import Drain
from docworker.jobs.journal import FINAL_BATCH_EVENTS, batch_key
from docworker.jobs.models import JobEventRecord
from docworker.jobs.store import JobStore
from docworker.jobs.webhooks import BATCH_EVENT_KINDS, MAX_URL_LENGTH, WebhookRequest

router = APIRouter(prefix="/api/v2", tags=["batches"])

#: ``GET /api/v2/batches/{id}?wait=``.
BatchWait = Annotated[
    float,
    Query(
        ge=0,
        description="Seconds to wait for the batch to end before answering (a long poll; "
        "at most the server's server.max_wait). 0: answer at once.",
    ),
]

#: The OpenAPI schemas of the batch's ``webhook_*`` form fields.
BATCH_WEBHOOK_FIELDS: dict[str, Any] = {
    "webhook_url": {
        "type": "string",
        "maxLength": MAX_URL_LENGTH,
        "description": "Where the batch's events are POSTed (Standard Webhooks). Its host "
        "must resolve to public addresses unless webhooks.allow_private names it. The "
        "children do not send their events to it.",
    },
    "webhook_events": {
        "type": "string",
        "description": "The batch events sent to webhook_url, separated by commas, of: "
        f"{', '.join(BATCH_EVENT_KINDS)}. Default: the final ones.",
        "example": "batch.progress,batch.succeeded,batch.partial,batch.failed",
    },
    "webhook_secret": {
        "type": "string",
        "description": WEBHOOK_SIGNING.replace("the job's webhooks", "the batch's webhooks"),
    },
}


def batch_webhook(fields: Mapping[str, str]) -> WebhookRequest | None:
    """The batch's own webhook from its form's ``webhook_*`` fields (checked, its URL
    resolved, when the batch is submitted); None without them."""
    return WebhookRequest.for_batch(
        fields.get("webhook_url"), fields.get("webhook_events"), fields.get("webhook_secret")
    )


BATCH_EVENTS_EXAMPLE = (
    "retry: 2000\n\n"
    "id: 1\nevent: batch.queued\n"
    'data: {"id":1,"type":"batch.queued","at":"2026-12-07T10:00:00.1Z","batch_id":"5d0f…",'
    '"status":"running","total":2,"counts":{"queued":2,"running":0,"succeeded":0,'
    '"partial":0,"failed":0,"cancelled":0,"dead":0},"progress":0.0}\n\n'
    "id: 2\nevent: batch.progress\n"
    'data: {"id":2,"type":"batch.progress","at":"2026-12-07T10:00:03.2Z","batch_id":"5d0f…",'
    '"status":"running","total":2,"counts":{"queued":0,"running":1,"succeeded":1,'
    '"partial":0,"failed":0,"cancelled":0,"dead":0},"progress":0.5,"job_id":"0b6c…",'
    '"batch_index":0,"job_status":"succeeded"}\n\n'
    ": keep-alive\n\n"
    "id: 3\nevent: batch.succeeded\n"
    'data: {"id":3,"type":"batch.succeeded","at":"2026-12-07T10:00:09.8Z","batch_id":"5d0f…",'
    '"status":"succeeded","total":2,"counts":{"queued":0,"running":0,"succeeded":2,'
    '"partial":0,"failed":0,"cancelled":0,"dead":0},"progress":1.0}\n\n'
)


@router.get(
    "/batches/{batch_id}/events",
    operation_id="get_batch_events",
    summary="Follow a batch's events (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The batch's events as they happen, until its final one: "
            f"{', '.join(BATCH_EVENT_KINDS)}",
            "content": {
                EVENT_STREAM: {"schema": {"type": "string"}, "example": BATCH_EVENTS_EXAMPLE}
            },
        },
        **problem_responses(403, 404, 422),
    },
)
async def get_batch_events(
    batch_id: str,
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    last_event_id: LastEventIdHeader = None,
) -> StreamingResponse:
    """The batch's events from the first (or after ``Last-Event-ID``), each with its
    ``id``; the stream ends after a final event of the batch, at once when the client
    has seen it already, and when the service begins to drain (reconnect with
    ``Last-Event-ID``). ``batch.progress`` events are coalesced: a client that resumes
    gets the latest, not every one it missed."""
    after = event_id(last_event_id, "this batch's stream")
    record = await anyio.to_thread.run_sync(services.queue.batch, batch_id, caller)
    drain: Drain = request.app.state.drain
    read = partial(_batch_events, services.store, record.id)
    key = batch_key(record.id)
    lines = event_stream(services.queue.events, key, read, after, services.settings.events, drain)
    return StreamingResponse(
        lines,
        media_type=EVENT_STREAM,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _batch_events(store: JobStore, batch_id: str, after: int) -> tuple[list[JobEventRecord], bool]:
    """The batch's events after ``after``, and whether the stream ends with them: its
    latest event (read first, so among those sent) is a final one."""
    latest, events = store.batch_events_after(batch_id, after, limit=READ_BATCH)
    if len(events) == READ_BATCH:
        return list(events), False
    return list(events), (events[-1].kind if events else latest) in FINAL_BATCH_EVENTS


@router.get(
    "/batches/{batch_id}/webhooks",
    operation_id="list_batch_webhooks",
    summary="List a batch's webhook deliveries",
    response_model=WebhookDeliveryList,
    responses=problem_responses(403, 404),
)
async def list_batch_webhooks(
    batch_id: str, services: ServicesDep, caller: CallerDep
) -> WebhookDeliveryList:
    """Every webhook sent or to send for the batch's events (its own webhook's and the
    configured subscriptions'), with the log of each attempt. Its children's deliveries
    are listed by ``GET /api/v2/jobs/{id}/webhooks``."""
    record = await anyio.to_thread.run_sync(services.queue.batch, batch_id, caller)
    deliveries = await anyio.to_thread.run_sync(services.outbox.of_batch, record.id)
    return WebhookDeliveryList(deliveries=[WebhookDeliveryPublic.of(d) for d in deliveries])
