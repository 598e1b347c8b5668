"""`orderchat chat` as people and scripts use it: real processes, real pipes.

Each chat runs as its own `python -m orderchat chat` process against one real
server; the tests type into standard input and read standard output.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator

import pytest

from tests.support import Account, ServerProcess

WAIT_S = 20.0
CLOCK = r"\[\d\d:\d\d\]"


class Chat:
    """One running `orderchat chat` process."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    @classmethod
    async def start(cls, server: ServerProcess, account: Account, *args: str) -> Chat:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "orderchat", "chat",
            "--server", server.base_url, "--user", account.username, *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "ORDERCHAT_PASSWORD": account.password},
        )  # fmt: skip
        return cls(proc)

    async def expect(self, pattern: str, timeout_s: float = WAIT_S) -> str:
        """Read output lines until one matches `pattern` (a regex searched in the line)."""
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    raw = await self.proc.stdout.readline()
                    if not raw:
                        raise AssertionError(f"output ended before {pattern!r}: {self.lines}")
                    line = raw.decode().rstrip("\n")
                    self.lines.append(line)
                    if re.search(pattern, line):
                        return line
        except TimeoutError:
            raise AssertionError(f"no line matching {pattern!r} in {self.lines}") from None

    async def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    async def end_input(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        await self.proc.stdin.wait_closed()

    async def exit_code(self, timeout_s: float = WAIT_S) -> int:
        async with asyncio.timeout(timeout_s):
            return await self.proc.wait()

    async def stderr(self) -> str:
        assert self.proc.stderr is not None
        async with asyncio.timeout(WAIT_S):
            return (await self.proc.stderr.read()).decode()

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture
async def chats() -> AsyncIterator[list[Chat]]:
    """Chats started by a test; any still running at the end are killed."""
    started: list[Chat] = []
    yield started
    for chat in started:
        await chat.kill()


async def start(chats: list[Chat], server: ServerProcess, account: Account, *args: str) -> Chat:
    chat = await Chat.start(server, account, *args)
    chats.append(chat)
    await chat.expect(r"^-- signed in as ")
    return chat


async def test_a_line_typed_in_one_chat_appears_in_the_other(
    server: ServerProcess, chats: list[Chat]
) -> None:
    ann, bob = server.user("sales"), server.user("warehouse")
    conv = server.conversation(ann, "channel", [bob], title="cli-pair")["id"]
    ann_chat = await start(chats, server, ann, "--conv", conv)
    await ann_chat.expect(rf"^-- conversation #cli-pair \({conv}\)$")
    bob_chat = await start(chats, server, bob, "--channel", "cli-pair")
    await bob_chat.expect(rf"^-- conversation #cli-pair \({conv}\)$")

    await ann_chat.type("hello from ann")
    await bob_chat.expect(rf"^{CLOCK} {ann.username}: hello from ann$")
    await ann_chat.expect(rf"^{CLOCK} {ann.username}: hello from ann$")  # ann's own echo

    await bob_chat.type("hi ann, line two")
    await ann_chat.expect(rf"^{CLOCK} {bob.username}: hi ann, line two$")

    await bob_chat.type("/quit")
    assert await bob_chat.exit_code() == 0
    await ann_chat.end_input()
    assert await ann_chat.exit_code() == 0


async def test_direct_chat_history_and_commands(server: ServerProcess, chats: list[Chat]) -> None:
    ann, bob = server.user("sales"), server.user("warehouse")
    ann_chat = await start(chats, server, ann, "--to", bob.username)
    await ann_chat.expect(rf"^-- conversation @{bob.username} ")
    await ann_chat.type("first direct line")
    await ann_chat.expect(rf"^{CLOCK} {ann.username}: first direct line$")

    # Opening the same pair from the other side prints what was said so far.
    bob_chat = await start(chats, server, bob, "--to", ann.username)
    await bob_chat.expect(rf"^-- conversation @{ann.username} ")
    await bob_chat.expect(rf"^{CLOCK} {ann.username}: first direct line$")

    await bob_chat.type("/who")
    await bob_chat.expect(rf"^-- {ann.username} \(@{ann.username}\)$")
    await bob_chat.expect(rf"\(@{bob.username}\) \(you\)$")
    await bob_chat.type("/history 5")
    line = await bob_chat.expect(rf"^#\d+ {CLOCK} {ann.username}: first direct line$")
    seq = int(line.split()[0].lstrip("#"))

    await ann_chat.type("/recall")
    await bob_chat.expect(rf"^-- {ann.username} recalled message #{seq}$")
    await bob_chat.type("/history 5")
    await bob_chat.expect(rf"^#{seq} {CLOCK} {ann.username}: \(recalled\)$")

    await bob_chat.type("//slash kept")
    await ann_chat.expect(rf"^{CLOCK} {bob.username}: /slash kept$")
    await ann_chat.type("/list")
    await ann_chat.expect(r"^\* c_\S+  @" + re.escape(bob.username) + r"  \[direct\]")

    await ann_chat.type("/quit")
    await bob_chat.end_input()
    assert await ann_chat.exit_code() == 0
    assert await bob_chat.exit_code() == 0


async def test_errors_are_reported_without_ending_the_chat(
    server: ServerProcess, chats: list[Chat]
) -> None:
    ann = server.user("sales")
    chat = await start(chats, server, ann)
    await chat.expect(r"^-- no conversation open")
    await chat.type("nowhere to send this")
    await chat.type("/nonsense")
    await chat.type("/open c_doesnotexist")
    await chat.type("/quit")
    assert await chat.exit_code() == 0
    errors = await chat.stderr()
    assert "! no conversation open" in errors
    assert "! unknown command /nonsense" in errors
    assert "! /open: not_found" in errors


async def test_wrong_password_exits_with_an_error(server: ServerProcess, chats: list[Chat]) -> None:
    ann = server.user("sales")
    ann.password = "not the password"
    chat = await Chat.start(server, ann)
    chats.append(chat)
    assert await chat.exit_code() == 1
    assert "wrong username or password" in await chat.stderr()
