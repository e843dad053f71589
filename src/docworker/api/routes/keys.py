"""``/api/v2/keys``: API keys, managed by admin keys; ``/api/v2/keys/current`` for any key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from docworker.api.auth import CallerDep
from docworker.api.deps import ServicesDep
from docworker.api.errors import problem_responses
from docworker.auth import KeyLimits, check_scopes
from docworker.errors import InvalidParameter, NotFound
from docworker.jobs.keys import KeyRecord
from docworker.operations import operation_names

router = APIRouter(prefix="/api/v2/keys", tags=["keys"])


class KeyPublic(BaseModel):
    id: str = Field(examples=["k3x9q2m7a1b5c8d0"])
    tenant: str = Field(examples=["acme"])
    name: str | None
    scopes: list[str] = Field(examples=[["read", "submit"]])
    limits: KeyLimits | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    replaced_by: str | None = Field(None, description="The key that replaced this one.")
    active: bool

    @classmethod
    def of(cls, record: KeyRecord) -> KeyPublic:
        return cls(
            id=record.id,
            tenant=record.tenant,
            name=record.name,
            scopes=record.scopes,
            limits=KeyLimits.model_validate(record.limits) if record.limits else None,
            created_at=record.created_at,
            expires_at=record.expires_at,
            revoked_at=record.revoked_at,
            replaced_by=record.replaced_by,
            active=record.active(datetime.now(UTC)),
        )


class KeyCreated(BaseModel):
    key: KeyPublic
    token: str = Field(
        description="The key itself: send it as 'Authorization: Bearer <token>'. It is shown "
        "once and kept nowhere.",
        examples=["dw_k3x9q2m7a1b5c8d0.Qm9vZ..."],
    )


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(min_length=1, max_length=64, examples=["acme"])
    scopes: list[str] = Field(
        min_length=1,
        max_length=100,
        description="read, submit, admin, or submit:<operation>.",
        examples=[["read", "submit"]],
    )
    name: str | None = Field(None, max_length=200, examples=["ci pipeline"])
    expires_at: datetime | None = Field(None, description="The key stops working then.")
    limits: KeyLimits | None = None


class KeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: float = Field(
        0.0,
        ge=0,
        le=30 * 86400,
        description="The old key keeps working this long, so clients can switch.",
    )


class KeyList(BaseModel):
    keys: list[KeyPublic]


@router.post(
    "",
    operation_id="create_key",
    summary="Create an API key",
    status_code=201,
    response_model=KeyCreated,
    responses=problem_responses(401, 403, 422),
)
async def create_key(body: KeyCreate, caller: CallerDep, services: ServicesDep) -> KeyCreated:
    """A new key for a tenant, with its scopes (admin). The answer holds the key once."""
    caller.require_admin()
    scopes = check_scopes(body.scopes, operation_names())
    expires = _aware(body.expires_at)
    if expires is not None and expires <= datetime.now(UTC):
        raise InvalidParameter("expires_at", "is in the past")
    limits = body.limits.model_dump(exclude_none=True) if body.limits else None
    record, token = await anyio.to_thread.run_sync(
        lambda: services.keys.create(
            body.tenant, scopes, name=body.name, expires_at=expires, limits=limits, actor=caller
        )
    )
    return KeyCreated(key=KeyPublic.of(record), token=token)


@router.get(
    "",
    operation_id="list_keys",
    summary="List API keys",
    response_model=KeyList,
    responses=problem_responses(401, 403),
)
async def list_keys(
    caller: CallerDep,
    services: ServicesDep,
    tenant: Annotated[str | None, Query(max_length=64, description="Only this tenant's.")] = None,
    include_revoked: Annotated[bool, Query(description="Revoked keys too.")] = False,
) -> KeyList:
    """Every key, or a tenant's (admin). Keys themselves are never shown again."""
    caller.require_admin()
    records = await anyio.to_thread.run_sync(
        lambda: services.keys.list(tenant=tenant, include_revoked=include_revoked)
    )
    return KeyList(keys=[KeyPublic.of(r) for r in records])


@router.get(
    "/current",
    operation_id="current_key",
    summary="The key of this request",
    response_model=KeyPublic,
    responses=problem_responses(401, 404),
)
async def current_key(caller: CallerDep, services: ServicesDep) -> KeyPublic:
    """The key the request was made with: its tenant, scopes and limits. 404 when the
    service runs without keys."""
    if caller.key_id is None:
        raise NotFound("key", "current")
    record = await anyio.to_thread.run_sync(services.keys.get, caller.key_id)
    return KeyPublic.of(record)


@router.get(
    "/{key_id}",
    operation_id="get_key",
    summary="Get an API key",
    response_model=KeyPublic,
    responses=problem_responses(401, 403, 404),
)
async def get_key(key_id: str, caller: CallerDep, services: ServicesDep) -> KeyPublic:
    """One key's tenant, scopes, limits and state (admin)."""
    caller.require_admin()
    record = await anyio.to_thread.run_sync(services.keys.get, key_id)
    return KeyPublic.of(record)


@router.delete(
    "/{key_id}",
    operation_id="revoke_key",
    summary="Revoke an API key",
    response_model=KeyPublic,
    responses=problem_responses(401, 403, 404),
)
async def revoke_key(key_id: str, caller: CallerDep, services: ServicesDep) -> KeyPublic:
    """The key stops working at once on this server, and within ``auth.cache_ttl`` on
    the others (admin)."""
    caller.require_admin()
    record = await anyio.to_thread.run_sync(lambda: services.keys.revoke(key_id, actor=caller))
    services.authenticator.forget(key_id)
    return KeyPublic.of(record)


@router.post(
    "/{key_id}/rotate",
    operation_id="rotate_key",
    summary="Rotate an API key",
    status_code=201,
    response_model=KeyCreated,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def rotate_key(
    key_id: str, caller: CallerDep, services: ServicesDep, body: KeyRotate | None = None
) -> KeyCreated:
    """A new key in the old one's place (same tenant, scopes and limits); the old one
    stops working after ``grace_seconds`` (admin)."""
    caller.require_admin()
    grace = body.grace_seconds if body else 0.0
    record, token = await anyio.to_thread.run_sync(
        lambda: services.keys.rotate(key_id, grace=grace, actor=caller)
    )
    if grace == 0:
        services.authenticator.forget(key_id)
    return KeyCreated(key=KeyPublic.of(record), token=token)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidParameter("expires_at", "must carry a timezone")
    return value.astimezone(UTC)
