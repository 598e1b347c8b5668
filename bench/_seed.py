"""Many signed-in users at once, written straight into a stopped server's database.

Creating users and signing them in over HTTP costs two password hashes each
(argon2, tens of milliseconds by design): minutes for the 2,000 users of the
fan-out and reconnect workloads. The benchmark measures messaging, not
password hashing, so it writes users and sessions with the server's own
storage code before the server starts, all sharing one password hash, and
keeps each session's token to connect with. Everything after that goes
through the server's HTTP and WebSocket API.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from orderchat.core.model import Role, User, UserKind
from orderchat.services.accounts import token_hash
from orderchat.services.ports import SystemClock, system_ids
from orderchat.settings import Settings
from orderchat.storage import accounts as account_store
from orderchat.storage.engine import Database

# A real argon2 hash of a password nobody uses: the accounts exist, logins are not needed.
_UNUSABLE_HASH = "$argon2id$v=19$m=65536,t=3,p=4$YmVuY2hiZW5jaGJlbmNo$0000000000000000000000"


@dataclass(frozen=True, slots=True)
class SeededUser:
    id: str
    username: str
    token: str


def seed_users(
    data_dir: Path,
    count: int,
    prefix: str = "load",
    role: Role = Role.SALES,
    database: str | None = None,
) -> list[SeededUser]:
    """Create `count` staff users with one session each in the data dir's database.

    `database` is the URL the server will be given with `--database` (a
    PostgreSQL set-up); without it, the data dir's default SQLite file.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=data_dir, database_url=database)
    return asyncio.run(_seed(settings.resolved_database_url, count, prefix, role))


async def _seed(url: str, count: int, prefix: str, role: Role) -> list[SeededUser]:
    db = Database(url)
    await db.migrate()
    now = int(time.time() * 1000)
    seeded: list[SeededUser] = []
    ids = system_ids(SystemClock())
    try:
        async with db.write("bench_seed") as conn:
            for n in range(count):
                username = f"{prefix}{n:05d}"
                user = User(ids.user(), username, username, (role,), UserKind.STAFF)
                await account_store.insert_user_txn(conn, user, _UNUSABLE_HASH, now)
                token = secrets.token_urlsafe(32)
                await account_store.insert_session_txn(
                    conn,
                    ids.session(),
                    user.id,
                    token_hash(token),
                    "bench",
                    now,
                    now + 7 * 24 * 3600 * 1000,
                )
                seeded.append(SeededUser(user.id, username, token))
    finally:
        await db.close()
    return seeded
