"""`make cluster` end to end: the real scripts/cluster.py, two nodes behind nginx.

The script starts PostgreSQL, Redis, two nodes and nginx as a user's
`make cluster` does. Demo staff sign in through nginx and talk over
WebSockets through nginx, one user on each node. Then the node of one of them
is killed with SIGKILL while messages are in flight: that user reconnects
through nginx with the last cursor it processed, sends again what was not
acknowledged, and both users must end up with every message of the
conversation exactly once, in a gapless sequence. Last, SIGTERM stops the
whole cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.support import Frame, Peer, Recorder, free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "cluster.py"
PASSWORD = "orderchat-demo"
START_TIMEOUT_S = 40.0
STOP_TIMEOUT_S = 30.0


def _missing_programs() -> list[str]:
    missing = []
    if not glob.glob("/usr/lib/postgresql/*/bin/postgres"):
        missing.append("postgresql")
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        missing.append("nginx")
    return missing


pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        bool(_missing_programs()),
        reason=f"make cluster-deps installs {', '.join(_missing_programs())}",
    ),
]


@dataclass
class Cluster:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path
    url: str

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads((self.data_dir / "cluster.json").read_text())
        return state

    def nodes(self) -> dict[str, dict[str, Any]]:
        return {node["name"]: node for node in self.state()["nodes"]}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-8000:]


def _wait_for_state(proc: subprocess.Popen[bytes], path: Path, log_path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"cluster exited with {proc.returncode}:\n{log_path.read_text()}")
        if path.exists():
            state: dict[str, Any] = json.loads(path.read_text())
            return state
        time.sleep(0.2)
    raise AssertionError(f"cluster not up in {START_TIMEOUT_S:.0f} s:\n{log_path.read_text()}")


def _stop(cluster: Cluster) -> int:
    """SIGTERM, as Ctrl-C would; SIGKILL for it and its nodes if it hangs."""
    proc = cluster.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    # Not pytest's tmp_path: PostgreSQL runs as nobody when the tests run as root,
    # and pytest's directory is its owner's alone.
    base = Path(tempfile.mkdtemp(prefix="orderchat-cluster-test-"))
    base.chmod(0o755)
    port = free_port()
    data_dir = base / "cluster"
    log_path = base / "cluster.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--port", str(port), "--data-dir", str(data_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    running = Cluster(proc, data_dir, log_path, f"http://127.0.0.1:{port}")
    try:
        state = _wait_for_state(proc, data_dir / "cluster.json", log_path)
        assert state["url"] == running.url
        yield running
    finally:
        state_file = data_dir / "cluster.json"
        node_pids = [n["pid"] for n in running.nodes().values()] if state_file.exists() else []
        if _stop(running) != 0:
            for pid in node_pids:  # left behind only if the script itself hung
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)


# --- talking to the cluster ----------------------------------------------------


def _login(url: str, username: str) -> dict[str, Any]:
    resp = httpx.post(
        f"{url}/api/auth/login", json={"username": username, "password": PASSWORD}, timeout=10
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _connections(cluster: Cluster, admin_token: str) -> dict[str, int]:
    """Each node's open WebSockets, asked of each node directly (not through nginx)."""
    counts = {}
    for name, node in cluster.nodes().items():
        resp = httpx.get(
            f"{node['url']}/api/admin/stats",
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        counts[name] = int(resp.json()["connections"])
    return counts


async def _open(cluster: Cluster, token: str, device: str, cursor: str | None = None) -> Recorder:
    ws = await connect(cluster.ws_url, max_size=None, open_timeout=10)
    peer = Peer(ws)
    peer.welcome = await peer.hello(token, device, cursor)
    return Recorder(peer)


async def _open_on_a_node(
    cluster: Cluster, token: str, device: str, admin_token: str, avoid: str | None
) -> tuple[Recorder, str]:
    """A connection through nginx, and the node that took it (other than `avoid`)."""
    for _ in range(8):
        before = await asyncio.to_thread(_connections, cluster, admin_token)
        conn = await _open(cluster, token, device)
        for _ in range(50):
            after = await asyncio.to_thread(_connections, cluster, admin_token)
            grew = [name for name in after if after[name] > before.get(name, 0)]
            if grew:
                break
            await asyncio.sleep(0.1)
        assert len(grew) == 1, (before, after)
        if grew[0] != avoid:
            return conn, grew[0]
        await conn.peer.close()
        await conn.stop()
    raise AssertionError(f"nginx sent every connection to {avoid}")


def _in(conv: str) -> Callable[[Frame], bool]:
    return lambda f: f.get("op") == "message" and f.get("conv") == conv


def _messages_of(conn: Recorder, conv: str) -> list[Frame]:
    return [f for f in conn.frames if _in(conv)(f)]


def _acks(conn: Recorder) -> dict[str, int]:
    return {f["ref"]: f["seq"] for f in conn.frames if f.get("op") == "ack"}


def _last_cursor(conn: Recorder) -> str:
    return str(next(f["cursor"] for f in reversed(conn.frames) if "cursor" in f))


def _send(conv: str, ref: str) -> Frame:
    return {"op": "send", "ref": ref, "conv": conv, "kind": "text", "text": f"text of {ref}"}


async def _send_and_ack(conn: Recorder, conv: str, ref: str) -> int:
    start = len(conn.frames)
    await conn.send(_send(conv, ref))
    ack = await conn.wait_for(lambda f: f.get("ref") == ref, 15.0, start)
    assert ack["op"] == "ack", ack
    return int(ack["seq"])


def _history(url: str, token: str, conv: str) -> list[Frame]:
    resp = httpx.get(
        f"{url}/api/conversations/{conv}/messages",
        params={"after": 0, "limit": 200},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    found: list[Frame] = resp.json()["messages"]
    return found


# --- the test --------------------------------------------------------------------


def test_killed_node_loses_no_acked_message_and_repeats_none(cluster: Cluster) -> None:
    amy, sam, boss = (_login(cluster.url, name) for name in ("amy", "sam", "boss"))
    made = httpx.post(
        f"{cluster.url}/api/conversations",
        json={
            "kind": "channel",
            "title": f"cluster {uuid.uuid4().hex[:8]}",
            "members": [sam["user"]["id"]],
        },
        headers={"Authorization": f"Bearer {amy['token']}"},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    conv = made.json()["id"]
    users = Users(amy["token"], sam["token"], boss["token"])

    acked, received, killed = asyncio.run(_talk_through_a_node_kill(cluster, users, conv))

    history = _history(cluster.url, users.amy, conv)
    count = len(history)
    assert [m["seq"] for m in history] == list(range(1, count + 1))
    assert sorted(m["ref"] for m in history) == sorted(acked), "a message stored twice or lost"
    assert {m["ref"]: m["seq"] for m in history} == acked
    for who, seqs in received.items():
        assert seqs == list(range(1, count + 1)), f"{who}'s copies: lost, doubled or out of order"

    _wait_restarted(cluster, *killed)
    pids = [n["pid"] for n in cluster.nodes().values()]
    assert _stop(cluster) == 0, cluster.log()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"node {pid} outlived the cluster"
    assert not (cluster.data_dir / "cluster.json").exists()


def _ended(pid: int) -> bool:
    """Gone, or a zombie that only its new parent has yet to reap."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def test_a_killed_script_takes_its_nodes_with_it(cluster: Cluster) -> None:
    pids = [n["pid"] for n in cluster.nodes().values()]
    assert pids and all(not _ended(pid) for pid in pids)
    cluster.proc.kill()
    cluster.proc.wait(timeout=10)
    deadline = time.monotonic() + 20
    while not all(_ended(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(_ended(pid) for pid in pids), "a node outlived the script that started it"


@dataclass(frozen=True)
class Users:
    amy: str
    sam: str
    boss: str


async def _talk_through_a_node_kill(
    cluster: Cluster, users: Users, conv: str
) -> tuple[dict[str, int], dict[str, list[int]], tuple[str, int]]:
    """Amy and Sam on different nodes; Sam's node is killed with his sends in flight.

    Returns every ref acknowledged with its seq, the seqs each user's devices
    received in the conversation (in order of arrival), and the killed node's
    name and pid.
    """
    a, node_a = await _open_on_a_node(cluster, users.amy, "amy-desk", users.boss, None)
    b, node_b = await _open_on_a_node(cluster, users.sam, "sam-phone", users.boss, node_a)

    # Warm-up: each user's messages reach the other across the two nodes.
    acked = {f"a{i}": await _send_and_ack(a, conv, f"a{i}") for i in range(5)}
    acked |= {f"b{i}": await _send_and_ack(b, conv, f"b{i}") for i in range(5)}
    for conn in (a, b):
        await conn.wait_count(_in(conv), 10, 15.0)

    # Sam's node dies with his sends in flight, while Amy goes on writing on hers.
    # The first ack shows the node at work on them; the rest are sent, perhaps
    # stored, perhaps acknowledged, when it dies.
    in_flight = [f"b-flight{i}" for i in range(10)]
    start = len(b.frames)
    for ref in in_flight:
        await b.send(_send(conv, ref))
    await b.wait_for(lambda f: f.get("ref") == in_flight[0], 15.0, start)
    killed_pid = int(cluster.nodes()[node_b]["pid"])
    os.kill(killed_pid, signal.SIGKILL)
    acked |= {f"a-during{i}": await _send_and_ack(a, conv, f"a-during{i}") for i in range(10)}
    await asyncio.wait_for(b.peer.ws.wait_closed(), 15)
    acked |= {ref: seq for ref, seq in _acks(b).items() if ref in in_flight}

    # Sam comes back through nginx with the last cursor he processed, and sends
    # again, with the same refs, whatever was not acknowledged.
    b2 = await _open(cluster, users.sam, "sam-phone", _last_cursor(b))
    await b2.wait_for(lambda f: f.get("op") == "synced", 15.0)
    for ref in in_flight:
        seq = await _send_and_ack(b2, conv, ref)
        assert acked.setdefault(ref, seq) == seq, f"{ref} acked as {acked[ref]}, then {seq}"
    acked |= {f"a-after{i}": await _send_and_ack(a, conv, f"a-after{i}") for i in range(3)}

    # Everything the replay and the live stream owe each of them has arrived;
    # then a ping's pong shows that nothing more is on its way.
    count = len(acked)
    await b2.wait_count(_in(conv), count - len(_messages_of(b, conv)), 20.0)
    await a.wait_count(_in(conv), count, 20.0)
    for conn in (a, b2):
        await conn.barrier()
    received = {
        "Sam": [m["seq"] for m in _messages_of(b, conv) + _messages_of(b2, conv)],
        "Amy": [m["seq"] for m in _messages_of(a, conv)],
    }
    for conn in (a, b, b2):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.peer.close(), 5)
        await conn.stop()
    return acked, received, (node_b, killed_pid)


def _wait_restarted(cluster: Cluster, name: str, killed_pid: int) -> None:
    """The killed node is started again, as systemd's Restart=always would."""
    for _ in range(300):
        assert cluster.proc.poll() is None, cluster.log()
        node = cluster.nodes()[name]
        if node["pid"] != killed_pid:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{node['url']}/healthz", timeout=1).status_code == 200:
                    return
        time.sleep(0.1)
    raise AssertionError(f"{name} was not started again:\n{cluster.log()}")
