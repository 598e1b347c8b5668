"""`orderchat export --order NUMBER --out dossier.zip`: one order's dossier, from the database.

For the shop's operator on the server's machine: it reads the database and
the files directly, like `orderchat digest`, so it works with the server
stopped too. The operator gets everything; `--customer` writes what the
order's customer would get from the web app instead (docs/proof.md).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from orderchat.core.errors import DomainError
from orderchat.core.texts import say
from orderchat.progress import ProgressBar
from orderchat.proof_cli import add_store_arguments, has_database


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orderchat export",
        description="Write one order's dossier: a PDF, the same as JSON, every original "
        "file and a manifest that `orderchat verify` checks offline.",
    )
    parser.add_argument("--order", required=True, help="the order's number, e.g. PO-2026-031")
    parser.add_argument("--out", required=True, type=Path, help="the ZIP to write")
    parser.add_argument(
        "--customer",
        action="store_true",
        help="leave out everything staff-only, as the order's customer gets it",
    )
    add_store_arguments(parser)
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if not has_database(args):
        return 2
    try:
        return asyncio.run(_export(args))
    except DomainError as exc:
        print(f"orderchat export: {exc.text.render(args.lang)}", file=sys.stderr)
        return 2


async def _export(args: argparse.Namespace) -> int:
    from orderchat.media.blobstore import LocalBlobStore
    from orderchat.services.dossier.gather import Viewer
    from orderchat.services.dossier.service import PACKING, READING, Dossiers
    from orderchat.services.orders.workflows import Workflows
    from orderchat.services.ports import SystemClock
    from orderchat.settings import Settings
    from orderchat.storage.engine import Database

    settings = Settings(data_dir=args.data_dir, database_url=args.database)
    language = args.lang
    labels = {
        READING: say("dossier.progress_reading").render(language),
        PACKING: say("dossier.progress_packing").render(language),
    }
    bar = ProgressBar(labels[READING])
    viewer = Viewer(
        say("dossier.operator").render(language),
        staff_only=not args.customer,
        recalled=not args.customer,
        language=language,
    )
    db = Database(settings.resolved_database_url)
    dossiers = Dossiers(
        db,
        SystemClock(),
        Workflows.load(settings.workflows_dir),
        LocalBlobStore(settings.data_dir),
        settings.data_dir / "work",
    )
    try:
        await db.migrate()  # like every command: the tables as this version reads them
        written = await dossiers.export_number(
            args.order,
            viewer,
            args.out,
            lambda stage, done, total: bar.update(done, total, labels.get(stage)),
        )
    finally:
        bar.close()
        await db.close()
    done = say(
        "dossier.written",
        path=str(written.path),
        links=written.links,
        withheld=written.withheld,
        files=written.files,
        head=written.head,
    )
    print(done.render(language))
    for consult in written.consults:
        line = say(
            "dossier.holds_consult",
            consult=consult.consult,
            links=consult.links,
            withheld=consult.withheld,
            head=consult.head,
        )
        print("  " + line.render(language))
    return 0
