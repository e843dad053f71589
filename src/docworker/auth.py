"""Who a caller is and what it may do: API keys, tenants and scopes.

A key is ``dw_<id>.<secret>``: the id names its row in the ``api_keys`` table, the
secret is 256 random bits that only the client holds. The table keeps the
HMAC-SHA256 of the secret under the server's secret (``auth.secret``), never the
key: a copy of the database lets no one call the service, and without the server
secret it cannot even be checked offline. The secret is random and long, so one
keyed hash is enough; a slow password hash would only cost every request time.

A key belongs to one tenant and carries scopes:

``read``
    read its tenant's jobs, results, artifacts and events;
``submit``
    submit jobs of any operation; ``submit:<operation>`` submits that one only;
``admin``
    everything, for every tenant: keys, audit, usage, all jobs.

What a tenant cannot see does not exist for it: another tenant's job answers 404,
never 403. A caller without the scope a route needs gets 403.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from docworker.errors import Forbidden, InvalidParameter
from docworker.ratelimit import parse_rate

KEY_PREFIX = "dw_"
#: A key id: lower-case letters and digits, 16 of them.
_KEY_ID = re.compile(r"[a-z0-9]{16}")
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: The tenant of jobs submitted while the service runs without keys.
OPEN_TENANT: str | None = None


class Scope(StrEnum):
    READ = "read"
    SUBMIT = "submit"
    ADMIN = "admin"


SUBMIT_ONE = "submit:"


def check_tenant(tenant: str) -> str:
    if not _TENANT.fullmatch(tenant):
        raise InvalidParameter(
            "tenant", "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return tenant


def check_scopes(scopes: Iterable[str], operations: Iterable[str]) -> list[str]:
    """The scopes, validated and in a stable order; ``operations`` are the known ones."""
    known = set(operations)
    checked: set[str] = set()
    for given in scopes:
        scope = given.strip()
        named = scope in Scope.__members__.values()
        if named or (scope.startswith(SUBMIT_ONE) and scope[len(SUBMIT_ONE) :] in known):
            checked.add(scope)
        else:
            raise InvalidParameter(
                "scopes",
                f"'{scope}' is not a scope: read, submit, admin or submit:<operation> "
                f"(operations: {', '.join(sorted(known))})",
            )
    if not checked:
        raise InvalidParameter("scopes", "a key needs at least one scope")
    return sorted(checked)


@dataclass(frozen=True)
class Principal:
    """The caller of one request."""

    tenant: str | None
    key_id: str | None
    scopes: frozenset[str]
    #: The client's address, as the server saw it.
    client: str | None = None
    #: The key's own rate limit and quotas, over the configured defaults.
    limits: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def open(cls, client: str | None = None) -> Principal:
        """The caller of a service that runs without keys: may do everything."""
        return cls(tenant=OPEN_TENANT, key_id=None, scopes=frozenset({Scope.ADMIN}), client=client)

    @property
    def is_admin(self) -> bool:
        return Scope.ADMIN in self.scopes

    @property
    def visible_tenant(self) -> str | None:
        """The tenant whose jobs this caller lists; None: every tenant's (admin)."""
        return None if self.is_admin else self.tenant

    def may_read(self) -> bool:
        return self.is_admin or Scope.READ in self.scopes

    def may_submit(self, operation: str) -> bool:
        return (
            self.is_admin
            or Scope.SUBMIT in self.scopes
            or f"{SUBMIT_ONE}{operation}" in self.scopes
        )

    def sees(self, tenant: str | None) -> bool:
        """Whether what belongs to ``tenant`` exists for this caller."""
        return self.is_admin or tenant == self.tenant

    def require_read(self) -> None:
        if not self.may_read():
            raise Forbidden("this API key may not read jobs: it lacks the 'read' scope")

    def require_submit(self, operation: str) -> None:
        if not self.may_submit(operation):
            raise Forbidden(
                f"this API key may not submit '{operation}' jobs: it needs the 'submit' "
                f"or 'submit:{operation}' scope"
            )

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("this route is for API keys with the 'admin' scope")


# -- keys ------------------------------------------------------------------------


def new_key() -> tuple[str, str, str]:
    """A new key: (id, secret, the key as given to the client)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    key_id = "".join(secrets.choice(alphabet) for _ in range(16))
    secret = secrets.token_urlsafe(32)
    return key_id, secret, f"{KEY_PREFIX}{key_id}.{secret}"


def split_key(token: str) -> tuple[str, str] | None:
    """(id, secret) of a key as a client sends it; None when it is not one."""
    if not token.startswith(KEY_PREFIX) or len(token) > 200:
        return None
    key_id, dot, secret = token[len(KEY_PREFIX) :].partition(".")
    if not dot or not secret or not _KEY_ID.fullmatch(key_id):
        return None
    return key_id, secret


def hash_secret(server_secret: bytes, secret: str) -> str:
    return hmac.new(server_secret, secret.encode(), hashlib.sha256).hexdigest()


def same_hash(stored: str, computed: str) -> bool:
    return hmac.compare_digest(stored.encode(), computed.encode())


def weak_secret(secret: str) -> str | None:
    """Why ``secret`` is too weak to sign keys with, or None when it is strong enough."""
    if len(secret) < 32:
        return f"it has {len(secret)} characters; at least 32 are needed"
    if len(set(secret)) < 12:
        return "it repeats too few distinct characters to be random"
    return None


class KeyCache:
    """Keys checked recently, so most requests need no database read.

    An entry lives ``ttl`` seconds: a key revoked through another replica stops
    working there within that time, and at once on the replica that revoked it.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[Principal | None, float]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> tuple[bool, Principal | None]:
        """(found, principal); a found None is a key known to be bad."""
        entry = self._entries.get(digest)
        if entry is None or entry[1] < time.monotonic():
            return False, None
        return True, entry[0]

    def put(self, digest: str, principal: Principal | None) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.max_entries:
                now = time.monotonic()
                self._entries = {k: v for k, v in self._entries.items() if v[1] >= now}
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
            self._entries[digest] = (principal, time.monotonic() + self.ttl)

    def forget(self, key_id: str) -> None:
        with self._lock:
            self._entries = {
                k: v for k, v in self._entries.items() if v[0] is None or v[0].key_id != key_id
            }


#: File in the data folder holding the generated server secret (development).
SECRET_FILE = "auth.secret"  # noqa: S105 (a file name)


def server_secret(configured: str | None, data_dir: Path) -> bytes:
    """The secret keys are hashed with: the configured one, else one generated once into
    the data folder (readable by the service's user only)."""
    if configured:
        return configured.encode()
    path = data_dir / SECRET_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    generated = secrets.token_urlsafe(48).encode()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes().strip()
    with os.fdopen(descriptor, "wb") as file:
        file.write(generated)
    return generated


class KeyLimits(BaseModel):
    """A key's own rate limit and daily quotas; unset fields take the configured defaults."""

    model_config = ConfigDict(extra="forbid")

    rate: str | None = Field(
        None,
        max_length=200,
        description="Requests allowed, in the 'limits' notation: '100/minute', or several "
        "separated by ';' ('10/second;1000/hour').",
        examples=["100/minute"],
    )
    requests_per_day: int | None = Field(
        None, ge=0, description="Jobs submitted per UTC day (reads are not counted)."
    )
    bytes_per_day: int | None = Field(
        None, ge=0, description="Bytes of job input submitted per UTC day."
    )
    pages_per_day: int | None = Field(None, ge=0, description="Pages processed per UTC day.")
    cpu_seconds_per_day: float | None = Field(
        None, ge=0, description="CPU-seconds of job work per UTC day."
    )
    max_active_jobs: int | None = Field(
        None, ge=1, description="Jobs of the key's tenant queued or running at once."
    )

    @field_validator("rate")
    @classmethod
    def _check_rate(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rate(value)
        return value
