"""A real `orderchat serve` process for a benchmark, and a watch on its memory.

The server runs from this interpreter on a free loopback port, with its data dir
in a scratch directory under `bench/.work/`: inside the repository, so that the
server's files and a workload's local reference files are on the same filesystem.
The scratch directory is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
WORK_ROOT = BENCH_DIR / ".work"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
ADMIN_NAME = "bench-admin"
ADMIN_PASSWORD = "bench-admin-password"


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory under `bench/.work/`, removed with everything in it afterwards."""
    WORK_ROOT.mkdir(exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=WORK_ROOT))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(OSError):
            WORK_ROOT.rmdir()  # only when no other run is using it


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then SIGKILL after `STOP_TIMEOUT_S`; the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
    return proc.returncode


class ServerError(RuntimeError):
    """The server could not be started or set up; the message carries its log."""


@dataclass
class BenchServer:
    """One `orderchat serve` process with an admin signed in and a channel to use."""

    data_dir: Path
    extra_args: tuple[str, ...] = ()
    # Another revision's `src/` to run instead of this one (a baseline measured in the
    # same run); its package is found first on PYTHONPATH.
    source: Path | None = None
    # Variables added to the server's environment (ORDERCHAT_SMTP_*, say).
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    token: str = ""
    conversation: str = ""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ServerError("the server is not running")
        return self.proc.pid

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "orderchat",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--rate-limits",
            "off",
            *self.extra_args,
        ]

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._environment(),
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"the server exited early:\n{self.log_tail()}")
            try:
                resp = httpx.get(f"{self.base_url}/healthz", timeout=1, trust_env=False)
                if resp.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise ServerError(f"the server did not become healthy:\n{self.log_tail()}")

    def _environment(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        if self.source is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(self.source), env.get("PYTHONPATH", "")) if p
            )
        return env

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        self.proc = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def set_up(self, title: str = "bench") -> None:
        """Make the first admin with the CLI, sign in, and open a channel."""
        made = subprocess.run(
            [
                sys.executable,
                "-m",
                "orderchat",
                "user",
                "add",
                ADMIN_NAME,
                "--password",
                ADMIN_PASSWORD,
                "--role",
                "admin",
                "--data-dir",
                str(self.data_dir),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if made.returncode != 0:
            raise ServerError(f"`orderchat user add` failed:\n{made.stdout}{made.stderr}")
        with httpx.Client(base_url=self.base_url, timeout=30, trust_env=False) as client:
            resp = client.post(
                "/api/auth/login", json={"username": ADMIN_NAME, "password": ADMIN_PASSWORD}
            )
            if resp.status_code != 200:
                raise ServerError(f"login failed: {resp.status_code} {resp.text}")
            self.token = str(resp.json()["token"])
            resp = client.post(
                "/api/conversations",
                json={"kind": "channel", "title": title, "members": []},
                headers=self.auth_headers(),
            )
            if resp.status_code not in (200, 201):
                raise ServerError(f"creating a channel failed: {resp.status_code} {resp.text}")
            self.conversation = str(resp.json()["id"])

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, timeout: httpx.Timeout | float = 30.0) -> httpx.Client:
        """An HTTP client signed in as the admin; one keep-alive connection is reused."""
        return httpx.Client(
            base_url=self.base_url,
            headers=self.auth_headers(),
            timeout=timeout,
            trust_env=False,
        )


@contextlib.contextmanager
def running_server(
    data_dir: Path, extra_args: tuple[str, ...] = (), source: Path | None = None
) -> Iterator[BenchServer]:
    """A started and set-up server, stopped afterwards whatever happens."""
    server = BenchServer(data_dir, extra_args, source)
    try:
        server.start()
        server.set_up()
        yield server
    finally:
        server.stop()


def _status_kib(pid: int, key: str) -> int | None:
    """A `kB` field of `/proc/PID/status` (VmRSS, VmHWM), or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as children:
                found.extend(int(child) for child in children.read().split())
        except (OSError, ValueError):
            continue
    return found


def tree_rss_kib(pid: int) -> int:
    """The resident memory of a process and all its descendants, in KiB."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        total += _status_kib(current, "VmRSS") or 0
        pending.extend(_children(current))
    return total


def rss_kib(pid: int) -> int:
    return _status_kib(pid, "VmRSS") or 0


class RssMonitor:
    """The peak resident memory of a server process (and its children) over a phase.

    Two measures, and the larger wins: the kernel's high-water mark VmHWM, reset
    at the start of the phase through `/proc/PID/clear_refs` where that is
    allowed, and VmRSS of the whole process tree sampled every 20 ms.
    """

    def __init__(self, pid: int, interval_s: float = 0.02) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.sampled_peak_kib = 0
        self.hwm_kib: int | None = None
        self.hwm_was_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-monitor", daemon=True)

    def _sample(self) -> None:
        while True:
            self.sampled_peak_kib = max(self.sampled_peak_kib, tree_rss_kib(self.pid))
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> RssMonitor:
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w", encoding="ascii") as clear_refs:
                clear_refs.write("5")
            self.hwm_was_reset = True
        except OSError:
            self.hwm_was_reset = False
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sampled_peak_kib = max(self.sampled_peak_kib, tree_rss_kib(self.pid))
        self.hwm_kib = _status_kib(self.pid, "VmHWM")

    @property
    def peak_kib(self) -> int:
        """The phase's peak; VmHWM counts only when it was reset at the phase's start."""
        if self.hwm_was_reset and self.hwm_kib is not None:
            return max(self.sampled_peak_kib, self.hwm_kib)
        return self.sampled_peak_kib
