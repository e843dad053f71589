"""What routes depend on, as ``Annotated`` aliases: the services, the settings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

import anyio
from fastapi import Depends, Request

from docworker.api.auth import Authenticator
from docworker.config import Settings
from docworker.engines.breaker import Breakers
from docworker.flags import Flags
from docworker.jobs.audit import AuditLog, RefusalLog
from docworker.jobs.keys import KeyStore
from docworker.jobs.local import LocalExecutor
from docworker.jobs.outbox import Outbox
from docworker.jobs.queue import JobQueue
from docworker.jobs.store import JobStore
from docworker.jobs.usage import QuotaCounters
from docworker.jobs.webhooks import WebhookDeliverer
from docworker.result_cache import ResultCache
from docworker.storage import BlobStore


@dataclass
class Services:
    """Everything the API holds for its lifetime, built once at start-up."""

    settings: Settings
    store: JobStore
    blobs: BlobStore
    queue: JobQueue
    executor: LocalExecutor | None
    keys: KeyStore
    authenticator: Authenticator
    audit: AuditLog
    #: Refused requests, gathered and written to the audit trail in batches.
    refusals: RefusalLog
    #: The daily counters of API keys' quotas.
    counters: QuotaCounters
    #: Turns to load a result whole and reshape it (``server.loaded_results_at_once``):
    #: with the bound on each result, what bounds the API's memory for them.
    result_slots: anyio.CapacityLimiter
    #: The webhook outbox (its deliveries, their log).
    outbox: Outbox
    #: Sends the outbox's deliveries (None: ``webhooks.deliver`` is off here).
    deliverer: WebhookDeliverer | None
    #: The engines' circuit breakers of this process, shared with its executor.
    breakers: Breakers
    #: Turns to fetch an input named by ``url`` or ``uri`` (``server.remote_inputs_at_once``).
    fetch_slots: anyio.CapacityLimiter
    #: The result cache (None: ``cache.enabled`` is false).
    cache: ResultCache | None = None
    #: The feature flags (docs/flags.md); None: each operation's defaults.
    flags: Flags | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_monotonic: float = field(default_factory=time.monotonic)

    @property
    def uptime(self) -> float:
        return time.monotonic() - self.started_monotonic


# The dependencies are coroutines: FastAPI runs a plain function's in a worker thread,
# a round trip per request for what reads an attribute.
async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_queue(request: Request) -> JobQueue:
    services: Services = request.app.state.services
    return services.queue


QueueDep = Annotated[JobQueue, Depends(get_queue)]


async def get_settings(request: Request) -> Settings:
    services: Services = request.app.state.services
    return services.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]
