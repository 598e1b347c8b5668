"""`orderchat verify`: check every conversation's hash chain, or one dossier offline.

`orderchat verify` reads the database directly (the server may be running
or not) and prints the first broken link of each conversation whose chain
does not hold. `orderchat verify dossier.zip` needs neither a server nor a
database: everything it checks is in the ZIP (docs/proof.md). Either way the
exit status is 0 when everything holds, 1 when something does not, 2 for
bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import zipfile
from pathlib import Path

import orjson

from orderchat.core.dossier import DOCUMENT, MANIFEST, DossierCheck, check_dossier
from orderchat.core.texts import DEFAULT_LANGUAGE, LANGUAGES, say
from orderchat.progress import ProgressBar
from orderchat.user_cli import DEFAULT_DATA_DIR

CHUNK_BYTES = 1024 * 1024


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orderchat verify",
        description="Check the hash chain of every conversation in the database, "
        "or check an exported dossier ZIP offline.",
    )
    parser.add_argument("dossier", nargs="?", type=Path, help="a dossier ZIP to check offline")
    add_store_arguments(parser)
    return parser


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """`--data-dir`, `--database` and `--lang`, as `orderchat digest` takes them."""
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument(
        "--database",
        type=_database_url,
        help="sqlite+aiosqlite:///PATH or postgresql://USER@HOST:PORT/DB "
        "instead of orderchat.db under --data-dir",
    )
    parser.add_argument("--lang", choices=LANGUAGES, default=DEFAULT_LANGUAGE)


def _database_url(raw: str) -> str:
    from orderchat.storage.engine import database_arg

    try:
        return database_arg(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def has_database(args: argparse.Namespace) -> bool:
    """Whether there is a store to read: reading must never create an empty one."""
    if args.database is None and not (args.data_dir / "orderchat.db").is_file():
        print(say("proof.no_database", path=args.data_dir).render(args.lang), file=sys.stderr)
        return False
    return True


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.dossier is not None:
        return verify_dossier(args.dossier, args.lang)
    if not has_database(args):
        return 2
    return asyncio.run(_verify_database(args))


# --- a dossier, offline ------------------------------------------------------------------


def read_dossier(path: Path) -> DossierCheck:
    """Check the ZIP at `path`. Raises zipfile.BadZipFile, OSError, KeyError (no manifest)."""
    with zipfile.ZipFile(path) as archive:
        manifest = orjson.loads(archive.read(MANIFEST))
        digests = {}
        for info in archive.infolist():
            if info.is_dir() or info.filename == MANIFEST:
                continue
            digest = hashlib.sha256()
            with archive.open(info) as member:
                while chunk := member.read(CHUNK_BYTES):
                    digest.update(chunk)
            digests[info.filename] = digest.hexdigest()
        try:
            document = orjson.loads(archive.read(DOCUMENT))
        except (KeyError, orjson.JSONDecodeError):
            document = None
    return check_dossier(manifest, document, digests)


def verify_dossier(path: Path, language: str) -> int:
    try:
        found = read_dossier(path)
    except KeyError:
        print(say("dossier.no_manifest", path=str(path)).render(language), file=sys.stderr)
        return 2
    except (OSError, zipfile.BadZipFile, orjson.JSONDecodeError):
        print(say("dossier.not_a_zip", path=str(path)).render(language), file=sys.stderr)
        return 2
    if found.holds and found.chain is not None:
        chain = found.chain
        print(
            say(
                "dossier.holds",
                links=chain.links,
                withheld=chain.withheld,
                files=found.files,
                head=chain.head,
            ).render(language)
        )
        for consult in found.consults:
            line = say(
                "dossier.holds_consult",
                consult=consult.consult,
                links=consult.report.links,
                withheld=consult.report.withheld,
                head=consult.report.head,
            )
            print("  " + line.render(language))
        return 0
    print(say("dossier.problems", count=len(found.problems)).render(language))
    for problem in found.problems:
        print("  " + problem.render(language))
    return 1


# --- every chain in the database -----------------------------------------------------------


async def _verify_database(args: argparse.Namespace) -> int:
    from orderchat.services.proof import ChainProofs
    from orderchat.settings import Settings
    from orderchat.storage.engine import Database

    settings = Settings(data_dir=args.data_dir, database_url=args.database)
    db = Database(settings.resolved_database_url)
    language = args.lang
    bar = ProgressBar(say("proof.progress").render(language))
    conversations = links = broken = 0
    try:
        await db.migrate()  # like every command: the tables as this version reads them
        proofs = ChainProofs(db)
        total = await proofs.count_links()

        def seen(count: int) -> None:
            nonlocal links
            links += count
            bar.update(links, total)

        async for verified in proofs.verify_all(seen):
            conversations += 1
            problem = verified.report.problem()
            if problem is None:
                continue
            broken += 1
            bar.close()
            head = verified.head
            line = say(
                "proof.conversation_broken",
                conv=head.conv_id,
                title=head.title or head.kind,
                problem=problem,
            )
            print(line.render(language), flush=True)
    finally:
        bar.close()
        await db.close()
    if broken:
        summary = say("proof.some_broken", broken=broken, conversations=conversations)
    else:
        summary = say("proof.all_hold", links=links, conversations=conversations)
    print(summary.render(language))
    return 1 if broken else 0
