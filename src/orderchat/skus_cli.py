"""`orderchat skus import|export`: the catalogue CSV from a terminal, through the API's use cases.

Like `orderchat user`, each verb works on the database `serve` would open (the
same `--data-dir` and `--database`), says first which SQLite file it touched
(`database: PATH`), and refuses a data dir with no database rather than
creating an empty one.

`import FILE` prints the preview (one line per row that creates, updates or
fails, then a summary) and writes nothing; `import FILE --apply` writes
exactly the change it has just previewed, or nothing when any row has an error.
The command acts as the shop's owner (an admin), and what it writes is
recorded as by `system`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from orderchat.core.catalogue_import import (
    MAX_IMPORT_BYTES,
    FieldChange,
    ImportPreview,
    RowAction,
    decode_catalogue_csv,
)
from orderchat.core.errors import DomainError, TooLarge
from orderchat.core.ids import UserId
from orderchat.core.model import Role, User
from orderchat.core.texts import say
from orderchat.settings import Settings
from orderchat.storage.engine import is_sqlite_url, shown_url, sqlite_path
from orderchat.user_cli import DEFAULT_DATA_DIR, EXIT_REFUSED, password_cost_from_env

# Error rows in the file: nothing was (or would be) written.
EXIT_ROW_ERRORS = 1

# Who the command acts as; the id is the one the server's own postings carry.
COMMAND_USER = User(UserId("system"), "system", "orderchat skus", (Role.ADMIN,))


def add_skus_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    database_url: Callable[[str], str],
) -> None:
    """Add `skus import|export` under `commands`."""
    skus = commands.add_parser("skus", help="import and export the SKU catalogue as CSV")
    verbs = skus.add_subparsers(dest="skus_command", required=True)

    def verb(name: str, help_: str) -> argparse.ArgumentParser:
        parser = verbs.add_parser(name, help=help_)
        parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
        parser.add_argument(
            "--database",
            type=database_url,
            help="sqlite+aiosqlite:///PATH or postgresql://USER@HOST:PORT/DB; "
            "default: orderchat.db under --data-dir",
        )
        return parser

    load = verb("import", "preview a catalogue CSV; with --apply, import it")
    load.add_argument("file", type=Path, metavar="FILE")
    load.add_argument(
        "--apply", action="store_true", help="write the previewed change (nothing on any error)"
    )
    dump = verb("export", "write the catalogue as CSV (UTF-8 with a BOM in a file, for Excel)")
    dump.add_argument("file", type=Path, nargs="?", metavar="FILE", help="default: stdout")


def run_skus_command(args: argparse.Namespace) -> int:
    """Run one `orderchat skus` verb; returns the exit status."""
    settings = Settings(
        data_dir=args.data_dir,
        database_url=args.database,
        password_cost=password_cost_from_env(),
    )
    url = settings.resolved_database_url
    path = sqlite_path(url) if is_sqlite_url(url) else None
    where = str(path) if path is not None else shown_url(url)
    missing = is_sqlite_url(url) and (path is None or not path.is_file())
    if missing:
        print(
            f"orderchat: no database at {where}; check --data-dir or --database",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    # The CSV alone goes to stdout when it is the output; the database line then goes to stderr.
    to_stdout = args.skus_command == "export" and args.file is None
    print(f"database: {where}", file=sys.stderr if to_stdout else sys.stdout, flush=True)
    try:
        if args.skus_command == "export":
            return _write_export(asyncio.run(_export(settings)), args.file)
        text = _read_import(args.file)
        return asyncio.run(_import(settings, text, apply=args.apply))
    except DomainError as exc:
        print(f"orderchat: {exc.message}", file=sys.stderr)
        return EXIT_REFUSED
    except OSError as exc:
        print(f"orderchat: {exc}", file=sys.stderr)
        return EXIT_REFUSED


def _read_import(file: Path) -> str:
    if file.is_file() and file.stat().st_size > MAX_IMPORT_BYTES:
        raise TooLarge(
            say("api_inventory.csv_larger_than_bytes_split", max_import_bytes=MAX_IMPORT_BYTES)
        )
    return decode_catalogue_csv(file.read_bytes())


async def _import(settings: Settings, text: str, *, apply: bool) -> int:
    from orderchat.api.wiring import build_runtime

    runtime = build_runtime(settings)
    try:
        await runtime.db.migrate()
        preview = await runtime.inventory.preview_import(COMMAND_USER, text)
        for line in preview_lines(preview):
            print(line)
        if not preview.valid:
            print("nothing written: fix the rows above and run again", file=sys.stderr)
            return EXIT_ROW_ERRORS
        if not apply:
            print("nothing written: run again with --apply to import")
            return 0
        runtime.writer.start()
        try:
            done = await runtime.inventory.import_csv(COMMAND_USER, text, preview.token)
        finally:
            await runtime.writer.stop()
        print(
            f"imported {done.rows} rows: {done.created} created, {done.updated} updated, "
            f"{done.stock_changes} stock changes"
        )
        return 0
    finally:
        await runtime.db.close()


async def _export(settings: Settings) -> str:
    from orderchat.api.wiring import build_runtime

    runtime = build_runtime(settings)
    try:
        await runtime.db.migrate()
        return await runtime.inventory.export_csv(COMMAND_USER)
    finally:
        await runtime.db.close()


def _write_export(text: str, file: Path | None) -> int:
    if file is None:
        sys.stdout.write(text)
        return 0
    # Excel opens a UTF-8 CSV as UTF-8 (Chinese names intact) only with a BOM.
    file.write_bytes(text.encode("utf-8-sig"))
    skus = max(text.count("\n") - 1, 0)
    print(f"exported {skus} lines to {file.resolve()}")
    return 0


def preview_lines(preview: ImportPreview) -> Iterator[str]:
    """The rows that change or fail, one per line, then the summary."""
    for row in preview.rows:
        if row.action is RowAction.UNCHANGED:
            continue
        if row.action is RowAction.ERROR:
            for error in row.errors:
                column = error.column or "-"
                yield f"line {row.line}\terror\t{row.sku}\t{column}: {error.reason.render('en')}"
            continue
        changes = "; ".join(_change(c) for c in row.changes)
        yield f"line {row.line}\t{row.action.value}\t{row.sku}\t{changes}"
    counts = ", ".join(f"{preview.count(a)} {a.value}" for a in RowAction)
    yield f"{len(preview.rows)} rows: {counts}; {len(preview.plan.levels)} stock changes"


def _change(change: FieldChange) -> str:
    name = f"on_hand@{change.location}" if change.location else change.field
    if change.old is None:
        return f"{name}={change.new}"
    return f"{name}: {change.old} -> {change.new}"
