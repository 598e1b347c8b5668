"""The reference targets as processes: the relay and the durable relay of `bench.relay`.

`running_relay(members, durable=...)` writes the conversations into a scratch
directory under `bench/.work/`, starts `python -m bench.relay` on a free
loopback port, waits for its `ready`, and stops it afterwards (SIGTERM, then
SIGKILL if it does not go). A durable relay's SQLite file is in the same
scratch directory, so it is on the filesystem the OrderChat server uses.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench._server import free_port, scratch_dir, stop_process

START_TIMEOUT_S = 30.0


class RelayError(RuntimeError):
    """The relay could not be started; the message carries its log."""


@dataclass
class RunningRelay:
    """One `python -m bench.relay` process."""

    port: int
    durable: bool
    work: Path
    proc: subprocess.Popen[bytes] | None = None
    returncode: int | None = None  # once stopped: 0 for a clean stop on SIGTERM

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RelayError("the relay is not running")
        return self.proc.pid

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def members_path(self) -> Path:
        return self.work / "members.json"

    @property
    def db_path(self) -> Path | None:
        """The SQLite file of a durable relay (None for the plain relay)."""
        return self.work / "relay.db" if self.durable else None

    @property
    def log_path(self) -> Path:
        return self.work / "relay.log"

    def command(self) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "bench.relay",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--members",
            str(self.members_path),
        ]
        if self.db_path is not None:
            command += ["--durable", "--db", str(self.db_path)]
        return command

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=Path(__file__).resolve().parent.parent,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if "ready" in self.log_tail().splitlines():
                return
            if self.proc.poll() is not None:
                raise RelayError(f"the relay exited early:\n{self.log_tail()}")
            time.sleep(0.02)
        raise RelayError(f"the relay did not print ready:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a timeout; nothing when it already stopped."""
        if self.proc is None:
            return
        self.returncode = stop_process(self.proc)
        self.proc = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no relay log)"
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def running_relay(members: Mapping[str, Sequence[str]], *, durable: bool) -> Iterator[RunningRelay]:
    """A started relay for these conversations (id -> member ids), stopped afterwards."""
    prefix = "durable-relay-" if durable else "relay-"
    with scratch_dir(prefix) as work:
        relay = RunningRelay(port=free_port(), durable=durable, work=work)
        document = {"convs": {conv: list(ids) for conv, ids in members.items()}}
        relay.members_path.write_text(json.dumps(document), encoding="utf-8")
        try:
            relay.start()
            yield relay
        finally:
            relay.stop()
