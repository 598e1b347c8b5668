"""Calls as rows: a call's scalars in columns, its parties as one JSON text.

Every change is made by the writer under the conversation's row lock
(services/calls.py), so a call is read and written whole; the timers' sweeper
finds the calls due by `next_check_ms`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.calls import Call, CallMedia, CallPhase, Outcome, Party, PartyState
from orderchat.core.ids import UserId
from orderchat.storage.schema import calls, conversations

_LIVE = (CallPhase.RINGING.value, CallPhase.ACTIVE.value)


def _parties_json(parties: Sequence[Party]) -> str:
    return orjson.dumps(
        [
            {
                "user": p.user,
                "state": p.state.value,
                "conn": p.conn,
                "audio": p.audio,
                "video": p.video,
                "screen": p.screen,
                "joined_ms": p.joined_ms,
                "away_until_ms": p.away_until_ms,
                "ever_joined": p.ever_joined,
                "seen_ms": p.seen_ms,
            }
            for p in parties
        ]
    ).decode()


def _party(item: dict[str, Any]) -> Party:
    return Party(
        user=UserId(item["user"]),
        state=PartyState(item["state"]),
        conn=item.get("conn"),
        audio=bool(item.get("audio", True)),
        video=bool(item.get("video", False)),
        screen=bool(item.get("screen", False)),
        joined_ms=item.get("joined_ms"),
        away_until_ms=item.get("away_until_ms"),
        ever_joined=bool(item.get("ever_joined", False)),
        seen_ms=item.get("seen_ms"),
    )


def _values(call: Call, stale_ms: int) -> dict[str, Any]:
    return {
        "phase": call.phase.value,
        "outcome": None if call.outcome is None else call.outcome.value,
        "ring_until_ms": call.ring_until_ms,
        "answered_at_ms": call.answered_ms,
        "ended_at_ms": call.ended_ms,
        "next_check_ms": call.next_deadline_ms(stale_ms),
        "parties": _parties_json(call.parties),
    }


def _call_of(row: Any) -> Call:
    return Call(
        id=row.id,
        conv=row.conv_id,
        caller=UserId(row.caller),
        media=CallMedia(row.media),
        internal=bool(row.internal),
        phase=CallPhase(row.phase),
        started_ms=int(row.started_at_ms),
        ring_until_ms=int(row.ring_until_ms),
        parties=tuple(_party(p) for p in orjson.loads(row.parties)),
        answered_ms=row.answered_at_ms,
        ended_ms=row.ended_at_ms,
        outcome=None if row.outcome is None else Outcome(row.outcome),
    )


async def insert_call_txn(conn: AsyncConnection, call: Call, stale_ms: int) -> None:
    await conn.execute(
        insert(calls).values(
            id=call.id,
            conv_id=call.conv,
            caller=call.caller,
            media=call.media.value,
            internal=call.internal,
            started_at_ms=call.started_ms,
            **_values(call, stale_ms),
        )
    )


async def save_call_txn(conn: AsyncConnection, call: Call, stale_ms: int) -> None:
    values = _values(call, stale_ms)
    await conn.execute(update(calls).where(calls.c.id == call.id).values(**values))


async def load_call(conn: AsyncConnection, call_id: str) -> Call | None:
    row = (await conn.execute(select(calls).where(calls.c.id == call_id))).first()
    return None if row is None else _call_of(row)


async def live_calls(conn: AsyncConnection) -> list[Call]:
    """Every call not yet over: a shop has a handful at a time."""
    rows = await conn.execute(select(calls).where(calls.c.phase.in_(_LIVE)))
    return [_call_of(row) for row in rows]


async def due_calls(conn: AsyncConnection, now_ms: int) -> list[str]:
    """The live calls whose timers may have run out."""
    rows = await conn.execute(
        select(calls.c.id).where(calls.c.phase.in_(_LIVE), calls.c.next_check_ms <= now_ms)
    )
    return [row.id for row in rows]


async def conv_of_call(conn: AsyncConnection, call_id: str) -> str | None:
    found = await conn.execute(select(calls.c.conv_id).where(calls.c.id == call_id))
    return found.scalar()


async def conversation_title(conn: AsyncConnection, conv_id: str) -> str | None:
    found = await conn.execute(select(conversations.c.title).where(conversations.c.id == conv_id))
    return found.scalar()
