"""Several OrderChat nodes behind nginx on this machine, the way docs/deploy.md runs them.

    python scripts/cluster.py [--nodes 2] [--port 8000] [--data-dir ./orderchat-cluster] [--fresh]

Starts, on loopback ports: PostgreSQL with durable settings, Redis, the first
node with `--demo` (so the demo shop is seeded once, by one node), then the
other nodes, then nginx in front of them all. Prints the address and the demo
accounts, and streams every node's log with the node's name in front.

The nodes share one data directory, as nodes on one machine do in production.
Everything lives under `--data-dir` (the database's files included), so a
second run finds the same shop; `--fresh` starts over. `DATA_DIR/cluster.json`
says what runs where (each node's name, pid and port) once the cluster is up,
for people and tests that kill a node on purpose.

A node that dies is started again, as systemd's `Restart=always` would. Ctrl-C
or SIGTERM stops everything in order: nginx, the nodes, Redis, PostgreSQL; so
does a failure at start-up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import httpx

from orderchat.demo.seed import DEMO_PASSWORD, STAFF

try:
    from scripts import services
except ModuleNotFoundError:  # run as a file, `python scripts/cluster.py`: scripts/ is on the path
    import services  # type: ignore[import-not-found,no-redef]

DATABASE = "orderchat"
# A node seeding the demo shop into an empty PostgreSQL takes several seconds
# on a busy machine; the others only migrate (nothing) and start.
NODE_START_TIMEOUT_S = 90.0
NODE_STOP_TIMEOUT_S = 20.0
# Restarting a node that keeps dying at once would only fill the screen.
MAX_QUICK_DEATHS = 3
QUICK_DEATH_S = 10.0
# The file that marks a directory as this script's, so `--fresh` never deletes
# a directory it did not make.
MARKER = ".orderchat-cluster"


class Stopped(Exception):
    """Ctrl-C or SIGTERM: stop everything and leave."""


class ClusterError(Exception):
    """The cluster could not be started or kept running."""


@dataclass
class Node:
    name: str
    port: int
    demo: bool
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    reader: threading.Thread | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Output:
    """Every node's lines on one terminal, whole, with the node's name in front."""

    def __init__(self, cluster_url: str) -> None:
        self._lock = threading.Lock()
        self._cluster_url = cluster_url

    def say(self, text: str) -> None:
        with self._lock:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def follow(self, node: Node, stream: IO[bytes]) -> None:
        """Copy a node's output to the terminal and to its log file until it ends.

        A node logs links (customer pages, the first admin's) with its own
        address; they are shown with the cluster's, so that every link on the
        screen goes through nginx.
        """
        own, cluster = f"{node.url}/", f"{self._cluster_url}/"
        width = len(node.name)
        with node.log_path.open("ab") as log:
            for raw in stream:
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.say(f"{node.name:<{width}} | {line.replace(own, cluster)}")


_stopping = threading.Event()


def _raise_stopped(signum: int, _frame: FrameType | None) -> None:
    """The first Ctrl-C or SIGTERM stops the cluster; more while it stops are ignored."""
    if _stopping.is_set():
        return
    _stopping.set()
    raise Stopped(signal.Signals(signum).name)


def prepare(data_dir: Path, fresh: bool) -> None:
    """The data directory, emptied first with `--fresh` if it is one of ours."""
    if fresh and data_dir.exists():
        if not (data_dir / MARKER).exists() and any(data_dir.iterdir()):
            raise ClusterError(f"{data_dir} was not made by this script; not deleting it")
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER).touch()
    (data_dir / "logs").mkdir(exist_ok=True)
    (data_dir / "cluster.json").unlink(missing_ok=True)


def start_node(node: Node, database_url: str, redis_url: str, output: Output) -> None:
    """Start one node and wait until it answers /healthz."""
    command = [
        sys.executable,
        "-m",
        "orderchat",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(node.port),
        "--data-dir",
        str(node.data_dir),
        "--database",
        database_url,
        "--redis",
        redis_url,
        "--node-name",
        node.name,
    ]
    if node.demo:
        command.append("--demo")
    node.proc = subprocess.Popen(
        # SIGTERM, a graceful stop, when this script dies, even by SIGKILL.
        services.dying_with_parent(command, "TERM"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # Its own session: Ctrl-C reaches this script alone, which then stops
        # the nodes in order instead of all at once.
        start_new_session=True,
    )
    node.started_at = time.monotonic()
    assert node.proc.stdout is not None
    node.reader = threading.Thread(
        target=output.follow, args=(node, node.proc.stdout), name=f"log-{node.name}", daemon=True
    )
    node.reader.start()
    wait_healthy(node)


def wait_healthy(node: Node) -> None:
    deadline = time.monotonic() + NODE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert node.proc is not None
        if node.proc.poll() is not None:
            raise ClusterError(
                f"{node.name} exited with {node.proc.returncode} while starting; "
                f"see {node.log_path}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{node.url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise ClusterError(f"{node.name} did not answer /healthz within {NODE_START_TIMEOUT_S:.0f} s")


def stop_node(node: Node) -> None:
    """SIGTERM, as systemd stops a node; SIGKILL if it does not stop in time."""
    proc = node.proc
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=NODE_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=NODE_STOP_TIMEOUT_S)
    if node.reader is not None:
        node.reader.join(timeout=5)
    if proc.stdout is not None:
        proc.stdout.close()
    node.proc = None


def write_state(path: Path, state: dict[str, object]) -> None:
    """cluster.json, replaced whole so that a reader never sees half of it."""
    partial = path.with_suffix(".json.part")
    partial.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(partial, path)


def banner(cluster: Cluster) -> str:
    staff = ", ".join(f"{username} ({role})" for username, _name, role in STAFF)
    nodes = cluster.nodes
    lines = [
        "",
        f"OrderChat cluster: {len(nodes)} nodes behind nginx at {cluster.url}",
        *(f"  {n.name}: {n.url} (pid {n.proc.pid if n.proc else '-'})" for n in nodes),
        f"  database {cluster.database_url}, redis {cluster.redis_url}",
        f"  data, logs and cluster.json under {cluster.data_dir}",
        f"Demo staff, all with the password {DEMO_PASSWORD}:",
        f"  {staff}",
        "Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=2, help="how many OrderChat nodes (2)")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "8000")),
        help="nginx's port ($PORT or 8000)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("orderchat-cluster"),
        help="where everything is kept (./orderchat-cluster)",
    )
    parser.add_argument("--fresh", action="store_true", help="delete a previous run's data first")
    args = parser.parse_args(argv)
    if args.nodes < 1:
        parser.error("--nodes must be at least 1")
    return args


@contextlib.contextmanager
def signals_stop() -> Iterator[None]:
    previous = {s: signal.signal(s, _raise_stopped) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class Cluster:
    """What runs, and how to start a node again."""

    def __init__(self, data_dir: Path, url: str, output: Output) -> None:
        self.data_dir = data_dir
        self.url = url
        self.output = output
        self.nodes: list[Node] = []
        self.nginx_port = 0
        self.database_url = ""
        self.redis_url = ""

    def start(self, node_count: int, port: int, stack: contextlib.ExitStack) -> None:
        """Start every part, each registered in `stack` to be stopped in reverse order."""
        # Durable, as production runs it: fsync, synchronous commits, full pages.
        postgres = services.Postgres(self.data_dir / "postgres", fast=False)
        stack.callback(postgres.stop)
        postgres.start()
        if not postgres.admin_sql("SELECT 1 FROM pg_database WHERE datname = %s", DATABASE):
            postgres.create_database(DATABASE)
        self.database_url = postgres.url(DATABASE)
        redis = services.Redis(self.data_dir / "redis")
        stack.callback(redis.stop)
        redis.start()
        self.redis_url = redis.url
        for number in range(1, node_count + 1):
            node = Node(
                name=f"node-{number}",
                port=services.free_port(),
                demo=number == 1,
                data_dir=self.data_dir / "data",
                log_path=self.data_dir / "logs" / f"node-{number}.log",
            )
            self.nodes.append(node)
            stack.callback(stop_node, node)
            self.output.say(f"cluster: starting {node.name} on {node.url}")
            start_node(node, self.database_url, self.redis_url, self.output)
        nginx = services.Nginx(self.data_dir / "nginx", port, [n.port for n in self.nodes])
        stack.callback(nginx.stop)
        nginx.start()
        self.nginx_port = port
        self.save()

    def save(self) -> None:
        nodes = [
            {"name": n.name, "pid": n.proc.pid if n.proc else None, "port": n.port, "url": n.url}
            for n in self.nodes
        ]
        state: dict[str, object] = {
            "url": self.url,
            "pid": os.getpid(),
            "nginx_port": self.nginx_port,
            "database": self.database_url,
            "redis": self.redis_url,
            "nodes": nodes,
        }
        write_state(self.data_dir / "cluster.json", state)

    def supervise(self) -> None:
        """Start again every node that dies, until Ctrl-C or SIGTERM."""
        while True:
            for node in self.nodes:
                if node.proc is not None and node.proc.poll() is None:
                    continue
                self._restart(node)
            time.sleep(0.2)

    def _restart(self, node: Node) -> None:
        code = node.proc.returncode if node.proc is not None else None
        quick = time.monotonic() - node.started_at < QUICK_DEATH_S
        node.quick_deaths = node.quick_deaths + 1 if quick else 0
        if node.quick_deaths >= MAX_QUICK_DEATHS:
            raise ClusterError(f"{node.name} keeps exiting (last with {code}); see {node.log_path}")
        self.output.say(f"cluster: {node.name} exited with {code}; starting it again")
        stop_node(node)
        start_node(node, self.database_url, self.redis_url, self.output)
        self.save()


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_dir = args.data_dir.resolve()
    url = f"http://127.0.0.1:{args.port}"
    output = Output(url)
    with signals_stop():
        try:
            if not port_is_free(args.port):
                raise ClusterError(f"port {args.port} is in use; choose another with --port")
            prepare(data_dir, args.fresh)
            cluster = Cluster(data_dir, url, output)
            with contextlib.ExitStack() as stack:
                stack.callback(output.say, "cluster: stopped")
                cluster.start(args.nodes, args.port, stack)
                output.say(banner(cluster))
                cluster.supervise()
        except Stopped:
            return 0
        except (ClusterError, services.ServiceError) as exc:
            print(f"cluster: {exc}", file=sys.stderr)
            return 1
        finally:
            (data_dir / "cluster.json").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
