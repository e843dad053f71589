"""The API keys in the job store: created, listed, revoked, rotated, checked.

Keys live beside the jobs (any API replica checks any key) as rows of
``api_keys`` that hold the keyed hash of the secret, never the key; see
:mod:`docworker.auth` for the format and what scopes mean. Every change is
written to the audit trail in its own transaction, naming who made it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from docworker.auth import Principal, check_tenant, hash_secret, new_key, same_hash, split_key
from docworker.errors import Conflict, NotFound
from docworker.jobs.audit import AuditKind, key_event
from docworker.jobs.models import ApiKey
from docworker.jobs.store import JobStore

#: Who changes keys when no caller is named (the service itself).
_NOBODY = Principal(tenant=None, key_id=None, scopes=frozenset())


@dataclass(frozen=True)
class KeyRecord:
    """One key as plain values, without its hash."""

    id: str
    tenant: str
    name: str | None
    scopes: list[str]
    limits: dict[str, Any] | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    replaced_by: str | None

    @classmethod
    def from_row(cls, row: ApiKey) -> KeyRecord:
        return cls(
            id=row.id,
            tenant=row.tenant,
            name=row.name,
            scopes=list(row.scopes),
            limits=row.limits,
            created_at=row.created_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            replaced_by=row.replaced_by,
        )

    def active(self, at: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > at)

    def principal(self, client: str | None = None) -> Principal:
        return Principal(
            tenant=self.tenant,
            key_id=self.id,
            scopes=frozenset(self.scopes),
            client=client,
            limits=dict(self.limits or {}),
        )


class KeyStore:
    """API keys in the database of ``store``, hashed with ``server_secret``."""

    def __init__(self, store: JobStore, server_secret: bytes) -> None:
        self.store = store
        self._secret = server_secret

    def create(
        self,
        tenant: str,
        scopes: Sequence[str],
        *,
        name: str | None = None,
        expires_at: datetime | None = None,
        limits: dict[str, Any] | None = None,
        actor: Principal | None = None,
    ) -> tuple[KeyRecord, str]:
        """A new key, made by ``actor``; the second value is the key itself, which is
        not kept anywhere."""
        key_id, secret, token = new_key()
        row = ApiKey(
            id=key_id,
            tenant=check_tenant(tenant),
            name=name,
            scopes=list(scopes),
            hash=hash_secret(self._secret, secret),
            limits=limits or None,
            created_at=datetime.now(UTC),
            expires_at=expires_at,
        )
        with self.store.transaction(writes=True) as session:
            session.add(row)
            session.flush()
            record = KeyRecord.from_row(row)
            detail = {
                "key": record.id,
                "key_tenant": record.tenant,
                "scopes": record.scopes,
                "name": record.name,
                "limits": record.limits,
                "expires_at": record.expires_at.isoformat() if record.expires_at else None,
            }
            session.add(key_event(AuditKind.KEY_CREATE, actor or _NOBODY, detail))
            return record, token

    def get(self, key_id: str) -> KeyRecord:
        with self.store.transaction() as session:
            row = session.get(ApiKey, key_id)
            if row is None:
                raise NotFound("key", key_id)
            return KeyRecord.from_row(row)

    def list(self, *, tenant: str | None = None, include_revoked: bool = False) -> list[KeyRecord]:
        query = select(ApiKey).order_by(ApiKey.tenant, ApiKey.created_at, ApiKey.id)
        if tenant is not None:
            query = query.where(ApiKey.tenant == tenant)
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        with self.store.transaction() as session:
            return [KeyRecord.from_row(row) for row in session.scalars(query)]

    def revoke(self, key_id: str, *, actor: Principal | None = None) -> KeyRecord:
        """Revoke the key at once; revoking a revoked key changes nothing."""
        with self.store.transaction(writes=True) as session:
            row = session.get(ApiKey, key_id, with_for_update=True)
            if row is None:
                raise NotFound("key", key_id)
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
                detail = {"key": row.id, "key_tenant": row.tenant}
                session.add(key_event(AuditKind.KEY_REVOKE, actor or _NOBODY, detail))
            return KeyRecord.from_row(row)

    def rotate(
        self, key_id: str, *, grace: float = 0.0, actor: Principal | None = None
    ) -> tuple[KeyRecord, str]:
        """A new key with the old one's tenant, scopes, name and limits; the old key
        stops working after ``grace`` seconds (at once with 0)."""
        now = datetime.now(UTC)
        key_id_new, secret, token = new_key()
        with self.store.transaction(writes=True) as session:
            old = session.get(ApiKey, key_id, with_for_update=True)
            if old is None:
                raise NotFound("key", key_id)
            if not KeyRecord.from_row(old).active(now):
                raise Conflict(f"key {key_id} is revoked or expired and cannot be rotated")
            row = ApiKey(
                id=key_id_new,
                tenant=old.tenant,
                name=old.name,
                scopes=list(old.scopes),
                hash=hash_secret(self._secret, secret),
                limits=old.limits,
                created_at=now,
                expires_at=old.expires_at,
            )
            session.add(row)
            old.replaced_by = key_id_new
            if grace > 0:
                ends = now + timedelta(seconds=grace)
                old.expires_at = min(old.expires_at, ends) if old.expires_at else ends
            else:
                old.revoked_at = now
            detail = {
                "key": old.id,
                "key_tenant": old.tenant,
                "new_key": key_id_new,
                "grace_seconds": grace,
            }
            session.add(key_event(AuditKind.KEY_ROTATE, actor or _NOBODY, detail))
            session.flush()
            return KeyRecord.from_row(row), token

    def check(self, token: str) -> KeyRecord | None:
        """The active key ``token`` is, or None (unknown, wrong secret, revoked, expired)."""
        parts = split_key(token)
        if parts is None:
            return None
        key_id, secret = parts
        with self.store.transaction() as session:
            row = session.get(ApiKey, key_id)
            if row is None or not same_hash(row.hash, hash_secret(self._secret, secret)):
                return None
            record = KeyRecord.from_row(row)
        return record if record.active(datetime.now(UTC)) else None
