"""A batch's other sources end to end, on a real server with keys on and running workers:
the corpus archives as batches (their entries the children, nested archives and
encrypted ones included), the hostile archives refused or cut at a limit with nothing
written outside the work folder, lists of URLs (a loopback site, a listener answering
404, a private address refused) and of storage URIs, and the list of batches per
tenant."""

from __future__ import annotations

import http.server
import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.scoring import corpus_root
from tests.e2e.server import Server
from tests.listener import Listener

CORPUS = corpus_root()
ARCHIVES = CORPUS / "archives"
HOSTILE = CORPUS / "hostile"
TEXT = CORPUS / "text" / "plain-utf8.txt"
PROBLEM = "application/problem+json"
SECRET = "Qh7Rw2Lx9Vc4Tn1Mz8Bd3Fk6Gs0Jp5Ay2Eu7Wi"
#: The entries of test-documents.{zip,tar.gz,tar.bz2,7z}.
DOCUMENTS = [
    "testEXCEL.xls",
    "testHTML.html",
    "testOpenOffice2.odt",
    "testPDF.pdf",
    "testPPT.ppt",
    "testRTF.rtf",
    "testTXT.txt",
    "testWORD.doc",
    "testXML.xml",
]
#: Files per batch the server takes (batches.max_files).
MAX_FILES = 50
#: Entries one archive may have (archives.max_entries).
MAX_ENTRIES = 40
#: What a slip aims at.
SLIP_TARGETS = (Path("/tmp/evil.txt"), Path("/evil.txt"))

pytestmark = pytest.mark.skipif(not ARCHIVES.is_dir(), reason=f"corpus not found at {CORPUS}")


class _Site(http.server.BaseHTTPRequestHandler):
    """One document on loopback, and three that answer only once all three are asked
    for at the same time; anything else is not found."""

    together = threading.Barrier(3, timeout=20)

    def do_GET(self) -> None:
        if self.path.startswith("/together/"):
            try:
                self.together.wait()
            except threading.BrokenBarrierError:
                self.send_response(503)
                self.end_headers()
                return
        if self.path == "/docs/plain.txt" or self.path.startswith("/together/"):
            body = TEXT.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The server's temporary folder, and a folder it reads inputs from."""
    base = tmp_path_factory.mktemp("sources")
    shared = base / "shared"
    shared.mkdir()
    (shared / "plain.txt").write_bytes(TEXT.read_bytes())
    (base / "tmp").mkdir()
    return {"tmp": base / "tmp", "shared": shared, "data": base / "data"}


@pytest.fixture(scope="module")
def server(folders: dict[str, Path]) -> Iterator[Server]:
    with Server(
        folders["data"],
        TMPDIR=str(folders["tmp"]),
        DOCWORKER_AUTH__ENABLED="true",
        DOCWORKER_AUTH__SECRET=SECRET,
        DOCWORKER_EXECUTOR__MAX_ATTEMPTS="1",
        DOCWORKER_BATCHES__MAX_FILES=str(MAX_FILES),
        DOCWORKER_ARCHIVES__MAX_ENTRIES=str(MAX_ENTRIES),
        DOCWORKER_FETCH__ALLOW='["127.0.0.1", "169.254.169.254"]',
        DOCWORKER_FETCH__PRIVATE_ALLOW='["127.0.0.1/32"]',
        DOCWORKER_STORAGE__READ_ROOTS=json.dumps([f"file://{folders['shared']}/"]),
    ) as srv:
        yield srv


@dataclass
class Keys:
    admin: str
    a: str
    b: str


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def keys(server: Server) -> Keys:
    admin = server.keys("create", "--tenant", "ops", "--scope", "admin")

    def create(tenant: str) -> str:
        with server.client() as client:
            made = client.post(
                "/api/v2/keys",
                json={"tenant": tenant, "scopes": ["read", "submit"]},
                headers=_as(admin),
            )
        assert made.status_code == 201, made.text
        token: str = made.json()["token"]
        return token

    return Keys(admin=admin, a=create("alpha"), b=create("beta"))


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def _post(
    client: httpx.Client,
    key: str,
    data: dict[str, str],
    files: list[tuple[str, tuple[str, bytes]]] | None = None,
    operation: str = "extract",
) -> httpx.Response:
    return client.post(
        "/api/v2/batches",
        data={"operation": operation, **data},
        # A text field alone still makes a multipart body.
        files=files or {"padding": (None, "")},
        headers=_as(key),
    )


def _archive(path: Path) -> list[tuple[str, tuple[str, bytes]]]:
    return [("archive", (path.name, path.read_bytes()))]


def _children(client: httpx.Client, key: str, batch: dict[str, Any]) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = client.get(
        f"{batch['links']['jobs']}?limit=500", headers=_as(key)
    ).json()["jobs"]
    return jobs


def _ended(client: httpx.Client, key: str, batch_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        batch: dict[str, Any] = client.get(f"/api/v2/batches/{batch_id}", headers=_as(key)).json()
        if batch["status"] != "running":
            return batch
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} did not end")


def _results(client: httpx.Client, key: str, batch: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.get(batch["links"]["results"], headers=_as(key))
    return [json.loads(line) for line in response.text.splitlines()]


# -- archives -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("test-documents.zip", ""),
        ("test-documents.tar.gz", "test-documents/"),
        ("test-documents.tar.bz2", "test-documents/"),
        ("test-documents.7z", "test-documents/"),
    ],
)
def test_an_archive_is_a_batch_of_its_entries(
    client: httpx.Client, keys: Keys, name: str, prefix: str
) -> None:
    response = _post(client, keys.a, {}, _archive(ARCHIVES / name), operation="chunk")
    assert response.status_code == 202, response.text
    batch = response.json()
    assert batch["total"] == len(DOCUMENTS)
    children = _children(client, keys.a, batch)
    assert [c["input"]["name"] for c in children] == [prefix + n for n in DOCUMENTS]
    assert all(c["input"]["sha256"] and c["input"]["size"] for c in children)
    if name.endswith(".zip"):
        ended = _ended(client, keys.a, batch["id"])
        lines = _results(client, keys.a, ended)
        text = next(line for line in lines if line["name"] == "testTXT.txt")
        assert text["status"] == "succeeded", text
        assert "test" in json.dumps(text["result"]).lower()
        assert ended["counts"]["succeeded"] >= 5, ended["counts"]
    else:
        client.post(batch["links"]["cancel"], headers=_as(keys.a))


def test_nested_archives_are_unpacked_in_turn(client: httpx.Client, keys: Keys) -> None:
    files = _archive(ARCHIVES / "zip-of-zip.zip") + _archive(ARCHIVES / "nested-tarball.tar")
    # Mixed with a file part: the children in the body's order.
    files.insert(1, ("file", ("loose.txt", b"a loose file\n")))
    response = _post(client, keys.a, {}, files)
    assert response.status_code == 202, response.text
    batch = _ended(client, keys.a, response.json()["id"])
    lines = _results(client, keys.a, batch)
    assert [line["name"] for line in lines] == [
        "html-within-zip.zip/text.html",
        "loose.txt",
        "folderContainingTgz/inner/nested.tgz/folderWithinTgz/testTXT.txt",
    ]
    assert batch["status"] == "succeeded", lines


def test_an_encrypted_entry_without_its_password_is_a_failed_child(
    client: httpx.Client, keys: Keys
) -> None:
    response = _post(client, keys.a, {}, _archive(ARCHIVES / "encrypted.zip"))
    assert response.status_code == 202, response.text
    batch = _ended(client, keys.a, response.json()["id"])
    assert batch["status"] == "partial" and batch["total"] == 2
    plain, locked = _results(client, keys.a, batch)
    assert plain["name"] == "unencrypted.txt" and plain["status"] == "succeeded"
    assert locked["name"] == "encrypted.txt" and locked["status"] == "failed"
    assert locked["error"]["code"] == "password-required"
    assert locked["error"]["path"] == "encrypted.txt"
    # Failed at intake: nothing to run again.
    retried = client.post(batch["links"]["retry"], headers=_as(keys.a))
    assert retried.headers["x-retried"] == "0"


def test_a_password_opens_an_encrypted_7z(client: httpx.Client, keys: Keys) -> None:
    locked = ARCHIVES / "encrypted-password-Tika.7z"
    response = _post(client, keys.a, {"password": "Tika"}, _archive(locked))
    assert response.status_code == 202, response.text
    batch = _ended(client, keys.a, response.json()["id"])
    (line,) = _results(client, keys.a, batch)
    assert line["name"] == "text.txt" and line["status"] == "succeeded", line
    # The password is read before the archives it opens.
    late = client.post(
        "/api/v2/batches",
        files=[
            ("operation", (None, "extract")),
            ("archive", (locked.name, locked.read_bytes())),
            ("password", (None, "Tika")),
        ],
        headers=_as(keys.a),
    )
    assert late.status_code == 422 and late.json()["parameter"] == "password"


def test_names_in_another_encoding_are_decoded(client: httpx.Client, keys: Keys) -> None:
    response = _post(client, keys.a, {}, _archive(ARCHIVES / "gbk-filenames.zip"))
    assert response.status_code == 202, response.text
    (child,) = _children(client, keys.a, response.json())
    assert child["input"]["name"].startswith("审计压缩包文件检索测试/"), child["input"]
    client.post(response.json()["links"]["cancel"], headers=_as(keys.a))


#: The hostile archives: a batch with a failed child for each bad entry, or refused
#: whole with a problem naming why.
HOSTILE_ARCHIVES = {
    "zip-slip.zip": (202, "hostile-input"),
    "zip-slip-windows.zip": (202, "hostile-input"),
    "tar-slip.tar": (202, "hostile-input"),
    "zip-bomb-flat.zip": (422, "hostile-input"),
    "zip-bomb-recursive.zip": (422, "limit-exceeded"),
    "zip-quine-droste.zip": (422, "hostile-input"),
    "gzip-quine.gz": (422, "hostile-input"),
    "lzma-oom": (422, "corrupt-document"),
    "not-a-zip.odt": (415, "unsupported-format"),
}


def test_hostile_archives_are_refused_or_cut(
    client: httpx.Client, keys: Keys, folders: dict[str, Path]
) -> None:
    before = {path: path.exists() for path in SLIP_TARGETS}
    for name, (status, code) in HOSTILE_ARCHIVES.items():
        response = _post(client, keys.a, {}, _archive(HOSTILE / name))
        assert response.status_code == status, (name, response.text)
        if status != 202:
            problem = response.json()
            assert response.headers["content-type"] == PROBLEM
            assert problem["code"] == code, (name, problem)
            assert problem.get("archive") == name, (name, problem)
            if code == "limit-exceeded":
                assert problem["limit"] and "archives.max_" in problem["detail"], problem
            continue
        batch = _ended(client, keys.a, response.json()["id"])
        lines = _results(client, keys.a, batch)
        assert batch["status"] == "partial", (name, lines)
        good, bad = lines
        assert good["name"] == "good.txt" and good["status"] == "succeeded", good
        assert bad["status"] == "failed" and bad["error"]["code"] == code, bad
        assert "climbs out" in bad["error"]["detail"]
        # The child's name is cleaned; the error keeps the entry's path.
        assert ".." not in bad["name"] and ".." in bad["error"]["path"]
    assert {path: path.exists() for path in SLIP_TARGETS} == before
    # The working folders of the archives are gone.
    assert not list(folders["tmp"].glob("docworker-batch-*"))


def test_the_fields_before_an_archive_are_checked_before_it_is_read(
    client: httpx.Client, keys: Keys
) -> None:
    bomb = _archive(HOSTILE / "zip-bomb-flat.zip")
    unknown = _post(client, keys.a, {}, bomb, operation="nope")
    assert unknown.status_code == 404, unknown.text
    bad = _post(client, keys.a, {"params": "[1]"}, bomb)
    assert bad.status_code == 422 and bad.json()["parameter"] == "params"


def _zip_of(count: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for index in range(count):
            archive.writestr(f"d/{index}.txt", f"file {index}\n")
    return out.getvalue()


def test_limits_of_the_batch_and_the_archive_refuse_it_whole(
    client: httpx.Client, keys: Keys, folders: dict[str, Path]
) -> None:
    # Each entry is a child: the parts' files and the archives' are counted together.
    parts = [("file", (f"{n}.txt", b"x")) for n in range(30)]
    mixed = _post(client, keys.a, {}, [*parts, ("archive", ("30.zip", _zip_of(30)))])
    assert mixed.status_code == 413, mixed.text
    assert mixed.json()["limit"] == "batch files"
    listed = _post(client, keys.a, {"urls": "\n".join(["http://127.0.0.1/x"] * 40)}, parts)
    assert listed.status_code == 413 and listed.json()["limit"] == "batch files"
    crowded = _post(client, keys.a, {}, [("archive", ("45.zip", _zip_of(MAX_ENTRIES + 5)))])
    assert crowded.status_code == 413, crowded.text
    problem = crowded.json()
    assert problem["limit"] == "entries" and problem["archive"] == "45.zip"
    assert "archives.max_entries" in problem["detail"]
    assert not list(folders["tmp"].glob("docworker-batch-*"))


# -- URLs and URIs --------------------------------------------------------------------


def test_a_list_of_urls_is_a_batch(
    client: httpx.Client, keys: Keys, site: str, listener: Listener
) -> None:
    urls = [
        f"{site}/docs/plain.txt",
        f"{listener.url}/missing.pdf",
        "http://169.254.169.254/latest/meta-data/",
        "http://elsewhere.example/a.pdf",
    ]
    response = _post(client, keys.a, {"urls": json.dumps(urls)})
    assert response.status_code == 202, response.text
    batch = _ended(client, keys.a, response.json()["id"])
    assert batch["total"] == 4 and batch["status"] == "partial"
    fetched, missing, private, other = _results(client, keys.a, batch)
    assert fetched["name"] == "plain.txt" and fetched["status"] == "succeeded"
    assert "test document" in fetched["result"]["content"]
    assert missing["status"] == "failed" and missing["error"]["code"] == "url-unreadable"
    assert "404" in missing["error"]["detail"]
    assert listener.connections and listener.connections[0].startswith(b"GET /missing.pdf")
    assert private["status"] == "failed" and private["error"]["code"] == "url-refused"
    assert other["status"] == "failed" and other["error"]["code"] == "url-refused"
    child = _children(client, keys.a, batch)[2]
    assert child["input"] == {
        "name": "meta-data",
        "mime": None,
        "size": None,
        "sha256": None,
        "others": [],
    }


def test_urls_are_fetched_a_few_at_once_and_kept_in_order(
    client: httpx.Client, keys: Keys, site: str
) -> None:
    # Each of the three answers only when the three are being fetched together.
    urls = "\n".join(f"{site}/together/{n}.txt" for n in range(3))
    response = _post(client, keys.a, {"urls": urls}, [("file", ("first.txt", b"first\n"))])
    assert response.status_code == 202, response.text
    batch = _ended(client, keys.a, response.json()["id"])
    lines = _results(client, keys.a, batch)
    assert [line["name"] for line in lines] == ["first.txt", "0.txt", "1.txt", "2.txt"]
    assert batch["status"] == "succeeded", lines


def test_a_list_of_uris_is_a_batch(
    client: httpx.Client, keys: Keys, folders: dict[str, Path]
) -> None:
    shared = folders["shared"]
    uris = f"file://{shared}/plain.txt\n\nfile://{shared}/absent.txt\nfile:///etc/hostname\n"
    response = _post(client, keys.a, {"uris": uris})
    assert response.status_code == 202, response.text
    batch = _ended(client, keys.a, response.json()["id"])
    copied, absent, outside = _results(client, keys.a, batch)
    assert copied["name"] == "plain.txt" and copied["status"] == "succeeded"
    assert absent["status"] == "failed" and absent["error"]["code"] == "not-found"
    assert outside["status"] == "failed" and outside["error"]["code"] == "uri-refused"


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"urls": '["a", 1]'}, "urls"),
        ({"urls": "[not json"}, "urls"),
        ({"uris": '["file:///x", ""]'}, "uris[1]"),
        ({"url": "https://example.org/a.pdf"}, "url"),
        ({"uri": "file:///a.pdf"}, "uri"),
    ],
)
def test_a_malformed_list_is_refused(
    client: httpx.Client, keys: Keys, data: dict[str, str], named: str
) -> None:
    response = _post(client, keys.a, data)
    assert response.status_code == 422, response.text
    assert response.json()["parameter"] == named


# -- listing --------------------------------------------------------------------------


def test_batches_are_listed_per_tenant(client: httpx.Client, keys: Keys) -> None:
    made = []
    for key in (keys.a, keys.b, keys.b, keys.b):
        response = _post(client, key, {}, [("file", ("one.txt", b"one\n"))], operation="chunk")
        assert response.status_code == 202
        made.append(response.json()["id"])
    first = client.get("/api/v2/batches?limit=2", headers=_as(keys.b)).json()
    rest = client.get(f"/api/v2/batches?cursor={first['next_cursor']}", headers=_as(keys.b))
    listed = [b["id"] for b in first["batches"] + rest.json()["batches"]]
    assert listed == made[:0:-1] and rest.json()["next_cursor"] is None
    mine = [b["id"] for b in client.get("/api/v2/batches", headers=_as(keys.a)).json()["batches"]]
    assert made[0] in mine and not set(made[1:]) & set(mine)
    every = client.get("/api/v2/batches?limit=500", headers=_as(keys.admin)).json()["batches"]
    assert set(made) <= {b["id"] for b in every}
    chunked = client.get("/api/v2/batches?operation=chunk", headers=_as(keys.a)).json()
    assert all(b["operation"] == "chunk" for b in chunked["batches"])
    bad = client.get("/api/v2/batches?cursor=nope", headers=_as(keys.a))
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
