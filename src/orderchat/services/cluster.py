"""What a node of a cluster reads from the shared database to deliver in order."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

from orderchat.core.ids import ConversationId, UserId
from orderchat.services.ports import Committed
from orderchat.storage import conversations as conv_store
from orderchat.storage.engine import Database


def node_name() -> str:
    """This process's default name among the nodes: host and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


class DatabaseStream:
    """The `StreamSource` of a shared (PostgreSQL) database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def committed_after(self, after: int) -> Committed:
        horizon, events = await self._db.committed_after(after)
        return Committed(horizon, [(pos, ConversationId(conv)) for pos, conv in events])

    async def members_of(self, convs: Sequence[ConversationId]) -> set[UserId]:
        async with self._db.read() as conn:
            return await conv_store.users_ever_in(conn, convs)

    async def horizon(self) -> int:
        return (await self._db.committed_after(1 << 62))[0]
