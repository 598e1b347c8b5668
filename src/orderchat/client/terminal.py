"""`orderchat chat`: a line-based terminal chat built on the SDK.

It reads lines from standard input (a terminal, a pipe or a file), sends each
one to the open conversation, and writes one line per event to standard
output, flushed at once, so a script can drive it as easily as a person.
Problems go to standard error, prefixed with `!`. It keeps no protocol logic
of its own: connecting, resuming and resending all happen in `Client`.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import getpass
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime

from orderchat.client._client import Client
from orderchat.client._errors import ClientError, UnauthorizedError
from orderchat.client._http import MAX_PAGE, login
from orderchat.client._models import (
    Conversation,
    Event,
    MembersChanged,
    Message,
    MessageRecalled,
    MessageReceived,
    OrderChanged,
    ReadMarked,
    User,
    UserTyping,
)
from orderchat.client._options import ClientOptions
from orderchat.core.ids import ConversationId, UserId

HISTORY_ON_OPEN = 20
# Asking the server for the user directory again when an unknown sender shows
# up is cheap, but not on every message from a stranger.
USERS_REFRESH_MIN_S = 5.0
# A typing notice is shown at most this often per person.
TYPING_SHOW_EVERY_S = 5.0
PASSWORD_ENV = "ORDERCHAT_PASSWORD"
# The terminal speaks English, so the server is asked to word its errors in English too.
LANGUAGE = "en"

HELP = """\
-- type a line to send it to the open conversation (start with // to send a leading /)
-- /list              your conversations (* = open)
-- /open ID|TITLE     open a conversation
-- /to USERNAME       open the direct conversation with someone
-- /history [N]       the last N messages (default 20), with their numbers
-- /recall [SEQ]      recall a message (default: your last one here)
-- /read              mark the open conversation read
-- /who               members of the open conversation
-- /help              this text
-- /quit              leave (end of input does the same)"""


def main(argv: list[str]) -> int:
    """Run the terminal chat; returns the process exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 2
    password = args.password or os.environ.get(PASSWORD_ENV)
    if not password and sys.stdin is not None and sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.user}: ")
    if not password:
        _err(f"a password is needed: --password or {PASSWORD_ENV}")
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="! %(message)s",
        stream=sys.stderr,
    )
    try:
        return asyncio.run(_chat(args, password))
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orderchat chat", description="Chat from a terminal.")
    parser.add_argument("--server", default="http://127.0.0.1:8000", help="server base URL")
    parser.add_argument("--user", required=True, help="your username")
    parser.add_argument("--password", help=f"your password (or set {PASSWORD_ENV})")
    parser.add_argument("--device", default="terminal", help="name of this device")
    parser.add_argument("--verbose", action="store_true", help="log connection details")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--conv", help="open the conversation with this id")
    target.add_argument("--to", help="open the direct conversation with this username")
    target.add_argument("--channel", help="open the channel with this title")
    return parser


async def _chat(args: argparse.Namespace, password: str) -> int:
    try:
        session = await login(args.server, args.user, password, language=LANGUAGE)
    except UnauthorizedError:
        _err("wrong username or password")
        return 1
    except ClientError as exc:
        _err(f"cannot sign in: {exc}")
        return 1
    try:
        options = ClientOptions(device=args.device, language=LANGUAGE)
        async with Client(session, options=options) as client:
            return await _Chat(client).run(args)
    except ClientError as exc:
        _err(f"disconnected: {exc}")
        return 1


class _Chat:
    """The state of one terminal session: who is who, and what is open."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.api = client.api
        self.me = client.user
        self.users: dict[UserId, User] = {}
        self.users_loaded_at = 0.0
        self.convs: dict[ConversationId, Conversation] = {}
        self.current: Conversation | None = None
        self.shown_seq: dict[ConversationId, int] = {}
        self.own_last_seq: dict[ConversationId, int] = {}
        self.typing_shown_at: dict[UserId, float] = {}
        self.show_typing = sys.stdout.isatty()

    async def run(self, args: argparse.Namespace) -> int:
        await self._load_users()
        await self._load_conversations()
        _out(f"-- signed in as {self.me.display_name} (@{self.me.username}); /help for commands")
        if not await self._open_initial(args):
            return 1
        if self.current is None:
            _out("-- no conversation open: /list, then /open ID or /to USERNAME")
        printer = asyncio.create_task(self._print_events(), name="chat-printer")
        reader = asyncio.create_task(self._read_input(), name="chat-input")
        await asyncio.wait({printer, reader}, return_when=asyncio.FIRST_COMPLETED)
        for task in (printer, reader):
            task.cancel()
        await asyncio.wait({printer, reader})
        for task in (reader, printer):  # the reader's outcome wins
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error
        return 0

    async def _open_initial(self, args: argparse.Namespace) -> bool:
        try:
            if args.conv:
                await self._enter(await self.api.conversation(args.conv))
            elif args.to:
                return await self._open_direct(args.to)
            elif args.channel:
                wanted = args.channel.casefold()
                for conv in self.convs.values():
                    if conv.kind == "channel" and (conv.title or "").casefold() == wanted:
                        await self._enter(conv)
                        return True
                _err(f"you are in no channel titled {args.channel!r}")
                return False
        except ClientError as exc:
            _err(f"cannot open the conversation: {exc}")
            return False
        return True

    # --- output ------------------------------------------------------------------

    async def _print_events(self) -> None:
        async for event in self.client.events():
            await self._show(event)

    async def _show(self, event: Event) -> None:
        current = self.current.id if self.current is not None else None
        match event:
            case MessageReceived(message=message):
                if message.sender == self.me.id:
                    self.own_last_seq[message.conv] = message.seq
                if message.seq <= self.shown_seq.get(message.conv, 0):
                    return
                self.shown_seq[message.conv] = message.seq
                await self._know_user(message.sender)
                prefix = (
                    "" if message.conv == current else f"({await self._label_of(message.conv)}) "
                )
                _out(self._format(message, prefix=prefix))
            case MessageRecalled(conv=conv, seq=seq, by=by) if conv == current:
                await self._know_user(by)
                _out(f"-- {self._name(by)} recalled message #{seq}")
            case ReadMarked(conv=conv, user=user, seq=seq) if (
                conv == current and user != self.me.id
            ):
                await self._know_user(user)
                _out(f"-- {self._name(user)} read up to #{seq}")
            case MembersChanged(conversation=conversation, users=users, action=action):
                if conversation is not None:
                    self.convs[conversation.id] = conversation
                if self.me.id in users:
                    label = await self._label_of(event.conv)
                    _out(f"-- you were {action} {'to' if action == 'added' else 'from'} {label}")
            case OrderChanged(number=number, status=status):
                _out(f"-- order {number} is now {status}")
            case UserTyping(conv=conv, user=user) if self.show_typing and conv == current:
                now = time.monotonic()
                if now - self.typing_shown_at.get(user, 0.0) >= TYPING_SHOW_EVERY_S:
                    self.typing_shown_at[user] = now
                    await self._know_user(user)
                    _out(f"-- {self._name(user)} is typing…")
            case _:
                pass

    def _format(self, message: Message, *, prefix: str = "", numbered: bool = False) -> str:
        clock = datetime.fromtimestamp(message.ts / 1000).strftime("%H:%M")
        number = f"#{message.seq} " if numbered else ""
        body = "(recalled)" if message.recalled else message.text or f"({message.kind})"
        body = body.replace("\n", "\n    ")
        if message.kind == "system":
            return f"{number}[{clock}] {prefix}* {body}"
        return f"{number}[{clock}] {prefix}{self._name(message.sender)}: {body}"

    async def _enter(self, conv: Conversation, history: int = HISTORY_ON_OPEN) -> None:
        self.current = conv
        self.convs[conv.id] = conv
        _out(f"-- conversation {await self._label_of(conv.id)} ({conv.id})")
        await self._print_history(history, numbered=False)

    async def _print_history(self, count: int, *, numbered: bool) -> None:
        if self.current is None:
            return
        conv = self.current.id
        messages = await self.api.messages(conv, limit=count)
        for message in messages:
            await self._know_user(message.sender)
            _out(self._format(message, numbered=numbered))
            if message.sender == self.me.id:
                self.own_last_seq[conv] = max(message.seq, self.own_last_seq.get(conv, 0))
        if messages:
            self.shown_seq[conv] = max(messages[-1].seq, self.shown_seq.get(conv, 0))

    # --- input -------------------------------------------------------------------

    async def _read_input(self) -> None:
        lines = _StdinLines(asyncio.get_running_loop())
        lines.start()
        while (line := await lines.next()) is not None:
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if line.startswith("/") and not line.startswith("//"):
                if await self._command(line):
                    return
            else:
                await self._say(line[1:] if line.startswith("//") else line)

    async def _say(self, text: str) -> None:
        if self.current is None:
            _err("no conversation open: /list, then /open ID or /to USERNAME")
            return
        try:
            await self.client.send(self.current.id, text)
        except ClientError as exc:
            _err(f"not sent: {exc}")

    async def _command(self, line: str) -> bool:
        """Run one slash command; True when the user wants to leave."""
        name, _, rest = line[1:].partition(" ")
        name, rest = name.lower(), rest.strip()
        if name in ("quit", "exit"):
            return True
        handlers: dict[str, Callable[[str], Awaitable[None]]] = {
            "list": self._cmd_list,
            "open": self._cmd_open,
            "to": self._cmd_to,
            "history": self._cmd_history,
            "recall": self._cmd_recall,
            "read": self._cmd_read,
            "who": self._cmd_who,
            "help": self._cmd_help,
        }
        handler = handlers.get(name)
        if handler is None:
            _err(f"unknown command /{name}; /help lists them")
            return False
        try:
            await handler(rest)
        except ClientError as exc:
            _err(f"/{name}: {exc}")
        return False

    async def _cmd_list(self, _: str) -> None:
        await self._load_conversations()
        if not self.convs:
            _out("-- you are in no conversation yet")
        for conv in self.convs.values():
            mark = "*" if self.current is not None and conv.id == self.current.id else " "
            unread = f"  {conv.unread} unread" if conv.unread else ""
            _out(f"{mark} {conv.id}  {await self._label_of(conv.id)}  [{conv.kind}]{unread}")

    async def _cmd_open(self, arg: str) -> None:
        if not arg:
            _err("usage: /open ID|TITLE")
            return
        await self._load_conversations()
        wanted = arg.casefold().lstrip("#")
        for conv in self.convs.values():
            label = (await self._label_of(conv.id)).casefold().lstrip("#@")
            if conv.id == arg or (conv.title or "").casefold() == wanted or label == wanted:
                await self._enter(conv)
                return
        await self._enter(await self.api.conversation(arg))

    async def _cmd_to(self, arg: str) -> None:
        if not arg:
            _err("usage: /to USERNAME")
            return
        await self._open_direct(arg)

    async def _cmd_history(self, arg: str) -> None:
        if self.current is None:
            _err("no conversation open")
            return
        try:
            count = int(arg) if arg else HISTORY_ON_OPEN
        except ValueError:
            _err("usage: /history [N]")
            return
        await self._print_history(max(1, min(count, MAX_PAGE)), numbered=True)

    async def _cmd_recall(self, arg: str) -> None:
        if self.current is None:
            _err("no conversation open")
            return
        conv = self.current.id
        if arg:
            try:
                seq = int(arg.lstrip("#"))
            except ValueError:
                _err("usage: /recall [SEQ]")
                return
        elif conv in self.own_last_seq:
            seq = self.own_last_seq[conv]
        else:
            _err("you have sent nothing here yet; /history shows message numbers")
            return
        await self.client.recall(conv, seq)

    async def _cmd_read(self, _: str) -> None:
        if self.current is None:
            _err("no conversation open")
            return
        seq = self.shown_seq.get(self.current.id, 0)
        if seq < 1:
            _out("-- nothing to mark read")
            return
        await self.client.mark_read(self.current.id, seq)
        _out(f"-- marked read up to #{seq}")

    async def _cmd_who(self, _: str) -> None:
        if self.current is None:
            _err("no conversation open")
            return
        conv = await self.api.conversation(self.current.id)
        self.convs[conv.id] = conv
        for member in conv.members:
            await self._know_user(member)
            user = self.users.get(member)
            handle = f" (@{user.username})" if user is not None else ""
            you = " (you)" if member == self.me.id else ""
            _out(f"-- {self._name(member)}{handle}{you}")

    async def _cmd_help(self, _: str) -> None:
        _out(HELP)

    # --- directory -----------------------------------------------------------------

    async def _open_direct(self, username: str) -> bool:
        user = await self._user_named(username.lstrip("@"))
        if user is None:
            _err(f"no user named {username!r}")
            return False
        await self._enter(await self.api.direct(user.id))
        return True

    async def _user_named(self, username: str) -> User | None:
        for attempt in range(2):
            for user in self.users.values():
                if user.username.casefold() == username.casefold():
                    return user
            if attempt == 0:
                await self._load_users()
        return None

    async def _load_users(self) -> None:
        self.users = {user.id: user for user in await self.api.users()}
        self.users_loaded_at = time.monotonic()

    async def _know_user(self, user_id: UserId) -> None:
        """Reload the directory when a stranger shows up (not too often)."""
        if user_id in self.users or time.monotonic() - self.users_loaded_at < USERS_REFRESH_MIN_S:
            return
        try:
            await self._load_users()
        except ClientError as exc:
            _err(f"cannot load the user directory: {exc}")

    async def _load_conversations(self) -> None:
        self.convs = {conv.id: conv for conv in await self.api.conversations()}

    def _name(self, user_id: UserId) -> str:
        user = self.users.get(user_id)
        return user.display_name if user is not None else user_id

    async def _label_of(self, conv_id: ConversationId) -> str:
        conv = self.convs.get(conv_id)
        if conv is None:
            try:
                conv = self.convs[conv_id] = await self.api.conversation(conv_id)
            except ClientError:
                return conv_id
        if conv.kind == "direct":
            others = [m for m in conv.members if m != self.me.id]
            if others:
                user = self.users.get(others[0])
                return f"@{user.username}" if user is not None else others[0]
            return conv.title or "@(yourself)"
        if conv.kind == "channel":
            return f"#{conv.title or conv.id}"
        return conv.title or conv.id


class _StdinLines:
    """Lines from standard input, read on a daemon thread.

    A thread works the same for a terminal, a pipe and a regular file (the
    event loop's pipe reader refuses files, and would switch a shared terminal
    to non-blocking mode); being a daemon, it never holds up exit while
    blocked in a read. It reads the raw descriptor with `os.read`: a thread
    blocked inside `sys.stdin`'s buffered reader holds its lock, and the
    interpreter aborts when it finds that lock taken at shutdown. The queue is
    small, so a fast pipe waits for the sends.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=64)

    def start(self) -> None:
        threading.Thread(target=self._pump, name="chat-stdin", daemon=True).start()

    async def next(self) -> str | None:
        """The next line, or None at the end of input."""
        return await self._queue.get()

    def _pump(self) -> None:
        for line in _raw_lines():
            try:
                asyncio.run_coroutine_threadsafe(self._queue.put(line), self._loop).result()
            except (RuntimeError, concurrent.futures.CancelledError):
                return  # the loop is gone: the chat has ended
            if line is None:
                return


def _raw_lines() -> Iterator[str | None]:
    """Decoded lines from file descriptor 0, then None once at the end."""
    try:
        fd = sys.stdin.fileno() if sys.stdin is not None else -1
    except (OSError, ValueError):
        fd = -1
    pending = b""
    while fd >= 0:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            break
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            yield raw.decode("utf-8", errors="replace")
    if pending:
        yield pending.decode("utf-8", errors="replace")
    yield None


def _out(text: str) -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(f"! {text}", file=sys.stderr, flush=True)
