"""Signature findings: the EICAR test string and the operator's YARA rules.

The EICAR anti-malware test string is looked for in the raw file, streamed, and in
the small parts of a ZIP container (where test files are usually wrapped). YARA rules
come from ``guard.yara_rules`` (a file, or a folder of ``*.yar``/``*.yara`` files);
they are compiled once per process and matched against the raw file with YARA's own
time limit.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import structlog

from docworker.config import FindingKind, GuardSettings
from docworker.guard.findings import Budget, FindingSet, quote
from docworker.guard.streams import Package, file_chunks

log = structlog.get_logger(__name__)

#: The 68-byte EICAR test string.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
#: ZIP parts up to this size are searched for the EICAR string (an EICAR test file is
#: at most 128 bytes; its usual wrappers are small too).
EICAR_PART_BYTES = 64 * 1024
_EICAR_DETAIL = "the EICAR anti-malware test string"


def check_eicar(found: FindingSet, path: Path, budget: Budget) -> None:
    """Note the EICAR string in the file, which is read in chunks, never whole."""
    tail = b""
    offset = 0
    for chunk in file_chunks(path, budget):
        window = tail + chunk
        at = window.find(EICAR)
        if at >= 0:
            found.note(FindingKind.EICAR, _EICAR_DETAIL, f"byte {offset - len(tail) + at}")
            return
        offset += len(chunk)
        tail = window[-(len(EICAR) - 1) :]


def check_eicar_parts(found: FindingSet, package: Package) -> None:
    """Note the EICAR string in the small parts of a ZIP container."""
    for info in package.parts:
        if info.is_dir() or info.file_size > EICAR_PART_BYTES:
            continue
        data = package.head(info, EICAR_PART_BYTES)
        if data and EICAR in data:
            found.note(FindingKind.EICAR, _EICAR_DETAIL, f"part {info.filename}")


class YaraUnavailable(Exception):
    """YARA rules are configured but cannot be used (no yara-python, or bad rules)."""


_RULES: dict[tuple[str, float], Any] = {}
_RULES_LOCK = threading.Lock()


def _compile(yara: Any, location: Path) -> Any:
    """A rules file in YARA's default namespace; a folder's files each in the namespace
    of its name."""
    if not location.is_dir():
        return yara.compile(filepath=str(location))
    files = sorted(
        p for p in location.iterdir() if p.suffix.lower() in {".yar", ".yara"} and p.is_file()
    )
    if not files:
        raise YaraUnavailable(f"guard.yara_rules: no *.yar or *.yara file in {location}")
    return yara.compile(filepaths={p.stem: str(p) for p in files})


def _stamp(location: Path) -> float:
    """The newest modification time of the rules, so that changed rules are compiled again."""
    if location.is_dir():
        return max((p.stat().st_mtime for p in location.iterdir()), default=0.0)
    return location.stat().st_mtime


def load_rules(location: Path) -> Any:
    """The compiled rules at ``location``, compiled once per process (and again when a
    rules file changes). Raises :class:`YaraUnavailable` with the reason."""
    try:
        import yara
    except ImportError as exc:
        raise YaraUnavailable("guard.yara_rules is set but yara-python is not installed") from exc
    try:
        key = (str(location.resolve()), _stamp(location))
    except OSError as exc:
        raise YaraUnavailable(f"guard.yara_rules: {location}: {exc.strerror}") from exc
    with _RULES_LOCK:
        rules = _RULES.get(key)
        if rules is None:
            try:
                rules = _compile(yara, location)
            except yara.Error as exc:
                raise YaraUnavailable(f"guard.yara_rules: {exc}") from exc
            _RULES.clear()
            _RULES[key] = rules
            log.info("YARA rules compiled", rules=str(location))
    return rules


def check_yara(found: FindingSet, path: Path, settings: GuardSettings) -> None:
    """Note every YARA rule that matches the file (nothing when no rules are configured)."""
    if settings.yara_rules is None:
        return
    import yara

    rules = load_rules(settings.yara_rules)
    try:
        matches = rules.match(filepath=str(path), timeout=settings.yara_timeout)
    except yara.TimeoutError:
        found.note(
            FindingKind.SCAN_ERROR,
            f"the YARA rules did not finish within {settings.yara_timeout} s",
            "yara",
        )
        return
    for match in matches:
        name = f"{match.namespace}.{match.rule}" if match.namespace != "default" else match.rule
        description = match.meta.get("description") if isinstance(match.meta, dict) else None
        detail = f"YARA rule {name} matched"
        if match.tags:
            detail += f" (tags: {', '.join(match.tags)})"
        if description:
            detail += f": {quote(str(description))}"
        found.note(FindingKind.YARA, detail, name)
