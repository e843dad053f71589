"""Webhooks: a job's own webhook checked at submission, and the delivery loop.

A job may name a ``webhook_url`` and the events it wants (the final ones unless it
says); configured subscriptions (``webhooks.subscriptions``) hear every job's, or one
tenant's. Each event due to a target is a row of the outbox (:mod:`docworker.jobs.outbox`),
written with the event; :class:`WebhookDeliverer` sends them from a thread of its own,
never from the event loop or the executor's supervisor.

Every request is signed the Standard Webhooks way: headers ``webhook-id`` (the same on
every attempt of a delivery), ``webhook-timestamp`` (Unix seconds of the attempt) and
``webhook-signature`` = ``v1,`` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")),
the key being the base64 after ``whsec_`` of the target's secret: the job's own
``webhook_secret`` (sealed at rest like every secret, :mod:`docworker.sealing`), else
``webhooks.secret``; a subscription's own secret.

A delivery is retried until a 2xx answer, ``webhooks.max_attempts`` times at most, the
delay doubling from ``webhooks.backoff`` with jitter; then it is recorded as failed.
A target refused by the URL guard (:class:`~docworker.url_policy.UrlPolicy`: public
addresses only unless ``webhooks.allow_private`` names it) or whose secret is gone
fails at once. Each attempt is logged on the delivery (``GET /api/v2/jobs/{id}/webhooks``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import structlog

from docworker import __version__
from docworker.config import (
    FINAL_BATCH_EVENT_KINDS,
    FINAL_EVENT_KINDS,
    BatchEventKind,
    JobEventKind,
    Settings,
    WebhookSettings,
    webhook_secret_bytes,
)
from docworker.errors import DocworkerError, InvalidParameter, SecretUnreadable
from docworker.jobs.events import JobEventBus
from docworker.jobs.journal import Journal, Subscription
from docworker.jobs.outbox import DELIVERED, FAILED, PENDING, Delivery, Outbox
from docworker.metrics import WEBHOOK_DELIVERIES, WEBHOOK_DURATION
from docworker.sealing import SecretKeys
from docworker.url_policy import UrlPolicy, UrlRefused, UrlUnreadable

log = structlog.get_logger(__name__)

EVENT_KINDS: tuple[str, ...] = get_args(JobEventKind)
BATCH_EVENT_KINDS: tuple[str, ...] = get_args(BatchEventKind)
#: The longest webhook URL accepted.
MAX_URL_LENGTH = 2000


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` of ``body`` (Standard Webhooks, version 1)."""
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(webhook_secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def retry_delay(settings: WebhookSettings, attempts: int) -> float:
    """Seconds before the attempt after the ``attempts``-th: doubling from
    ``webhooks.backoff``, up to ``webhooks.max_backoff``, 50 to 100 % of it (jitter, so
    that the deliveries of a receiver that was down do not all come back at once)."""
    base = min(settings.max_backoff, settings.backoff * 2.0 ** (attempts - 1))
    return base * random.uniform(0.5, 1.0)


def url_policy(settings: WebhookSettings) -> UrlPolicy:
    """The guard of webhook targets: any public host, non-public addresses only for the
    targets ``webhooks.allow_private`` names."""
    return UrlPolicy(
        any_host=True, private_urls=tuple(settings.allow_private), timeout=settings.timeout
    )


def subscriptions(settings: WebhookSettings) -> tuple[Subscription, ...]:
    """The configured subscriptions, as the journal matches them to events."""
    return tuple(
        Subscription(s.name, s.url, frozenset(s.events), s.tenant) for s in settings.subscriptions
    )


def journal(
    settings: Settings,
    deliverer: WebhookDeliverer | None,
    events: JobEventBus | None = None,
) -> Journal:
    """The job store's journal: the subscriptions, the wake-up of this process's loop,
    the event bus every committed change is announced on (``events``), and how often a
    batch's progress is written (``events.batch_progress_interval``)."""
    return Journal(
        subscriptions(settings.webhooks),
        deliverer.wake if deliverer is not None else None,
        events.announce if events is not None else None,
        batch_progress_interval=settings.events.batch_progress_interval,
    )


@dataclass(frozen=True)
class WebhookRequest:
    """A job's (or a batch's) own webhook as its client asked for it."""

    url: str
    events: Sequence[str] = FINAL_EVENT_KINDS
    secret: str | None = None
    #: The events it may choose from: a job's, or a batch's (:meth:`for_batch`).
    kinds: tuple[str, ...] = EVENT_KINDS

    @classmethod
    def for_batch(
        cls, url: str | None, events: str | None, secret: str | None
    ) -> WebhookRequest | None:
        """A batch's webhook from its form's ``webhook_*`` fields, as :meth:`of_form`
        reads them; its events are a batch's (default: the final ones)."""
        request = cls.of_form(url, events, secret)
        if request is None:
            return None
        chosen = request.events if events else FINAL_BATCH_EVENT_KINDS
        return cls(request.url, chosen, request.secret, BATCH_EVENT_KINDS)

    @classmethod
    def of_form(
        cls, url: str | None, events: str | None, secret: str | None
    ) -> WebhookRequest | None:
        """The webhook of a form's ``webhook_url``, ``webhook_events`` (separated by
        commas; default: the final events) and ``webhook_secret`` fields; None without a
        URL (:class:`InvalidParameter` when the other fields come without one)."""
        url, events, secret = (value or None for value in (url, events, secret))
        if url is None:
            if events is not None or secret is not None:
                raise InvalidParameter(
                    "webhook_url", "required with webhook_events or webhook_secret"
                )
            return None
        if events is None:
            return cls(url, secret=secret)
        return cls(url, [e.strip() for e in events.split(",") if e.strip()], secret)

    def checked(self, settings: WebhookSettings, keys: SecretKeys) -> dict[str, Any]:
        """The webhook as the job stores it (``Job.webhook``: its secret sealed);
        :class:`InvalidParameter` (422) naming the field at fault: a URL the guard
        refuses (a private address not allow-listed), an unknown event, a secret not in
        the ``whsec_`` form, or none where the server has no ``webhooks.secret``. The
        URL's host is resolved: call from a worker thread."""
        if len(self.url) > MAX_URL_LENGTH:
            raise InvalidParameter("webhook_url", f"longer than {MAX_URL_LENGTH} characters")
        unknown = [e for e in self.events if e not in self.kinds]
        if unknown or not self.events:
            raise InvalidParameter(
                "webhook_events",
                f"'{unknown[0] if unknown else ''}' is not an event: {', '.join(self.kinds)}",
            )
        if self.secret is not None:
            try:
                webhook_secret_bytes(self.secret)
            except ValueError as exc:
                raise InvalidParameter("webhook_secret", str(exc)) from None
        elif settings.secret is None:
            raise InvalidParameter(
                "webhook_secret",
                "required: this server has no webhooks.secret to sign the job's webhooks",
            )
        try:
            url_policy(settings).check(self.url)
        except UrlRefused as exc:
            raise InvalidParameter("webhook_url", exc.detail) from exc
        return {
            "url": self.url,
            "events": [kind for kind in self.kinds if kind in self.events],
            "secret": keys.seal(self.secret) if self.secret is not None else None,
        }


def reseal_webhook(webhook: dict[str, Any], keys: SecretKeys) -> dict[str, Any] | None:
    """``webhook`` (``Job.webhook``) with its secret sealed with the first of ``keys``,
    or None when it has no secret or the first key sealed it (``docworker secrets
    rotate``)."""
    sealed = webhook.get("secret")
    if sealed is None or keys.current(sealed):
        return None
    return webhook | {"secret": keys.seal(keys.open(sealed))}


class WebhookDeliverer:
    """Sends the outbox's due deliveries from a thread, ``concurrency`` at a time."""

    def __init__(self, settings: WebhookSettings, outbox: Outbox, keys: SecretKeys) -> None:
        self.settings = settings
        self.outbox = outbox
        self.keys = keys
        self.policy = url_policy(settings)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        #: A claim holds a delivery for longer than its attempt can take.
        self._lease = settings.timeout * 2 + 30.0

    def start(self) -> None:
        """Start the loop; it reads the outbox at once (what a stopped process left)."""
        self._pool = ThreadPoolExecutor(
            self.settings.concurrency, thread_name_prefix="docworker-webhook"
        )
        self._thread = threading.Thread(target=self._run, name="docworker-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; attempts under way end within their timeout (one cut short is
        claimed again by the next start once its lease runs out)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        """New deliveries were queued: look now. Safe from any thread."""
        self._wake.set()

    def _run(self) -> None:
        batch = self.settings.concurrency * 4
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                claimed = self.outbox.claim_due(datetime.now(UTC), limit=batch, lease=self._lease)
            except DocworkerError as exc:
                log.warning("webhook outbox unreadable", error=exc.detail)
                claimed = []
            if claimed and self._pool is not None:
                list(self._pool.map(self._attempt, claimed))
                if len(claimed) == batch:
                    continue
            self._wake.wait(self.settings.poll_interval)

    def _attempt(self, delivery: Delivery) -> None:
        """One attempt at ``delivery``, logged on it; never raises."""
        started = time.monotonic()
        at = datetime.now(UTC)
        entry: dict[str, Any] = {"attempt": delivery.attempts + 1, "at": at.isoformat()}
        final = False
        try:
            secret = self._secret(delivery)
            code = self._post(delivery, secret, at)
            entry["status"] = code
            ok = 200 <= code < 300
            if not ok:
                entry["error"] = f"HTTP {code}"
        except (UrlRefused, SecretUnreadable, _Undeliverable) as exc:
            entry["error"] = exc.detail if isinstance(exc, DocworkerError) else str(exc)
            ok, final = False, True
        except UrlUnreadable as exc:  # the receiver is down or slow: tried again later
            entry["error"] = exc.detail[:300]
            ok = False
        except Exception as exc:  # a delivery's fault must not end the loop
            log.exception("webhook attempt failed", delivery_id=delivery.id)
            entry["error"] = f"{type(exc).__name__}"
            ok = False
        elapsed = time.monotonic() - started
        entry["ms"] = round(elapsed * 1000, 1)
        WEBHOOK_DURATION.observe(elapsed)
        self._record(delivery, entry, ok=ok, final=final)

    def _record(self, delivery: Delivery, entry: dict[str, Any], *, ok: bool, final: bool) -> None:
        attempts = delivery.attempts + 1
        next_at = None
        if ok:
            status = DELIVERED
        elif final or attempts >= self.settings.max_attempts:
            status = FAILED
        else:
            status = PENDING
            next_at = datetime.now(UTC) + timedelta(seconds=retry_delay(self.settings, attempts))
        try:
            self.outbox.record_attempt(delivery.id, entry, status=status, next_at=next_at)
        except DocworkerError as exc:  # claimed again once the lease runs out
            log.warning("webhook attempt not recorded", delivery_id=delivery.id, error=exc.detail)
            return
        WEBHOOK_DELIVERIES.labels(_OUTCOMES[status]).inc()
        log.info(
            "webhook attempt",
            delivery_id=delivery.id,
            job_id=delivery.job_id,
            batch_id=delivery.batch_id,
            event_type=delivery.event,
            outcome=status,
            http_status=entry.get("status"),
            attempt=attempts,
        )

    def _secret(self, delivery: Delivery) -> str:
        """The secret that signs ``delivery``; :class:`_Undeliverable` when it is gone."""
        if delivery.subscription is not None:
            for subscription in self.settings.subscriptions:
                if subscription.name == delivery.subscription:
                    return subscription.secret.get_secret_value()
            raise _Undeliverable(f"subscription '{delivery.subscription}' is not configured")
        if delivery.job_webhook is None:
            raise _Undeliverable(f"the {'batch' if delivery.batch_id else 'job'} was deleted")
        sealed = delivery.job_webhook.get("secret")
        if sealed is not None:
            return self.keys.open(sealed)
        if self.settings.secret is None:
            raise _Undeliverable("no webhooks.secret is configured to sign it")
        return self.settings.secret.get_secret_value()

    def _post(self, delivery: Delivery, secret: str, at: datetime) -> int:
        timestamp = int(at.timestamp())
        headers = {
            "content-type": "application/json",
            "user-agent": f"docworker-webhooks/{__version__}",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, delivery.id, timestamp, delivery.payload),
        }
        # To the address the policy checked: a name that resolves elsewhere by the time
        # of the connection cannot lead the delivery to a private address.
        return self.policy.post(delivery.url, delivery.payload.encode(), headers)


#: The outcome label of an attempt (docworker_webhook_deliveries_total), by the
#: delivery's status after it.
_OUTCOMES = {DELIVERED: "delivered", PENDING: "retry", FAILED: "failed"}


class _Undeliverable(Exception):
    """A delivery that no retry can send (its secret or subscription is gone)."""
