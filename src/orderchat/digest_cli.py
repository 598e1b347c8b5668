"""`orderchat digest`: the daily reconciliation digest, printed (and with --post, posted).

For a finance clerk or a cron job on the server's machine: it reads the
database directly, so it works while the server is stopped too.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import orjson

from orderchat.core.errors import DomainError
from orderchat.services.money.digest import Digest, digest_fields, parse_day
from orderchat.services.money.finance import Finance
from orderchat.services.orders.workflows import Workflows
from orderchat.services.ports import Clock, Publication, SystemClock, system_ids
from orderchat.services.writer import GroupCommitWriter
from orderchat.settings import Settings
from orderchat.storage.engine import Database
from orderchat.user_cli import password_cost_from_env

LANGUAGES = ("zh-CN", "en")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orderchat digest",
        description="Print the reconciliation digest: a day's receipts and refunds, "
        "and shipped orders not yet paid.",
    )
    parser.add_argument("--date", help="YYYY-MM-DD, local time (default: yesterday)")
    # Both may be given: the data dir also holds the workflows, whatever the database.
    parser.add_argument("--data-dir", type=Path, default=Path("orderchat-data"))
    parser.add_argument(
        "--database",
        type=_database_url,
        help="sqlite+aiosqlite:///PATH or postgresql://USER@HOST:PORT/DB "
        "instead of orderchat.db under --data-dir",
    )
    parser.add_argument("--post", action="store_true", help="also post it to #finance")
    parser.add_argument("--lang", choices=LANGUAGES, default="zh-CN")
    parser.add_argument("--json", action="store_true", help="print the structured digest")
    return parser


def _database_url(raw: str) -> str:
    """`--database`: a SQLite or a PostgreSQL URL."""
    from orderchat.storage.engine import database_arg

    try:
        return database_arg(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str]) -> int:
    """Run the command; returns the exit status (2 for bad input)."""
    args = _parser().parse_args(argv)
    settings = Settings(
        data_dir=args.data_dir,
        database_url=args.database,
        password_cost=password_cost_from_env(),
    )
    if args.database is None and not (args.data_dir / "orderchat.db").is_file():
        # Migrating would create an empty store and print an empty digest.
        print(f"orderchat digest: no database in {args.data_dir}", file=sys.stderr)
        return 2
    try:
        day = None if args.date is None else parse_day(args.date)
        digest = asyncio.run(digest_command(settings, day, post=args.post))
    except DomainError as exc:
        print(f"orderchat digest: {exc.message}", file=sys.stderr)
        return 2
    if args.json:
        print(orjson.dumps(digest_fields(digest), option=orjson.OPT_INDENT_2).decode())
    else:
        print(digest.text[args.lang])
    return 0


# --- the `orderchat digest` command ---------------------------------------------------


class _NoLiveDelivery:
    """The command runs outside the server: its message is stored, and devices
    receive it from the database when they next resume, not pushed live."""

    def publish(self, items: Sequence[Publication]) -> None:
        pass


async def digest_command(
    settings: Settings, day: date | None, *, post: bool, clock: Clock | None = None
) -> Digest:
    """The digest read straight from the database; with `post`, also posted to #finance."""
    clock = clock or SystemClock()
    db = Database(settings.resolved_database_url)
    writer = GroupCommitWriter(db, _NoLiveDelivery(), clock, system_ids(clock))
    try:
        await db.migrate()
        finance = Finance(db, writer, clock, Workflows.load(settings.workflows_dir))
        if not post:
            return await finance.digest(day)
        writer.start()
        try:
            return await finance.post_digest(day)
        finally:
            await writer.stop()
    finally:
        await db.close()
