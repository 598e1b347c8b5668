"""The message index: written in the message's own transaction, read per viewer.

SQLite finds terms with FTS5 (an external-content table over `search_docs`,
fed here on insert and kept in step by triggers on edit and delete), and a
conversation's, an order's or a file's matches there too, by a second,
unranked column of facets; PostgreSQL with a GIN index over a tsvector, and the
conversation's with a B-tree. Both are fed the same terms by `core.search`,
and both apply the same visibility rules here, in SQL, so a page
never holds a result its reader may not see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.model import Message
from orderchat.core.search import (
    PageAt,
    SearchFilters,
    SearchQuery,
    SortBy,
    Viewer,
    fts5_match,
    has_file,
    index_terms,
    search_parts,
    tsquery,
    tsvector,
)
from orderchat.storage.engine import loop_connection
from orderchat.storage.messages import _message, insert_rows
from orderchat.storage.schema import search_docs


def _terms(message: Message, edited: str | None, postgres: bool) -> str:
    terms = index_terms(search_parts(message, edited))
    return tsvector(terms) if postgres else " ".join(terms)


def doc_row(
    message: Message, pos: int, *, postgres: bool, edited: str | None = None
) -> dict[str, Any]:
    """The index row of a message at its stream position (`edited`: its latest text)."""
    order = (message.meta or {}).get("order")
    return {
        "doc_id": pos,
        "message_id": message.id,
        "conv_id": message.conv,
        "seq": message.seq,
        "sender_id": message.sender,
        "kind": message.kind.value,
        "ts": message.ts,
        "has_file": has_file(message),
        "internal": message.internal,
        "recalled": message.recalled,
        "order_id": order if isinstance(order, str) else None,
        "terms": _terms(message, edited, postgres),
    }


# FTS5 reads the terms of the rows just inserted: one statement, whatever their number.
# `facets` is their conversation's and order's ids and whether they carry files, a
# column SQLite computes on read (migration 0019).
_FTS_FEED = (
    "INSERT INTO search_fts(rowid, terms, facets) "
    "SELECT doc_id, terms, facets FROM search_docs WHERE doc_id BETWEEN ? AND ?"
)


async def insert_docs_txn(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """The rows, and on SQLite their terms into FTS5.

    FTS5 is fed by one statement over the rows' positions rather than a row
    trigger (a statement per message: migration 0018), and that statement runs
    on the commit's thread, off the loop (`LoopConnection.at_commit`). Rows a
    savepoint took back are simply not there for it to read.
    """
    if not rows:
        return
    await insert_rows(conn, search_docs, rows)
    if conn.dialect.name != "sqlite":
        return
    positions = [row["doc_id"] for row in rows]
    span = (min(positions), max(positions))
    if (writer := loop_connection(conn)) is not None:
        writer.at_commit(_FTS_FEED, span)
    else:
        await conn.exec_driver_sql(_FTS_FEED, span)


async def reindex_txn(conn: AsyncConnection, message: Message, edited: str) -> None:
    """An edit changes what the message is found by: its latest text, not its first."""
    postgres = conn.dialect.name == "postgresql"
    if (writer := loop_connection(conn)) is not None:
        writer.run_pending()  # the edited message may be one this transaction inserted
    await conn.execute(
        update(search_docs)
        .where(search_docs.c.message_id == message.id)
        .values(terms=_terms(message, edited, postgres))
    )


async def mark_recalled_txn(conn: AsyncConnection, message_id: str) -> None:
    await conn.execute(
        update(search_docs).where(search_docs.c.message_id == message_id).values(recalled=True)
    )


@dataclass(frozen=True, slots=True)
class Found:
    doc_id: int
    message: Message
    conv_kind: str
    conv_title: str | None
    sender_name: str | None
    order_id: str | None
    order_number: str | None


_COLUMNS = (
    "d.doc_id AS d_doc, c.kind AS c_kind, c.title AS c_title, u.display_name AS u_name, "
    "o.id AS o_id, o.number AS o_number, m.*"
)
_JOINS = (
    "JOIN messages m ON m.id = d.message_id "
    "JOIN conversations c ON c.id = d.conv_id "
    "LEFT JOIN users u ON u.id = d.sender_id "
    "LEFT JOIN orders o ON o.id = COALESCE(d.order_id, "
    "(SELECT oc.id FROM orders oc WHERE oc.conv_id = d.conv_id))"
)


def _where(
    viewer: Viewer, filters: SearchFilters, page: PageAt
) -> tuple[list[str], dict[str, Any]]:
    where: list[str] = []
    params: dict[str, Any] = {}
    if not viewer.audit:
        where.append(
            "EXISTS (SELECT 1 FROM members mb WHERE mb.conv_id = d.conv_id "
            "AND mb.user_id = :me AND mb.left_pos IS NULL)"
        )
        where.append("d.recalled = false")
        params["me"] = viewer.user_id
    if not viewer.staff:
        where.append("d.internal = false")
    simple = (
        ("conv", "d.conv_id = :conv"),
        ("sender", "d.sender_id = :sender"),
        ("since_ms", "d.ts >= :since_ms"),
        ("until_ms", "d.ts < :until_ms"),
        ("has_file", "d.has_file = :has_file"),
    )
    for name, clause in simple:
        if (value := getattr(filters, name)) is not None:
            where.append(clause)
            params[name] = value
    if filters.order is not None:
        where.append("(d.order_id = :order OR d.conv_id = :order_conv)")
        params["order"], params["order_conv"] = filters.order, filters.order_conv or ""
    if filters.kinds:
        names = sorted(k.value for k in filters.kinds)
        where.append("d.kind IN (" + ", ".join(f":kind{i}" for i in range(len(names))) + ")")
        params.update({f"kind{i}": k for i, k in enumerate(names)})
    if page.before is not None:
        where.append("d.doc_id < :before")  # (FTS5 reads it as its rowid bound too)
        params["before"] = page.before
    return where, params


# On SQLite one writer gives positions in time order; a clock stepped back by NTP
# can put a message this many positions out of it, so a date range is widened by it.
CLOCK_SLACK = 1_000


def _rowid_bounds(filters: SearchFilters, page: PageAt) -> list[str]:
    """Bounds FTS5 applies as it walks its index (a date range as positions), so a
    narrow range does not read every match outside it."""
    bounds = []
    if page.before is not None:
        bounds.append("search_fts.rowid < :before")
    if filters.since_ms is not None:
        bounds.append(
            "search_fts.rowid >= COALESCE((SELECT s.doc_id FROM search_docs s "
            f"WHERE s.ts >= :since_ms ORDER BY s.ts LIMIT 1), 0) - {CLOCK_SLACK}"
        )
    if filters.until_ms is not None:
        bounds.append(
            "search_fts.rowid <= COALESCE((SELECT s.doc_id FROM search_docs s "
            f"WHERE s.ts < :until_ms ORDER BY s.ts DESC LIMIT 1), 0) + {CLOCK_SLACK}"
        )
    return bounds


# A message with files has this facet (migration 0019).
HAS_FILE = "has_file"


def _faceted(match: str, filters: SearchFilters) -> str:
    """The query within a conversation, an order, or messages with files: by their
    facets in FTS5, which then seeks straight to the matches that have them,
    however many the words have elsewhere. (The rows' own columns are still
    compared in SQL.) No word has a `_` (the tokenizer cuts there) and every
    facet has one, so the words typed never match a facet, nor a facet a word.
    """
    facets = []
    if filters.conv is not None:
        facets.append([filters.conv])
    if filters.order is not None:
        facets.append([filters.order, *([filters.order_conv] if filters.order_conv else [])])
    if filters.has_file:  # without files is most messages: nothing to gain
        facets.append([HAS_FILE])
    for either in facets:
        quoted = ['"' + value.replace('"', '""') + '"' for value in either]
        match += " AND (" + " OR ".join(quoted) + ")"
    return match


# Best-first ranks the newest this many visible matches: a common word matches a
# good part of a shop's history, and ranking all of it would cost seconds.
RELEVANCE_WINDOW = 2_000


async def search(
    conn: AsyncConnection,
    query: SearchQuery,
    viewer: Viewer,
    filters: SearchFilters,
    page: PageAt,
    limit: int,
) -> list[Found]:
    """A page of results. The inner query walks the index newest first and stops
    after enough visible matches, so a common word costs what a rare one does."""
    where, params = _where(viewer, filters, page)
    if conn.dialect.name == "postgresql":
        params["q"] = tsquery(query)
        rid, score = "d.doc_id", "ts_rank_cd(d.tsv, CAST(:q AS tsquery))"
        source = "search_docs d"
        where.insert(0, "d.tsv @@ CAST(:q AS tsquery)")
        best = "f.score DESC"
    else:
        params["q"] = _faceted(fts5_match(query), filters)
        rid, score = "search_fts.rowid", "bm25(search_fts, 1.0, 0.0)"  # facets: unranked
        source = "search_fts JOIN search_docs d ON d.doc_id = search_fts.rowid"
        where[:0] = ["search_fts MATCH :q", *_rowid_bounds(filters, page)]
        best = "f.score"
    by_time = page.sort is SortBy.TIME
    inner = (
        f"SELECT {rid} AS rid, {'0' if by_time else score} AS score FROM {source} "
        f"WHERE {' AND '.join(where)} ORDER BY {rid} DESC LIMIT :window"
    )
    params.update(
        window=limit if by_time else RELEVANCE_WINDOW,
        limit=limit,
        offset=0 if by_time else page.offset,
    )
    order = "f.rid DESC" if by_time else f"{best}, f.rid DESC"
    sql = (
        f"SELECT {_COLUMNS} FROM ({inner}) f JOIN search_docs d ON d.doc_id = f.rid {_JOINS} "
        f"ORDER BY {order} LIMIT :limit OFFSET :offset"
    )
    rows = await conn.execute(text(sql), params)
    return [
        Found(
            doc_id=row.d_doc,
            message=_message(row),
            conv_kind=row.c_kind,
            conv_title=row.c_title,
            sender_name=row.u_name,
            order_id=row.o_id,
            order_number=row.o_number,
        )
        for row in rows
    ]
