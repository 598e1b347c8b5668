"""A real `orderchat serve` process on a free loopback port, and a raw WebSocket peer.

Tests talk to the server exactly as clients do: HTTP over httpx, WebSocket
frames over the `websockets` client. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests import forked_commands, stores

# A bound, not a speed check: `--demo` seeds a whole shop before answering, which takes
# tens of seconds on PostgreSQL when both workers of a loaded machine start servers.
START_TIMEOUT_S = 90.0
_usernames = itertools.count(1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Strong enough for the password policy (core/passwords.py).
ADMIN_PASSWORD = "admin-passphrase"


def run_cli(
    *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the `orderchat` command as a user would, with this interpreter (and `env`)."""
    with tempfile.TemporaryDirectory(prefix="orderchat-cli-") as scratch:
        done = forked_commands.run(
            list(args), dict(os.environ if env is None else env), Path(scratch), timeout_s=60
        )
    if check:
        done.check_returncode()
    return done


def cli_in_process(*args: str) -> list[str]:
    """The lines an `orderchat user …` command prints, run on a thread of this process.

    A thread of its own because the command runs its own event loop, and the
    caller may be inside one.
    """
    from orderchat.cli import _parser
    from orderchat.core.passwords import PasswordCost
    from orderchat.settings import Settings
    from orderchat.user_cli import _VERBS, _with_accounts

    parsed = _parser().parse_args(list(args))
    settings = Settings(
        data_dir=parsed.data_dir,
        database_url=parsed.database,
        redis_url=parsed.redis,
        password_cost=PasswordCost.from_env(os.environ),
    )
    verb = _VERBS[parsed.user_command]
    return stores.run_on_own_thread(lambda: _with_accounts(settings, verb, parsed), timeout_s=60)


@dataclass
class Account:
    id: str
    username: str
    password: str
    token: str
    roles: list[str]


@dataclass
class ServerProcess:
    data_dir: Path
    extra_args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    proc: forked_commands.ForkedCommand | subprocess.Popen[bytes] | None = None
    admin: Account | None = None
    log_path: Path | None = None
    # "sqlite": orderchat.db under data_dir; "postgres": a fresh database of its own
    # on the run's cluster (see tests/stores.py), made at the first start.
    store: str = "sqlite"
    pg_url: str | None = None
    # Variables the server process gets besides the test run's own (ORDERCHAT_SMTP_*).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "orderchat.db"

    @property
    def db_url(self) -> str:
        """The database the server uses, as `--database` takes it."""
        if self.store == "sqlite":
            return f"sqlite+aiosqlite:///{self.db_path}"
        if self.pg_url is None:
            self.pg_url = stores.new_database()
        return self.pg_url

    @property
    def db_where(self) -> str:
        """How the CLI names this server's database on its `database: …` line."""
        return str(self.db_path.resolve()) if self.store == "sqlite" else self.db_url

    @property
    def database_args(self) -> tuple[str, ...]:
        """What a command needs besides `--data-dir` to reach this server's database."""
        return () if self.store == "sqlite" else ("--database", self.db_url)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fresh = self.store == "sqlite" and not self.db_path.exists()
        if fresh and "--database" not in self.extra_args:
            stores.copy_sqlite_template(self.db_path)
        self.log_path = self.data_dir / f"server-{time.monotonic_ns()}.log"
        self.proc = forked_commands.start(
            [
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                *self.database_args,
                *self.extra_args,
            ],
            {**os.environ, **self.env},
            self.log_path,
        )
        self.wait_healthy(lambda: self.proc is not None and self.proc.poll() is None)

    def wait_healthy(self, running: Callable[[], bool]) -> None:
        """Until /healthz answers 200; fails at once if `running()` turns false."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if not running():
                raise RuntimeError(f"server exited early:\n{self._log_text()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not become healthy:\n{self._log_text()}")

    def _log_text(self) -> str:
        return self.log_path.read_text() if self.log_path is not None else "(no log)"

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)
        self.proc = None

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def restart(self) -> None:
        self.kill()
        self.start()

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    # --- accounts -------------------------------------------------------------

    def login(self, username: str, password: str) -> dict[str, Any]:
        resp = httpx.post(
            f"{self.base_url}/api/auth/login",
            json={"username": username, "password": password},
            timeout=10,
        )
        resp.raise_for_status()
        body: dict[str, Any] = resp.json()
        return body

    def create_admin(self) -> Account:
        """The first admin comes from the CLI's `user add`, as it does for a real shop.

        Run in this process (tests/integration/test_cli_users.py runs the command
        itself): a new interpreter importing the whole app cost every server that
        needs an admin a second or two.
        """
        username = f"admin{next(_usernames)}"
        user_id = cli_in_process(
            "user",
            "add",
            username,
            "--password",
            ADMIN_PASSWORD,
            "--role",
            "admin",
            "--data-dir",
            str(self.data_dir),
            *self.database_args,
        )[-1]
        token = self.login(username, ADMIN_PASSWORD)["token"]
        self.admin = Account(user_id, username, ADMIN_PASSWORD, token, ["admin"])
        return self.admin

    def user(self, *roles: str, name: str | None = None) -> Account:
        """A new staff user with a fresh session token, made through the admin API."""
        assert self.admin is not None, "create_admin() first"
        username = name or f"user{next(_usernames)}"
        password = f"{username}-passphrase"
        role_list = list(roles) or ["customer_service"]
        resp = httpx.post(
            f"{self.base_url}/api/users",
            json={"username": username, "password": password, "roles": role_list},
            headers=self.auth(self.admin.token),
            timeout=10,
        )
        resp.raise_for_status()
        token = self.login(username, password)["token"]
        return Account(resp.json()["id"], username, password, token, role_list)

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def http(self, token: str | None = None, language: str | None = None) -> httpx.Client:
        """A client; `language` asks for the server's words in it (absent: the zh-CN default)."""
        headers = self.auth(token) if token else {}
        if language is not None:
            headers["Accept-Language"] = language
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10)

    def conversation(
        self, owner: Account, kind: str, members: list[Account], title: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": kind, "members": [m.id for m in members]}
        if title is not None:
            body["title"] = title
        with self.http(owner.token) as client:
            resp = client.post("/api/conversations", json=body)
        assert resp.status_code in (200, 201), resp.text
        conv: dict[str, Any] = resp.json()
        return conv

    # --- the database, read back as evidence -----------------------------------

    def db_rows(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Read the real database, bypassing the server entirely (SQL with `?` placeholders)."""
        if self.store == "postgres":
            return stores.pg_rows(self.db_url, sql, params)
        con = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def check_search_index(self) -> None:
        """On SQLite, FTS5's own check that its index holds exactly the terms of
        `search_docs`: raises if an insert, edit or purge left the two apart."""
        if self.store == "postgres":
            return  # the tsvector is a generated column: it cannot drift
        con = sqlite3.connect(self.db_path, timeout=10)
        try:
            con.execute("INSERT INTO search_fts(search_fts, rank) VALUES ('integrity-check', 1)")
        finally:
            con.close()

    def db_tables(self) -> list[str]:
        """The names of the database's tables, whatever the store."""
        if self.store == "postgres":
            sql = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        else:
            sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
        return sorted(name for (name,) in self.db_rows(sql))

    def db_columns(self, table: str) -> list[str]:
        """A table's column names in their stored order, as `SELECT *` returns them."""
        if self.store == "postgres":
            rows = self.db_rows(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = ?"
                " ORDER BY ordinal_position",
                table,
            )
            return [name for (name,) in rows]
        return [row[1] for row in self.db_rows(f"PRAGMA table_info({table})")]

    def db_snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table the messaging core and the order services write,
        for 'changes nothing' checks. Sessions are left out: signing in writes one.
        So is the notification outbox and its planner's cursor: they follow the event
        stream in the background, whatever the request did."""
        tables = [
            "users",
            "conversations",
            "members",
            "messages",
            "message_edits",
            "forwarded_uploads",
            "events",
            "counters",
            "orders",
            "order_items",
            "order_issues",
            "customers",
            "invitations",
            "skus",
            "stock_levels",
            "stock_movements",
            "payments",
            "invoices",
            "confirmation_items",
            "confirmation_versions",
            "idempotency_keys",
            "webhook_deliveries",
            "push_subscriptions",
            "notify_preferences",
            "webhook_endpoints",
            "calls",
        ]
        queries = [
            "SELECT * FROM counters WHERE name <> 'notify'"
            if t == "counters"
            else f"SELECT * FROM {t}"
            for t in tables
        ]
        if self.store == "postgres":  # one connection for all, not one per table
            found = stores.pg_rows_many(self.db_url, queries)
            return {t: sorted(rows, key=repr) for t, rows in zip(tables, found, strict=True)}
        return {t: sorted(self.db_rows(q), key=repr) for t, q in zip(tables, queries, strict=True)}

    def db_execute(self, sql: str, *params: object) -> int:
        """Write the real database behind the server's back; returns the rows changed.

        Only for setting up facts whose API does not exist yet (see `seed_skus`).
        """
        if self.store == "postgres":
            return stores.pg_execute(self.db_url, sql, params)
        con = sqlite3.connect(self.db_path, timeout=10)
        try:
            with con:
                return con.execute(sql, params).rowcount
        finally:
            con.close()


def seed_skus(
    server: ServerProcess,
    *codes: str,
    unit_price_cents: int = 9900,
    category: str = "test",
    low_stock_threshold: int = 0,
    stock: int | None = None,
    location: str = "main",
) -> None:
    """Put SKUs in the catalogue through the API, as the shop's admin.

    A code that is there already is left as it is. With `stock`, the SKU's
    on-hand count at `location` is brought to that many by an adjustment.
    """
    assert server.admin is not None, "create_admin() first"
    with server.http(server.admin.token) as client:
        for code in codes:
            created = client.post(
                "/api/skus",
                json={
                    "sku": code,
                    "name_zh": f"商品 {code}",
                    "name_en": f"Item {code}",
                    "category": category,
                    "unit_price_cents": unit_price_cents,
                    "low_stock_threshold": low_stock_threshold,
                },
            )
            assert created.status_code in (201, 409), created.text
            if stock is None:
                continue
            levels = client.get(f"/api/skus/{code}").json()["levels"]
            on_hand = sum(lv["on_hand"] for lv in levels if lv["location"] == location)
            delta = stock - on_hand
            if delta:
                side = "to_location" if delta > 0 else "from_location"
                moved = client.post(
                    "/api/stock/movements",
                    json={
                        "sku": code,
                        "kind": "adjustment",
                        side: location,
                        "quantity": abs(delta),
                        "reason": "test stock count",
                    },
                )
                assert moved.status_code == 201, moved.text


class Peer:
    """One WebSocket connection speaking raw JSON frames."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.welcome: dict[str, Any] = {}

    @classmethod
    async def open(
        cls,
        server: ServerProcess,
        token: str,
        device: str = "test",
        cursor: str | None = None,
        *,
        hello: bool = True,
    ) -> Peer:
        ws = await connect(server.ws_url, max_size=None, open_timeout=10)
        peer = cls(ws)
        if hello:
            peer.welcome = await peer.hello(token, device, cursor)
        return peer

    async def hello(
        self, token: str, device: str = "test", cursor: str | None = None
    ) -> dict[str, Any]:
        await self.send({"op": "hello", "token": token, "device": device, "cursor": cursor})
        return await self.recv_op("welcome")

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(frame).decode())

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        data = await asyncio.wait_for(self.ws.recv(), timeout)
        frame: dict[str, Any] = orjson.loads(data)
        return frame

    async def recv_op(self, op: str, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The next frame with this op, skipping others (typing, pongs, events)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            frame = await self.recv(max(remaining, 0.001))
            if frame["op"] == op:
                return frame
            if frame["op"] == "error" and op != "error":
                raise AssertionError(f"expected {op}, got error {frame}")

    async def expect_silence(self, seconds: float = 0.3) -> None:
        try:
            frame = await asyncio.wait_for(self.ws.recv(), seconds)
        except TimeoutError:
            return
        raise AssertionError(f"expected nothing, got {frame!r}")

    async def send_text(self, conv: str, text: str, ref: str, **extra: Any) -> dict[str, Any]:
        await self.send(
            {"op": "send", "ref": ref, "conv": conv, "kind": "text", "text": text, **extra}
        )
        return await self.recv_ack(ref)

    async def recv_ack(self, ref: str, timeout: float = 10.0) -> dict[str, Any]:  # noqa: ASYNC109
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            frame = await self.recv(max(remaining, 0.001))
            if frame.get("ref") == ref and frame["op"] in ("ack", "error"):
                return frame

    async def close(self) -> None:
        await self.ws.close()


# --- helpers for guarantee, bad-input and adversity tests ---------------------

DURABLE_OPS = frozenset({"message", "recalled", "read", "member"})
Frame = dict[str, Any]


def durable(frames: list[Frame]) -> list[Frame]:
    """The durable events among frames (those a resume must replay)."""
    return [f for f in frames if f.get("op") in DURABLE_OPS]


def start_server(data_dir: Path, *args: str, store: str = "sqlite") -> ServerProcess:
    """A started server with an admin, for tests that need their own flags."""
    proc = ServerProcess(data_dir, tuple(args), store=store)
    proc.start()
    proc.create_admin()
    return proc


def messages(server: ServerProcess, token: str, conv: str) -> list[Frame]:
    """A conversation's whole history over HTTP, page by page, ascending seq."""
    found: list[Frame] = []
    after = 0
    with server.http(token) as client:
        for _ in range(10_000):
            resp = client.get(
                f"/api/conversations/{conv}/messages", params={"after": after, "limit": 200}
            )
            assert resp.status_code == 200, resp.text
            page: list[Frame] = resp.json()["messages"]
            found.extend(page)
            if len(page) < 200:
                return found
            after = page[-1]["seq"]
    raise AssertionError("history did not end")


async def barrier(peer: Peer, timeout_s: float = 5.0) -> list[Frame]:
    """Ping, and return every frame that arrived before the pong.

    The pong proves the connection is open and that frames sent to it before
    the ping have been delivered. Answers that wait for the database (acks,
    errors found in a transaction) may still come after it.
    """
    await peer.send({"op": "ping"})
    frames: list[Frame] = []
    async with asyncio.timeout(timeout_s):
        while True:
            frame = await peer.recv(timeout_s)
            if frame.get("op") == "pong":
                return frames
            frames.append(frame)


async def collect_until(
    peer: Peer, stop: Callable[[Frame], bool], timeout_s: float = 10.0
) -> list[Frame]:
    """Frames up to and including the first one `stop` accepts."""
    frames: list[Frame] = []
    async with asyncio.timeout(timeout_s):
        while True:
            frame = await peer.recv(timeout_s)
            frames.append(frame)
            if stop(frame):
                return frames


async def wait_closed(peer: Peer, timeout_s: float = 5.0) -> int | None:
    """Read until the server closes the connection; return its close code."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                await peer.ws.recv()
    except ConnectionClosed:
        return peer.ws.close_code


class PeerPool:
    """Opens peers for one test and closes every one of them afterwards."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self._peers: list[Peer] = []
        self._recorders: list[Recorder] = []

    async def open(
        self, token: str, device: str = "test", cursor: str | None = None, *, hello: bool = True
    ) -> Peer:
        peer = await Peer.open(self.server, token, device, cursor, hello=hello)
        self._peers.append(peer)
        return peer

    async def record(self, token: str, device: str = "test", cursor: str | None = None) -> Recorder:
        recorder = Recorder(await self.open(token, device, cursor))
        self._recorders.append(recorder)
        return recorder

    async def __aenter__(self) -> PeerPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for recorder in self._recorders:
            await recorder.stop()
        for peer in self._peers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(peer.close(), 5)


class Recorder:
    """Reads every frame of a peer in the background, so it never falls behind.

    A connection that is not read makes the server drop it (G7); tests that
    push many frames record every receiver this way and look at the list later.
    """

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.frames: list[Frame] = []
        self.close_code: int | None = None
        self.closed = False
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            while True:
                data = await self.peer.ws.recv()
                self.frames.append(orjson.loads(data))
                self._changed.set()
        except ConnectionClosed:
            self.close_code = self.peer.ws.close_code
        finally:
            self.closed = True
            self._changed.set()

    async def send(self, frame: Frame) -> None:
        await self.peer.send(frame)

    async def wait_for(
        self, match: Callable[[Frame], bool], timeout_s: float = 10.0, start: int = 0
    ) -> Frame:
        """The first recorded frame from index `start` on that `match` accepts."""
        index = start
        async with asyncio.timeout(timeout_s):
            while True:
                while index < len(self.frames):
                    frame = self.frames[index]
                    index += 1
                    if match(frame):
                        return frame
                if self.closed:
                    raise AssertionError(f"connection closed ({self.close_code}) while waiting")
                self._changed.clear()
                await self._changed.wait()

    async def wait_count(
        self, match: Callable[[Frame], bool], count: int, timeout_s: float = 30.0
    ) -> None:
        async with asyncio.timeout(timeout_s):
            while sum(1 for f in self.frames if match(f)) < count:
                if self.closed:
                    raise AssertionError(f"connection closed ({self.close_code}) while waiting")
                self._changed.clear()
                await self._changed.wait()

    async def barrier(self, timeout_s: float = 5.0) -> list[Frame]:
        """Ping; return the frames recorded between now and the pong."""
        start = len(self.frames)
        await self.send({"op": "ping"})
        pong = await self.wait_for(lambda f: f.get("op") == "pong", timeout_s, start)
        end = next(i for i in range(start, len(self.frames)) if self.frames[i] is pong)
        return self.frames[start:end]

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


class RawWebSocket:
    """A WebSocket client spoken by hand over a plain blocking socket.

    The test decides when, and whether, it reads: with a small receive buffer
    and no reads it is the slow consumer that G7 is about.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray()

    @classmethod
    def connect(cls, port: int, rcvbuf: int | None = None, timeout_s: float = 10.0) -> RawWebSocket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout_s)
        sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                "GET /ws HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        raw = cls(sock)
        while b"\r\n\r\n" not in raw._buf:
            raw._fill()
        head, _, rest = bytes(raw._buf).partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise AssertionError(f"handshake refused: {head!r}")
        raw._buf = bytearray(rest)
        return raw

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("server closed the socket")
        self._buf.extend(chunk)

    def _take(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._fill()
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def send_text(self, text: str, *, cut_after: int | None = None) -> None:
        """Send one masked text frame; with `cut_after`, only that many bytes of it."""
        payload = text.encode()
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = bytes([0x81, 0x80 | length])
        elif length < 65536:
            header = bytes([0x81, 0x80 | 126]) + length.to_bytes(2, "big")
        else:
            header = bytes([0x81, 0x80 | 127]) + length.to_bytes(8, "big")
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall((header + mask + masked)[:cut_after])

    def recv_frame(self) -> tuple[int, bytes]:
        """The next (opcode, payload); continuation frames are joined."""
        opcode = -1
        parts: list[bytes] = []
        while True:
            first, second = self._take(2)
            length = second & 0x7F
            if length == 126:
                length = int.from_bytes(self._take(2), "big")
            elif length == 127:
                length = int.from_bytes(self._take(8), "big")
            mask = self._take(4) if second & 0x80 else b""
            payload = self._take(length)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if first & 0x0F:
                opcode = first & 0x0F
            parts.append(payload)
            if first & 0x80:
                return opcode, b"".join(parts)

    def recv_json(self) -> Frame:
        while True:
            opcode, payload = self.recv_frame()
            if opcode == 0x1:
                frame: Frame = orjson.loads(payload)
                return frame
            if opcode == 0x8:
                raise EOFError(f"server closed: {payload!r}")

    def read_to_end(self, timeout_s: float) -> tuple[list[Frame], int | None]:
        """Read everything the server still sends, until it closes or `timeout_s` passes.

        Returns the text frames and the close code (None when the socket ended
        without a close frame).

        Raises:
            TimeoutError: the server kept the connection open.
        """
        deadline = time.monotonic() + timeout_s
        frames: list[Frame] = []
        while True:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                opcode, payload = self.recv_frame()
            except (EOFError, ConnectionResetError):
                return frames, None
            except TimeoutError:
                raise TimeoutError(
                    f"still open after {timeout_s} s and {len(frames)} frames"
                ) from None
            if opcode == 0x1:
                frames.append(orjson.loads(payload))
            elif opcode == 0x8:
                return frames, int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None

    def close(self, *, reset: bool = False) -> None:
        """Close the socket; with `reset`, abort it with a TCP RST instead of a FIN."""
        with contextlib.suppress(OSError):
            if reset:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()


class TcpRelay:
    """A loopback TCP relay in front of a server, to play a dead network path.

    `freeze()` makes every connection already open through the relay go silent
    in both directions without closing it, which is what a vanished Wi-Fi or a
    dropped NAT entry looks like to both ends; connections opened afterwards
    are relayed normally.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.connections = 0
        self._frozen_upto = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def freeze(self) -> None:
        self._frozen_upto = self.connections

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()
        await asyncio.sleep(0.05)  # let the relaying handlers see their sockets close

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self._writers.append(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.append(up_writer)
        await asyncio.gather(
            self._pipe(reader, up_writer, number), self._pipe(up_reader, writer, number)
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int
    ) -> None:
        try:
            while data := await reader.read(65536):
                if number > self._frozen_upto:
                    writer.write(data)
                    await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


def run_bench(out: Path, *args: str, timeout_s: float = 120) -> str:
    """Run `python -m bench ARGS --out OUT` from the repository root; its stdout.

    Fails the test with the command's output when it does not exit 0.
    """
    proc = subprocess.run(
        [sys.executable, "-m", "bench", *args, "--out", str(out)],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-6000:]}"
    return proc.stdout
