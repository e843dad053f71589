"""``docworker keys``: API keys, managed in the job store the settings name.

These commands work on the database directly (as the service's own user, with its
settings), so the first admin key can be made before anyone can call the API.
A running server also offers the same under ``/api/v2/keys`` to admin keys.
"""

from __future__ import annotations

import getpass
import json
import socket
from datetime import UTC, datetime
from typing import Annotated

import typer

from docworker.auth import KeyLimits, Principal, Scope, check_scopes, server_secret
from docworker.cli_common import fail
from docworker.config import load_settings
from docworker.errors import DocworkerError
from docworker.jobs.keys import KeyRecord, KeyStore
from docworker.jobs.store import JobStore

keys_app = typer.Typer(help="API keys (in the job store of these settings).", no_args_is_help=True)


def _keys() -> tuple[KeyStore, JobStore]:
    settings = load_settings()
    store = JobStore(settings.database_url)
    store.migrate()
    configured = settings.auth.secret.get_secret_value() if settings.auth.secret else None
    return KeyStore(store, server_secret(configured, settings.data_dir)), store


def _operator() -> Principal:
    """Who runs the command, for the audit trail: the local user on this host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    client = f"cli:{user}@{socket.gethostname()}"[:64]
    return Principal(tenant=None, key_id=None, scopes=frozenset({Scope.ADMIN}), client=client)


def _row(record: KeyRecord) -> str:
    state = "active" if record.active(datetime.now(UTC)) else "revoked/expired"
    expires = record.expires_at.isoformat() if record.expires_at else "-"
    return (
        f"{record.id}  {record.tenant:<16}  {','.join(record.scopes):<20}  {state:<15}  "
        f"expires {expires}  {record.name or ''}"
    )


@keys_app.command("create")
def create(
    tenant: Annotated[str, typer.Option(help="The tenant the key belongs to.")],
    scope: Annotated[
        list[str],
        typer.Option(help="read, submit, admin or submit:<operation>; repeat for several."),
    ],
    name: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
    expires: Annotated[
        datetime | None, typer.Option(help="When the key stops working (UTC if no zone).")
    ] = None,
    limits: Annotated[
        str | None,
        typer.Option(
            help='Rate limit and quotas as JSON, e.g. \'{"rate": "10/second", '
            '"pages_per_day": 5000}\'.'
        ),
    ] = None,
) -> None:
    """Create a key and print it: it is shown once and kept nowhere."""
    from docworker.operations import operation_names

    keys, store = _keys()
    try:
        scopes = check_scopes(scope, operation_names())
        checked = KeyLimits.model_validate_json(limits) if limits else None
        expires_at = expires.replace(tzinfo=expires.tzinfo or UTC) if expires else None
        record, token = keys.create(
            tenant,
            scopes,
            name=name,
            expires_at=expires_at,
            limits=checked.model_dump(exclude_none=True) if checked else None,
            actor=_operator(),
        )
    except (DocworkerError, ValueError) as exc:
        raise fail(getattr(exc, "detail", None) or str(exc)) from None
    finally:
        store.close()
    typer.echo(_row(record), err=True)
    typer.echo(token)


@keys_app.command("list")
def list_keys(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
    all_keys: Annotated[bool, typer.Option("--all", help="Revoked keys too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per key.")] = False,
) -> None:
    """List keys (never the keys themselves)."""
    keys, store = _keys()
    try:
        records = keys.list(tenant=tenant, include_revoked=all_keys)
    finally:
        store.close()
    for record in records:
        if as_json:
            typer.echo(json.dumps(record.__dict__, default=str))
        else:
            typer.echo(_row(record))


@keys_app.command("revoke")
def revoke(key_id: str) -> None:
    """Revoke a key (running servers stop taking it within auth.cache_ttl)."""
    keys, store = _keys()
    try:
        record = keys.revoke(key_id, actor=_operator())
    except DocworkerError as exc:
        raise fail(exc.detail) from None
    finally:
        store.close()
    typer.echo(_row(record))


@keys_app.command("rotate")
def rotate(
    key_id: str,
    grace: Annotated[
        float, typer.Option(help="Seconds the old key keeps working, so clients can switch.")
    ] = 0.0,
) -> None:
    """Make a new key in an old one's place (same tenant, scopes, limits) and print it."""
    keys, store = _keys()
    try:
        record, token = keys.rotate(key_id, grace=grace, actor=_operator())
    except DocworkerError as exc:
        raise fail(exc.detail) from None
    finally:
        store.close()
    typer.echo(_row(record), err=True)
    typer.echo(token)
