"""Mutation fuzzing of the format parsers: seeds, mutations, and a child process to parse in.

A case is a seed file of a parser family (from the corpus, or ``seeds/`` for the
formats it lacks) changed by a few mutations drawn from a seeded random generator:
bytes flipped, overwritten with edge values, cut, repeated or spliced, tokens of the
format inserted, nesting deepened; inside a zip package (OOXML, OpenDocument, EPUB)
mostly one member is mutated and the package written again, so that the parsers, not
only the zip reader, see the change. The same seed and case number always make the
same bytes.

Each case is parsed in a child process (:mod:`tests.fuzz.parse_child`) under a memory
cap, with a wall-clock limit per case: a parser may parse the input or refuse it with
an input error (4xx), and anything else — another exception, running out of memory,
hanging, crashing the process — is a finding. A finding is written to a folder of
findings, named by its content, to be kept as a regression input under ``crashers/``
once fixed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.scoring import corpus_root

HERE = Path(__file__).parent
SEEDS = HERE / "seeds"
CRASHERS = HERE / "crashers"
#: Seconds one case may take to parse before it counts as a hang.
CASE_TIMEOUT = float(os.environ.get("DOCWORKER_FUZZ_CASE_TIMEOUT", "30"))
#: Seconds spent making each finding smaller before it is written (0: as found).
MINIMIZE_SECONDS = float(os.environ.get("DOCWORKER_FUZZ_MINIMIZE_SECONDS", "0"))
#: Memory cap of the child process (RLIMIT_DATA), in MiB.
MEMORY_MB = int(os.environ.get("DOCWORKER_FUZZ_MEMORY_MB", "2048"))


@dataclass(frozen=True)
class Family:
    """A parser family: its seeds and the tokens worth inserting into them."""

    name: str
    seeds: tuple[str, ...]
    tokens: tuple[bytes, ...] = ()

    def seed_paths(self) -> list[Path]:
        corpus = corpus_root()
        return [
            SEEDS / seed[6:] if seed.startswith("seeds/") else corpus / seed for seed in self.seeds
        ]


_XML = (
    b"<!DOCTYPE a [<!ENTITY e 'x'>]>",
    b"&e;",
    b"<a>",
    b"</a>",
    b"<![CDATA[",
    b"]]>",
    b"\xef\xbb\xbf",
)
FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            "pdf",
            (
                "pdf/minimal-document.pdf",
                "pdf/rotated-page-90.pdf",
                "pdf/with-embedded-attachment.pdf",
                "pdf/acroform-fields.pdf",
            ),
            (
                b" obj ",
                b"endobj",
                b"/Length 99999999",
                b"<<",
                b">>",
                b"stream\n",
                b"/Type /Page",
                b"/Kids [",
                b"0 R",
                b"/Encrypt",
                b"xref",
                b"trailer",
                b"/Rotate 45",
                b"/MediaBox [0 0 0 0]",
            ),
        ),
        Family(
            "ooxml",
            (
                "office/handbook-1p.docx",
                "office/word-tables.docx",
                "office/equations.docx",
                "office/xlsx-edge-cases.xlsx",
                "office/pptx-table.pptx",
            ),
            (*_XML, b'w:val="99999999"', b"<w:p>", b"<w:tbl>", b'gridSpan="-1"', b'r="ZZZ99999"'),
        ),
        Family(
            "odf",
            ("office/text-document.odt", "office/table-with-title.ods", "office/presentation.odp"),
            (
                *_XML,
                b'table:number-columns-repeated="99999999"',
                b"<text:h>",
                b'text:outline-level="-1"',
            ),
        ),
        Family(
            "rtf",
            ("office/tika-test.rtf", "office/japanese.rtf"),
            (
                b"{",
                b"}",
                b"\\bin99999 ",
                b"\\u-1?",
                b"\\'ff",
                b"{\\*\\",
                b"\\cell",
                b"\\row",
                b"\\trowd",
                b"\\ansicpg99999",
                b"\\uc99 ",
                b"{\\object",
                b"{\\pict",
            ),
        ),
        Family(
            "mail",
            ("office/email-html-inline-image.eml", "office/email-simple.msg"),
            (
                b"Content-Type: multipart/mixed; boundary=x\r\n",
                b"--x\r\n",
                b"=?utf-8?b?AAAA?=",
                b"Content-Transfer-Encoding: base64\r\n",
                b"\r\n\r\n",
            ),
        ),
        Family("legacy", ("office/word6.doc", "office/excel95.xls")),
        Family(
            "text",
            (
                "text/plain-utf8.txt",
                "text/utf16le.txt",
                "text/cp1252.txt",
                "web/comma.csv",
                "web/ragged-too-many-columns.csv",
                "web/simple.json",
                "web/nested.md",
                "seeds/sample.vtt",
                "seeds/sample.srt",
                "seeds/sample.ndjson",
            ),
            (
                b"\x00",
                b"\xff\xfe",
                b"\r\n",
                b'"',
                b",",
                b"[",
                b"{",
                b"# ",
                b"|---|",
                b"```",
                b"-->",
                b"00:00:00.000 --> 99:99:99.999",
                b"\\u0000",
            ),
        ),
        Family(
            "web",
            ("web/table-rowspan.html", "web/cp1252.html", "web/factbook-utf16.xml"),
            (
                *_XML,
                b"<table>",
                b'<td rowspan="99999999">',
                b'colspan="0"',
                b"<script>",
                b"<meta charset=x>",
            ),
        ),
        Family(
            "image",
            (
                "images/test.gif",
                "images/exif.jpg",
                "images/ocr-text.png",
                "images/docling-ocr.webp",
                "images/tika-test.heic",
            ),
            (b"\xff\xff\xff\x7f", b"\x00\x00\x00\x00", b"\xff\xd8\xff", b"IHDR", b"Exif\x00\x00"),
        ),
    )
}

#: Values that often sit on a boundary.
_EDGES = (
    b"\x00",
    b"\xff",
    b"\x7f",
    b"\x80",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x80",
    b"-1",
    b"0",
    b"4294967296",
    b"99999999999999999999",
    b"NaN",
    b"1e309",
)


@dataclass(frozen=True)
class Case:
    data: bytes
    #: The type to parse it as; None: detected from the content, as the service does.
    mime: str | None
    name: str
    seed: str


def make_case(family: Family, seeds: list[tuple[Path, bytes, str]], rng: random.Random) -> Case:
    """One mutated input of ``family`` (``seeds``: path, content and detected type)."""
    path, data, mime = rng.choice(seeds)
    if data[:4] == b"PK\x03\x04" and rng.random() < 0.8:
        data = _mutate_member(data, family, rng)
    else:
        data = _mutate(data, family, rng, others=seeds)
    # Half the cases as their family's type whatever the bytes became; half detected.
    return Case(data, mime if rng.random() < 0.5 else None, path.name, path.name)


def _mutate(
    data: bytes, family: Family, rng: random.Random, others: list[tuple[Path, bytes, str]]
) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        rng.choice(_MUTATIONS)(buffer, family, rng, others)
    return bytes(buffer)


def _mutate_member(data: bytes, family: Family, rng: random.Random) -> bytes:
    """The zip package with one member mutated (or dropped, or a copy of another)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            members = [(info, package.read(info)) for info in package.infolist()]
    except (zipfile.BadZipFile, EOFError, ValueError):
        return _mutate(data, family, rng, others=[])
    index = rng.randrange(len(members))
    roll = rng.random()
    info, content = members[index]
    if roll < 0.05:
        del members[index]
    elif roll < 0.1:
        members[index] = (info, members[rng.randrange(len(members))][1])
    else:
        members[index] = (info, _mutate(content, family, rng, others=[]))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for member, body in members:
            package.writestr(member.filename, body)
    return out.getvalue()


def _position(buffer: bytearray, rng: random.Random) -> int:
    return rng.randint(0, len(buffer))


def _flip(buffer: bytearray, _family: Family, rng: random.Random, _others: object) -> None:
    for _ in range(rng.randint(1, 8)):
        if buffer:
            buffer[rng.randrange(len(buffer))] ^= 1 << rng.randrange(8)


def _edge(buffer: bytearray, _family: Family, rng: random.Random, _others: object) -> None:
    value = rng.choice(_EDGES)
    at = _position(buffer, rng)
    buffer[at : at + len(value)] = value


def _cut(buffer: bytearray, _family: Family, rng: random.Random, _others: object) -> None:
    at = _position(buffer, rng)
    if rng.random() < 0.3:
        del buffer[at:]
    else:
        del buffer[at : at + rng.randint(1, 256)]


def _repeat(buffer: bytearray, _family: Family, rng: random.Random, _others: object) -> None:
    at = _position(buffer, rng)
    chunk = buffer[at : at + rng.randint(1, 64)]
    buffer[at:at] = chunk * rng.choice((2, 16, 1000))


def _token(buffer: bytearray, family: Family, rng: random.Random, _others: object) -> None:
    if family.tokens:
        at = _position(buffer, rng)
        buffer[at:at] = rng.choice(family.tokens) * rng.choice((1, 1, 1, 50, 5000))


def _splice(
    buffer: bytearray, _family: Family, rng: random.Random, others: list[tuple[Path, bytes, str]]
) -> None:
    if others:
        donor = rng.choice(others)[1]
        start = rng.randrange(max(1, len(donor)))
        at = _position(buffer, rng)
        buffer[at : at + rng.randint(0, 512)] = donor[start : start + rng.randint(1, 512)]


_MUTATIONS: tuple[Callable[..., None], ...] = (
    _flip,
    _flip,
    _edge,
    _cut,
    _repeat,
    _token,
    _token,
    _splice,
)


@dataclass(frozen=True)
class Outcome:
    kind: str  # parsed, refused, unexpected, memory, hang, crash
    detail: str = ""

    @property
    def held(self) -> bool:
        """Whether the parser kept its contract: parsed, or refused with an input error."""
        return self.kind in {"parsed", "refused"}


class ParseChild:
    """A child process that parses inputs one at a time; restarted after a hang or crash."""

    def __init__(self, *, timeout: float = CASE_TIMEOUT, memory_mb: int = MEMORY_MB) -> None:
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.process: subprocess.Popen[bytes] | None = None
        #: The child's own folder: what it prints (``child.log``), the inputs it parses.
        self.folder = Path(tempfile.mkdtemp(prefix="docworker-fuzz-"))
        self.log = self.folder / "child.log"

    def start(self) -> subprocess.Popen[bytes]:
        """Start the child (if it is not running) and wait until it is ready."""
        if self.process is not None and self.process.poll() is None:
            return self.process
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.fuzz.parse_child",
                    str(self.memory_mb),
                    str(self.folder / "work"),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=HERE.parent.parent,
                start_new_session=True,
            )
        self.process = process
        ready = self._answer(120.0)
        if ready is None or ready.get("outcome") != "ready":
            self.stop()
            raise RuntimeError(f"the fuzz child did not start: {self._tail()}")
        return process

    def parse(self, case: Case) -> Outcome:
        process = self.start()
        os.truncate(self.log, 0)  # what the child prints from now on is about this case
        assert process.stdin is not None
        header = {"size": len(case.data), "mime": case.mime, "name": case.name}
        try:
            process.stdin.write(json.dumps(header).encode() + b"\n" + case.data)
            process.stdin.flush()
        except BrokenPipeError:
            return self._ended("crash")
        answer = self._answer(self.timeout)
        if answer is None:
            return self._ended("hang" if process.poll() is None else "crash")
        return Outcome(answer["outcome"], answer.get("error") or answer.get("code") or "")

    def _answer(self, timeout: float) -> dict[str, str] | None:
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.process.stdout], [], [], left)
            if ready:
                line = self.process.stdout.readline()
                return json.loads(line) if line else None
        return None

    def _ended(self, kind: str) -> Outcome:
        code = self.process.poll() if self.process else None
        self.stop()
        detail = f"exit status {code}" if code is not None else f"no answer in {self.timeout:g} s"
        return Outcome(kind, f"{detail}\n{self._tail()}")

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def close(self) -> None:
        """Stop the child and delete its folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self.process = None


@dataclass(frozen=True)
class Finding:
    case: Case
    outcome: Outcome
    path: Path


def fuzz(
    family: Family, child: ParseChild, *, seconds: float, seed: int, findings: Path
) -> tuple[int, list[Finding]]:
    """Parse mutated inputs of ``family`` for ``seconds``; the cases run and what broke."""
    from docworker.formats.detect import detect

    seeds = [(path, path.read_bytes(), detect(path).mime) for path in family.seed_paths()]
    rng = random.Random(f"{family.name}:{seed}")
    found: list[Finding] = []
    deadline = time.monotonic() + seconds
    cases = 0
    while time.monotonic() < deadline and len(found) < 20:
        case = make_case(family, seeds, rng)
        cases += 1
        outcome = child.parse(case)
        if not outcome.held:
            if MINIMIZE_SECONDS:
                case = minimize(case, outcome, child, seconds=MINIMIZE_SECONDS)
            found.append(Finding(case, outcome, keep(case, family, findings)))
    return cases, found


def minimize(case: Case, outcome: Outcome, child: ParseChild, *, seconds: float) -> Case:
    """A smaller input that fails the same way (the same last line of the traceback),
    found by cutting chunks out for at most ``seconds``; only for exceptions, since a
    hang costs the whole time limit per try."""
    if outcome.kind != "unexpected":
        return case
    signature = _signature(outcome)
    deadline = time.monotonic() + seconds
    data = case.data
    chunk = len(data) // 2
    while chunk >= 1 and time.monotonic() < deadline:
        start, cut_any = 0, False
        while start < len(data) and time.monotonic() < deadline:
            smaller = data[:start] + data[start + chunk :]
            tried = child.parse(Case(smaller, case.mime, case.name, case.seed))
            if tried.kind == "unexpected" and _signature(tried) == signature:
                data, cut_any = smaller, True
            else:
                start += chunk
        if not cut_any:
            chunk //= 2
    return Case(data, case.mime, case.name, case.seed)


def _signature(outcome: Outcome) -> str:
    lines = [line for line in outcome.detail.strip().splitlines() if line.strip()]
    return lines[-1].split(":", 1)[0] if lines else ""


def keep(case: Case, family: Family, folder: Path) -> Path:
    """Write ``case`` into ``folder/<family>/``, named by its content, and its type beside."""
    target = folder / family.name
    target.mkdir(parents=True, exist_ok=True)
    suffix = Path(case.name).suffix
    path = target / f"{hashlib.sha256(case.data).hexdigest()[:16]}{suffix}"
    path.write_bytes(case.data)
    if case.mime:
        path.with_name(path.name + ".mime").write_text(case.mime + "\n")
    return path
