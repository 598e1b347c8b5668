"""A shop's endpoint on loopback: it records every delivery, and can fail on purpose.

It checks nothing itself; the tests check each recorded delivery the way a
receiver must (HMAC-SHA256 over "<timestamp>.<body>", the delivery id),
written here with `hmac` alone, not with the server's own signing code.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float = 0.0  # time.time() once the body was read

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def delivery(self) -> str:
        return self.headers["x-orderchat-delivery"]


@dataclass
class Receiver:
    port: int = 0
    received: list[Received] = field(default_factory=list)
    # Answer this status to the next `fail_next` requests (then 200).
    fail_next: int = 0
    fail_status: int = 500
    answer: bytes = b'{"errcode":0,"errmsg":"ok"}'
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(min(length, 1 << 20))
                received_at = time.time()
                with receiver._lock:
                    failing = receiver.fail_next > 0
                    if failing:
                        receiver.fail_next -= 1
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.received.append(Received(self.path, headers, body, received_at))
                status = receiver.fail_status if failing else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(receiver.answer)))
                self.end_headers()
                self.wfile.write(receiver.answer)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        with self._lock:
            raise AssertionError(f"{len(self.received)} deliveries of {count} in {timeout_s} s")


@contextmanager
def receiving(port: int = 0) -> Iterator[Receiver]:
    receiver = Receiver(port=port)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


def signature_ok(secret: str, received: Received, now_s: float, window_s: float = 300) -> bool:
    stamp = received.headers.get("x-orderchat-timestamp", "")
    sent = received.headers.get("x-orderchat-signature", "")
    if not stamp.isdigit() or abs(now_s - int(stamp)) > window_s:
        return False
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + received.body, hashlib.sha256)
    return hmac.compare_digest(sent, "sha256=" + mac.hexdigest())
