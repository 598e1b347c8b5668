"""Several OrderChat nodes on one PostgreSQL and one Redis, for the scale-out tests.

A cluster has services of its own (not the run's shared ones) so that its tests
may kill and restart PostgreSQL and Redis without touching any other test.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from scripts.services import Postgres, Redis

from tests.stores import postgres_unavailable
from tests.support import ServerProcess


@dataclass
class Cluster:
    base_dir: Path
    postgres: Postgres
    redis: Redis
    url: str
    nodes: list[ServerProcess] = field(default_factory=list)

    def add_node(self, *extra: str) -> ServerProcess:
        index = len(self.nodes) + 1
        node = ServerProcess(
            self.base_dir / "data",
            (
                "--redis",
                self.redis.url,
                "--node-name",
                f"node-{index}",
                "--rate-limits",
                "off",
                *extra,
            ),
            store="postgres",
            pg_url=self.url,
        )
        node.start()
        self.nodes.append(node)
        return node

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()
        self.redis.stop()
        self.postgres.stop()


def _cluster(tmp: Path, nodes: int, *extra: str) -> Cluster:
    tmp.chmod(0o755)  # PostgreSQL runs as nobody when the tests run as root
    postgres = Postgres(tmp / "pg", fast=True)
    postgres.start()
    redis = Redis(tmp / "redis")
    redis.start()
    url = postgres.create_database("shop")
    (tmp / "data").mkdir()
    cluster = Cluster(tmp, postgres, redis, url)
    try:
        for _ in range(nodes):
            cluster.add_node(*extra)
        cluster.nodes[0].create_admin()
        for node in cluster.nodes[1:]:
            node.admin = cluster.nodes[0].admin
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _running_cluster() -> Iterator[Cluster]:
    if reason := postgres_unavailable():
        pytest.skip(reason)
    # A short path of its own, not pytest's: PostgreSQL's socket path has a length limit.
    tmp = Path(tempfile.mkdtemp(prefix="orderchat-cluster-", dir=os.environ.get("TMPDIR")))
    try:
        made = _cluster(tmp, 2)
        yield made
        made.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # a database cluster each: ~50 MB


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Two nodes shared by a module's tests, which must leave them running."""
    yield from _running_cluster()


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """Two nodes of the test's own, for tests that kill or freeze parts of it."""
    yield from _running_cluster()
