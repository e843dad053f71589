"""The blob store: inputs (content-addressed by sha256) and job results, behind fsspec.

A store is opened from a URL (``file:///var/lib/docworker/blobs`` by default;
``s3://`` for AWS and any S3-compatible service, ``gs://`` and ``az://`` where
their fsspec drivers, gcsfs and adlfs, are installed). Uploads are streamed in
chunks to a temporary key while their sha256 is computed, then moved to
``inputs/<sha256>``: a file is never held whole in memory, and the same content is
stored once. Blobs are named by ``blob://`` URIs relative to the store, so a job
row never depends on where the store lives.

Results and artifacts (``blob://results/...``) go to the output store
(``storage.output_url``), which may differ from the inputs' store; an artifact in
an output store that signs URLs (s3, Azure) gets presigned download links
(:meth:`BlobStore.signed_url`). :class:`ReadRoots` are the storage URLs outside the
store that inputs may be copied in from (``storage.read_roots``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import fsspec
from fsspec.core import split_protocol
from opentelemetry.trace import Span

from docworker.config import Settings, StorageSettings
from docworker.errors import DependencyDown, Forbidden, LimitExceeded, NotFound, PayloadTooLarge
from docworker.files import make_private
from docworker.metrics import STORAGE_BYTES, STORAGE_DURATION, STORAGE_OPERATIONS
from docworker.tracing import engine_span, set_attributes

CHUNK = 1024 * 1024
SCHEME = "blob://"


@dataclass(frozen=True)
class StoredBlob:
    uri: str
    sha256: str
    size: int
    #: Whether storing it made it: False when the same content was there already.
    created: bool = field(default=False, compare=False)


#: The package that brings the fsspec driver of each protocol fsspec does not carry.
DRIVERS = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
}
_S3 = frozenset({"s3", "s3a"})
_AZURE = frozenset({"az", "abfs", "abfss"})


def protocol_of(url: str) -> str:
    """The protocol of a storage URL, lower case; ``file`` for a bare path."""
    return (split_protocol(url)[0] or "file").lower()


def driver_problem(url: str) -> str | None:
    """Why the storage URL ``url`` cannot be opened here (a driver that is not
    installed, a protocol fsspec does not know), or None."""
    protocol = protocol_of(url)
    try:
        fsspec.get_filesystem_class(protocol)
    except ImportError:
        package = DRIVERS.get(protocol)
        if package is None:
            return f"'{_shown(url)}': the fsspec driver of '{protocol}://' is not installed"
        return (
            f"'{_shown(url)}' needs the Python package {package} (pip install {package}), "
            "which is not installed"
        )
    except ValueError:
        return f"'{_shown(url)}': fsspec knows no storage protocol '{protocol}'"
    return None


def storage_refusals(storage: StorageSettings) -> list[str]:
    """Why the service cannot open the storage its settings name (see
    :func:`driver_problem`): told at start-up, not at the first job."""
    named = [("storage.url", storage.url), ("storage.output_url", storage.output_url)]
    named += [("storage.read_roots", root) for root in storage.read_roots]
    found = []
    for setting, url in named:
        if url is not None and (problem := driver_problem(url)) is not None:
            found.append(f"{setting}: {problem}")
    return found


def _shown(url: str) -> str:
    return url[:300]


def storage_options(
    storage: StorageSettings | None, url: str, *, public: bool = False
) -> dict[str, Any]:
    """The fsspec options the settings give the driver of ``url`` (``storage.s3`` for
    s3://); ``public``: for signing links clients follow (``s3.public_endpoint_url``)."""
    if storage is None or protocol_of(url) not in _S3:
        return {}
    s3 = storage.s3
    # Several processes share a store: a listing cached by one is stale for another.
    options: dict[str, Any] = {"use_listings_cache": False}
    endpoint = (s3.public_endpoint_url if public else None) or s3.endpoint_url
    if endpoint:
        options["endpoint_url"] = endpoint
    if s3.region:
        options["client_kwargs"] = {"region_name": s3.region}
    if s3.access_key_id:
        options["key"] = s3.access_key_id
    if s3.secret_access_key:
        options["secret"] = s3.secret_access_key.get_secret_value()
    if s3.session_token:
        options["token"] = s3.session_token.get_secret_value()
    # Signature version 4: what every AWS region takes, for calls and presigned links.
    config: dict[str, Any] = {"signature_version": "s3v4"}
    if s3.path_style:
        config["s3"] = {"addressing_style": "path"}
    options["config_kwargs"] = config
    return options


def open_fs(url: str, storage: StorageSettings | None = None) -> tuple[Any, str]:
    """The fsspec file system and path of ``url``; :class:`DependencyDown` naming the
    package when its driver is not installed."""
    if (problem := driver_problem(url)) is not None:
        raise DependencyDown(f"storage {problem}", dependency="storage")
    fs, path = fsspec.core.url_to_fs(url, **storage_options(storage, url))
    return fs, str(path)


def _is_local(fs: Any) -> bool:
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


@dataclass(frozen=True)
class _Root:
    """One store: a file system and the folder (or bucket and prefix) of its blobs."""

    url: str
    fs: Any
    path: str
    local: bool

    @property
    def backend(self) -> str:
        """The store's label in the metrics: its URL's protocol (``file``, ``s3``...)."""
        return protocol_of(self.url)


@contextmanager
def _measured(root: _Root, operation: str) -> Iterator[None]:
    """Count and time one ``operation`` on the store ``root`` (docs/observability.md)."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    except NotFound:
        outcome = "not_found"
        raise
    finally:
        STORAGE_OPERATIONS.labels(root.backend, operation, outcome).inc()
        STORAGE_DURATION.labels(root.backend, operation).observe(time.perf_counter() - started)


#: The span of each storage operation that moves a blob's bytes (or finds a local one).
_SPANS = {"write": "storage write", "read": "storage read", "fetch": "storage read"}


@contextmanager
def _traced(root: _Root, operation: str) -> Iterator[Span]:
    """:func:`_measured` inside a span of the operation (docs/observability.md)."""
    name = _SPANS.get(operation, "storage read")
    with (
        _measured(root, operation),
        engine_span(name, **{"storage.protocol": protocol_of(root.url)}) as span,
    ):
        yield span


class BlobStore:
    """Reads and writes blobs under one fsspec root, results and artifacts under
    ``output_url``'s when it is given."""

    def __init__(
        self,
        url: str,
        output_url: str | None = None,
        *,
        storage: StorageSettings | None = None,
    ) -> None:
        self.url = url
        self._storage = storage
        self._inputs = self._open(url)
        self._outputs = self._open(output_url) if output_url else self._inputs

    @classmethod
    def of(cls, settings: Settings) -> BlobStore:
        """The store the settings name (``storage.*``)."""
        return cls(settings.storage_url, settings.storage.output_url, storage=settings.storage)

    def _open(self, url: str) -> _Root:
        fs, path = open_fs(url, self._storage)
        return _Root(url, fs, path.rstrip("/"), _is_local(fs))

    # -- naming ---------------------------------------------------------------------
    def _locate(self, uri: str) -> tuple[_Root, str]:
        """The store of ``uri`` and its path there."""
        if not uri.startswith(SCHEME):
            raise NotFound("blob", uri)
        key = uri[len(SCHEME) :]
        if not key or ".." in key.split("/"):
            raise NotFound("blob", uri)
        root = self._outputs if key.split("/", 1)[0] == "results" else self._inputs
        return root, f"{root.path}/{key}"

    def _path(self, uri: str) -> str:
        return self._locate(uri)[1]

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

    @property
    def local_folders(self) -> list[Path]:
        """The folders of this machine the stores keep their blobs in."""
        roots = {self._inputs.path: self._inputs, self._outputs.path: self._outputs}
        return [Path(root.path) for root in roots.values() if root.local]

    # -- writing --------------------------------------------------------------------
    def put_stream(self, stream: IO[bytes], *, max_bytes: int | None = None) -> StoredBlob:
        """Store an input from ``stream``, content-addressed; refuse it past ``max_bytes``."""
        return self.put_chunks(iter(lambda: stream.read(CHUNK), b""), max_bytes=max_bytes)

    def put_chunks(self, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> StoredBlob:
        """Store an input from the bytes ``chunks`` yields, as they come, content-addressed;
        refuse it past ``max_bytes``. When ``chunks`` raises, nothing is kept."""
        root = self._inputs
        with engine_span("storage write", **{"storage.protocol": protocol_of(root.url)}) as span:
            blob = self._put_chunks(root, chunks, max_bytes)
            set_attributes(span, **{"storage.bytes": blob.size, "storage.created": blob.created})
        return blob

    def _put_chunks(
        self, root: _Root, chunks: Iterable[bytes], max_bytes: int | None
    ) -> StoredBlob:
        fs = root.fs
        digest = hashlib.sha256()
        size = 0
        tmp = f"{root.path}/incoming/{uuid.uuid4().hex}"
        with _measured(root, "put"), self._writing(root, tmp):
            fs.makedirs(f"{root.path}/incoming", exist_ok=True)
            with fs.open(tmp, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise PayloadTooLarge("upload size", size, max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
            uri = self.input_uri(digest.hexdigest())
            final = self._path(uri)
            created = not fs.exists(final)
            if created and root.local:
                fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
                fs.mv(tmp, final)
            else:
                # An object store renames by copying (the same on every driver; gcsfs's
                # own move is a call the emulators lack).
                if created:
                    fs.copy(tmp, final)
                fs.rm(tmp)
        STORAGE_BYTES.labels(root.backend, "in").inc(size)
        return StoredBlob(uri=uri, sha256=digest.hexdigest(), size=size, created=created)

    @contextmanager
    def _writing(self, root: _Root, path: str) -> Iterator[None]:
        """Around a write to ``path``: whatever ends it early, what it left there is
        removed; a failure of the store is :class:`DependencyDown`."""
        try:
            yield
        except OSError as exc:
            self._discard(root, path)
            raise DependencyDown(
                f"the blob store at {root.url} failed: {exc}", dependency="storage"
            ) from exc
        except BaseException:
            self._discard(root, path)
            raise

    @staticmethod
    def _discard(root: _Root, path: str) -> None:
        """Remove what a failed write left at ``path``, if anything (best effort: the
        failure being reported matters more)."""
        try:
            if root.fs.exists(path):
                root.fs.rm(path)
        except OSError:
            pass

    def put_file(self, path: Path, *, max_bytes: int | None = None) -> StoredBlob:
        with path.open("rb") as stream:
            return self.put_stream(stream, max_bytes=max_bytes)

    def write_bytes(self, uri: str, data: bytes) -> StoredBlob:
        return self.write_chunks(uri, (data,))

    def write_chunks(self, uri: str, chunks: Iterable[bytes]) -> StoredBlob:
        """Store the bytes ``chunks`` yields under ``uri``, as they come. When ``chunks``
        raises (a limit passed while the data is made), the partial blob is removed and
        the error goes on."""
        root, path = self._locate(uri)
        digest = hashlib.sha256()
        size = 0
        with _traced(root, "write") as span, self._writing(root, path):
            root.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            with root.fs.open(path, "wb") as out:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            set_attributes(span, **{"storage.bytes": size})
        STORAGE_BYTES.labels(root.backend, "in").inc(size)
        return StoredBlob(uri=uri, sha256=digest.hexdigest(), size=size)

    def write_file(self, uri: str, path: Path) -> StoredBlob:
        """Store the file at ``path`` under ``uri``, streamed."""
        with path.open("rb") as src:
            return self.write_chunks(uri, iter(lambda: src.read(CHUNK), b""))

    # -- reading --------------------------------------------------------------------
    def read_bytes(self, uri: str) -> bytes:
        root, path = self._locate(uri)
        try:
            with _traced(root, "read") as span, root.fs.open(path, "rb") as stream:
                data: bytes = stream.read()
                set_attributes(span, **{"storage.bytes": len(data)})
        except FileNotFoundError as exc:
            raise NotFound("blob", uri) from exc
        STORAGE_BYTES.labels(root.backend, "out").inc(len(data))
        return data

    def open(self, uri: str) -> IO[bytes]:
        root, path = self._locate(uri)
        try:
            stream: IO[bytes] = root.fs.open(path, "rb")
        except FileNotFoundError as exc:
            raise NotFound("blob", uri) from exc
        return stream

    @contextmanager
    def local_copy(self, uri: str, suffix: str = "") -> Iterator[Path]:
        """A path on local disk holding the blob: the blob itself when the store is local."""
        root, path = self._locate(uri)
        if root.local:
            with _traced(root, "exists") as span:
                if not root.fs.exists(path):
                    raise NotFound("blob", uri)
                set_attributes(
                    span, **{"storage.bytes": root.fs.size(path), "storage.copied": False}
                )
            yield Path(path)
            return
        with tempfile.TemporaryDirectory(prefix="docworker-") as tmp:
            target = Path(tmp) / f"input{suffix}"
            with (
                _traced(root, "fetch") as span,
                self.open(uri) as src,
                target.open("wb") as dst,
            ):
                shutil.copyfileobj(src, dst, CHUNK)
                set_attributes(span, **{"storage.bytes": dst.tell(), "storage.copied": True})
            STORAGE_BYTES.labels(root.backend, "out").inc(target.stat().st_size)
            yield target

    def exists(self, uri: str) -> bool:
        root, path = self._locate(uri)
        with _measured(root, "exists"):
            return bool(root.fs.exists(path))

    def delete(self, uri: str) -> None:
        root, path = self._locate(uri)
        with _measured(root, "delete"):
            if root.fs.exists(path):
                root.fs.rm(path, recursive=True)

    # -- links ----------------------------------------------------------------------
    def signed_url(self, uri: str, *, expires: float, name: str, mime: str) -> str | None:
        """A presigned link that downloads the blob ``uri`` without the API for
        ``expires`` seconds, as the file ``name`` of type ``mime``; None when its store
        cannot sign one (s3 stores sign with their keys, Azure stores a SAS token with
        the account key of their credentials; a local folder and GCS sign none)."""
        root, path = self._locate(uri)
        if protocol_of(root.url) in _AZURE:
            return self._azure_link(root, path, expires, name, mime)
        if protocol_of(root.url) not in _S3:
            return None
        signer = root.fs
        public = storage_options(self._storage, root.url, public=True)
        if public != storage_options(self._storage, root.url):
            signer = fsspec.filesystem(protocol_of(root.url), **public)
        try:
            link: str = signer.sign(
                path,
                expiration=int(expires),
                ResponseContentDisposition=f'attachment; filename="{name}"',
                ResponseContentType=mime,
            )
        except (OSError, ValueError) as exc:
            raise DependencyDown(
                f"the output store at {root.url} signs no link: {exc}", dependency="storage"
            ) from exc
        return link

    @staticmethod
    def _azure_link(root: _Root, path: str, expires: float, name: str, mime: str) -> str:
        """A SAS link of an Azure store (adlfs signs it with the account key its
        credentials carry: a connection string, or an account name and key)."""
        try:
            link: str = root.fs.url(
                path,
                expires=int(expires),
                content_disposition=f'attachment; filename="{name}"',
                content_type=mime,
            )
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise DependencyDown(
                f"the output store at {root.url} signs no link (an account key is needed): {exc}",
                dependency="storage",
            ) from exc
        return link

    # -- health ---------------------------------------------------------------------
    def ping(self) -> None:
        """Check the stores answer; raises :class:`DependencyDown` when one does not. A
        local store's folder is made private to the service's user (0700)."""
        for root in {id(r): r for r in (self._inputs, self._outputs)}.values():
            self._ping(root)

    @staticmethod
    def _ping(root: _Root) -> None:
        try:
            if root.local:
                root.fs.makedirs(root.path, exist_ok=True)
                root.fs.ls(root.path)
            else:
                # An object store has no folders: a prefix nothing is under yet is no
                # error, a bucket that is not there (or not ours to list) is, and is not
                # made here.
                bucket = root.path.split("/", 1)[0]
                root.fs.ls(bucket, detail=False)
        except Exception as exc:
            raise DependencyDown(
                f"the blob store at {root.url} is unavailable: {type(exc).__name__}: {exc}",
                dependency="storage",
            ) from exc
        if root.local:
            # Inputs and results are the clients' documents: the service's user's alone.
            make_private(Path(root.path))


class UriRefused(Forbidden):
    """A storage URI the service is not configured to read inputs from."""

    code = "uri-refused"
    title = "URI refused"

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(
            f"the storage URI '{_shown(uri)}' may not be read: {reason}", uri=_shown(uri)
        )


class ReadRoots:
    """The storage URLs inputs may be copied in from by ``uri`` (``storage.read_roots``):
    a URI is read only when it lies under one of them, without ``..`` and, on this
    machine's disk, without a link leading out."""

    def __init__(self, roots: Iterable[str], storage: StorageSettings | None = None) -> None:
        self.roots = [root.rstrip("/") for root in roots]
        self._storage = storage

    def locate(self, uri: str) -> tuple[Any, str]:
        """The file system and path of ``uri``; :class:`UriRefused` unless it is under a
        root."""
        if not self.roots:
            raise UriRefused(uri, "the service reads no storage URIs (storage.read_roots is empty)")
        if "::" in uri or "?" in uri or "#" in uri:
            raise UriRefused(uri, "a chained URL, a query or a fragment is never read")
        protocol, path = protocol_of(uri), split_protocol(uri)[1]
        if any(part in {"..", "."} for part in path.split("/")):
            raise UriRefused(uri, "it holds a '.' or '..' segment")
        for root in self.roots:
            base = split_protocol(root)[1].rstrip("/")
            if protocol_of(root) != protocol or not path.startswith(f"{base}/"):
                continue
            fs, located = open_fs(uri, self._storage)
            if _is_local(fs):
                real = os.path.realpath(located)
                real_base = os.path.realpath(open_fs(root, self._storage)[1])
                if not real.startswith(f"{real_base.rstrip('/')}/"):
                    raise UriRefused(uri, "a link leads it outside its storage root")
                located = real
            return fs, located
        raise UriRefused(
            uri, "it is not under a storage root the service reads (storage.read_roots)"
        )

    def copy_into(self, blobs: BlobStore, uri: str, max_bytes: int) -> tuple[StoredBlob, str]:
        """Copy the file ``uri`` into ``blobs`` as an input, streamed; the blob and the
        file's name. :class:`LimitExceeded` past ``max_bytes``, before any is copied."""
        fs, path = self.locate(uri)
        try:
            info = fs.info(path)
        except FileNotFoundError:
            raise NotFound("input", _shown(uri)) from None
        except OSError as exc:
            raise DependencyDown(
                f"the storage of '{_shown(uri)}' failed: {exc}", dependency="storage"
            ) from exc
        if info.get("type") != "file":
            raise NotFound("input", f"{_shown(uri)} (a folder, not a file)")
        size = int(info.get("size") or 0)
        if size > max_bytes:
            raise LimitExceeded(
                "input bytes",
                size,
                max_bytes,
                f"the file at '{_shown(uri)}' is {size:,} bytes, over the route's upload "
                f"limit of {max_bytes:,}",
            )
        try:
            with fs.open(path, "rb") as stream:
                blob = blobs.put_stream(stream, max_bytes=max_bytes)
        except FileNotFoundError:
            raise NotFound("input", _shown(uri)) from None
        return blob, PurePosixPath(path).name[:255]
