"""Slash commands typed into a message: `/name ARGS`, answered in the same conversation.

A command is a name (with any other spellings), a parser that turns the text
after the name into arguments, and a handler. The send path knows none of
them: it asks the `Commands` given to it for the command a message starts
with, and runs the handler. Adding a command is adding one `Command` where
the application is wired (`api/app.py`).

A command is one of two sorts:
- posted (`handle`): the message is an ordinary message, sent, acked and
  delivered like any other. Handlers run in the same group-commit transaction,
  after every message of the batch is appended, so their answer commits with
  the question. A handler must not raise: the message was accepted already,
  and one failing answer would undo the whole batch.
- private (`answer`): a query, not a message. Nothing is stored or shown to
  anyone else; the answer is a `command_reply` frame for the asker's own
  connections, which also settles the send's `ref` (see docs/protocol.md).
  An answer may raise: the asker gets an `error` and nothing changed.

Spellings: `/stock tent` needs the space, so that `/stocktake` is not a
`/stock`. Chinese is typed without spaces, so a spelling listed in `glued`
also matches with its arguments run on (`/库存帐篷` asks for 帐篷).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from orderchat.core.model import Conversation, User, UserKind
from orderchat.core.texts import DEFAULT_LANGUAGE
from orderchat.protocol.events import CommandReply
from orderchat.services.writer import WriteTxn
from orderchat.storage.engine import Connection

Args = TypeVar("Args")


@dataclass(frozen=True, slots=True)
class CommandCall:
    """Who typed a command, where, and the sequence number of the message carrying it."""

    user: User
    conv: Conversation
    seq: int


@dataclass(frozen=True, slots=True)
class QueryCall:
    """Who asked a private query, where, and the `ref` of the send that carried it."""

    user: User
    conv: Conversation
    ref: str
    language: str = DEFAULT_LANGUAGE  # the asking connection's: the answer is worded in it


@dataclass(frozen=True, slots=True)
class Command(Generic[Args]):
    name: str  # typed as `/name ARGS`
    parse: Callable[[str], Args]  # the text after the name (stripped) -> the arguments
    # A posted command's handler, run in the transaction that stores the message.
    handle: Callable[[WriteTxn, CommandCall, Args], Awaitable[None]] | None = None
    aliases: tuple[str, ...] = ()  # other spellings, each followed by a space or nothing
    glued: tuple[str, ...] = ()  # spellings the arguments may follow with no space
    # A customer's `/name` is just a message, unless the command says otherwise.
    staff_only: bool = True
    # A private query's answer, read-only; a command with one is never stored.
    answer: Callable[[Connection, QueryCall, Args], Awaitable[CommandReply]] | None = None

    @property
    def private(self) -> bool:
        return self.answer is not None

    def allows(self, user: User) -> bool:
        return not self.staff_only or user.kind is UserKind.STAFF


@dataclass(frozen=True, slots=True)
class Invocation:
    """A command found in a message, with its arguments parsed."""

    command: Command[Any]
    args: Any

    async def run(self, tx: WriteTxn, call: CommandCall) -> None:
        if self.command.handle is not None:
            await self.command.handle(tx, call, self.args)

    async def ask(self, conn: Connection, call: QueryCall) -> CommandReply:
        assert self.command.answer is not None, "only a private command is asked"
        return await self.command.answer(conn, call, self.args)


class Commands:
    """The commands a server answers, looked up by the text of a message."""

    def __init__(self, commands: Iterable[Command[Any]] = ()) -> None:
        self._spaced: dict[str, Command[Any]] = {}
        glued: dict[str, Command[Any]] = {}
        for command in commands:
            for spelling in (command.name, *command.aliases):
                self._claim(self._spaced, spelling, command)
            for spelling in command.glued:
                self._claim(glued, spelling, command)
        # Longest first, so that one glued spelling that starts another loses to it.
        self._glued = sorted(glued.items(), key=lambda item: -len(item[0]))

    @staticmethod
    def _claim(table: dict[str, Command[Any]], spelling: str, command: Command[Any]) -> None:
        if not spelling or spelling.startswith("/") or any(c.isspace() for c in spelling):
            raise ValueError(f"command spelling {spelling!r}: a word without '/' or spaces")
        if spelling in table:
            raise ValueError(f"two commands are spelled /{spelling}")
        table[spelling] = command

    def find(self, user: User, text: str) -> Invocation | None:
        """The command `text` starts with, if `user` may run it; None for an ordinary message."""
        stripped = text.strip()
        if not stripped.startswith("/"):
            return None
        for spelling, glued in self._glued:
            if stripped.startswith(spelling, 1):
                return _invoke(glued, user, stripped[1 + len(spelling) :].strip())
        head = stripped.split(maxsplit=1)
        spaced = self._spaced.get(head[0][1:])
        if spaced is None:
            return None
        return _invoke(spaced, user, head[1].strip() if len(head) > 1 else "")


def _invoke(command: Command[Any], user: User, rest: str) -> Invocation | None:
    if not command.allows(user):
        return None
    return Invocation(command, command.parse(rest))
