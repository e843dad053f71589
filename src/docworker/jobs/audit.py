"""The audit trail: who did what, when, with what outcome and cost — read, summed, purged.

Rows of ``audit_events`` are written three ways:

* a job reaching its final state, by the job store, in the transaction of the
  state change (kind ``job``; the parts of a split job add their cost to it);
* an API key created, revoked or rotated, by the key store, in the transaction of
  the change (``key.create``, ``key.revoke``, ``key.rotate``);
* a refused request — an API key that is not valid (401), a scope the key lacks
  (403), a spent quota (429) — gathered in memory by :class:`RefusalLog` and
  written every few seconds, the same refusal repeated within one interval as one
  row with its count: a flood of refusals costs one write per interval, and a
  normal request none.

The usage figures (``GET /api/v2/usage``) are sums over the ``job`` events.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeAlias

import structlog
from sqlalchemy import ColumnElement, String, and_, cast, delete, func, or_, select

from docworker.auth import Principal
from docworker.errors import DocworkerError, InvalidParameter
from docworker.jobs.models import AuditEvent
from docworker.jobs.store import JobStore
from docworker.metrics import AUDIT_EVENTS_DROPPED, NO_TENANT, QUOTA_REFUSALS

log = structlog.get_logger(__name__)

#: The most events one :meth:`AuditLog.list` page returns.
MAX_PAGE_SIZE = 500
#: Rows deleted per transaction when old events are purged.
PURGE_BATCH = 5000

Records: TypeAlias = "list[AuditRecord]"
Groups: TypeAlias = "list[UsageGroup]"


class AuditKind(StrEnum):
    JOB = "job"
    KEY_CREATE = "key.create"
    KEY_REVOKE = "key.revoke"
    KEY_ROTATE = "key.rotate"
    INVALID_KEY = "auth.invalid-key"
    FORBIDDEN = "auth.forbidden"
    QUOTA_EXCEEDED = "quota.exceeded"
    #: Refusals that did not fit in the buffer between two writes, counted.
    DROPPED = "audit.dropped"


@dataclass(frozen=True)
class AuditRecord:
    """One audit event as plain values."""

    id: int
    at: datetime
    kind: str
    key_id: str | None
    tenant: str | None
    client: str | None
    operation: str | None
    job_id: str | None
    input_sha256: str | None
    input_bytes: int | None
    pages: int | None
    outcome: str | None
    duration: float | None
    cpu_seconds: float | None
    detail: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: AuditEvent) -> AuditRecord:
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class AuditFilter:
    """Which events to read; every field given must match (``since`` inclusive,
    ``until`` exclusive)."""

    tenant: str | None = None
    key_id: str | None = None
    operation: str | None = None
    kind: str | None = None
    outcome: str | None = None
    job_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        for name in ("tenant", "key_id", "operation", "kind", "outcome", "job_id"):
            value = getattr(self, name)
            if value is not None:
                found.append(getattr(AuditEvent, name) == value)
        if self.since is not None:
            found.append(AuditEvent.at >= _aware(self.since, "since"))
        if self.until is not None:
            found.append(AuditEvent.at < _aware(self.until, "until"))
        return found


#: What usage can be grouped by.
USAGE_GROUPS = ("tenant", "key_id", "operation", "day")


@dataclass
class UsageFigures:
    """What a set of ended jobs took in, processed and used."""

    jobs: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    input_bytes: int = 0
    pages: int = 0
    cpu_seconds: float = 0.0
    duration_seconds: float = 0.0

    def add(self, other: UsageFigures) -> None:
        self.jobs += other.jobs
        for outcome, count in other.outcomes.items():
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + count
        self.input_bytes += other.input_bytes
        self.pages += other.pages
        self.cpu_seconds += other.cpu_seconds
        self.duration_seconds += other.duration_seconds


@dataclass(frozen=True)
class UsageGroup:
    #: The group's value of each dimension grouped by (``day`` as YYYY-MM-DD, UTC).
    group: dict[str, str | None]
    figures: UsageFigures


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidParameter(name, "must carry a timezone")
    return value.astimezone(UTC)


def _encode_cursor(record: AuditRecord) -> str:
    raw = f"{record.at.isoformat()}|{record.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at_text, event_id = raw.split("|", 1)
        at, ident = datetime.fromisoformat(at_text), int(event_id)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidParameter("cursor", "is not a cursor from a previous page") from exc
    if at.tzinfo is None:
        raise InvalidParameter("cursor", "is not a cursor from a previous page")
    return at, ident


class AuditLog:
    """The ``audit_events`` of a job store: written, listed, summed and purged."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def add(self, events: Sequence[AuditEvent]) -> None:
        """Write ``events`` in one transaction."""
        if not events:
            return
        with self.store.transaction(writes=True) as session:
            session.add_all(events)

    def list(
        self, where: AuditFilter, *, limit: int = 50, cursor: str | None = None
    ) -> tuple[Records, str | None]:
        """One page of events, newest first, and the cursor of the next page (or None)."""
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        query = select(AuditEvent).where(*where.conditions())
        if cursor is not None:
            at, last_id = _decode_cursor(cursor)
            query = query.where(
                or_(AuditEvent.at < at, and_(AuditEvent.at == at, AuditEvent.id < last_id))
            )
        query = query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit + 1)
        with self.store.transaction() as session:
            page = [AuditRecord.from_row(row) for row in session.scalars(query)]
        if len(page) <= limit:
            return page, None
        return page[:limit], _encode_cursor(page[limit - 1])

    def usage(self, where: AuditFilter, group_by: Sequence[str]) -> Groups:
        """The figures of the jobs that ended in the period of ``where``, per group."""
        unknown = [name for name in group_by if name not in USAGE_GROUPS]
        if unknown:
            raise InvalidParameter(
                "group_by", f"'{unknown[0]}' is not one of {', '.join(USAGE_GROUPS)}"
            )
        names = list(dict.fromkeys(group_by))
        with self.store.transaction() as session:
            dialect = session.get_bind().dialect.name
            columns = {
                "tenant": AuditEvent.tenant,
                "key_id": AuditEvent.key_id,
                "operation": AuditEvent.operation,
                "day": _utc_day(dialect),
            }
            keys = [columns[name] for name in names]
            query = (
                select(
                    *keys,
                    AuditEvent.outcome,
                    func.count(),
                    func.coalesce(func.sum(AuditEvent.input_bytes), 0),
                    func.coalesce(func.sum(AuditEvent.pages), 0),
                    func.coalesce(func.sum(AuditEvent.cpu_seconds), 0.0),
                    func.coalesce(func.sum(AuditEvent.duration), 0.0),
                )
                .where(AuditEvent.kind == AuditKind.JOB.value, *where.conditions())
                .group_by(*keys, AuditEvent.outcome)
            )
            rows = session.execute(query).all()
        groups: dict[tuple[Any, ...], UsageGroup] = {}
        for row in rows:
            key = tuple(row[: len(names)])
            outcome, count, size, pages, cpu, duration = row[len(names) :]
            entry = groups.get(key)
            if entry is None:
                values = zip(names, key, strict=True)
                group = {name: None if v is None else str(v) for name, v in values}
                entry = groups[key] = UsageGroup(group=group, figures=UsageFigures())
            entry.figures.add(
                UsageFigures(
                    jobs=int(count),
                    outcomes={str(outcome): int(count)},
                    input_bytes=int(size),
                    pages=int(pages),
                    cpu_seconds=float(cpu),
                    duration_seconds=float(duration),
                )
            )
        return sorted(groups.values(), key=lambda g: [str(v or "") for v in g.group.values()])

    def purge(
        self,
        retention: float,
        by_tenant: Mapping[str, float] | None = None,
        *,
        now: datetime | None = None,
    ) -> int:
        """Delete events older than ``retention`` seconds (``by_tenant``: a tenant's own
        retention); returns how many went. Deletes in batches, so no transaction holds
        the database long."""
        now = now or datetime.now(UTC)
        special = dict(by_tenant or {})
        older = [
            and_(
                AuditEvent.at < now - timedelta(seconds=retention),
                or_(AuditEvent.tenant.is_(None), AuditEvent.tenant.not_in(list(special))),
            )
        ]
        older += [
            and_(AuditEvent.tenant == tenant, AuditEvent.at < now - timedelta(seconds=seconds))
            for tenant, seconds in special.items()
        ]
        deleted = 0
        for condition in older:
            while True:
                with self.store.transaction(writes=True) as session:
                    ids = list(
                        session.scalars(select(AuditEvent.id).where(condition).limit(PURGE_BATCH))
                    )
                    if ids:
                        session.execute(
                            delete(AuditEvent)
                            .where(AuditEvent.id.in_(ids))
                            .execution_options(synchronize_session=False)
                        )
                deleted += len(ids)
                if len(ids) < PURGE_BATCH:
                    break
        if deleted:
            log.info("audit events purged", count=deleted)
        return deleted


def _utc_day(dialect: str) -> ColumnElement[Any]:
    """An event's UTC day as 'YYYY-MM-DD'."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", AuditEvent.at), "YYYY-MM-DD")
    # SQLite keeps the UTC time as text: its first ten characters are the day.
    return func.substr(cast(AuditEvent.at, String), 1, 10)


def key_event(kind: AuditKind, actor: Principal, detail: dict[str, Any]) -> AuditEvent:
    """The event of an API key changed by ``actor``; ``detail`` names the key."""
    return AuditEvent(
        at=datetime.now(UTC),
        kind=kind.value,
        key_id=actor.key_id,
        tenant=actor.tenant,
        client=actor.client,
        detail=detail,
    )


@dataclass
class _Gathered:
    at: datetime
    last_at: datetime
    count: int = 1


class RefusalLog:
    """Refused requests, gathered in memory and written together by :meth:`flush`.

    The same refusal (kind, key, tenant, client, method, path, status and detail)
    seen again before the next write only counts up. When ``max_events`` distinct
    refusals wait already, further ones are counted in one ``audit.dropped`` event.
    """

    def __init__(self, audit: AuditLog, *, max_events: int = 1000, enabled: bool = True) -> None:
        self.audit = audit
        self.max_events = max_events
        self.enabled = enabled
        self._gathered: dict[tuple[Any, ...], _Gathered] = {}
        self._dropped = 0
        self._lock = threading.Lock()

    def add(
        self,
        kind: AuditKind,
        *,
        key_id: str | None,
        tenant: str | None,
        client: str | None,
        status: int,
        method: str | None = None,
        path: str | None = None,
        operation: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """One refused request (``method`` and ``path``: the HTTP request, when known)."""
        if not self.enabled:
            return
        where = {"method": method, "path": path[:500] if path else None, "status": status}
        extra = json.dumps(
            {**dict(detail or {}), **{k: v for k, v in where.items() if v is not None}},
            sort_keys=True,
            default=str,
        )
        key = (kind.value, key_id, tenant, client, operation, extra)
        now = datetime.now(UTC)
        with self._lock:
            gathered = self._gathered.get(key)
            if gathered is not None:
                gathered.count += 1
                gathered.last_at = now
            elif len(self._gathered) < self.max_events:
                self._gathered[key] = _Gathered(at=now, last_at=now)
            else:
                self._dropped += 1
                AUDIT_EVENTS_DROPPED.inc()

    def quota_exceeded(
        self,
        caller: Principal,
        exc: DocworkerError,
        status: int,
        *,
        method: str | None = None,
        path: str | None = None,
        operation: str | None = None,
    ) -> None:
        """A request refused because one of the caller's daily quotas is spent (or an
        input larger than the whole bytes quota)."""
        quota = str(exc.fields.get("quota") or exc.fields.get("limit") or "")
        QUOTA_REFUSALS.labels(caller.tenant or NO_TENANT, quota).inc()
        self.add(
            AuditKind.QUOTA_EXCEEDED,
            key_id=caller.key_id,
            tenant=caller.tenant,
            client=caller.client,
            status=status,
            method=method,
            path=path,
            operation=operation,
            detail={"quota": quota, "limit": exc.fields.get("limit", exc.fields.get("maximum"))},
        )

    def flush(self) -> int:
        """Write what was gathered since the last flush; returns how many events."""
        with self._lock:
            gathered, self._gathered = self._gathered, {}
            dropped, self._dropped = self._dropped, 0
        events = []
        for key, seen in gathered.items():
            kind, key_id, tenant, client, operation, extra = key
            detail = {**json.loads(extra), "count": seen.count, "last_at": seen.last_at.isoformat()}
            events.append(
                AuditEvent(
                    at=seen.at,
                    kind=kind,
                    key_id=key_id,
                    tenant=tenant,
                    client=client,
                    operation=operation,
                    outcome="refused",
                    detail=detail,
                )
            )
        if dropped:
            events.append(
                AuditEvent(
                    at=datetime.now(UTC),
                    kind=AuditKind.DROPPED.value,
                    outcome="refused",
                    detail={"count": dropped},
                )
            )
        try:
            self.audit.add(events)
        except DocworkerError as exc:
            log.warning("refusal events not written", count=len(events), error=exc.detail)
            AUDIT_EVENTS_DROPPED.inc(sum(e.detail["count"] for e in events if e.detail))
            return 0
        return len(events)
