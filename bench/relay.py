"""The reference targets of the messaging benchmarks: a relay and a durable relay.

`python -m bench.relay --port P --members FILE [--durable --db PATH] [--host H]`

The relay is the least a chat server must do, written the way a fast Python
server would be: `websockets` on a uvloop event loop, no authentication (the
token in `hello` is the user id), conversations and their members read from a
JSON file (`{"convs": {"conv_id": ["user_id", ...]}}`), and each message
forwarded to every connection of every other member of its conversation. It
speaks the same wire as OrderChat (hello/welcome, send/ack/message, error
frames), with each forwarded message encoded once and the same bytes sent to
every recipient. It is the reference for what Python can deliver on this
machine, not a product.

With `--durable` every send is first appended to SQLite (WAL, synchronous=FULL)
by one group-commit writer: all sends waiting (up to 1,000) go into one
transaction, and only after its commit are the acks sent and the messages
forwarded. That is the reference for a server that acks only what is on disk,
which is what OrderChat promises. The writer never checkpoints inside a commit
(`wal_autocheckpoint=0`): another connection in another thread runs
`PRAGMA wal_checkpoint(PASSIVE)` at most every 0.5 s after a commit, as the
OrderChat server does, so that no commit waits for the WAL to be copied back and
the database file synced. Under steady load that alone never lets the WAL start
over (SQLite rewinds it only when every frame in it has been copied, and the
writer appends new ones while the checkpoint runs): it grew past 300 MB in a
minute at 4,000 msg/s, and every commit got slower. So once a background
checkpoint is done, the writer copies the few frames committed since, between
two batches, and its next transaction writes the WAL from the top again.
`bench.sqlite_ref` measures the same inserts without any network, with the same
schema and code (`open_database`, `insert_rows`).

Prints `ready` on stdout once listening; SIGTERM or SIGINT stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import signal
import sqlite3
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

MAX_BATCH = 1000  # sends in one group-commit transaction
CHECKPOINT_EVERY_S = 0.5  # at most this often, the WAL is copied back in the background

# One message row: what a chat store keeps of a text message, keyed by id and
# by its place in the conversation.
SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    conv TEXT NOT NULL,
    seq INTEGER NOT NULL,
    sender TEXT NOT NULL,
    ref TEXT NOT NULL,
    text TEXT NOT NULL,
    ts INTEGER NOT NULL,
    UNIQUE (conv, seq)
)
"""
INSERT = "INSERT INTO messages (id, conv, seq, sender, ref, text, ts) VALUES (?, ?, ?, ?, ?, ?, ?)"

Row = tuple[str, str, int, str, str, str, int]


def open_database(path: Path, *, autocheckpoint: bool = True) -> sqlite3.Connection:
    """A connection in WAL mode with synchronous=FULL: every commit is fsynced.

    Without `autocheckpoint` its commits never copy the WAL back into the
    database (SQLite's default does it in the commit that passes 1,000 pages,
    which holds that commit up); then `passive_checkpoint` must run elsewhere.
    """
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    if not autocheckpoint:
        db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute(SCHEMA)
    return db


def passive_checkpoint_on(db: sqlite3.Connection | None) -> None:
    """PASSIVE checkpoint on the writer's own connection, between two of its transactions."""
    if db is not None:
        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()


def passive_checkpoint(path: Path) -> None:
    """Copy the WAL pages no reader needs into the database, on a connection of its own.

    PASSIVE never waits for a lock, so the writer goes on committing meanwhile;
    once all of the WAL is copied, the next commit starts it over from the top.
    """
    with contextlib.closing(sqlite3.connect(path, timeout=0)) as db:
        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()


def insert_rows(db: sqlite3.Connection, rows: Sequence[Row]) -> None:
    """Insert the rows in one transaction, committed (and so fsynced) before returning."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(INSERT, rows)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def error_frame(code: str, message: str, ref: str | None = None) -> bytes:
    frame: dict[str, Any] = {"op": "error", "code": code, "message": message}
    if ref is not None:
        frame["ref"] = ref
    return orjson.dumps(frame)


_PONG = orjson.dumps({"op": "pong"})


@dataclass(slots=True)
class Pending:
    """A send waiting for the group commit."""

    ws: ServerConnection
    sender: str
    conv: str
    ref: str
    text: str


class Relay:
    def __init__(
        self,
        convs: dict[str, tuple[str, ...]],
        db: sqlite3.Connection | None,
        db_path: Path | None = None,
    ) -> None:
        self.convs = convs
        self.member_sets = {conv: frozenset(members) for conv, members in convs.items()}
        self.online: dict[str, set[ServerConnection]] = {}
        self.seqs: dict[str, int] = dict.fromkeys(convs, 0)
        self.pos = 0  # a position over all messages, for ids and cursors
        self.db = db
        self.queue: asyncio.Queue[Pending] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="relay-db") if db else None
        # The background checkpoints: their own thread, so the writer's never waits.
        self.db_path = db_path
        self.checkpointer = (
            ThreadPoolExecutor(1, thread_name_prefix="relay-checkpoint") if db_path else None
        )
        self.checkpointing: asyncio.Future[None] | None = None
        self.last_checkpoint = 0.0
        if db is not None:  # continue after what an earlier run stored
            for conv, seq in db.execute("SELECT conv, MAX(seq) FROM messages GROUP BY conv"):
                if conv in self.seqs:
                    self.seqs[conv] = int(seq)
            self.pos = int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])

    # --- one connection ------------------------------------------------------------

    async def handle(self, ws: ServerConnection) -> None:
        user: str | None = None
        try:
            while True:
                data = await ws.recv(decode=False)
                try:
                    frame = orjson.loads(data)
                except orjson.JSONDecodeError:
                    await ws.send(error_frame("bad_request", "not JSON"), text=True)
                    continue
                op = frame.get("op") if isinstance(frame, dict) else None
                ref = frame.get("ref") if isinstance(frame, dict) else None
                ref = ref if isinstance(ref, str) else None
                if op == "send" and user is not None:
                    await self.send(ws, user, frame, ref)
                elif op == "hello":
                    token = frame.get("token")
                    if user is not None:
                        reply = error_frame("bad_request", "hello was already accepted")
                    elif not isinstance(token, str) or not token:
                        reply = error_frame("unauthorized", "the token is the user id")
                    else:
                        user = token
                        self.online.setdefault(user, set()).add(ws)
                        reply = self.welcome(user)
                    await ws.send(reply, text=True)
                elif op == "ping":
                    await ws.send(_PONG, text=True)
                elif user is None:
                    await ws.send(error_frame("unauthorized", "say hello first", ref), text=True)
                else:
                    await ws.send(error_frame("bad_request", f"unknown op {op!r}", ref), text=True)
        except ConnectionClosed:
            pass
        finally:
            if user is not None:
                connections = self.online.get(user)
                if connections is not None:
                    connections.discard(ws)
                    if not connections:
                        del self.online[user]

    def welcome(self, user: str) -> bytes:
        return orjson.dumps(
            {
                "op": "welcome",
                "user": {"id": user},
                "cursor": f"v1.{self.pos}",
                "server_ts": int(time.time() * 1000),
            }
        )

    async def send(
        self, ws: ServerConnection, user: str, frame: dict[str, Any], ref: str | None
    ) -> None:
        conv, text = frame.get("conv"), frame.get("text")
        if ref is None or not isinstance(conv, str) or not isinstance(text, str):
            await ws.send(
                error_frame("bad_request", "send needs ref, conv and text", ref), text=True
            )
            return
        members = self.member_sets.get(conv)
        if members is None or user not in members:
            await ws.send(
                error_frame("forbidden", "you are not a member of this conversation", ref),
                text=True,
            )
            return
        if self.db is None:
            ack, message = self.assign(user, conv, ref, text)
            self.forward(user, conv, message)
            await ws.send(ack, text=True)
        else:
            self.queue.put_nowait(Pending(ws, user, conv, ref, text))

    # --- messages ------------------------------------------------------------------

    def assign(
        self, user: str, conv: str, ref: str, text: str, row: list[Row] | None = None
    ) -> tuple[bytes, bytes]:
        """Give a message its seq, id and time; its ack and its `message` frame, encoded."""
        seq = self.seqs[conv] + 1
        self.seqs[conv] = seq
        self.pos += 1
        message_id = f"m{self.pos}"
        ts = int(time.time() * 1000)
        if row is not None:
            row.append((message_id, conv, seq, user, ref, text, ts))
        ack = orjson.dumps(
            {"op": "ack", "ref": ref, "conv": conv, "seq": seq, "id": message_id, "ts": ts}
        )
        message = orjson.dumps(
            {
                "op": "message",
                "id": message_id,
                "conv": conv,
                "seq": seq,
                "ref": ref,
                "sender": user,
                "kind": "text",
                "text": text,
                "attachments": [],
                "mentions": [],
                "reply_to": None,
                "ts": ts,
                "recalled": False,
                "cursor": f"v1.{self.pos}",
            }
        )
        return ack, message

    def forward(self, sender: str, conv: str, message: bytes) -> None:
        """The same bytes to every connection of every other member."""
        online = self.online
        recipients: list[ServerConnection] = []
        for member in self.convs[conv]:
            if member != sender:
                connections = online.get(member)
                if connections:
                    recipients.extend(connections)
        if recipients:
            broadcast(recipients, message, text=True)

    async def write_forever(self) -> None:
        """The group-commit writer of the durable relay."""
        assert self.db is not None and self.executor is not None
        loop = asyncio.get_running_loop()
        queue = self.queue
        while True:
            batch = [await queue.get()]
            while len(batch) < MAX_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            seqs_before = {item.conv: self.seqs[item.conv] for item in batch}
            pos_before = self.pos
            rows: list[Row] = []
            frames = [self.assign(p.sender, p.conv, p.ref, p.text, rows) for p in batch]
            try:
                await loop.run_in_executor(self.executor, insert_rows, self.db, rows)
            except sqlite3.Error as exc:
                self.seqs.update(seqs_before)
                self.pos = pos_before
                for item in batch:
                    failed = error_frame("internal", f"not stored: {exc}", item.ref)
                    broadcast((item.ws,), failed, text=True)
                continue
            for item, (ack, message) in zip(batch, frames, strict=True):
                broadcast((item.ws,), ack, text=True)
                self.forward(item.sender, item.conv, message)
            await self.maybe_checkpoint(loop)

    async def maybe_checkpoint(self, loop: asyncio.AbstractEventLoop) -> None:
        """Finish a background checkpoint that is done; start one at most every 0.5 s."""
        if self.checkpointer is None or self.db_path is None or self.executor is None:
            return
        if self.checkpointing is not None:
            if not self.checkpointing.done():
                return
            self.checkpointing = None
            # The tail committed while the background copy ran: a few pages.
            await loop.run_in_executor(self.executor, passive_checkpoint_on, self.db)
        now = time.monotonic()
        if now - self.last_checkpoint < CHECKPOINT_EVERY_S:
            return
        self.last_checkpoint = now
        self.checkpointing = loop.run_in_executor(
            self.checkpointer, passive_checkpoint, self.db_path
        )
        self.checkpointing.add_done_callback(_report_checkpoint)

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.shutdown(wait=True)
        if self.db is not None and self.executor is not None:
            self.executor.submit(self.db.close).result()
            self.executor.shutdown()


def _report_checkpoint(done: asyncio.Future[None]) -> None:
    """A failed checkpoint is shown, not raised: the next one copies what this one did not."""
    if not done.cancelled() and done.exception() is not None:
        print(f"background checkpoint failed: {done.exception()!r}", file=sys.stderr, flush=True)


def load_members(path: Path) -> dict[str, tuple[str, ...]]:
    document = orjson.loads(path.read_bytes())
    return {
        str(conv): tuple(str(m) for m in members) for conv, members in document["convs"].items()
    }


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve_relay(options: argparse.Namespace) -> None:
    db = open_database(options.db, autocheckpoint=False) if options.durable else None
    relay = Relay(load_members(options.members), db, options.db if options.durable else None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    writer = asyncio.create_task(relay.write_forever()) if db is not None else None
    try:
        async with serve(
            relay.handle,
            options.host,
            options.port,
            ping_interval=None,
            close_timeout=2,
            backlog=4096,
        ):
            print("ready", flush=True)
            await stop.wait()
    finally:
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        relay.close()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.relay", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--members", type=Path, required=True, metavar="FILE")
    parser.add_argument("--durable", action="store_true", help="group-commit every send to SQLite")
    parser.add_argument("--db", type=Path, metavar="PATH", help="the SQLite file of --durable")
    options = parser.parse_args(argv)
    if options.durable and options.db is None:
        parser.error("--durable needs --db PATH")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    raise_fd_limit()
    uvloop.run(serve_relay(options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
