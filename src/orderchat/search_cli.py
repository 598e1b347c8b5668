"""`orderchat search`: the history searched from a terminal, as a named staff member sees it.

It reads the database directly, like `orderchat digest`, so it works beside a
running server and while it is stopped. Results are what that person would
find in the web app; `--audit` (an administrator's) finds everything,
recalled messages too.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson

from orderchat.core.errors import DomainError
from orderchat.core.model import MessageKind
from orderchat.core.search import MAX_PAGE, SEARCHABLE_KINDS, SearchFilters, SortBy
from orderchat.services.ports import SystemClock
from orderchat.services.search import Search, SearchHit, SearchPage, SearchRequest
from orderchat.settings import Settings
from orderchat.storage.engine import Database, database_arg

BOLD, PLAIN = "\033[1m", "\033[0m"


def _database_url(raw: str) -> str:
    try:
        return database_arg(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _day_ms(raw: str) -> int:
    """YYYY-MM-DD as the start of that day, UTC."""
    try:
        day = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {raw}") from None
    return int(day.timestamp() * 1000)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orderchat search",
        description="Search messages as a staff member sees them: Chinese words, English "
        "words in any form, codes and order numbers.",
    )
    parser.add_argument("query", help="what to find; every word must match")
    parser.add_argument("--as", dest="username", required=True, help="the searching staff user")
    parser.add_argument("--data-dir", type=Path, default=Path("orderchat-data"))
    parser.add_argument("--database", type=_database_url, help="instead of --data-dir's SQLite")
    parser.add_argument("--conv", help="only this conversation (its id)")
    parser.add_argument("--order", help="only this order, by its number (PO-2026-031)")
    parser.add_argument("--sender", help="only messages from this username")
    kinds = sorted(k.value for k in SEARCHABLE_KINDS)
    parser.add_argument("--kind", action="append", choices=kinds, help="repeatable")
    parser.add_argument("--since", type=_day_ms, help="YYYY-MM-DD (UTC), inclusive")
    parser.add_argument("--until", type=_day_ms, help="YYYY-MM-DD (UTC), exclusive")
    parser.add_argument("--has-file", action="store_true", help="only messages with files")
    parser.add_argument("--sort", choices=[s.value for s in SortBy], default=SortBy.TIME.value)
    parser.add_argument("--limit", type=int, default=20, help=f"results, at most {MAX_PAGE}")
    parser.add_argument("--audit", action="store_true", help="an admin's: every conversation")
    parser.add_argument("--json", action="store_true", help="one JSON object per result")
    return parser


def _marked(hit: SearchHit, colour: bool) -> str:
    text, out, at = hit.snippet.text, [], 0
    opening, closing = (BOLD, PLAIN) if colour else ("[", "]")
    for start, end in hit.snippet.marks:
        out += [text[at:start], opening, text[start:end], closing]
        at = end
    out.append(text[at:])
    return "".join(out).replace("\n", " ")


def _line(hit: SearchHit, colour: bool) -> str:
    message = hit.message
    when = datetime.fromtimestamp(message.ts / 1000, UTC).strftime("%Y-%m-%d %H:%M")
    where = hit.order_number or hit.conv_title or message.conv
    recalled = " (recalled)" if message.recalled else ""
    return f"{when}  {where} #{message.seq}  {hit.sender_name or '?'}{recalled}: " + _marked(
        hit, colour
    )


async def _run(settings: Settings, args: argparse.Namespace) -> SearchPage:
    db = Database(settings.resolved_database_url)
    try:
        await db.migrate()
        search = Search(db, SystemClock())
        user, order_id, sender_id = await search.names(args.username, args.order, args.sender)
        filters = SearchFilters(
            conv=args.conv,
            order=order_id,
            sender=sender_id,
            kinds=frozenset(MessageKind(k) for k in args.kind or ()),
            since_ms=args.since,
            until_ms=args.until,
            has_file=True if args.has_file else None,
        )
        request = SearchRequest(
            args.query, filters, SortBy(args.sort), None, args.limit, args.audit
        )
        return await search.find(user, request)
    finally:
        await db.close()


def main(argv: list[str]) -> int:
    """Run the command; 0 with results, 1 with none, 2 for bad input."""
    args = _parser().parse_args(argv)
    settings = Settings(data_dir=args.data_dir, database_url=args.database)
    if args.database is None and not (args.data_dir / "orderchat.db").is_file():
        print(f"orderchat search: no database in {args.data_dir}", file=sys.stderr)
        return 2
    try:
        page = asyncio.run(_run(settings, args))
    except DomainError as exc:
        print(f"orderchat search: {exc.message}", file=sys.stderr)
        return 2
    colour = sys.stdout.isatty()
    for hit in page.hits:
        if args.json:
            print(orjson.dumps(_json(hit)).decode())
        else:
            print(_line(hit, colour))
    if not page.hits:
        print("orderchat search: nothing found", file=sys.stderr)
    return 0 if page.hits else 1


def _json(hit: SearchHit) -> dict[str, object]:
    message = hit.message
    return {
        "conv": message.conv,
        "seq": message.seq,
        "id": message.id,
        "kind": message.kind.value,
        "ts": message.ts,
        "sender": message.sender,
        "sender_name": hit.sender_name,
        "order": hit.order_number,
        "recalled": message.recalled,
        "snippet": hit.snippet.text,
        "marks": [list(m) for m in hit.snippet.marks],
    }
