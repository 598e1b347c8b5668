"""How a `Client` behaves: timeouts, heartbeats, backoff and buffering, with reasons."""

from __future__ import annotations

from dataclasses import dataclass

MAX_DEVICE_CHARS = 64


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Tuning for a `Client`; the defaults suit an interactive application."""

    # Names this connection among the user's devices (1-64 characters).
    device: str = "python-sdk"
    # Opening the socket and getting `welcome`; also how long entering
    # `async with Client(...)` waits for the first connection.
    connect_timeout_s: float = 10.0
    # How long `send`/`recall` wait for the ack, across reconnects.
    ack_timeout_s: float = 60.0
    write_timeout_s: float = 10.0
    # A ping every ~15 s keeps NATs and proxies from idling the socket out. A
    # live server answers each ping, so 45 s without any frame (three missed
    # pongs) means the connection is dead even when TCP has not noticed.
    heartbeat_interval_s: float = 15.0
    dead_after_s: float = 45.0
    # Reconnect waits start near `backoff_initial_s` and double up to `backoff_max_s`.
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    close_timeout_s: float = 2.0
    http_timeout_s: float = 10.0
    # Events buffered for the application; when full, the client stops reading
    # and the server eventually drops it (4008) to be resumed later (G7).
    max_buffered_events: int = 10_000
    # The language the server words its errors in ("zh-CN" or "en"): sent as the
    # hello's `language` and as Accept-Language. None leaves the server's default, zh-CN.
    language: str | None = None

    def __post_init__(self) -> None:
        # Caught here, a bad device name is a clear error; sent in hello, it
        # would be refused again on every reconnect.
        if not 1 <= len(self.device) <= MAX_DEVICE_CHARS:
            raise ValueError(f"device must be 1-{MAX_DEVICE_CHARS} characters")
        if self.max_buffered_events < 1:
            raise ValueError("max_buffered_events must be at least 1")
