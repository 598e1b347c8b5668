"""Uploads, downloads and evidence for the media tests.

- `tus_upload` drives a real tus client (tuspy) against the server, as any
  third-party uploader would; `tus_create`/`tus_head`/`tus_patch`/`tus_delete`
  speak the protocol by hand with httpx, for requests no honest client sends.
- `CuttingProxy` sits between a client and the server on loopback and cuts a
  connection after exactly as many bytes as a test asks for, so an upload can be
  interrupted at any byte of its body.
- `media_snapshot`, `data_files` and `assert_blobs_whole` read the database file
  and the data directory behind the server's back, as proof of what was kept.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import psycopg
from tusclient import client as tus
from tusclient.exceptions import TusCommunicationError, TusUploadFailed

from tests.stores import BACKGROUND_TABLES, pg_rows_many, snapshot_query
from tests.support import Peer, ServerProcess

TUS_VERSION = "1.0.0"
TUS = {"Tus-Resumable": TUS_VERSION}
OFFSET_STREAM = "application/offset+octet-stream"
DEFAULT_CHUNK = 64 * 1024
PREVIEW_TIMEOUT_S = 30.0
Json = dict[str, Any]

DESCRIPTOR_FIELDS = {"id", "name", "type", "size", "sha256", "kind", "url", "preview"}
PREVIEW_FIELDS = {
    "status",
    "error",
    "url",
    "width",
    "height",
    "duration_ms",
    "pages",
    "peaks",
    "playback",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode("ascii")


def metadata(**pairs: str | bytes | None) -> str:
    """An `Upload-Metadata` header value; pairs whose value is None are left out."""
    return ",".join(f"{key} {b64(value)}" for key, value in pairs.items() if value is not None)


def upload_id_of(url: str) -> str:
    """The upload id at the end of an upload's URL (`/api/uploads/{id}`)."""
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]


# --- tus with a real client -----------------------------------------------------


def tus_client(base_url: str, token: str) -> tus.TusClient:
    return tus.TusClient(f"{base_url}/api/uploads", headers={"Authorization": f"Bearer {token}"})


def tus_uploader(
    base_url: str,
    token: str,
    data: bytes,
    *,
    conv: str | None = None,
    filename: str | None = None,
    filetype: str | None = None,
    url: str | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    checksum: bool = False,
) -> Any:
    """A tuspy uploader; with `url`, one that resumes that upload (it asks HEAD first)."""
    meta: dict[str, str] = {}
    if conv is not None:
        meta["conv"] = conv
    if filename is not None:
        meta["filename"] = filename
    if filetype is not None:
        meta["filetype"] = filetype
    return tus_client(base_url, token).uploader(
        file_stream=io.BytesIO(data),
        url=url,
        chunk_size=chunk_size,
        metadata=meta,
        upload_checksum=checksum,
    )


def tus_upload(
    server: ServerProcess,
    token: str,
    conv: str,
    data: bytes,
    filename: str = "file.bin",
    filetype: str | None = "application/octet-stream",
    chunk_size: int = DEFAULT_CHUNK,
    *,
    checksum: bool = False,
) -> str:
    """Upload `data` whole with tuspy; returns the upload (= media) id."""
    uploader = tus_uploader(
        server.base_url,
        token,
        data,
        conv=conv,
        filename=filename,
        filetype=filetype,
        chunk_size=chunk_size,
        checksum=checksum,
    )
    uploader.upload()
    assert uploader.offset == len(data), (uploader.offset, len(data))
    return upload_id_of(uploader.url)


def tus_resume(
    base_url: str,
    token: str,
    url: str,
    data: bytes,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    checksum: bool = False,
    timeout_s: float = 10.0,
) -> Any:
    """Finish an interrupted upload with a fresh tuspy uploader for the same URL.

    The server may still be closing the interrupted request when the client
    comes back ("another PATCH is running": 409); like a real client, this
    tries again, a bounded number of times.
    """
    deadline = time.monotonic() + timeout_s
    for _ in range(200):
        uploader = tus_uploader(
            base_url, token, data, url=url, chunk_size=chunk_size, checksum=checksum
        )
        try:
            uploader.upload()
        except TusUploadFailed as exc:
            if exc.status_code != 409 or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
            continue
        return uploader
    raise AssertionError("the upload could not be resumed")


def tus_failure_status(exc: BaseException) -> int | None:
    if isinstance(exc, TusCommunicationError | TusUploadFailed):
        status: int | None = exc.status_code
        return status
    return None


# --- tus by hand ----------------------------------------------------------------


def tus_create(
    http: httpx.Client,
    *,
    conv: str | None,
    length: int | str | None,
    filename: str | None = "file.bin",
    filetype: str | None = None,
    headers: dict[str, str | None] | None = None,
    upload_metadata: str | None = None,
) -> httpx.Response:
    """POST /api/uploads; `upload_metadata` replaces the header built from the fields.

    A header given as None in `headers` is left out.
    """
    sent: dict[str, str | None] = dict(TUS)
    if length is not None:
        sent["Upload-Length"] = str(length)
    meta = upload_metadata
    if meta is None:
        meta = metadata(conv=conv, filename=filename, filetype=filetype)
    if meta:
        sent["Upload-Metadata"] = meta
    sent.update(headers or {})
    return http.post("/api/uploads", headers={k: v for k, v in sent.items() if v is not None})


def created_id(resp: httpx.Response) -> str:
    assert resp.status_code == 201, resp.text
    upload_id: str = resp.json()["id"]
    return upload_id


def tus_head(
    http: httpx.Client, upload_id: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return http.head(f"/api/uploads/{upload_id}", headers={**TUS, **(headers or {})})


def tus_offset(http: httpx.Client, upload_id: str) -> int:
    resp = tus_head(http, upload_id)
    assert resp.status_code == 200, (resp.status_code, resp.headers)
    return int(resp.headers["Upload-Offset"])


def checksum_header(data: bytes, algorithm: str = "sha1") -> str:
    digest = hashlib.new(algorithm, data).digest()
    return f"{algorithm} {base64.b64encode(digest).decode('ascii')}"


def tus_patch(
    http: httpx.Client,
    upload_id: str,
    offset: int | str | None,
    body: bytes,
    *,
    checksum: str | None = None,
    content_type: str | None = OFFSET_STREAM,
    headers: dict[str, str | None] | None = None,
) -> httpx.Response:
    """PATCH the upload; a header given as None in `headers` is left out."""
    sent: dict[str, str | None] = dict(TUS)
    if offset is not None:
        sent["Upload-Offset"] = str(offset)
    if content_type is not None:
        sent["Content-Type"] = content_type
    if checksum is not None:
        sent["Upload-Checksum"] = checksum
    sent.update(headers or {})
    kept = {k: v for k, v in sent.items() if v is not None}
    return http.patch(f"/api/uploads/{upload_id}", content=body, headers=kept)


def tus_delete(http: httpx.Client, upload_id: str) -> httpx.Response:
    return http.delete(f"/api/uploads/{upload_id}", headers=TUS)


def raw_upload(
    http: httpx.Client,
    conv: str,
    data: bytes,
    filename: str = "file.bin",
    filetype: str | None = "application/octet-stream",
) -> str:
    """Create and fill an upload in one PATCH, by hand; returns its id."""
    upload_id = created_id(
        tus_create(http, conv=conv, length=len(data), filename=filename, filetype=filetype)
    )
    resp = tus_patch(http, upload_id, 0, data)
    assert resp.status_code == 204, resp.text
    assert int(resp.headers["Upload-Offset"]) == len(data)
    return upload_id


def started_upload(
    http: httpx.Client, conv: str, data: bytes, sent: int, filename: str = "half.bin"
) -> str:
    """An unfinished upload of `data` of which the first `sent` bytes arrived."""
    upload_id = created_id(
        tus_create(
            http,
            conv=conv,
            length=len(data),
            filename=filename,
            filetype="application/octet-stream",
        )
    )
    if sent:
        resp = tus_patch(http, upload_id, 0, data[:sent])
        assert resp.status_code == 204, resp.text
    return upload_id


# --- media reads -------------------------------------------------------------------


def media_info(server: ServerProcess, token: str, media_id: str) -> Json:
    with server.http(token) as client:
        resp = client.get(f"/api/media/{media_id}/info")
    assert resp.status_code == 200, resp.text
    info: Json = resp.json()
    return info


def wait_preview(
    server: ServerProcess, token: str, media_id: str, timeout_s: float = PREVIEW_TIMEOUT_S
) -> Json:
    """The descriptor once its preview is no longer pending (ready, failed or none)."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    info: Json = {}
    while time.monotonic() < deadline:
        info = media_info(server, token, media_id)
        if info["preview"]["status"] != "pending":
            return info
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    raise AssertionError(f"preview still pending after {timeout_s} s: {info}")


def download(server: ServerProcess, token: str, path: str, **headers: str) -> httpx.Response:
    with server.http(token) as client:
        return client.get(path, headers=headers)


def assert_descriptor(
    d: Json,
    *,
    media_id: str,
    name: str,
    type_: str | None,
    data: bytes,
    kind: str,
) -> None:
    """A media descriptor as docs/media.md §4 shows it, for these bytes."""
    assert set(d) >= DESCRIPTOR_FIELDS, d
    assert d["id"] == media_id, d
    assert d["name"] == name, d
    if type_ is not None:
        assert d["type"] == type_, d
    assert d["size"] == len(data), d
    assert d["sha256"] == sha256(data), d
    assert d["kind"] == kind, d
    assert d["url"] == f"/api/media/{media_id}", d
    assert set(d["preview"]) >= PREVIEW_FIELDS, d["preview"]
    assert d["preview"]["status"] in ("pending", "ready", "failed", "none"), d["preview"]


async def send_media(
    peer: Peer,
    conv: str,
    kind: str,
    ids: list[str],
    ref: str,
    text: str | None = "",
    **extra: Any,
) -> Json:
    """Send a message carrying uploads; returns the ack or error frame for `ref`."""
    frame: Json = {
        "op": "send",
        "ref": ref,
        "conv": conv,
        "kind": kind,
        "attachments": [{"id": i} for i in ids],
        **extra,
    }
    if text is not None:
        frame["text"] = text
    await peer.send(frame)
    return await peer.recv_ack(ref)


def disposition(header: str) -> tuple[str, str]:
    """(type, name) of a Content-Disposition: the name from `filename*` (RFC 5987,
    percent-encoded UTF-8) when there is one, else from a plain quoted `filename`,
    which can only carry an ASCII name."""
    kind = header.split(";", 1)[0].strip().lower()
    plain = None
    for part in header.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "filename*":
            charset, _, encoded = value.partition("''")
            assert charset.lower() == "utf-8", header
            assert encoded.isascii(), f"filename* is not percent-encoded: {header!r}"
            return kind, unquote(encoded, encoding="utf-8", errors="strict")
        if key.lower() == "filename":
            plain = value.strip('"')
    assert plain is not None and plain.isascii(), f"no filename* in {header!r}"
    return kind, plain


# --- evidence from the data directory and the database ------------------------------


def data_files(server: ServerProcess, sub: str) -> dict[str, int]:
    """Every file under DATA_DIR/sub, by relative path, with its size."""
    root = server.data_dir / sub
    if not root.exists():
        return {}
    found: dict[str, int] = {}
    for path in root.rglob("*"):
        with contextlib.suppress(FileNotFoundError):
            if path.is_file():
                found[str(path.relative_to(root))] = path.stat().st_size
    return found


def blob_paths(server: ServerProcess) -> dict[str, Path]:
    """sha256 -> path of every blob file."""
    root = server.data_dir / "blobs"
    if not root.exists():
        return {}
    return {p.name: p for p in root.rglob("*") if p.is_file()}


def blob_count(server: ServerProcess, digest: str) -> int:
    root = server.data_dir / "blobs"
    if not root.exists():
        return 0
    return sum(1 for p in root.rglob(digest) if p.is_file())


def assert_blob_stored(server: ServerProcess, data: bytes) -> Path:
    """The content is in the blob store exactly once, whole, where §7 puts it."""
    digest = sha256(data)
    path = server.data_dir / "blobs" / digest[:2] / digest[2:4] / digest
    assert path.is_file(), f"no blob at {path}"
    assert blob_count(server, digest) == 1
    assert path.read_bytes() == data
    return path


def assert_blobs_whole(server: ServerProcess) -> None:
    """No blob is ever partial: each file's content hashes to its name, at ab/cd/<sha>."""
    root = server.data_dir / "blobs"
    for digest, path in blob_paths(server).items():
        rel = path.relative_to(root).parts
        assert rel == (digest[:2], digest[2:4], digest), f"stray file in blobs/: {path}"
        assert sha256(path.read_bytes()) == digest, f"partial or foreign blob: {path}"


# Tables whose rows a background preview rewrites; only their stable columns are compared.
_VOLATILE = {"blobs": "sha256, size, type"}
_SKIPPED = {"sessions", "alembic_version", "sqlite_sequence", *BACKGROUND_TABLES}


def _snapshot_query(name: str) -> str:
    return f"SELECT {_VOLATILE[name]} FROM {name}" if name in _VOLATILE else snapshot_query(name)


def media_snapshot(server: ServerProcess) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but sessions: `db_snapshot` plus the media tables."""
    names = [name for name in server.db_tables() if name not in _SKIPPED]
    if server.store == "postgres":  # the schema is the latest: one connection reads all
        queries = [_snapshot_query(name) for name in names]
        found = pg_rows_many(server.db_url, queries)
        return {name: sorted(rows, key=repr) for name, rows in zip(names, found, strict=True)}
    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    for name in sorted(names):
        query = (
            f"SELECT {_VOLATILE[name]} FROM {name}" if name in _VOLATILE else snapshot_query(name)
        )
        try:
            rows = server.db_rows(query)
        except (sqlite3.OperationalError, psycopg.errors.UndefinedColumn):
            rows = server.db_rows(f"SELECT * FROM {name}")
        snapshot[name] = sorted(rows, key=repr)
    return snapshot


def settle_previews(server: ServerProcess, timeout_s: float = PREVIEW_TIMEOUT_S) -> None:
    """Wait until no preview is being made, so the database holds still for a snapshot."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            pending = server.db_rows("SELECT count(*) FROM blobs WHERE preview_status = 'pending'")
        except (sqlite3.OperationalError, psycopg.errors.UndefinedColumn):
            return  # no such column: nothing to wait for
        if pending[0][0] == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"previews still pending after {timeout_s} s")


@dataclass
class Evidence:
    """The database and the data directory, before a request that must change nothing."""

    server: ServerProcess
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    files: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def take(cls, server: ServerProcess) -> Evidence:
        settle_previews(server)
        found = cls(server)
        found.rows = media_snapshot(server)
        found.files = {sub: data_files(server, sub) for sub in ("blobs", "uploads", "previews")}
        return found

    def assert_unchanged(self) -> None:
        now = media_snapshot(self.server)
        for table, rows in self.rows.items():
            after = now.get(table, [])
            if after != rows:
                added = list((Counter(after) - Counter(rows)).elements())
                removed = list((Counter(rows) - Counter(after)).elements())
                raise AssertionError(f"{table}: added {added[:3]}, removed {removed[:3]}")
        new_tables = set(now) - set(self.rows)
        assert not new_tables, f"tables appeared: {new_tables}"
        for sub, files in self.files.items():
            after_files = data_files(self.server, sub)
            new = sorted(set(after_files.items()) - set(files.items()))
            gone = sorted(set(files.items()) - set(after_files.items()))
            assert after_files == files, f"DATA_DIR/{sub} changed: new {new}, gone {gone}"


# --- a proxy that cuts connections -----------------------------------------------------


@dataclass
class Cut:
    """One armed cut: the next request with `method` (after `skip` such requests) is
    forwarded up to `body_bytes` of its body (or `total_bytes` of the connection).

    The connection then stalls for `linger_s` before it is closed, as a network
    that stops carrying data does before the ends notice; with 0 the last bytes
    and the close arrive together.
    """

    method: str | None
    body_bytes: int | None
    total_bytes: int | None
    skip: int = 0
    linger_s: float = 0.5
    reached: threading.Event = field(default_factory=threading.Event)  # the bytes are through
    done: threading.Event = field(default_factory=threading.Event)  # and the connection closed
    forwarded_body: int = -1


class CuttingProxy:
    """A loopback TCP proxy in front of a server that can cut a request at any byte.

    Every connection is relayed both ways. `cut()` arms a cut for a coming
    connection: after exactly that many bytes from the client have reached the
    server, the proxy half-closes the server side (so the server sees the body
    end early, with every byte before it delivered) and closes the client side
    (so the client sees its request fail). A request is matched by the first
    request line of its connection; tuspy opens one connection per request.
    """

    IDLE_TIMEOUT_S = 15.0
    HEAD_LIMIT = 64 * 1024

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._cuts: list[Cut] = []
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self.connections = 0
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> CuttingProxy:
        self._acceptor.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._acceptor.join(5)
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._listener.close()
        for thread in self._threads:
            thread.join(5)

    def cut(
        self,
        *,
        body_bytes: int | None = None,
        total_bytes: int | None = None,
        method: str | None = "PATCH",
        skip: int = 0,
        linger_s: float = 0.5,
    ) -> Cut:
        assert (body_bytes is None) != (total_bytes is None), "one of body_bytes, total_bytes"
        armed = Cut(method, body_bytes, total_bytes, skip, linger_s)
        with self._lock:
            self._cuts.append(armed)
        return armed

    def _take_cut(self, method: str) -> Cut | None:
        with self._lock:
            for armed in self._cuts:
                if armed.method is not None and armed.method != method:
                    continue
                if armed.skip > 0:
                    armed.skip -= 1
                    return None
                self._cuts.remove(armed)
                return armed
        return None

    def _accept_loop(self) -> None:
        deadline = time.monotonic() + 600
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                downstream, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(downstream,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, downstream: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            downstream.close()
            return
        with self._lock:
            self._sockets.extend([downstream, upstream])
        downstream.settimeout(self.IDLE_TIMEOUT_S)
        upstream.settimeout(self.IDLE_TIMEOUT_S)
        cut_flag = threading.Event()
        back = threading.Thread(
            target=self._pump_back, args=(upstream, downstream, cut_flag), daemon=True
        )
        back.start()
        try:
            self._pump_forward(downstream, upstream, cut_flag)
        finally:
            back.join(self.IDLE_TIMEOUT_S + 1)
            for sock in (downstream, upstream):
                with contextlib.suppress(OSError):
                    sock.close()

    def _pump_forward(
        self, downstream: socket.socket, upstream: socket.socket, cut_flag: threading.Event
    ) -> None:
        """Client to server, cutting where armed."""
        head = b""
        limit: int | None = None
        armed: Cut | None = None
        sent = 0
        decided = False
        header_len = 0
        for _ in range(1_000_000):
            if self._stop.is_set():
                return
            try:
                data = downstream.recv(65536)
            except OSError:
                data = b""
            if not data:
                with contextlib.suppress(OSError):
                    upstream.shutdown(socket.SHUT_WR)
                return
            if not decided:
                head += data
                end = head.find(b"\r\n\r\n")
                if end < 0 and len(head) < self.HEAD_LIMIT:
                    continue
                decided = True
                header_len = end + 4 if end >= 0 else len(head)
                method = head.split(b" ", 1)[0].decode("latin-1")
                armed = self._take_cut(method)
                if armed is not None:
                    if armed.total_bytes is not None:
                        limit = armed.total_bytes
                    else:
                        assert armed.body_bytes is not None
                        limit = header_len + armed.body_bytes
                data, head = head, b""
            chunk = data if limit is None else data[: max(limit - sent, 0)]
            try:
                upstream.sendall(chunk)
            except OSError:
                return
            sent += len(chunk)
            if limit is not None and sent >= limit:
                assert armed is not None
                armed.forwarded_body = max(sent - header_len, 0)
                cut_flag.set()
                armed.reached.set()
                self._stop.wait(armed.linger_s)
                # Every byte forwarded so far is delivered before the FIN.
                with contextlib.suppress(OSError):
                    upstream.shutdown(socket.SHUT_WR)
                with contextlib.suppress(OSError):
                    downstream.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    downstream.close()
                armed.done.set()
                return

    def _pump_back(
        self, upstream: socket.socket, downstream: socket.socket, cut_flag: threading.Event
    ) -> None:
        """Server to client; after a cut, the server's answer is read and dropped."""
        for _ in range(1_000_000):
            if self._stop.is_set():
                return
            try:
                data = upstream.recv(65536)
            except OSError:
                data = b""
            if not data:
                with contextlib.suppress(OSError):
                    downstream.shutdown(socket.SHUT_WR)
                return
            if cut_flag.is_set():
                continue
            try:
                downstream.sendall(data)
            except OSError:
                if not cut_flag.is_set():
                    return


@contextlib.contextmanager
def cutting_proxy(server: ServerProcess) -> Iterator[CuttingProxy]:
    with CuttingProxy(server.port) as proxy:
        yield proxy


def wait_offset(http: httpx.Client, upload_id: str, expected: int, timeout_s: float = 5.0) -> int:
    """HEAD's offset once it reaches `expected` (or whatever it is when time runs out).

    An interrupted request is finished by the server a moment after the cut.
    """
    deadline = time.monotonic() + timeout_s
    offset = tus_offset(http, upload_id)
    while offset != expected and time.monotonic() < deadline:
        time.sleep(0.02)
        offset = tus_offset(http, upload_id)
    return offset
