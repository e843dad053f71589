"""The blob store: inputs (content-addressed by sha256) and job results, behind fsspec.

A store is opened from a URL (``file:///var/lib/docworker/blobs`` by default;
``s3://``, ``gs://`` and ``az://`` where their fsspec drivers are installed).
Uploads are streamed in chunks to a temporary key while their sha256 is
computed, then moved to ``inputs/<sha256>``: a file is never held whole in
memory, and the same content is stored once. Blobs are named by ``blob://`` URIs
relative to the store, so a job row never depends on where the store lives.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import fsspec

from docworker.errors import DependencyDown, LimitExceeded, NotFound, PayloadTooLarge
from docworker.files import make_private

CHUNK = 1024 * 1024
SCHEME = "blob://"


@dataclass(frozen=True)
class StoredBlob:
    uri: str
    sha256: str
    size: int
    #: Whether storing it made it: False when the same content was there already.
    created: bool = field(default=False, compare=False)


class BlobStore:
    """Reads and writes blobs under one fsspec root."""

    def __init__(self, url: str) -> None:
        self.url = url
        fs, root = fsspec.core.url_to_fs(url)
        self._fs: Any = fs
        self._root: str = root.rstrip("/")
        self._local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))

    # -- naming ---------------------------------------------------------------------
    def _path(self, uri: str) -> str:
        if not uri.startswith(SCHEME):
            raise NotFound("blob", uri)
        key = uri[len(SCHEME) :]
        if not key or ".." in key.split("/"):
            raise NotFound("blob", uri)
        return f"{self._root}/{key}"

    @staticmethod
    def input_uri(sha256: str) -> str:
        return f"{SCHEME}inputs/{sha256}"

    @staticmethod
    def result_uri(job_id: str, name: str) -> str:
        return f"{SCHEME}results/{job_id}/{name}"

    @staticmethod
    def results_of(job_id: str) -> str:
        """The folder of all of a job's results."""
        return f"{SCHEME}results/{job_id}"

    # -- writing --------------------------------------------------------------------
    def put_stream(self, stream: IO[bytes], *, max_bytes: int | None = None) -> StoredBlob:
        """Store an input from ``stream``, content-addressed; refuse it past ``max_bytes``."""
        digest = hashlib.sha256()
        size = 0
        tmp = f"{self._root}/incoming/{uuid.uuid4().hex}"
        try:
            self._fs.makedirs(f"{self._root}/incoming", exist_ok=True)
            with self._fs.open(tmp, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise PayloadTooLarge("upload size", size, max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
            uri = self.input_uri(digest.hexdigest())
            final = self._path(uri)
            created = not self._fs.exists(final)
            if created:
                self._fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
                self._fs.mv(tmp, final)
            else:
                self._fs.rm(tmp)
        except LimitExceeded:
            self._fs.rm(tmp)
            raise
        except OSError as exc:
            raise DependencyDown(
                f"the blob store at {self.url} failed: {exc}", dependency="storage"
            ) from exc
        return StoredBlob(uri=uri, sha256=digest.hexdigest(), size=size, created=created)

    def put_file(self, path: Path, *, max_bytes: int | None = None) -> StoredBlob:
        with path.open("rb") as stream:
            return self.put_stream(stream, max_bytes=max_bytes)

    def write_bytes(self, uri: str, data: bytes) -> StoredBlob:
        return self.write_chunks(uri, (data,))

    def write_chunks(self, uri: str, chunks: Iterable[bytes]) -> StoredBlob:
        """Store the bytes ``chunks`` yields under ``uri``, as they come. When ``chunks``
        raises (a limit passed while the data is made), the partial blob is removed and
        the error goes on."""
        path = self._path(uri)
        digest = hashlib.sha256()
        size = 0
        try:
            self._fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            with self._fs.open(path, "wb") as out:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except OSError as exc:
            raise DependencyDown(
                f"the blob store at {self.url} failed: {exc}", dependency="storage"
            ) from exc
        except BaseException:
            if self._fs.exists(path):
                self._fs.rm(path)
            raise
        return StoredBlob(uri=uri, sha256=digest.hexdigest(), size=size)

    def write_file(self, uri: str, path: Path) -> StoredBlob:
        """Store the file at ``path`` under ``uri``, streamed."""
        target = self._path(uri)
        digest = hashlib.sha256()
        size = 0
        try:
            self._fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            with path.open("rb") as src, self._fs.open(target, "wb") as out:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except OSError as exc:
            raise DependencyDown(
                f"the blob store at {self.url} failed: {exc}", dependency="storage"
            ) from exc
        return StoredBlob(uri=uri, sha256=digest.hexdigest(), size=size)

    # -- reading --------------------------------------------------------------------
    def read_bytes(self, uri: str) -> bytes:
        try:
            with self._fs.open(self._path(uri), "rb") as stream:
                data: bytes = stream.read()
                return data
        except FileNotFoundError as exc:
            raise NotFound("blob", uri) from exc

    def open(self, uri: str) -> IO[bytes]:
        try:
            stream: IO[bytes] = self._fs.open(self._path(uri), "rb")
        except FileNotFoundError as exc:
            raise NotFound("blob", uri) from exc
        return stream

    @contextmanager
    def local_copy(self, uri: str, suffix: str = "") -> Iterator[Path]:
        """A path on local disk holding the blob: the blob itself when the store is local."""
        path = self._path(uri)
        if self._local:
            if not self._fs.exists(path):
                raise NotFound("blob", uri)
            yield Path(path)
            return
        with tempfile.TemporaryDirectory(prefix="docworker-") as tmp:
            target = Path(tmp) / f"input{suffix}"
            with self.open(uri) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
            yield target

    def exists(self, uri: str) -> bool:
        return bool(self._fs.exists(self._path(uri)))

    def delete(self, uri: str) -> None:
        path = self._path(uri)
        if self._fs.exists(path):
            self._fs.rm(path, recursive=True)

    def ping(self) -> None:
        """Check the store answers; raises :class:`DependencyDown` when it does not. A
        local store's folder is made private to the service's user (0700)."""
        try:
            self._fs.makedirs(self._root, exist_ok=True)
            self._fs.ls(self._root)
        except OSError as exc:
            raise DependencyDown(
                f"the blob store at {self.url} is unavailable: {exc}", dependency="storage"
            ) from exc
        if self._local:
            # Inputs and results are the clients' documents: the service's user's alone.
            make_private(Path(self._root))
