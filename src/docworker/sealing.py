"""Secret values at rest: the key ring from the settings, and the sealed form of a secret.

A secret job parameter (a password) is never stored as given: it is stored as an
envelope ``{"$sealed": <Fernet token>, "$mac": <HMAC-SHA256>}``. The token is the
value encrypted and authenticated (AES-128-CBC + HMAC-SHA256, the Fernet format)
with the first key of ``secrets.keys``; every key listed can open it, so a new key
is put first, ``docworker secrets rotate`` re-seals what the older keys sealed, and
the old key is then removed. The ``$mac`` is an HMAC of the value under a key derived
from the sealing key: two sealings of one value differ (the token is randomised), yet
their MACs are equal, so a resubmitted request is recognised without the value being
kept in any readable form (a plain hash of a short password is as good as the
password to anyone who can guess).

With no key configured, a key is generated once into ``<data_dir>/secret.key``
(mode 0600) and used from then on: secrets are still not kept in clear beside the
data, but whoever can read the data folder can read the key too. Production
deployments configure their keys (:meth:`docworker.config.Settings.secret_key_problem`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from docworker.config import Settings
from docworker.errors import SecretUnreadable

log = structlog.get_logger(__name__)

#: The keys of a sealed value's envelope.
SEALED = "$sealed"
MAC = "$mac"
#: The file of the key generated when none is configured, in the data folder.
KEY_FILE = "secret.key"
#: What the MAC key is derived for (an HMAC of this under the sealing key).
_MAC_PURPOSE = b"docworker: MAC of sealed values"


def new_key() -> str:
    """A fresh key for ``secrets.keys`` (url-safe base64 of 32 random bytes)."""
    return Fernet.generate_key().decode()


def is_sealed(value: object) -> bool:
    """Whether ``value`` is the envelope of a sealed secret."""
    return (
        isinstance(value, Mapping)
        and set(value) == {SEALED, MAC}
        and isinstance(value[SEALED], str)
        and isinstance(value[MAC], str)
    )


def comparable(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with each sealed value replaced by its MAC: two submissions of the same
    parameters compare equal although their tokens differ."""
    return {k: {MAC: v[MAC]} if is_sealed(v) else v for k, v in params.items()}


class SecretKeys:
    """The key ring: the first key seals, every key opens."""

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise ValueError("the key ring needs at least one key")
        raw = [k.encode() if isinstance(k, str) else k for k in keys]
        self._raw = raw
        self._first = Fernet(raw[0])
        self._ring = MultiFernet([Fernet(k) for k in raw])
        self._mac_key = hmac.digest(raw[0], _MAC_PURPOSE, "sha256")

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretKeys:
        """The configured keys; with none, the key generated into the data folder."""
        configured = [key.get_secret_value() for key in settings.secrets.keys]
        if configured:
            return cls(configured)
        return cls([_generated_key(settings.data_dir / KEY_FILE)])

    def export(self) -> list[str]:
        """The keys, in order, to hand to a worker process (never to store or log)."""
        return [k.decode() for k in self._raw]

    def mac(self, value: str) -> str:
        return hmac.new(self._mac_key, value.encode(), hashlib.sha256).hexdigest()

    def seal(self, value: str) -> dict[str, str]:
        """The envelope of ``value``, sealed with the first key."""
        return {SEALED: self._first.encrypt(value.encode()).decode(), MAC: self.mac(value)}

    def open(self, envelope: Mapping[str, str]) -> str:
        """The value sealed in ``envelope``; :class:`SecretUnreadable` when no key opens it."""
        try:
            return self._ring.decrypt(envelope[SEALED].encode()).decode()
        except (InvalidToken, UnicodeDecodeError) as exc:
            raise SecretUnreadable() from exc

    def current(self, envelope: Mapping[str, str]) -> bool:
        """Whether ``envelope`` was sealed with the first key (rotation leaves it as it is)."""
        try:
            self._first.decrypt(envelope[SEALED].encode())
        except InvalidToken:
            return False
        return True


def _generated_key(path: Path) -> str:
    """The key in ``path``, generated there first (mode 0600) when the file is missing.

    Processes starting together agree on one key: each writes its own candidate to a
    private temporary file and links it into place, and a process that finds the place
    taken reads the winner's key."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        candidate = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(new_key() + "\n")
            os.link(candidate, path)
            log.warning(
                "no secrets.keys configured: a key was generated to seal secret job "
                "parameters; configure DOCWORKER_SECRETS__KEYS in production",
                key_file=str(path),
            )
        except FileExistsError:
            pass
        finally:
            candidate.unlink(missing_ok=True)
    else:
        log.info("no secrets.keys configured: the generated key is used", key_file=str(path))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    key = path.read_text().strip()
    try:
        Fernet(key)
    except ValueError:
        raise ValueError(
            f"{path} does not hold a key: delete it, or configure secrets.keys"
        ) from None
    return key
