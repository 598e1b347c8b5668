"""`orderchat user …`: manage staff accounts in a server's database.

Every verb works on the database `serve` would open (the same `--data-dir` and
`--database`) and says first, as `database: PATH`, which SQLite file it touched. Only `add` may
create a database; the others refuse a data dir that has none, since a typo in
`--data-dir` would otherwise quietly change an empty database nobody serves.
`add` prints the new id as its last line of output, `invite` the link's path
(`/#/join/TOKEN`, to put after the server's address).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from orderchat.core.errors import DomainError
from orderchat.core.model import User, parse_new_staff, parse_roles
from orderchat.core.passwords import PasswordCost
from orderchat.services.staff import Invite, Staff
from orderchat.settings import Settings
from orderchat.storage.engine import is_sqlite_url, shown_url, sqlite_path

DEFAULT_DATA_DIR = Path("orderchat-data")

# The exit status for a refusal the user can fix (bad input, no database):
# argparse's own for a usage error.
EXIT_REFUSED = 2


def password_cost_from_env() -> PasswordCost:
    """The hashing cost the environment sets, for `serve` and every command alike; a
    bad value stops the command with its name and why."""
    try:
        return PasswordCost.from_env(os.environ)
    except ValueError as exc:
        raise SystemExit(f"orderchat: {exc}") from None


def add_user_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    database_url: Callable[[str], str],
) -> None:
    """Add `user add|list|passwd|disable|enable|roles|invite` under `commands`."""
    users = commands.add_parser("user", help="manage staff users")
    verbs = users.add_subparsers(dest="user_command", required=True)

    def verb(name: str, help_: str, *, username: bool = True) -> argparse.ArgumentParser:
        parser = verbs.add_parser(name, help=help_)
        if username:
            parser.add_argument("username")
        parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
        parser.add_argument(
            "--redis",
            help="redis://HOST:PORT/DB of a running cluster: its nodes then close the "
            "connections of people disabled or signed out here at once",
        )
        parser.add_argument(
            "--database",
            type=database_url,
            help="sqlite+aiosqlite:///PATH or postgresql://USER@HOST:PORT/DB; "
            "default: orderchat.db under --data-dir",
        )
        return parser

    add = verb("add", "create a staff user; prints its id")
    add.add_argument("--password", required=True)
    add.add_argument("--role", required=True, help="ROLE[,ROLE...]")
    add.add_argument("--name", help="display name")
    verb("list", "list staff users", username=False)
    passwd = verb("passwd", "set a staff user's password")
    passwd.add_argument("--password", required=True, help="the new password, or - to read stdin")
    verb("disable", "stop a staff user signing in and end their sessions")
    verb("enable", "let a disabled staff user sign in again")
    roles = verb("roles", "replace a staff user's roles")
    roles.add_argument("--set", dest="roles", required=True, metavar="ROLE[,ROLE...]")
    invite = verb("invite", "make a one-time link with which a new person joins; prints its path")
    invite.add_argument("--role", required=True, help="ROLE[,ROLE...]")
    invite.add_argument("--name", help="display name (the person may change it)")


def run_user_command(args: argparse.Namespace) -> int:
    """Run one `orderchat user` verb; returns the exit status."""
    settings = Settings(
        data_dir=args.data_dir,
        database_url=args.database,
        redis_url=args.redis,
        password_cost=password_cost_from_env(),
    )
    url = settings.resolved_database_url
    path = sqlite_path(url) if is_sqlite_url(url) else None
    where = str(path) if path is not None else shown_url(url)
    missing = is_sqlite_url(url) and (path is None or not path.is_file())
    creates = args.user_command == "add"
    if not creates and missing:
        print(
            f"orderchat: no database at {where}; check --data-dir or --database "
            "(only `orderchat user add` creates one)",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    # On stdout, first: `add`'s id stays the last line however the streams are joined.
    print(f"database: {where}", flush=True)
    try:
        lines = asyncio.run(_with_accounts(settings, _VERBS[args.user_command], args))
    except DomainError as exc:
        print(f"orderchat: {exc.message}", file=sys.stderr)
        return EXIT_REFUSED
    for line in lines:
        print(line)
    return 0


async def _with_accounts(
    settings: Settings,
    verb: Callable[[Staff, argparse.Namespace], Awaitable[list[str]]],
    args: argparse.Namespace,
) -> list[str]:
    from orderchat.api.wiring import build_runtime

    runtime = build_runtime(settings)
    try:
        await runtime.db.migrate()
        # Revocations and membership events reach a running cluster's nodes.
        await runtime.bus.start()
        # Adding people and changing roles move channel memberships: writer work.
        runtime.writer.start()
        try:
            return await verb(runtime.staff, args)
        finally:
            await runtime.writer.stop()
            await runtime.bus.stop()
    finally:
        await runtime.db.close()


async def _add(staff: Staff, args: argparse.Namespace) -> list[str]:
    new = parse_new_staff(args.username, args.password, args.role, args.name)
    user = await staff.add(None, new)
    return [f"created user {user.username}", user.id]


async def _list(staff: Staff, _args: argparse.Namespace) -> list[str]:
    return [_row(entry.user, entry.disabled) for entry in await staff.list_staff(None)]


def _row(user: User, disabled: bool) -> str:
    roles = ",".join(r.value for r in user.roles)
    state = "disabled" if disabled else "enabled"
    return "\t".join([user.id, user.username, user.display_name, roles, state])


async def _passwd(staff: Staff, args: argparse.Namespace) -> list[str]:
    password: str = args.password
    if password == "-":
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    user = await staff.set_password(None, args.username, password)
    return [f"password changed for {user.username}"]


async def _disable(staff: Staff, args: argparse.Namespace) -> list[str]:
    ended = await staff.set_disabled(None, args.username, True)
    return [f"disabled {args.username}; ended {ended} session(s)"]


async def _enable(staff: Staff, args: argparse.Namespace) -> list[str]:
    await staff.set_disabled(None, args.username, False)
    return [f"enabled {args.username}"]


async def _roles(staff: Staff, args: argparse.Namespace) -> list[str]:
    user = await staff.set_roles(None, args.username, parse_roles(args.roles))
    return [f"roles of {user.username}: {','.join(r.value for r in user.roles)}"]


async def _invite(staff: Staff, args: argparse.Namespace) -> list[str]:
    issued = await staff.invite(None, Invite(args.username, parse_roles(args.role), args.name))
    return [f"invitation for {args.username}, valid for 7 days, once", issued.path]


_VERBS: dict[str, Callable[[Staff, argparse.Namespace], Awaitable[list[str]]]] = {
    "add": _add,
    "list": _list,
    "passwd": _passwd,
    "disable": _disable,
    "enable": _enable,
    "roles": _roles,
    "invite": _invite,
}
