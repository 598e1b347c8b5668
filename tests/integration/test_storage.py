"""Storage against a real SQLite file (migrations and the hash chain on PostgreSQL too):
migrations, pragmas, and the hash chain."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.dialects import sqlite

from orderchat.cli import main as cli_main
from orderchat.core.chain import GENESIS, chain_hash
from orderchat.core.ids import ConversationId, MessageId, UserId
from orderchat.core.model import Message, MessageKind
from orderchat.core.notify import Channel
from orderchat.storage import notify as notify_store
from orderchat.storage import notify_reads
from orderchat.storage import search as search_store
from orderchat.storage.engine import Database, loop_connection
from orderchat.storage.messages import _sqlite_prior_acks, history
from orderchat.storage.notify import more_mail_claim
from orderchat.storage.schema import declared, metadata
from tests.stores import new_database
from tests.support import Peer, ServerProcess


async def test_migrations_build_exactly_the_declared_schema(tmp_path: Path, store: str) -> None:
    if store == "postgres":
        db = Database(new_database(template=None))  # empty: every migration runs
    else:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    await db.migrate()
    await db.migrate()  # a second start migrates nothing and fails nothing
    async with db.read() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"include_name": declared}), metadata
            )
        )
        search_indexes = await conn.run_sync(
            lambda sync: {i["name"] for i in inspect(sync).get_indexes("search_docs")}
        )
        if store == "sqlite":  # keyed by position itself, not by a second B-tree (0020)
            keys = await conn.exec_driver_sql(
                "SELECT name FROM pragma_index_list('search_docs') WHERE origin = 'pk'"
            )
            assert keys.all() == []
    await db.close()
    assert diff == []
    # What `declared` leaves out, each store has by design: PostgreSQL a B-tree of a
    # conversation's rows, SQLite instead FTS5's column of ids (migration 0019).
    assert ("ix_search_docs_conv_id_doc_id" in search_indexes) is (store == "postgres")


async def _schema_diff(db: Database) -> list[object]:
    async with db.read() as conn:
        return await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"include_name": declared}), metadata
            )
        )


def test_stores_migrated_side_by_side_in_one_process_both_get_the_whole_schema(
    tmp_path: Path,
) -> None:
    """Two threads, each with its own loop, and two stores on one loop, all at once.

    Alembic keeps the running migration in module globals: without one
    migration at a time per process, one thread's ending tore down the
    other's and its start failed with KeyError.
    """

    async def several_on_one_loop(tag: str) -> list[list[object]]:
        dbs = [Database(f"sqlite+aiosqlite:///{tmp_path / f'{tag}{n}.db'}") for n in range(3)]
        await asyncio.gather(*(db.migrate() for db in dbs))
        diffs = [await _schema_diff(db) for db in dbs]
        for db in dbs:
            await db.close()
        return diffs

    with ThreadPoolExecutor(max_workers=3) as pool:
        runs = [pool.submit(asyncio.run, several_on_one_loop(f"t{n}-")) for n in range(3)]
        diffs = [diff for run in runs for diff in run.result(timeout=120)]
    assert diffs == [[]] * 9


async def _migrated(path: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.migrate()
    return db


async def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    db = await _migrated(tmp_path / "p.db")
    async with db.read() as conn:
        journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
        synchronous = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
    await db.close()
    assert journal == "wal"
    assert synchronous == 2  # FULL


async def test_stored_hash_chain_verifies(server: ServerProcess) -> None:
    """The chain the server wrote can be re-derived from the stored rows alone."""
    sender = server.user("sales")
    conv = server.conversation(sender, "channel", [], title="chain")
    peer = await Peer.open(server, sender.token)
    for i in range(5):
        await peer.send_text(conv["id"], f"line {i}", f"chain-{i}")
    await peer.close()

    db = Database(server.db_url)
    async with db.read() as conn:
        found = await history(conn, conv["id"], after=0, before=None, limit=100)
    await db.close()
    stored = dict(server.db_rows("SELECT seq, hash FROM messages WHERE conv_id = ?", conv["id"]))
    previous = GENESIS
    for message in found:
        assert stored[message.seq] == chain_hash(previous, message)
        previous = stored[message.seq]
    head = server.db_rows("SELECT last_hash FROM conversations WHERE id = ?", conv["id"])
    assert head == [(previous,)]


async def test_the_resend_check_searches_the_index_not_the_table(tmp_path: Path) -> None:
    """Every group commit looks up its refs; a table scan there grows with history."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'q.db'}")
    await db.migrate()
    async with db.read() as conn:
        plan = (
            await conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + _sqlite_prior_acks(3), ("u", "r1", "u", "r2", "v", "r3")
            )
        ).all()
    await db.close()
    steps = [row[-1] for row in plan]
    assert any(s.startswith("SEARCH m USING INDEX") for s in steps), steps
    assert not any(s.startswith("SCAN m") for s in steps), steps


async def test_gathering_a_persons_mail_searches_their_deliveries_not_everyones(
    tmp_path: Path,
) -> None:
    """The worker claims its people's other due mails; through the (state, next_try_ms)
    index that read every pending delivery due, everyone's, as a backlog grew."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'q.db'}")
    await db.migrate()
    apart = ["order_status", "confirmation"]
    statement = more_mail_claim(["u_1", "u_2"], 5_000, 1_000, 120_000, apart)
    sql = str(statement.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    async with db.read() as conn:
        plan = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)).all()
    await db.close()
    steps = [row[-1] for row in plan]
    index = "ix_notifications_recipient_state (recipient=? AND state=?)"
    assert steps == [f"SEARCH notifications USING INDEX {index}"], steps


async def test_commits_reach_the_database_file_through_background_checkpoints(
    tmp_path: Path,
) -> None:
    """The writer never checkpoints inside a commit; a background one copies the WAL back."""
    path = tmp_path / "c.db"
    db = await _migrated(path)
    async with db.write("probe") as conn:
        await conn.exec_driver_sql("INSERT INTO counters (name, value) VALUES ('probe', 7)")
        assert (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar() == 0
    running = db._checkpointing
    assert running is not None
    await running
    # `immutable` reads the database file alone, ignoring the WAL.
    file_only = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        row = file_only.execute("SELECT value FROM counters WHERE name = 'probe'").fetchone()
    finally:
        file_only.close()
    await db.close()
    assert row == (7,)


async def test_a_write_waits_off_the_loop_while_another_process_holds_the_lock(
    tmp_path: Path,
) -> None:
    """BEGIN is tried on the loop without waiting; a held lock is waited for in a thread."""
    path = tmp_path / "w.db"
    db = await _migrated(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def write() -> None:
        async with db.write("probe") as conn:
            await conn.exec_driver_sql("INSERT INTO counters (name, value) VALUES ('probe', 1)")

    writing = asyncio.create_task(write())
    ticks = 0
    for _ in range(10):  # the loop keeps running while the write waits
        await asyncio.sleep(0.01)
        ticks += 1
    still_waiting = not writing.done()
    other.execute("COMMIT")
    await asyncio.wait_for(writing, 30)
    async with db.write("again") as conn:  # and the next write begins on the loop again
        await conn.exec_driver_sql("UPDATE counters SET value = 2 WHERE name = 'probe'")
        busy_timeout = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
    value = other.execute("SELECT value FROM counters WHERE name = 'probe'").fetchone()
    other.close()
    await db.close()
    assert (ticks, still_waiting) == (10, True)
    assert value == (2,)
    assert busy_timeout == 0


def test_a_database_neither_sqlite_nor_postgresql_is_refused_before_connecting() -> None:
    with pytest.raises(ValueError, match="not a SQLite or PostgreSQL"):
        Database("mysql+aiomysql://localhost/orderchat")


@pytest.mark.parametrize(
    "command",
    [["serve"], ["user", "add", "pat", "--password", "sturdy-passphrase", "--role", "purchasing"]],
)
def test_the_command_line_refuses_a_database_neither_sqlite_nor_postgresql(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli_main([*command, "--database", "mysql://localhost/orderchat"])
    assert exit_.value.code == 2
    assert "neither a SQLite URL" in capsys.readouterr().err


def test_redis_is_refused_beside_sqlite_which_serves_one_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli_main(["serve", "--data-dir", str(tmp_path), "--redis", "redis://127.0.0.1:1/0"])
    assert status == 2
    assert "PostgreSQL" in capsys.readouterr().err
    assert not (tmp_path / "orderchat.db").exists()


def test_the_command_line_uses_the_sqlite_database_it_is_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "elsewhere" / "shop.db"
    args = [
        "--password",
        "sturdy-passphrase",
        "--role",
        "purchasing",
        "--data-dir",
        str(tmp_path / "unused"),
    ]
    assert cli_main(["user", "add", "pat", *args, "--database", f"sqlite+aiosqlite:///{path}"]) == 0
    assert "created user pat" in capsys.readouterr().out
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT username FROM users").fetchall() == [("pat",)]
    assert not (tmp_path / "unused").exists()


def _waiting_mail(dedupe: str, seq: int, pos: int) -> dict[str, object]:
    return {
        "id": f"nt_{dedupe}",
        "dedupe": dedupe,
        "channel": "email",
        "occasion": "direct",
        "recipient": "u_1",
        "endpoint_id": None,
        "conv_id": "c_1",
        "seq": seq,
        "message_id": f"m_{seq}",
        "event_pos": pos,
        "step": 0,
        "payload": None,
        "state": "pending",
        "first_due_ms": 1_000,
        "next_try_ms": 1_000,
        "attempts": 0,
        "claimed_until_ms": 0,
        "outcome": None,
        "created_at_ms": 1_000,
        "done_at_ms": None,
        "merge_key": "u_1:c_1:email:direct",
        "merged": 1,
        "first_seq": seq,
    }


@pytest.mark.parametrize("claim", ["due", "gathered"])
async def test_a_claimed_delivery_stops_merging_and_the_next_message_starts_another(
    tmp_path: Path, store: str, claim: str
) -> None:
    """Whichever way the worker claims a waiting mail, a message merged after that would
    be marked sent with it and never told: it must start a delivery of its own."""
    db = Database(
        new_database() if store == "postgres" else f"sqlite+aiosqlite:///{tmp_path / 'n.db'}"
    )
    await db.migrate()
    key = "u_1:c_1:email:direct"
    try:
        async with db.write("t") as conn:
            await notify_store.insert_deliveries_txn(conn, [_waiting_mail("a", 1, 10)])
            merge = notify_store.Merge(key, 11, 2, "m_2", 11, 1)
            await notify_store.insert_deliveries_txn(conn, [_waiting_mail("b", 2, 11)], [merge])
        async with db.write("t") as conn:
            if claim == "due":
                (claimed,) = await notify_store.claim_due_txn(conn, 2_000, 120_000, 10)
            else:
                (claimed,) = await notify_store.claim_more_mail_txn(
                    conn, ["u_1"], 2_000, 2_000, 120_000, ["order_status"]
                )
        assert (claimed.seq, claimed.merged, claimed.first_seq) == (2, 2, 1)
        async with db.write("t") as conn:
            merge = notify_store.Merge(key, 12, 3, "m_3", 12, 1)
            await notify_store.insert_deliveries_txn(conn, [_waiting_mail("c", 3, 12)], [merge])
        async with db.read() as conn:
            rows = (
                await conn.exec_driver_sql(
                    "SELECT seq, merged, merge_key FROM notifications ORDER BY seq"
                )
            ).all()
    finally:
        await db.close()
    assert [tuple(r) for r in rows] == [(2, 2, None), (3, 1, key)]


async def test_ranges_of_several_conversations_are_read_in_one_go_each_to_its_limit(
    server: ServerProcess,
) -> None:
    """What merged mails list: each range's latest messages, oldest first, up to the limit."""
    sender = server.user("sales")
    convs = [server.conversation(sender, "channel", [], title=f"r{n}")["id"] for n in range(2)]
    peer = await Peer.open(server, sender.token)
    for conv, count in zip(convs, (5, 3), strict=True):
        for i in range(count):
            await peer.send_text(conv, f"{conv} {i}", f"{conv}-{i}")
    await peer.close()
    first, second = convs
    db = Database(server.db_url)
    async with db.read() as conn:
        found = await notify_reads.messages_in_ranges(
            conn, [(first, 1, 5), (second, 2, 3), (first, 2, 4), (second, 9, 12)], 2
        )
    await db.close()
    assert [[(m.conv, m.seq) for m in each] for each in found] == [
        [(first, 4), (first, 5)],
        [(second, 2), (second, 3)],
        [(first, 3), (first, 4)],
        [],
    ]
    assert found[0][1].text == f"{first} 4"


async def test_the_planner_loads_only_who_can_be_told_and_reads_only_the_messages_it_needs(
    server: ServerProcess,
) -> None:
    """Reachable: a push subscription, or an address of one's own. Not reachable: an
    empty address, someone who left, someone disabled. A conversation where nobody can
    be told is left out, and the planner then never reads its messages whole."""
    sender = server.user("sales")
    pushed, mailed, blank, gone, disabled, nobody = (server.user("warehouse") for _ in range(6))
    everyone = [pushed, mailed, blank, gone, disabled, nobody]
    conv = server.conversation(sender, "channel", everyone, title="reachable")["id"]
    quiet = server.conversation(sender, "channel", [nobody], title="nobody to tell")["id"]
    for n, who in enumerate((pushed, gone)):
        ((session,),) = server.db_rows("SELECT id FROM sessions WHERE user_id = ?", who.id)
        server.db_execute(
            "INSERT INTO push_subscriptions (id, user_id, session_id, endpoint, p256dh, auth,"
            " created_at_ms) VALUES (?, ?, ?, ?, 'k', 'a', 1)",
            f"ps_{n}",
            who.id,
            session,
            f"https://127.0.0.1/push/{n}",
        )
    # Disabling signs every device out, which ends its subscriptions: an address stays.
    for who in (mailed, blank, disabled):
        with server.http(who.token) as client:
            resp = client.put("/api/me/notifications", json={"email": f"{who.username}@shop.test"})
            assert resp.status_code == 200, resp.text
    server.db_execute("UPDATE notify_preferences SET email = '' WHERE user_id = ?", blank.id)
    assert server.admin is not None
    with server.http(server.admin.token) as admin:
        resp = admin.delete(f"/api/conversations/{conv}/members/{gone.id}")
        assert resp.status_code in (200, 204), resp.text
        resp = admin.post(f"/api/admin/staff/{disabled.username}/disable")
        assert resp.status_code == 200, resp.text
    peer = await Peer.open(server, sender.token)
    ids = {}
    for where, text in ((conv, "one"), (quiet, "two"), (conv, "three"), (conv, "gone")):
        sent = await peer.send_text(where, text, f"{where}-{text}")
        ids[sent["id"]] = text
    await peer.send({"op": "recall", "ref": "r-gone", "conv": conv, "seq": sent["seq"]})
    assert (await peer.recv_op("ack"))["ref"] == "r-gone"
    await peer.close()

    db = Database(server.db_url)
    async with db.read() as conn:
        last, said = await notify_reads.new_events(conn, 0, None, 1000)
        ((head,),) = (await conn.exec_driver_sql("SELECT max(pos) FROM events")).all()
        both = frozenset(Channel)
        can_tell = await notify_reads.reachable_members(conn, {conv, quiet}, both)
        push = frozenset({Channel.PUSH})
        push_only = await notify_reads.reachable_members(conn, {conv, quiet}, push)
        mail = frozenset({Channel.EMAIL})
        mail_only = await notify_reads.reachable_members(conn, {conv, quiet}, mail)
        wanted = [e for e in said if e.message in ids and e.conv in can_tell]
        read = await notify_reads.stream_messages(conn, wanted)
        first_two, _ = await notify_reads.new_events(conn, 0, None, 2)
        second = (await conn.exec_driver_sql("SELECT pos FROM events ORDER BY pos LIMIT 2")).all()
    await db.close()
    assert last == head
    assert [ids[e.message] for e in said if e.message in ids] == ["one", "two", "three", "gone"]
    assert all(e.conv == quiet for e in said if ids.get(e.message) == "two")
    assert {c: {(r.member.id, r.channels) for r in rs} for c, rs in can_tell.items()} == {
        conv: {(pushed.id, frozenset({Channel.PUSH})), (mailed.id, frozenset({Channel.EMAIL}))}
    }
    assert {c: [r.member.id for r in rs] for c, rs in push_only.items()} == {conv: [pushed.id]}
    assert {c: [r.member.id for r in rs] for c, rs in mail_only.items()} == {conv: [mailed.id]}
    # The recalled one left out; each keeps its event's position.
    assert [(m.text, m.pos) for m in read] == [(ids[e.message], e.pos) for e in wanted[:2]]
    assert first_two == second[-1][0]  # a full batch ends at its last row, of any kind


def _message(pos: int) -> Message:
    return Message(
        id=MessageId(f"m_{pos:021d}"),
        conv=ConversationId("c_feed"),
        seq=pos,
        ref=None,
        sender=UserId("u_feed"),
        kind=MessageKind.TEXT,
        text="",
        attachments=(),
        mentions=(),
        reply_to=None,
        ts=pos,
        recalled=False,
    )


def _doc(pos: int, text: str) -> dict[str, object]:
    return search_store.doc_row(_message(pos), pos, postgres=False, edited=text)


class _TakenBack(Exception):
    pass


async def test_the_writer_feeds_fts5_at_commit_and_an_edit_in_the_same_transaction_first(
    tmp_path: Path,
) -> None:
    """FTS5 is fed from the rows at commit, on the commit's thread: an edit of a
    message of the same transaction, and rows a savepoint took back, must still
    leave FTS5 holding exactly what `search_docs` holds."""
    db = await _migrated(tmp_path / "f.db")
    async with db.write("feed") as conn:
        await search_store.insert_docs_txn(conn, [_doc(1, "红色背包"), _doc(2, "防水帐篷")])
        await search_store.reindex_txn(conn, _message(1), "蓝色背包")
        try:
            async with conn.begin_nested():
                await search_store.insert_docs_txn(conn, [_doc(3, "退回的皮料")])
                raise _TakenBack
        except _TakenBack:
            pass
        await search_store.insert_docs_txn(conn, [_doc(4, "新的皮料")])
    await db.close()
    con = sqlite3.connect(tmp_path / "f.db")
    try:
        con.execute("INSERT INTO search_fts(search_fts, rank) VALUES ('integrity-check', 1)")
        found = {
            word: [r[0] for r in con.execute(_FTS_FIND, (f'"{word}"',))]
            for word in ("蓝色", "红色", "帐篷", "皮料")
        }
    finally:
        con.close()
    assert found == {"蓝色": [1], "红色": [], "帐篷": [2], "皮料": [4]}


_FTS_FIND = "SELECT rowid FROM search_fts WHERE search_fts MATCH ? ORDER BY rowid"


# Slow on the commit's thread, and it says when it has begun (`began()`, below).
_SLOW = (
    "WITH RECURSIVE n(i) AS (SELECT began() UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) "
    "SELECT count(*) FROM n"
)


async def test_a_write_cancelled_while_its_commit_runs_lets_close_wait_for_the_thread(
    tmp_path: Path,
) -> None:
    """A cancelled caller must not let go of the writer's connection while a thread
    still uses it: `close()` would close it under that thread (a segfault)."""
    db = await _migrated(tmp_path / "c.db")
    in_commit = threading.Event()

    def began() -> int:
        in_commit.set()
        return 1

    async def write() -> None:
        async with db.write("slow") as conn:
            await conn.exec_driver_sql("CREATE TABLE kept (x INTEGER)")
            writer = loop_connection(conn)
            assert writer is not None
            writer.driver.create_function("began", 0, began)
            writer.at_commit(_SLOW, ())

    task = asyncio.create_task(write())
    assert await asyncio.to_thread(in_commit.wait, 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await db.close()  # only after the thread committed: the table is there
    con = sqlite3.connect(tmp_path / "c.db")
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert con.execute("SELECT count(*) FROM kept").fetchone() == (0,)
    finally:
        con.close()
