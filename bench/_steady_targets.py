"""Who talks to whom in W1 (`steady`), and the targets that take its load.

A target is a set of WebSocket endpoints with the 200 users and the
conversations made on it: OrderChat on one of its stores (see
`bench/_cluster.py`; with several nodes user i connects to node i % N, so a
direct conversation has one member on each of two nodes and its messages cross
from one node to the other), another revision's OrderChat (a baseline), or one
of the relay references.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench._cluster import Store, node_name, running_cluster, tree_cpu_seconds
from bench._load import LoadConversation, LoadUser
from bench._seed import SeededUser, seed_users
from bench._server import running_server, scratch_dir

USERS = 200
CHANNELS = 2
CHANNEL_MEMBERS = 20
DIRECT_SHARE = 0.8  # of all messages; the rest goes to the channels
ORDERCHAT = "orderchat"
# With --steady-baseline: the same server from another revision's source, measured
# in the same run, so a change to the hot path is judged against its own parent.
BASELINE = "orderchat baseline"
RELAYS = ("relay", "durable relay")


@dataclass(frozen=True)
class Topology:
    """User indices 0..199; conversations as lists of member indices with their weights."""

    directs: tuple[tuple[int, int], ...]
    channels: tuple[tuple[int, ...], ...]

    @classmethod
    def make(cls) -> Topology:
        directs = tuple((2 * n, 2 * n + 1) for n in range(USERS // 2))
        # Channel members spread over all users (and so over every load worker).
        step = USERS // CHANNEL_MEMBERS
        channels = tuple(
            tuple(range(offset, USERS, step))[:CHANNEL_MEMBERS]
            for offset in (0, step // 2)[:CHANNELS]
        )
        return cls(directs, channels)

    def conversations(
        self, direct_ids: Sequence[str], channel_ids: Sequence[str]
    ) -> list[LoadConversation]:
        direct_weight = DIRECT_SHARE / len(self.directs)
        channel_weight = (1 - DIRECT_SHARE) / len(self.channels)
        convs = [
            LoadConversation(conv_id, pair, direct_weight)
            for conv_id, pair in zip(direct_ids, self.directs, strict=True)
        ]
        convs += [
            LoadConversation(conv_id, members, channel_weight)
            for conv_id, members in zip(channel_ids, self.channels, strict=True)
        ]
        return convs

    def mean_recipients(self) -> float:
        direct = DIRECT_SHARE * 1
        channel = sum((1 - DIRECT_SHARE) / len(self.channels) * (len(m) - 1) for m in self.channels)
        return direct + channel


def send_shares(conversations: Sequence[LoadConversation], nodes: int) -> list[float]:
    """The share of all sends each node takes in, when user i is on node i % nodes."""
    total = sum(c.weight for c in conversations)
    shares = [0.0] * nodes
    for conv in conversations:
        for member in conv.members:
            shares[member % nodes] += conv.weight / total / len(conv.members)
    return shares


def orderchat_name(store: Store, *, explicit: bool = False) -> str:
    """`orderchat postgres:2` and so on; plain `orderchat` for its default single SQLite
    node unless `explicit` (a comparison of stores names every one)."""
    if store == Store("sqlite", 1) and not explicit:
        return ORDERCHAT
    return f"{ORDERCHAT} {store.label}"


def is_orderchat(name: str) -> bool:
    """This revision's OrderChat on any store (not the baseline, not a relay)."""
    return name == ORDERCHAT or (name.startswith(ORDERCHAT + " ") and name != BASELINE)


@dataclass
class Target:
    name: str
    ws_urls: list[str]  # user i connects to ws_urls[i % len(ws_urls)]
    server_pids: list[int]  # the processes under test: each OrderChat node, or the relay
    users: list[LoadUser]
    conversations: list[LoadConversation]
    # Beside the server_pids: (name, CPU seconds so far) of PostgreSQL, Redis...
    service_probes: list[tuple[str, Callable[[], float]]] = field(default_factory=list)
    node_names: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.server_pids[0]

    def cpu_probes(self) -> list[tuple[str, Callable[[], float]]]:
        """Every process group whose CPU is read at each step, the servers first."""
        names = self.node_names or [self.name]
        probes: list[tuple[str, Callable[[], float]]] = [
            (name, _tree_cpu(pid)) for name, pid in zip(names, self.server_pids, strict=True)
        ]
        return probes + self.service_probes

    def users_of(self, node: int) -> list[LoadUser]:
        return [u for u in self.users if u.index % len(self.ws_urls) == node]


def _tree_cpu(pid: int) -> Callable[[], float]:
    return lambda: tree_cpu_seconds(pid)


@contextlib.contextmanager
def orderchat_target(topology: Topology, store: Store, name: str) -> Iterator[Target]:
    """OrderChat on `store` with the 200 users seeded and the conversations made over HTTP."""
    with scratch_dir("steady-") as work, running_cluster(store, work, USERS, "steady") as started:
        cluster, seeded = started
        conversations = _make_conversations(cluster.base_urls[0], topology, seeded)
        yield Target(
            name,
            cluster.ws_urls,
            cluster.pids,
            [LoadUser(n, u.id, u.token) for n, u in enumerate(seeded)],
            conversations,
            service_probes=[p for p in cluster.cpu_probes() if p[0] in cluster.service_pids],
            node_names=[node_name(i) for i in range(store.nodes)],
            settings={"store": store.label, "nodes": store.nodes},
        )


@contextlib.contextmanager
def baseline_target(topology: Topology, source: Path) -> Iterator[Target]:
    """Another revision's server from its `src/`, on its default SQLite store."""
    with scratch_dir("steady-") as work:
        data_dir = work / "data"
        seeded = seed_users(data_dir, USERS, prefix="steady")
        with running_server(data_dir, source=source) as server:
            yield Target(
                BASELINE,
                [f"ws://127.0.0.1:{server.port}/ws"],
                [server.pid],
                [LoadUser(n, u.id, u.token) for n, u in enumerate(seeded)],
                _make_conversations(server.base_url, topology, seeded),
            )


def _make_conversations(
    base_url: str, topology: Topology, seeded: Sequence[SeededUser]
) -> list[LoadConversation]:
    direct_ids: list[str] = []
    channel_ids: list[str] = []
    with httpx.Client(base_url=base_url, timeout=30, trust_env=False) as client:
        for a, b in topology.directs:
            body = {"kind": "direct", "members": [seeded[b].id]}
            direct_ids.append(_create(client, seeded[a].token, body))
        for number, members in enumerate(topology.channels):
            body = {
                "kind": "channel",
                "title": f"steady {number}",
                "members": [seeded[m].id for m in members[1:]],
            }
            channel_ids.append(_create(client, seeded[members[0]].token, body))
    return topology.conversations(direct_ids, channel_ids)


def _create(client: httpx.Client, token: str, body: dict[str, Any]) -> str:
    resp = client.post(
        "/api/conversations", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    if resp.status_code not in (200, 201):
        raise RuntimeError(f"creating a conversation failed: {resp.status_code} {resp.text}")
    return str(resp.json()["id"])


@contextlib.contextmanager
def relay_target(topology: Topology, durable: bool) -> Iterator[Target]:
    """The plain or durable relay reference, with the same users and conversations."""
    from bench._targets import running_relay

    users = [LoadUser(n, f"u{n:05d}", f"u{n:05d}") for n in range(USERS)]
    direct_ids = [f"d{n:04d}" for n in range(len(topology.directs))]
    channel_ids = [f"c{n:02d}" for n in range(len(topology.channels))]
    conversations = topology.conversations(direct_ids, channel_ids)
    members = {c.conv_id: [users[m].user_id for m in c.members] for c in conversations}
    with running_relay(members, durable=durable) as relay:
        yield Target(
            "durable relay" if durable else "relay",
            [relay.ws_url],
            [relay.pid],
            users,
            conversations,
        )


def open_target(
    name: str, topology: Topology, store: Store, baseline: Path | None = None
) -> contextlib.AbstractContextManager[Target]:
    """The target called `name`; OrderChat's runs on `store`."""
    if name == BASELINE:
        if baseline is None:
            raise ValueError("the baseline needs --steady-baseline SRC")
        return baseline_target(topology, baseline)
    if name in RELAYS:
        return relay_target(topology, durable=name == "durable relay")
    if is_orderchat(name):
        return orderchat_target(topology, store, name)
    raise ValueError(f"unknown target {name!r}")
