"""Daily quotas per API key, and the counters they are checked against.

What a key spent on one UTC day is one row of ``usage_counters``: jobs submitted
(``requests``), bytes of their input, pages processed and CPU-seconds used. The
row lives in the job store, so every API replica counts against the same figures
and a restart forgets nothing.

Requests and bytes are counted when a job is queued, in the transaction that
inserts it, by one conditional ``UPDATE`` that adds the job only if the sums stay
within the quotas. The database serialises concurrent updates of the row (SQLite's
write lock, PostgreSQL's row lock, after which the condition is checked again on
the new row), so no two clients can both take the last unit of a quota. Pages and
CPU-seconds are known only once a job has run: they are added when it ends, and a
job is admitted while the day's amount is still under the quota.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Date, Float, and_, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from docworker.config import QuotaSettings
from docworker.errors import DocworkerError, PayloadTooLarge, QuotaExceeded
from docworker.jobs.models import UsageCounter

if TYPE_CHECKING:  # the job store imports this module to count admissions
    from docworker.jobs.store import JobStore

#: The quotas, by the name a key's limits and the settings give them.
QUOTA_NAMES = ("requests_per_day", "bytes_per_day", "pages_per_day", "cpu_seconds_per_day")
_WHAT = {
    "requests_per_day": "jobs",
    "bytes_per_day": "bytes of input",
    "pages_per_day": "pages",
    "cpu_seconds_per_day": "CPU-seconds",
}


@dataclass(frozen=True)
class Quotas:
    """The daily quotas that apply to one key; None: unlimited."""

    requests_per_day: int | None = None
    bytes_per_day: int | None = None
    pages_per_day: int | None = None
    cpu_seconds_per_day: float | None = None

    @classmethod
    def of(cls, limits: Mapping[str, Any], defaults: QuotaSettings) -> Quotas:
        """A key's own ``limits`` (``KeyLimits`` fields), over the configured defaults."""
        chosen = {
            name: limits[name] if limits.get(name) is not None else getattr(defaults, name)
            for name in QUOTA_NAMES
        }
        return cls(**chosen)

    @property
    def any(self) -> bool:
        return any(getattr(self, name) is not None for name in QUOTA_NAMES)


@dataclass(frozen=True)
class Spent:
    """What a key spent on one UTC day."""

    day: date
    requests: int = 0
    bytes_in: int = 0
    pages: int = 0
    cpu_seconds: float = 0.0

    def used(self, quota: str) -> float:
        return {
            "requests_per_day": self.requests,
            "bytes_per_day": self.bytes_in,
            "pages_per_day": self.pages,
            "cpu_seconds_per_day": self.cpu_seconds,
        }[quota]


def utc_day(at: datetime) -> date:
    return at.astimezone(UTC).date()


def day_ends(day: date) -> datetime:
    """The UTC midnight that ends ``day``: when its quotas start again."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


def refusal(
    spent: Spent, quotas: Quotas, incoming_bytes: int, now: datetime
) -> DocworkerError | None:
    """Why one more job of ``incoming_bytes`` may not be admitted, or None when it may."""
    if quotas.bytes_per_day is not None and incoming_bytes > quotas.bytes_per_day:
        return PayloadTooLarge(
            "bytes_per_day",
            incoming_bytes,
            quotas.bytes_per_day,
            f"the input ({incoming_bytes} bytes) is larger than the API key's whole daily "
            f"quota of {quotas.bytes_per_day} bytes",
        )
    for quota in QUOTA_NAMES:
        limit = getattr(quotas, quota)
        if limit is None:
            continue
        used = spent.used(quota)
        if quota == "requests_per_day":
            over = used + 1 > limit
        elif quota == "bytes_per_day":
            over = used + incoming_bytes > limit
        else:
            over = used >= limit
        if over:
            return _exceeded(quota, limit, used, incoming_bytes, spent.day, now)
    return None


def _exceeded(
    quota: str, limit: float, used: float, incoming: int, day: date, now: datetime
) -> QuotaExceeded:
    resets = day_ends(day)
    retry_after = max(1, math.ceil((resets - now).total_seconds()))
    what = _WHAT[quota]
    detail = f"the API key's quota of {limit:g} {what} per UTC day is spent ({used:g} used)"
    if quota == "bytes_per_day" and used < limit:
        detail = (
            f"this job's {incoming} bytes of input do not fit in what is left of the API "
            f"key's quota of {limit:g} bytes per UTC day ({used:g} used)"
        )
    return QuotaExceeded(
        f"{detail}; it starts again at {resets.isoformat().replace('+00:00', 'Z')}",
        retry_after,
        quota=quota,
        limit=limit,
        used=used,
        resets_at=resets.isoformat().replace("+00:00", "Z"),
    )


# -- the counters, inside a job store transaction ----------------------------------------

#: Within the quotas: the row's figures after one more job (of ``bytes_in`` bytes).
_WITHIN = {
    "requests_per_day": lambda: UsageCounter.requests + 1 <= bindparam("requests_per_day"),
    "bytes_per_day": lambda: (
        UsageCounter.bytes_in + bindparam("bytes_in", type_=BigInteger())
        <= bindparam("bytes_per_day")
    ),
    "pages_per_day": lambda: UsageCounter.pages < bindparam("pages_per_day"),
    "cpu_seconds_per_day": lambda: UsageCounter.cpu_seconds < bindparam("cpu_seconds_per_day"),
}


def _insert(dialect: str) -> Any:
    """An INSERT of one counter row, with its values as bound parameters."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(UsageCounter).values(
        key_id=bindparam("key_id"),
        day=bindparam("day", type_=Date()),
        tenant=bindparam("tenant"),
        requests=bindparam("requests", type_=BigInteger()),
        bytes_in=bindparam("bytes_in", type_=BigInteger()),
        pages=bindparam("pages", type_=BigInteger()),
        cpu_seconds=bindparam("cpu_seconds", type_=Float()),
    )


@functools.cache
def _admission(dialect: str, limited: tuple[str, ...]) -> Any:
    """One statement that counts a job and checks the quotas named in ``limited``: the
    day's row is inserted with it, or updated if the sums stay within the quotas (then
    it returns the row). Built once per dialect and set of quotas."""
    insert = _insert(dialect)
    within = [_WITHIN[name]() for name in limited]
    return insert.on_conflict_do_update(
        index_elements=[UsageCounter.key_id, UsageCounter.day],
        set_={
            "requests": UsageCounter.requests + 1,
            "bytes_in": UsageCounter.bytes_in + insert.excluded.bytes_in,
        },
        where=and_(*within) if within else None,
    ).returning(UsageCounter.requests)


@functools.cache
def _charge(dialect: str) -> Any:
    insert = _insert(dialect)
    return insert.on_conflict_do_update(
        index_elements=[UsageCounter.key_id, UsageCounter.day],
        set_={
            "pages": UsageCounter.pages + insert.excluded.pages,
            "cpu_seconds": UsageCounter.cpu_seconds + insert.excluded.cpu_seconds,
        },
    )


def admit(
    session: Session,
    key_id: str,
    tenant: str | None,
    quotas: Quotas,
    incoming_bytes: int,
    now: datetime,
) -> None:
    """Count one job of ``incoming_bytes`` against the key's day, or raise
    :class:`QuotaExceeded` (:class:`PayloadTooLarge` for an input larger than the whole
    bytes quota) and count nothing."""
    day = utc_day(now)
    # A first job of the day inserts the row: it must fit in the quotas by itself.
    if (alone := refusal(Spent(day=day), quotas, incoming_bytes, now)) is not None:
        raise alone
    limited = tuple(name for name in QUOTA_NAMES if getattr(quotas, name) is not None)
    connection = session.connection()
    params: dict[str, Any] = {
        "key_id": key_id,
        "day": day,
        "tenant": tenant,
        "requests": 1,
        "bytes_in": incoming_bytes,
        "pages": 0,
        "cpu_seconds": 0.0,
        **{name: getattr(quotas, name) for name in limited},
    }
    # A row comes back when the job was counted (rowcount is not reliable for an upsert
    # on every driver).
    counted = connection.execute(_admission(connection.dialect.name, limited), params)
    if counted.first() is not None:
        return
    found = refusal(read(session, key_id, day), quotas, incoming_bytes, now)
    # Nothing was counted, so a quota would be passed: counters only grow within a day.
    assert found is not None
    raise found


def charge(
    session: Session,
    key_id: str | None,
    tenant: str | None,
    now: datetime,
    *,
    pages: int = 0,
    cpu_seconds: float = 0.0,
) -> None:
    """Add what a job used to its key's day (nothing for a job without a key)."""
    if key_id is None or (pages <= 0 and cpu_seconds <= 0):
        return
    connection = session.connection()
    params = {
        "key_id": key_id,
        "day": utc_day(now),
        "tenant": tenant,
        "requests": 0,
        "bytes_in": 0,
        "pages": pages,
        "cpu_seconds": cpu_seconds,
    }
    connection.execute(_charge(connection.dialect.name), params)


def read(session: Session, key_id: str, day: date) -> Spent:
    row = session.get(UsageCounter, (key_id, day))
    if row is None:
        return Spent(day=day)
    return Spent(
        day=day,
        requests=row.requests,
        bytes_in=row.bytes_in,
        pages=row.pages,
        cpu_seconds=row.cpu_seconds,
    )


def delete_before(session: Session, day: date) -> int:
    """Delete the counters of days before ``day``; returns how many rows went."""
    done = session.execute(
        delete(UsageCounter)
        .where(UsageCounter.day < day)
        .execution_options(synchronize_session=False)
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


class QuotaCounters:
    """The counters of a job store, read outside of job transitions: for the early
    check of a request before its body is read, and to show a key what is left."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def spent(self, key_id: str, day: date) -> Spent:
        with self.store.transaction() as session:
            return read(session, key_id, day)

    def check(
        self, key_id: str, quotas: Quotas, incoming_bytes: int, now: datetime | None = None
    ) -> None:
        """Raise the refusal a job of ``incoming_bytes`` would meet now, if any. Not the
        admission itself (that counts, in the job's transaction): a look ahead, so a
        request bound to be refused is refused before its upload."""
        now = now or datetime.now(UTC)
        found = refusal(self.spent(key_id, utc_day(now)), quotas, incoming_bytes, now)
        if found is not None:
            raise found

    def purge_before(self, day: date) -> int:
        with self.store.transaction(writes=True) as session:
            return delete_before(session, day)
