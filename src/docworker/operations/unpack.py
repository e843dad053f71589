"""The ``unpack`` operation: an archive → the tree of its entries, each file an artifact.

The archive is walked by :func:`~docworker.formats.archives.walk_archive` under the
``archives`` settings: every entry at every depth is listed with its path (nested
archives' entries under the nested archive's path), depth, size, sha256, detected
type and status. Each file unpacked ``ok`` is stored as an artifact of the job,
named ``<n>-<file name>`` (``n`` its place in the list, so that two files of one name
never collide; letters outside ASCII become ``_``) and named again in its entry
(``artifact``); an archive unpacked in turn is listed but not stored (its files are).
An entry refused (a path out of the archive, a link, a device, a limit) or failed
(damaged, a password missing or wrong) is an error item of the result, so the job
ends ``partial``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, SecretStr

from docworker.errors import ProcessingFailed
from docworker.formats.archives import Entry, EntryStatus, walk_archive
from docworker.formats.embedded import safe_name
from docworker.operations.base import (
    Artifact,
    Family,
    InputFile,
    OperationContext,
    OperationParams,
    Result,
)

_OCTET = "application/octet-stream"


class UnpackParams(OperationParams):
    password: SecretStr | None = Field(
        None,
        description="Password of an encrypted archive (ZIP ZipCrypto or AES, 7z); it is "
        "tried on every encrypted entry, nested archives' too.",
    )


class UnpackOperation:
    name: ClassVar[str] = "unpack"
    summary: ClassVar[str] = (
        "The entries of an archive (zip, tar, tar.gz/bz2/xz/zst, 7z, gz/bz2/xz/zst), "
        "nested ones too, each file stored as an artifact."
    )
    queue: ClassVar[Family] = Family.DOCUMENTS
    Params: ClassVar[type[OperationParams]] = UnpackParams

    def run(self, ctx: OperationContext, source: InputFile, params: OperationParams) -> Result:
        assert isinstance(params, UnpackParams)
        if ctx.workdir is None:
            raise ProcessingFailed("unpacking writes files, and there is no place for them")
        folder = ctx.workdir / "unpacked"
        folder.mkdir()
        limits = ctx.settings.archives
        password = params.password.get_secret_value() if params.password else None
        entries: list[dict[str, Any]] = []
        artifacts: list[Artifact] = []
        errors: list[dict[str, Any]] = []
        walk = walk_archive(
            source.path,
            name=source.name,
            limits=limits,
            workdir=folder,
            password=password,
            cancelled=ctx.cancelled,
        )
        for entry in walk:
            listed = entry.as_dict()
            if entry.file is not None:
                artifact = _artifact(ctx, entry, len(entries) + 1)
                artifacts.append(artifact)
                listed["artifact"] = artifact.name
            if entry.status is not EntryStatus.OK:
                errors.append({"code": entry.code, "detail": entry.reason, "path": entry.path})
            entries.append(listed)
            ctx.progress(min(len(entries) / limits.max_entries, 0.99), entry.path)
        counts = {status.value: 0 for status in EntryStatus}
        for listed in entries:
            counts[listed["status"]] += 1
        payload = {"entries": entries, "counts": counts}
        return Result(payload=payload, errors=errors, artifacts=artifacts)


def _artifact(ctx: OperationContext, entry: Entry, index: int) -> Artifact:
    """The entry's file, moved to where the job's artifacts are made."""
    assert entry.file is not None
    # Artifact names travel in HTTP headers (Content-Disposition): ASCII only.
    plain = safe_name(entry.path, "file").encode("ascii", errors="replace").decode()
    name = f"{index}-{plain.replace('?', '_')}"
    target = ctx.artifact_path(name)
    entry.file.rename(target)
    entry.file = target
    return Artifact(name, target, entry.mime or _OCTET)
