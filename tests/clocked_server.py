"""A server whose clock the test sets: the whole app, on a thread of the test's process.

Timings of minutes and hours (the urgent ladder's reminders, retry backoff) are
checked by moving the server's clock rather than by waiting. Everything else is
what `orderchat serve` runs: the same app, uvicorn on a loopback port, the same
database file; only the process is the test's.

    server = ClockedServer(tmp_path)
    server.start()
    server.clock.advance(300)  # five minutes later, for every part of the server
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from orderchat.api.app import create_app
from orderchat.core.passwords import PasswordCost
from orderchat.settings import Settings
from tests.support import ServerProcess


class SteppedClock:
    """The system's time, plus however far the test has moved it (never back)."""

    def __init__(self) -> None:
        self._ahead_ms = 0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self._ahead_ms

    def monotonic_s(self) -> float:
        return time.monotonic() + self._ahead_ms / 1000

    def advance(self, seconds: float) -> None:
        assert seconds >= 0, "time only moves forward"
        with self._lock:
            self._ahead_ms += int(seconds * 1000)


@dataclass
class ClockedServer(ServerProcess):
    """ServerProcess's helpers (admin, users, logins, rows) over a server in this process."""

    settings: dict[str, Any] = field(default_factory=dict)
    clock: SteppedClock = field(default_factory=SteppedClock)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        settings = Settings(
            data_dir=self.data_dir,
            host="127.0.0.1",
            port=self.port,
            password_cost=PasswordCost.from_env(os.environ),
            **self.settings,
        )
        config = uvicorn.Config(
            create_app(settings, self.clock),
            host="127.0.0.1",
            port=self.port,
            loop="asyncio",
            log_level="warning",
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="clocked-server")
        self._thread.start()
        thread = self._thread
        self.wait_healthy(thread.is_alive)

    def kill(self, sig: int = 0) -> None:
        """Stop it (a thread cannot be killed: it is stopped as SIGTERM stops a server)."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=20)
        self._server = self._thread = None
