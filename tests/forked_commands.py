"""`orderchat` commands run in processes forked from one that has imported the app.

A test server is a process of its own, started with the command's own arguments and
environment, listening on a loopback port, as `python -m orderchat serve` is; a
command the tests run (`orderchat user add …`) is a process of its own whose output
they read. What a new interpreter would spend first, a second and a half of CPU to
import FastAPI, SQLAlchemy and the app, is spent once per test process: the standard
library's fork server imports it, then forks a process for each command. Only
imports happen before the fork; the app, its event loop and its threads are made in
the child, as in a process started afresh (the fork server reseeds `random` in each
child, and nothing of the app reads the environment or the clock on import).

`ORDERCHAT_TEST_COMMANDS=exec` starts each with a new interpreter instead.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

EXEC = os.environ.get("ORDERCHAT_TEST_COMMANDS") == "exec"

# What `serve` imports on its way to answering; whatever is left the child imports.
PRELOAD = [
    "tests.forked_commands",
    "orderchat.cli",
    "orderchat.api.app",
    "uvicorn",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.websockets.websockets_sansio_impl",
    "uvicorn.lifespan.on",
    "aiosqlite",
    "asyncpg",
    "redis.asyncio",
]

_forks = multiprocessing.get_context("forkserver")
_forks.set_forkserver_preload(PRELOAD)


def _output_to(fd: int, path: str) -> io.TextIOWrapper:
    """`fd` writing to the end of `path`, unbuffered as with PYTHONUNBUFFERED."""
    opened = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(opened, fd)
    os.close(opened)
    return io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), write_through=True)


def _run(argv: list[str], env: dict[str, str], stdout: str, stderr: str) -> None:
    """The child: `orderchat <argv>` with the environment it was started with."""
    sys.stdout = _output_to(1, stdout)
    sys.stderr = _output_to(2, stderr)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = ["orderchat", *argv]

    from orderchat.cli import main

    sys.exit(main(argv))


class ForkedCommand:
    """The `subprocess.Popen` calls the tests make, on a forked command."""

    def __init__(self, argv: list[str], env: dict[str, str], stdout: Path, stderr: Path) -> None:
        stdout.touch()
        stderr.touch()
        # Daemonic: a server a failed test left running is stopped when its test
        # process ends, rather than keeping that process from ending.
        self._process = _forks.Process(
            target=_run,
            args=(argv, env, str(stdout), str(stderr)),
            name=f"orderchat-{argv[0] if argv else ''}",
            daemon=True,
        )
        self._process.start()
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        pid = self._process.pid
        assert pid is not None
        return pid

    def poll(self) -> int | None:
        if self.returncode is None and self._process.exitcode is not None:
            self.returncode = self._process.exitcode
            self._process.close()
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._process.join(timeout)
        code = self.poll()
        if code is None:
            raise subprocess.TimeoutExpired("orderchat", timeout or 0)
        return code


def start(
    argv: list[str], env: dict[str, str], log_path: Path
) -> ForkedCommand | subprocess.Popen[bytes]:
    """`orderchat <argv>` as a process whose output, both streams, goes to `log_path`."""
    if EXEC:
        with log_path.open("wb") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "orderchat", *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**env, "PYTHONUNBUFFERED": "1"},
            )
    return ForkedCommand(argv, env, log_path, log_path)


def run(
    argv: list[str], env: dict[str, str], scratch: Path, timeout_s: float
) -> subprocess.CompletedProcess[str]:
    """`orderchat <argv>` to its end, as `subprocess.run(…, capture_output=True,
    text=True)` runs it; its output passes through files in `scratch`."""
    if EXEC:
        return subprocess.run(
            [sys.executable, "-m", "orderchat", *argv],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
        )
    scratch.mkdir(parents=True, exist_ok=True)
    stdout, stderr = scratch / "stdout", scratch / "stderr"
    command = ForkedCommand(argv, env, stdout, stderr)
    try:
        code = command.wait(timeout_s)
    except subprocess.TimeoutExpired:
        command.kill()
        command.wait()
        raise
    return subprocess.CompletedProcess(
        ["orderchat", *argv], code, stdout.read_text(), stderr.read_text()
    )
