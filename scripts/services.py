"""Throwaway PostgreSQL, Redis and nginx instances on loopback, for tests, benchmarks and
`make cluster`.

Each service lives in a directory of its own (data, sockets, config, logs), listens on
127.0.0.1 only, on a free port it keeps across `restart()`, and is started as a child
of this process so that it can be killed by pid for fault tests. Nothing here touches
the machine's own services or their ports.

PostgreSQL refuses to run as root: as root the cluster belongs to `nobody`, so its
directory must be reachable by `nobody` (use a directory under /tmp, not under /root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
# PostgreSQL's default of 100 is too few once tests run many servers, each with a pool.
PG_MAX_CONNECTIONS = 300
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_UNPRIVILEGED = "nobody"


class ServiceError(RuntimeError):
    """A service did not start, or stopped answering, with the tail of its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rpartition(")")[2].split()


def child_pids(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _proc_stat(int(entry.name))
        # fields[0] is the state, fields[1] the parent pid.
        if fields is not None and int(fields[1]) == parent:
            found.append(int(entry.name))
    return found


def cpu_seconds_of(pid: int, *, with_reaped: bool = False) -> float:
    """User plus system CPU time of a process; with `with_reaped`, also of its waited-for
    children, so that backends that came and went during a benchmark still count."""
    fields = _proc_stat(pid)
    if fields is None:
        return 0.0
    # After the name: state=0, ..., utime=11, stime=12, cutime=13, cstime=14.
    ticks = int(fields[11]) + int(fields[12])
    if with_reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _CLOCK_TICKS


def wait_until(ready: Any, timeout_s: float, proc: subprocess.Popen[bytes] | None) -> bool:
    """Poll `ready()` until it is true, the process exits, or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        with contextlib.suppress(Exception):
            if ready():
                return True
        time.sleep(0.05)
    return False


def dying_with_parent(argv: list[str], signal_name: str = "INT") -> list[str]:
    """`argv`, run so that it gets `signal_name` when the process that started it dies,
    and a killed test run or benchmark leaves no cluster behind. SIGINT is a fast
    shutdown for all three services.

    `setpriv` sets the signal after the switch to `nobody` (which would clear it) and
    then execs the service. It was a `preexec_fn`, but a child that runs Python code
    before exec hung: after the fork it dropped objects of threads it does not have,
    among them a video scaler of an earlier test, whose free waited on worker threads
    that exist only in the parent.
    """
    return ["setpriv", "--pdeathsig", signal_name, "--", *argv]


def _is_root() -> bool:
    return os.geteuid() == 0


def _stop_process(proc: subprocess.Popen[bytes] | None, sig: int) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)


class _Service:
    """Start/stop plumbing shared by the three services."""

    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def _fail(self, what: str) -> ServiceError:
        return ServiceError(f"{what}; log {self.log_path}:\n{log_tail(self.log_path)}")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def postgres_bin(name: str) -> str:
    """A PostgreSQL server program: Debian keeps them off PATH, per major version."""
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    for directory in reversed(versions):
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise ServiceError(f"{name} not found: install the postgresql package")
    return found


class Postgres(_Service):
    """A PostgreSQL cluster of its own in `base_dir/pgdata`, superuser `postgres`, trust
    authentication on loopback and on the Unix socket in `base_dir`.

    `fast=True` trades durability for speed (no fsync, asynchronous commit, no full page
    writes): for tests only, since benchmarks must measure a durable store.
    """

    def __init__(self, base_dir: Path, *, fast: bool = False) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.data_dir = self.base_dir / "pgdata"
        self.log_path = self.base_dir / "postgres.log"
        self.fast = fast
        self.port = 0

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ServiceError("postgres is not running")
        return self.proc.pid

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_base_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if self.port:
            self._launch()
            return
        for _ in range(3):  # another process may take the free port first
            self.port = free_port()
            try:
                self._launch()
                return
            except ServiceError:
                if "could not bind" not in log_tail(self.log_path, 10):
                    raise
        raise self._fail("postgres found no free port")

    def _prepare_base_dir(self) -> None:
        if not _is_root():
            return
        owner = pwd.getpwnam(_UNPRIVILEGED)
        os.chown(self.base_dir, owner.pw_uid, owner.pw_gid)
        for parent in self.base_dir.parents:
            if parent.stat().st_mode & 0o001 == 0:
                raise ServiceError(
                    f"{parent} is not searchable by {_UNPRIVILEGED}, who runs PostgreSQL:"
                    " chmod o+x it, or put the cluster under /tmp"
                )

    def _run_as(self) -> dict[str, Any]:
        """Popen arguments that drop root, which PostgreSQL insists on."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
        if not _is_root():
            return {"env": env, "cwd": self.base_dir}
        return {
            "env": {**env, "HOME": str(self.base_dir)},
            "cwd": self.base_dir,
            "user": _UNPRIVILEGED,
            "group": pwd.getpwnam(_UNPRIVILEGED).pw_gid,
            "extra_groups": [],
        }

    def _initdb(self) -> None:
        done = subprocess.run(
            [
                postgres_bin("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **self._run_as(),
        )
        if done.returncode != 0:
            raise ServiceError(f"initdb failed:\n{done.stdout}\n{done.stderr}")

    def _settings(self) -> list[str]:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.base_dir),
            "max_connections": str(PG_MAX_CONNECTIONS),
            "deadlock_timeout": "100ms",
            "shared_buffers": "128MB",
            "logging_collector": "off",
            "log_min_messages": "warning",
        }
        if self.fast:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        return [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]

    def _launch(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                dying_with_parent(
                    [postgres_bin("postgres"), "-D", str(self.data_dir), *self._settings()]
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._run_as(),
            )
        if not wait_until(self._answers, READY_TIMEOUT_S, self.proc):
            self._reap()
            raise self._fail(f"postgres did not become ready on port {self.port}")

    def _answers(self) -> bool:
        import psycopg

        with psycopg.connect(self.admin_url, connect_timeout=2) as con:
            return con.execute("SELECT 1").fetchone() == (1,)

    def _reap(self) -> None:
        """Stop a half-started postmaster, so that a retry finds its port and data dir free."""
        _stop_process(self.proc, signal.SIGQUIT)
        self.proc = None

    def stop(self) -> None:
        """Fast shutdown: open sessions are ended, the data is kept."""
        _stop_process(self.proc, signal.SIGINT)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would, and wait for its backends to go."""
        if self.proc is None:
            return
        backends = child_pids(self.proc.pid)
        self.proc.kill()
        self.proc.wait(timeout=STOP_TIMEOUT_S)
        self.proc = None
        # Backends notice the dead postmaster and exit; a new one cannot start while
        # they still hold the old shared memory.
        wait_until(lambda: not any(Path(f"/proc/{p}").exists() for p in backends), 20, None)

    def restart(self) -> None:
        """Stop (or clean up after a kill), then start again on the same port and data."""
        self.stop()
        self.start()

    def pids(self) -> list[int]:
        if self.proc is None:
            return []
        return [self.proc.pid, *child_pids(self.proc.pid)]

    def cpu_seconds(self) -> float:
        """CPU used by the whole cluster so far: the postmaster, its live children, and the
        children it has already reaped (short-lived backends)."""
        if self.proc is None:
            return 0.0
        total = cpu_seconds_of(self.proc.pid, with_reaped=True)
        return total + sum(cpu_seconds_of(pid) for pid in child_pids(self.proc.pid))

    # --- administration ------------------------------------------------------

    def admin_sql(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as con:
            cur = con.execute(sql.encode(), params or None)
            return cur.fetchall() if cur.description else []

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create `name` (from `template` when given); returns its URL."""
        sql = f"CREATE DATABASE {_ident(name)}"
        if template is not None:
            sql += f" TEMPLATE {_ident(template)}"
        self.admin_sql(sql)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop `name` if it exists, ending its sessions first (a killed server may leave some)."""
        self.admin_sql(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")


def _ident(name: str) -> str:
    """A quoted SQL identifier; the names come from tests, never from users."""
    return '"' + name.replace('"', '""') + '"'


class Redis(_Service):
    """A redis-server without persistence: the bus carries no state worth keeping."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.log_path = self.base_dir / "redis.log"
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ServiceError("redis is not running")
        return self.proc.pid

    def start(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self.port:
            self._launch()
            return
        for _ in range(3):  # another process may take the free port first
            self.port = free_port()
            try:
                self._launch()
                return
            except ServiceError:
                if "Address already in use" not in log_tail(self.log_path, 10):
                    raise
        raise self._fail("redis found no free port")

    def _launch(self) -> None:
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise ServiceError("redis-server not found: install the redis-server package")
        args = [
            redis_server,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.base_dir),
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
            "--maxclients",
            "10000",
        ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                dying_with_parent(args),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not wait_until(self._answers, READY_TIMEOUT_S, self.proc):
            _stop_process(self.proc, signal.SIGKILL)
            self.proc = None
            raise self._fail(f"redis did not become ready on port {self.port}")

    def _answers(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")

    def stop(self) -> None:
        _stop_process(self.proc, signal.SIGTERM)
        self.proc = None

    def kill(self) -> None:
        _stop_process(self.proc, signal.SIGKILL)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cpu_seconds(self) -> float:
        return 0.0 if self.proc is None else cpu_seconds_of(self.proc.pid, with_reaped=True)


NGINX_CONF = """\
daemon off;
worker_processes {workers};
{user}pid {base}/nginx.pid;
error_log {base}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {base}/tmp/body;
    proxy_temp_path {base}/tmp/proxy;
    fastcgi_temp_path {base}/tmp/fastcgi;
    uwsgi_temp_path {base}/tmp/uwsgi;
    scgi_temp_path {base}/tmp/scgi;
    # WebSocket upgrades pass through; other requests reuse upstream keep-alive connections.
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        '' '';
    }}
    # Round robin, no stickiness: any node must serve any client.
    upstream orderchat {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{listen};
        client_max_body_size 0;
        location / {{
            proxy_pass http://orderchat;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 2s;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
            # A node that refuses or times out is skipped for the next one.
            proxy_next_upstream error timeout;
            proxy_request_buffering off;
            proxy_buffering off;
        }}
    }}
}}
"""


class Nginx(_Service):
    """nginx in front of the nodes: one loopback port, round robin over `upstream_ports`."""

    def __init__(
        self, base_dir: Path, listen_port: int, upstream_ports: list[int], *, workers: int = 1
    ) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.log_path = self.base_dir / "error.log"
        self.conf_path = self.base_dir / "nginx.conf"
        self.listen_port = listen_port
        self.upstream_ports = list(upstream_ports)
        self.workers = workers

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listen_port}"

    def render(self) -> str:
        servers = "\n".join(
            f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=2s;"
            for port in self.upstream_ports
        )
        # As root, nginx's workers drop to nobody; Debian has no group called nobody.
        user = "user nobody nogroup;\n" if _is_root() else ""
        return NGINX_CONF.format(
            workers=self.workers,
            user=user,
            base=self.base_dir,
            servers=servers,
            listen=self.listen_port,
        )

    def start(self) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists():
            raise ServiceError("nginx not found: install the nginx package")
        (self.base_dir / "tmp").mkdir(parents=True, exist_ok=True)
        if _is_root():
            self.base_dir.chmod(0o755)  # workers (nobody) write their temp files inside
        self.conf_path.write_text(self.render())
        with (self.base_dir / "nginx.out").open("ab") as out:
            self.proc = subprocess.Popen(
                dying_with_parent(
                    [
                        nginx,
                        "-c",
                        str(self.conf_path),
                        "-p",
                        str(self.base_dir),
                        "-e",
                        str(self.log_path),
                    ]
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not wait_until(lambda: port_open(self.listen_port), READY_TIMEOUT_S, self.proc):
            _stop_process(self.proc, signal.SIGKILL)
            self.proc = None
            raise self._fail(f"nginx did not listen on port {self.listen_port}")

    def stop(self) -> None:
        # SIGTERM is nginx's fast shutdown: open WebSocket connections close at once.
        _stop_process(self.proc, signal.SIGTERM)
        self.proc = None

    def cpu_seconds(self) -> float:
        if self.proc is None:
            return 0.0
        total = cpu_seconds_of(self.proc.pid, with_reaped=True)
        return total + sum(cpu_seconds_of(pid) for pid in child_pids(self.proc.pid))
