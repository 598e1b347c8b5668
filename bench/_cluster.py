"""OrderChat as the benchmarks run it: one node on SQLite, or N nodes on PostgreSQL and Redis.

`running_cluster(store, work, users, prefix)` gives a started set-up with
`users` staff users already written into its database (see `bench/_seed.py`):

- `sqlite:1`: one `orderchat serve` with its default storage in the data dir,
  exactly what the other workloads measure.
- `postgres:N`: a throwaway PostgreSQL (fsync on: commits are as durable as
  SQLite's `synchronous=FULL`) and Redis (no persistence: the bus keeps no state),
  started on loopback ports with their files in the scratch directory by
  `scripts/services.py`, a fresh database,
  and N nodes on them (`--database URL --redis URL --node-name node-i`), all
  with the same data dir for media, started one after the other so that only
  the first runs the migrations on an empty database.

Everything is stopped afterwards, the nodes first. `Cluster.cpu_probes()` reads
the CPU time of each node and of all of PostgreSQL's and Redis's processes,
for the per-message costs the scale-out benchmarks report.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._seed import SeededUser, seed_users
from bench._server import BenchServer, ServerError, _children

STORES = ("sqlite", "postgres")
DATABASE_NAME = "orderchat_bench"


class ClusterError(RuntimeError):
    """The set-up could not be started (PostgreSQL or Redis missing, a node refused...)."""


@dataclass(frozen=True)
class Store:
    """Which storage and how many OrderChat nodes: `sqlite:1`, `postgres:1`, `postgres:2`."""

    kind: str
    nodes: int = 1

    @classmethod
    def parse(cls, text: str) -> Store:
        kind, _, count = text.strip().partition(":")
        try:
            nodes = int(count) if count else 1
        except ValueError:
            raise ValueError(f"not a store: {text!r} (sqlite:1, postgres:2, ...)") from None
        store = cls(kind, nodes)
        store.check()
        return store

    def check(self) -> None:
        if self.kind not in STORES:
            raise ValueError(f"the store is one of {', '.join(STORES)}, not {self.kind!r}")
        if self.nodes < 1:
            raise ValueError("at least one node")
        if self.kind == "sqlite" and self.nodes != 1:
            raise ValueError("SQLite serves one node; several nodes need --store postgres")

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.nodes}"


def node_name(index: int) -> str:
    return f"node-{index}"


@dataclass
class Cluster:
    store: Store
    data_dir: Path
    nodes: list[BenchServer] = field(default_factory=list)
    database_url: str | None = None
    redis_url: str | None = None
    # name ("postgres", "redis") -> the pid of its main process
    service_pids: dict[str, int] = field(default_factory=dict)

    @property
    def base_urls(self) -> list[str]:
        return [node.base_url for node in self.nodes]

    @property
    def ws_urls(self) -> list[str]:
        return [f"ws://127.0.0.1:{node.port}/ws" for node in self.nodes]

    @property
    def pids(self) -> list[int]:
        return [node.pid for node in self.nodes]

    def node_args(self, index: int) -> tuple[str, ...]:
        if self.store.kind == "sqlite":
            return ()
        assert self.database_url is not None and self.redis_url is not None
        return (
            "--database",
            self.database_url,
            "--redis",
            self.redis_url,
            "--node-name",
            node_name(index),
        )

    def cpu_probes(self) -> list[tuple[str, Callable[[], float]]]:
        """(name, CPU seconds so far) for each node, then PostgreSQL and Redis."""
        probes: list[tuple[str, Callable[[], float]]] = []
        for index, pid in enumerate(self.pids):
            probes.append((node_name(index), _bind(tree_cpu_seconds, pid)))
        for name, pid in self.service_pids.items():
            probes.append((name, _bind(tree_cpu_seconds, pid)))
        return probes


def _bind(function: Callable[[int], float], pid: int) -> Callable[[], float]:
    return lambda: function(pid)


def _own_and_reaped_cpu(pid: int) -> float:
    """utime + stime + cutime + cstime of one process, in seconds (0 once it is gone).

    The children's part holds the CPU of children that exited and were waited
    for, so a PostgreSQL backend that ends between two readings still counts.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            text = stat.read()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2 :].split()
    ticks = sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """The CPU seconds of a process and of all its descendants, living and reaped."""
    total = 0.0
    pending = [pid]
    seen: set[int] = set()
    while pending and len(seen) < 10_000:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        total += _own_and_reaped_cpu(current)
        pending.extend(_children(current))
    return total


def postgres_available() -> str | None:
    """None when this machine can run the PostgreSQL set-up; else what is missing."""
    try:
        from scripts.services import ServiceError, postgres_bin
    except ImportError as exc:
        return f"scripts/services.py cannot be imported: {exc}"
    if shutil.which("redis-server") is None:
        return "redis-server is not installed"
    try:
        postgres_bin("initdb")
    except ServiceError as exc:
        return str(exc)
    return None


@contextlib.contextmanager
def _postgres_and_redis(work: Path, cluster: Cluster) -> Iterator[None]:
    """A fresh PostgreSQL database and a Redis, both throwaway, stopped afterwards."""
    from scripts.services import Postgres, Redis, ServiceError

    # PostgreSQL runs as an unprivileged user when we are root: it must reach its
    # directory, inside this scratch directory (made 0700).
    work.chmod(0o711)
    try:
        with Postgres(work / "postgres") as postgres, Redis(work / "redis") as redis:
            cluster.database_url = postgres.create_database(DATABASE_NAME)
            cluster.redis_url = redis.url
            cluster.service_pids = {"postgres": postgres.pid, "redis": redis.pid}
            yield
    except ServiceError as exc:
        raise ClusterError(str(exc)) from exc


@dataclass(frozen=True)
class NodeOptions:
    """What a workload adds to every node: flags, environment, and a step before they start.

    `prepare` runs once the database exists and the users are seeded, before
    the first node starts: to write a policy file into the data dir, or seed
    an admin (`cluster.database_url` says where).
    """

    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[Cluster], None] | None = None


@contextlib.contextmanager
def running_cluster(
    store: Store, work: Path, users: int, prefix: str, options: NodeOptions | None = None
) -> Iterator[tuple[Cluster, list[SeededUser]]]:
    """The started set-up of `store` in `work`, and the users seeded into its database."""
    store.check()
    options = options or NodeOptions()
    cluster = Cluster(store, work / "data")
    with contextlib.ExitStack() as stack:
        if store.kind == "postgres":
            missing = postgres_available()
            if missing is not None:
                raise ClusterError(f"cannot run {store.label}: {missing}")
            stack.enter_context(_postgres_and_redis(work, cluster))
        seeded = seed_users(cluster.data_dir, users, prefix=prefix, database=cluster.database_url)
        if options.prepare is not None:
            options.prepare(cluster)
        try:
            for index in range(store.nodes):
                args = (*cluster.node_args(index), *options.args)
                node = BenchServer(cluster.data_dir, args, env=dict(options.env))
                cluster.nodes.append(node)
                try:
                    node.start()
                except ServerError as exc:
                    raise ClusterError(f"{node_name(index)} of {store.label}: {exc}") from exc
            yield cluster, seeded
        finally:
            for node in reversed(cluster.nodes):
                node.stop()


def describe(cluster: Cluster) -> dict[str, Any]:
    """The set-up as kept in a result's settings (no passwords: the services use none)."""
    return {
        "store": cluster.store.label,
        "nodes": cluster.store.nodes,
        "database": cluster.database_url or "sqlite (the data dir's default)",
        "redis": cluster.redis_url,
        "node_names": [node_name(i) for i in range(cluster.store.nodes)],
    }
