"""The benchmark's reference targets speak the common wire and do what they claim.

Correctness only, nothing about speed: the relay and the durable relay ack each
send with the conversation's next seq, forward it once to every connection of
every other member (never to the sender's own connections), refuse
non-members, and the durable relay has the row in SQLite before it acks and
keeps WAL checkpoints out of its commits without letting the WAL grow forever;
the `sqlite` workload runs and reports positive rates.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from bench._targets import RunningRelay, running_relay
from bench.relay import insert_rows, open_database, passive_checkpoint, passive_checkpoint_on
from websockets.asyncio.client import ClientConnection, connect

from tests.support import run_bench

MEMBERS = {
    "chan": ["alice", "bob", "carol"],
    "ab": ["alice", "bob"],
    "bc": ["bob", "carol"],
}


class Peer:
    """One connection of a user, keeping every frame it receives."""

    def __init__(self, user: str, ws: ClientConnection) -> None:
        self.user = user
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    @classmethod
    async def join(cls, url: str, user: str) -> Peer:
        ws = await connect(url, ping_interval=None, open_timeout=5)
        peer = cls(user, ws)
        await peer.put({"op": "hello", "token": user, "device": "test", "cursor": None})
        welcome = await peer.next()
        assert welcome["op"] == "welcome"
        assert welcome["user"] == {"id": user}
        return peer

    async def put(self, frame: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(frame), text=True)

    async def next(self) -> dict[str, Any]:
        frame: dict[str, Any] = orjson.loads(await self.ws.recv())
        self.frames.append(frame)
        return frame

    async def send(self, conv: str, ref: str, text: str) -> None:
        await self.put({"op": "send", "ref": ref, "conv": conv, "kind": "text", "text": text})

    async def until_ref(self, ref: str) -> None:
        """Read until the frame with this ref; everything is kept in `frames`."""
        while (await self.next()).get("ref") != ref:
            pass

    def messages(self) -> list[tuple[str, int, str, str]]:
        return [
            (f["conv"], f["seq"], f["sender"], f["text"])
            for f in self.frames
            if f["op"] == "message"
        ]


async def exercise(relay: RunningRelay) -> list[dict[str, Any]]:
    """Run the scenario against a relay; the acks of alice's sends."""
    url = relay.ws_url
    alice = await Peer.join(url, "alice")
    alice2 = await Peer.join(url, "alice")  # the sender's second device
    bob = await Peer.join(url, "bob")
    carol = await Peer.join(url, "carol")
    mallory = await Peer.join(url, "mallory")  # in no conversation
    peers = (alice, alice2, bob, carol, mallory)
    try:
        sends = [("chan", f"c{n}") for n in range(1, 4)] + [("ab", f"d{n}") for n in range(1, 3)]
        for conv, ref in sends:  # pipelined: all sent before any ack is read
            await alice.send(conv, ref, f"text of {ref}")
        async with asyncio.timeout(5):
            while sum(f["op"] == "ack" for f in alice.frames) < len(sends):
                await alice.next()
        acks = [f for f in alice.frames if f["op"] == "ack"]
        assert [(a["ref"], a["conv"], a["seq"]) for a in acks] == [
            ("c1", "chan", 1),
            ("c2", "chan", 2),
            ("c3", "chan", 3),
            ("d1", "ab", 1),
            ("d2", "ab", 2),
        ]
        assert all(isinstance(a["id"], str) and a["id"] for a in acks)
        assert all(isinstance(a["ts"], int) for a in acks)
        assert len({a["id"] for a in acks}) == len(acks)

        # Bob's reply is the last thing everyone in the channel gets: a frame
        # forwarded by mistake to alice's second device, or twice to anyone,
        # would have arrived before it.
        await bob.send("chan", "b1", "reply")
        await bob.until_ref("b1")
        for peer in (alice, alice2, carol):
            async with asyncio.timeout(5):
                await peer.until_ref("b1")

        from_alice = [("chan", 1, "c1"), ("chan", 2, "c2"), ("chan", 3, "c3")]
        direct = [("ab", 1, "d1"), ("ab", 2, "d2")]
        expected = {
            "bob": [(c, s, "alice", f"text of {r}") for c, s, r in from_alice + direct],
            "carol": [(c, s, "alice", f"text of {r}") for c, s, r in from_alice]
            + [("chan", 4, "bob", "reply")],
            "alice": [("chan", 4, "bob", "reply")],
        }
        assert bob.messages() == expected["bob"]
        assert carol.messages() == expected["carol"]
        assert alice.messages() == expected["alice"]
        assert alice2.messages() == expected["alice"]
        reply = next(f for f in carol.frames if f["op"] == "message" and f["ref"] == "b1")
        assert isinstance(reply["cursor"], str)
        assert isinstance(reply["id"], str)
        assert isinstance(reply["ts"], int)

        # Other conversations' seqs are their own.
        await bob.send("bc", "b2", "to carol")
        async with asyncio.timeout(5):
            await bob.until_ref("b2")
            await carol.until_ref("b2")
        assert bob.frames[-1]["op"] == "ack"
        assert bob.frames[-1]["seq"] == 1
        assert carol.messages()[-1] == ("bc", 1, "bob", "to carol")

        # A non-member is refused, and nobody gets anything.
        await mallory.send("chan", "m1", "let me in")
        await mallory.send("nowhere", "m2", "anyone?")
        async with asyncio.timeout(5):
            refused = [await mallory.next(), await mallory.next()]
        assert [(f["op"], f["code"], f["ref"]) for f in refused] == [
            ("error", "forbidden", "m1"),
            ("error", "forbidden", "m2"),
        ]

        # Bad frames get errors and the connection stays usable.
        await alice.ws.send(b"not json", text=True)
        assert (await alice.next())["code"] == "bad_request"
        await alice.put({"op": "send", "conv": "chan", "text": "no ref"})
        assert (await alice.next())["code"] == "bad_request"
        stranger = await connect(url, ping_interval=None, open_timeout=5)
        try:
            await stranger.send(
                orjson.dumps({"op": "send", "ref": "s1", "conv": "chan", "text": "hi"}), text=True
            )
            before_hello = orjson.loads(await stranger.recv())
        finally:
            await stranger.close()
        assert before_hello["code"] == "unauthorized"

        for peer in peers:  # nothing more, to anyone
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(peer.ws.recv(), 0.05)
        return acks
    finally:
        for peer in peers:
            await peer.ws.close()


@pytest.mark.timeout(60)
async def test_relay_forwards_to_the_other_members_once() -> None:
    with running_relay(MEMBERS, durable=False) as relay:
        assert relay.db_path is None
        await exercise(relay)
    assert relay.returncode == 0


@pytest.mark.timeout(60)
async def test_durable_relay_stores_before_acking() -> None:
    with running_relay(MEMBERS, durable=True) as relay:
        assert relay.db_path is not None
        db_path = relay.db_path
        acks = await exercise(relay)
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
            rows = db.execute(
                "SELECT id, conv, seq, sender, ref, text FROM messages ORDER BY conv, seq"
            ).fetchall()
        finally:
            db.close()
        assert mode == "wal"
        stored = {
            (conv, seq): (mid, sender, ref, text) for mid, conv, seq, sender, ref, text in rows
        }
        for ack in acks:
            assert stored[(ack["conv"], ack["seq"])] == (
                ack["id"],
                "alice",
                ack["ref"],
                f"text of {ack['ref']}",
            )
        assert sorted(stored) == [
            ("ab", 1),
            ("ab", 2),
            ("bc", 1),
            ("chan", 1),
            ("chan", 2),
            ("chan", 3),
            ("chan", 4),
        ]
    assert relay.returncode == 0


@pytest.mark.timeout(120)
def test_sqlite_workload_quick_run(tmp_path: Path) -> None:
    run_bench(tmp_path, "sqlite", "--quick", timeout_s=90)
    document = json.loads((tmp_path / "sqlite-latest.json").read_text(encoding="utf-8"))
    assert document["workload"] == "sqlite"
    assert document["errors"] == []
    assert document["checks"]["stored_ok"] is True
    rows = {row["metric"]: row for row in document["rows"]}
    for batch in (1, 10, 100, 1000):
        row = rows[f"insert batch {batch}"]
        assert row["unit"] == "msg/s"
        assert row["value"] > 0
    assert rows["insert best"]["value"] == max(
        rows[f"insert batch {batch}"]["value"] for batch in (1, 10, 100, 1000)
    )


def test_durable_relay_checkpoints_outside_its_commits_and_rewinds_the_wal(
    tmp_path: Path,
) -> None:
    path = tmp_path / "relay.db"
    wal = tmp_path / "relay.db-wal"
    db = open_database(path, autocheckpoint=False)
    try:
        assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        insert_rows(db, [_row(0)])
        start = _wal_resets(wal)
        for batch in range(40):  # far past SQLite's 1,000-page autocheckpoint
            insert_rows(db, [_row(1 + batch * 500 + n) for n in range(500)])
        assert (wal.stat().st_size - 32) // (4096 + 24) > 1000
        assert _wal_resets(wal) == start  # nothing was copied back inside a commit

        # A background checkpoint copies what was committed when it began; what the
        # writer commits meanwhile (here: past a reader's snapshot) stays behind.
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM messages").fetchone()
        insert_rows(db, [_row(20_001)])
        passive_checkpoint(path)
        reader.close()
        insert_rows(db, [_row(20_002)])
        assert _wal_resets(wal) == start  # alone, it never lets the WAL start over
        passive_checkpoint_on(db)  # the writer copies the tail between two batches
        insert_rows(db, [_row(20_003)])  # and its next transaction rewinds the WAL
        assert _wal_resets(wal) == start + 1
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 20_004
    finally:
        db.close()


def _row(n: int) -> tuple[str, str, int, str, str, str, int]:
    return (f"m{n:06d}", "conv", n + 1, "alice", f"r{n}", "x" * 100, n)


def _wal_resets(wal: Path) -> int:
    """The WAL header's checkpoint sequence number: one more each time the WAL starts over."""
    with wal.open("rb") as file:
        header = file.read(32)
    return int.from_bytes(header[12:16], "big")
