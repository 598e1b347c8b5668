"""A throwaway coturn on loopback, checking credentials the TURN REST API way
(for the calls benchmark and the relay tests).

Started the way docs/calls.md configures it for a shop (`use-auth-secret`
with a shared secret), except that it listens and relays on 127.0.0.1 only
and allows loopback peers, so calls between two test peers on this machine
go through it and nowhere else.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench._server import free_port

TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"


@dataclass(frozen=True)
class TurnServer:
    port: int
    secret: str
    log_path: Path

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _udp_answers(port: int) -> bool:
    """A STUN binding request to the port gets an answer once coturn listens."""
    request = bytes.fromhex("0001 0000 2112a442".replace(" ", "")) + b"orderchattest"[:12]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        try:
            sock.sendto(request, ("127.0.0.1", port))
            return bool(sock.recvfrom(2048)[0])
        except OSError:
            return False


@contextlib.contextmanager
def turn_server(work_dir: Path, secret: str) -> Iterator[TurnServer]:
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # Relay ports near the listening port: parallel test workers never share a range.
    low = 20_000 + (port % 400) * 100
    log_path = work_dir / "turnserver.log"
    args = [
        TURNSERVER,
        "--listening-ip", "127.0.0.1",
        "--relay-ip", "127.0.0.1",
        "--listening-port", str(port),
        "--min-port", str(low),
        "--max-port", str(low + 99),
        "--use-auth-secret",
        "--static-auth-secret", secret,
        "--realm", "orderchat.test",
        "--allow-loopback-peers",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--no-multicast-peers",
        "--fingerprint",
        "--userdb", str(work_dir / "turndb"),
        "--pidfile", str(work_dir / "turnserver.pid"),
        "--log-file", "stdout",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while not _udp_answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                log = log_path.read_text(errors="replace") if log_path.exists() else ""
                raise RuntimeError(f"turnserver did not start:\n{log[-3000:]}")
            time.sleep(0.1)
        yield TurnServer(port, secret, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
