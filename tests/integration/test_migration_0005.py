"""Migration 0005 on a real SQLite file built at revision 0004 with the duplicate
role channels the old demo made: one role channel per role afterwards, and no
message or hash chain touched."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

from orderchat.storage import engine as storage_engine

MIGRATIONS = Path(storage_engine.__file__).parent / "migrations"


def upgrade(path: Path, revision: str) -> None:
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def rows(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def seed_at_0004(path: Path) -> None:
    con = sqlite3.connect(path)
    with con:
        for uid, roles, kind in [
            ("u_boss", "admin", "staff"),
            ("u_wes", "warehouse", "staff"),
            ("u_amy", "customer_service", "staff"),
            ("u_pat", "purchasing", "staff"),
            ("u_cust", "", "customer"),
        ]:
            con.execute(
                "INSERT INTO users VALUES (?, ?, ?, NULL, ?, ?, 1, 0)",
                (uid, uid[2:], uid[2:], roles, kind),
            )
        convs = [
            # id, kind, title, created_by, created_at_ms, last_seq, role_channel
            ("c_plain_wh", "channel", "仓库 #warehouse", "u_boss", 100, 2, None),
            ("c_role_wh", "channel", "仓库 #warehouse", None, 500, 1, "warehouse"),
            ("c_plain_pur", "channel", "采购 #purchasing", "u_boss", 110, 1, None),
            ("c_other", "channel", "全员 All staff", "u_boss", 90, 0, None),
            ("c_order", "order", "OD-1 · Lin", "u_amy", 200, 0, None),
        ]
        for cid, kind, title, by, at, last_seq, role in convs:
            con.execute(
                "INSERT INTO conversations (id, kind, title, created_by, created_at_ms, last_seq,"
                " last_activity_ms, direct_key, last_hash, role_channel)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                (cid, kind, title, by, at, last_seq, at, f"hash-{cid}-{last_seq}", role),
            )
        members = [
            ("c_plain_wh", "u_boss", 1),
            ("c_plain_wh", "u_wes", 1),
            ("c_plain_wh", "u_amy", 1),
            ("c_role_wh", "u_wes", 5),
            ("c_role_wh", "u_pat", 5),
            ("c_plain_pur", "u_pat", 2),
            ("c_order", "u_cust", 3),
            ("c_order", "u_amy", 3),
            ("c_order", "u_wes", 3),
            ("c_order", "u_pat", 7),  # added later, in person
        ]
        for cid, uid, pos in members:
            con.execute("INSERT INTO members VALUES (?, ?, ?, NULL, 0, 1)", (cid, uid, pos))
        messages = [
            ("m1", "c_plain_wh", 1, "u_wes", "h1"),
            ("m2", "c_plain_wh", 2, "u_amy", "h2"),
            ("m3", "c_role_wh", 1, "u_boss", "h3"),
            ("m4", "c_plain_pur", 1, "u_pat", "h4"),
        ]
        for mid, cid, seq, sender, hash_ in messages:
            con.execute(
                "INSERT INTO messages (id, conv_id, seq, sender_id, ref, kind, text, attachments,"
                " mentions, reply_to, meta, ts, recalled_at_ms, recalled_by, hash)"
                " VALUES (?, ?, ?, ?, NULL, 'text', 'hi', '[]', '[]',"
                " NULL, NULL, 1, NULL, NULL, ?)",
                (mid, cid, seq, sender, hash_),
            )
        con.execute("UPDATE counters SET value = 9 WHERE name = 'events'")
    con.close()


def test_duplicate_role_channels_merge_into_the_older_one_and_keep_their_history(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    upgrade(path, "0004")
    seed_at_0004(path)
    # The columns a 0004 store has: later revisions may add columns, never change these.
    columns = ", ".join(name for (_, name, *_) in rows(path, "PRAGMA table_info(messages)"))
    messages_before = rows(path, f"SELECT {columns} FROM messages ORDER BY id")
    heads_before = rows(path, "SELECT id, last_seq, last_hash FROM conversations ORDER BY id")

    upgrade(path, "head")

    assert rows(path, f"SELECT {columns} FROM messages ORDER BY id") == messages_before
    heads = rows(path, "SELECT id, last_seq, last_hash FROM conversations ORDER BY id")
    assert heads == heads_before
    channels = {
        r[0]: r[1:]
        for r in rows(path, "SELECT id, role_channel, merged_into, title FROM conversations")
    }
    # The older, plain channel, with the shop's talk in it, is now the role channel.
    assert channels["c_plain_wh"] == ("warehouse", None, "仓库 #warehouse")
    assert channels["c_role_wh"] == (None, "c_plain_wh", "仓库 #warehouse (archived)")
    # A lone plain channel titled like its role channel becomes it.
    assert channels["c_plain_pur"] == ("purchasing", None, "采购 #purchasing")
    assert channels["c_other"] == (None, None, "全员 All staff")
    per_role = rows(
        path,
        "SELECT role_channel, COUNT(*) FROM conversations WHERE role_channel IS NOT NULL"
        " GROUP BY role_channel",
    )
    assert sorted(per_role) == [("purchasing", 1), ("warehouse", 1)]
    kept = {r[0] for r in rows(path, "SELECT user_id FROM members WHERE conv_id = 'c_plain_wh'")}
    assert kept == {"u_boss", "u_wes", "u_amy", "u_pat"}
    # The archived channel keeps its members, so its history stays readable.
    archived = rows(path, "SELECT user_id, left_pos FROM members WHERE conv_id = 'c_role_wh'")
    assert sorted(archived) == [("u_pat", None), ("u_wes", None)]
    # Order staff who came with the thread are there for their role; later additions are not.
    by_role = dict(rows(path, "SELECT user_id, by_role FROM members WHERE conv_id = 'c_order'"))
    assert by_role == {"u_cust": 0, "u_amy": 0, "u_wes": 1, "u_pat": 0}


def test_a_store_without_duplicates_migrates_untouched(tmp_path: Path) -> None:
    path = tmp_path / "clean.db"
    upgrade(path, "0004")
    upgrade(path, "head")
    assert rows(path, "SELECT COUNT(*) FROM conversations") == [(0,)]
    assert rows(path, "SELECT COUNT(*) FROM staff_links") == [(0,)]
