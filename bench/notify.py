"""Workload `notify`: notifications to people who are away, measured where they arrive.

Three parts in one run. Parts 1 and 2 run against a fresh server with the
same policy file in its data dir (everything at once: `push = 0`,
`email = 0`, no mail batching, urgent webhooks without the escalation wait,
no reminders), the same SMTP settings (`ORDERCHAT_SMTP_*` to a loopback
aiosmtpd) and `--allow-private-targets`, so that the servers differ only in
whom they can reach:

1. **Notified.** 10,000 messages' worth of deliveries (500 with `--quick`):
   the mixed messages of `bench/_notify_mix.py` (direct, @mention, urgent) to
   readers who each have a push subscription on the loopback push service and
   an address, and two webhook endpoints hearing `message.urgent` and
   `order.status`. At the receivers (`bench/_notify_receivers.py`): deliveries
   per second, overall and per channel, and the lag of each delivery from its
   message's commit (the `ts` of the message's ack, stamped by the server in
   the transaction that stores it) to its arrival; every planned delivery
   must arrive exactly once. A push (or a mail's line) that stands for several
   waiting messages of one conversation counts for each of them.
2. **Plain.** The same messages to a server where nobody is reachable: the
   time to send them all, beside the same time in part 1.
3. **W1 on and off.** The steady workload's rate steps (`bench/steady.py`)
   against a server whose 200 users have no push subscription, no address
   and no endpoint (off), then against one where each has both and an
   endpoint exists (on), both with the shop's default policy — what a shop
   runs: an unread direct message is pushed after 30 s and mailed after
   15 minutes. The on run also steps at 0.90 of off's best rate, so that the
   best rates' ratio on/off can show the target of >= 0.90 and not only the
   2x steps either side of it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import uvloop
from sqlalchemy import func, select

from bench import steady
from bench._cluster import Cluster, NodeOptions, Store, running_cluster, tree_cpu_seconds
from bench._load import LoadUser, load_pool, raise_fd_limit
from bench._notify_mix import (
    ENDPOINTS,
    WINDOW,
    Arrivals,
    Mix,
    Sent,
    Shop,
    check,
    make_conversations,
    make_reachable,
    send_all,
)
from bench._notify_receivers import Receivers, running_receivers
from bench._notify_report import OFF, ON, W1_TARGET, mix_errors, mix_rows, w1_rows
from bench._report import Progress
from bench._seed import SeededUser, seed_users
from bench._server import scratch_dir
from bench._steady_targets import USERS, Target, Topology, _make_conversations
from orderchat.core.model import Role
from orderchat.settings import Settings as ServerSettings
from orderchat.storage.engine import Database
from orderchat.storage.schema import notifications

NAME = "notify"
DESCRIPTION = (
    "10,000 push, mail and webhook deliveries at loopback receivers: rate, lag, each once; "
    "W1 with notifications on vs off"
)

FULL_DELIVERIES = 10_000
QUICK_DELIVERIES = 500
SIZES = {False: (200, 20, 10), True: (40, 4, 4)}  # quick -> readers, senders, channels
SEND_TIMEOUT_S = 300.0
DRAIN_IDLE_S = 20.0  # the drain ends after this long without a new arrival
QUICK_DRAIN_IDLE_S = 5.0
DRAIN_MAX_S = 900.0
QUICK_DRAIN_MAX_S = 60.0
SETTLE_S = 1.0  # after the last planned arrival: anything now is a duplicate
PLAIN_SETTLE_S = 2.0  # after the plain run's last ack, before its outbox is read

# Everything at once, nothing gathered, no reminders: the rate of the machinery itself.
POLICY = """\
[occasions.direct]
push = 0
email = 0

[occasions.mention]
push = 0
email = 0

[occasions.urgent]
push = 0
email = 0

[ladder]
escalate_after_s = 0
every_s = 600
reminders = 0
channels = ["push", "email"]

[email]
batch_s = 0
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("notify workload")
    group.add_argument(
        "--notify-deliveries",
        type=int,
        default=None,
        metavar="N",
        help=f"deliveries planned in part 1 (default {FULL_DELIVERIES:,}, "
        f"{QUICK_DELIVERIES} with --quick)",
    )
    group.add_argument(
        "--notify-store",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="the servers' store: SQLite, or a throwaway PostgreSQL and Redis (default sqlite)",
    )
    group.add_argument(
        "--notify-skip-w1",
        action="store_true",
        help="leave out part 3 (W1 with notifications on and off)",
    )


@dataclass(frozen=True)
class Settings:
    mix: Mix
    store: Store
    drain_idle_s: float
    drain_max_s: float
    w1: steady.Settings | None
    quick: bool

    @classmethod
    def from_options(cls, options: argparse.Namespace) -> Settings:
        quick = bool(getattr(options, "quick", False))
        deliveries = getattr(options, "notify_deliveries", None) or (
            QUICK_DELIVERIES if quick else FULL_DELIVERIES
        )
        if deliveries < 10:
            raise ValueError("--notify-deliveries: at least 10")
        readers, senders, channels = SIZES[quick]
        w1 = None
        if not getattr(options, "notify_skip_w1", False):
            w1 = dataclasses.replace(steady.Settings.from_options(options), targets=(OFF, ON))
        return cls(
            mix=Mix.for_deliveries(deliveries, readers, senders, channels),
            store=Store(getattr(options, "notify_store", "sqlite"), 1),
            drain_idle_s=QUICK_DRAIN_IDLE_S if quick else DRAIN_IDLE_S,
            drain_max_s=QUICK_DRAIN_MAX_S if quick else DRAIN_MAX_S,
            w1=w1,
            quick=quick,
        )


# --- servers -------------------------------------------------------------------------


def node_options(
    receivers: Receivers, admins: list[SeededUser], policy: str | None = POLICY
) -> NodeOptions:
    """The policy file (None: the shop's default), the loopback SMTP server, private targets
    allowed; an admin seeded."""

    def prepare(cluster: Cluster) -> None:
        if policy is not None:
            workflows = cluster.data_dir / "workflows"
            workflows.mkdir(parents=True, exist_ok=True)
            (workflows / "notify.toml").write_text(policy, encoding="utf-8")
        admins.extend(
            seed_users(
                cluster.data_dir, 1, prefix="admin", role=Role.ADMIN, database=cluster.database_url
            )
        )

    env = {
        "ORDERCHAT_SMTP_HOST": "127.0.0.1",
        "ORDERCHAT_SMTP_PORT": str(receivers.smtp_port),
        "ORDERCHAT_SMTP_SECURITY": "none",
        "ORDERCHAT_SMTP_FROM": "Bench Shop <orders@bench.example>",
    }
    args = ("--allow-private-targets", "--shop-name", "Bench Shop")
    return NodeOptions(args=args, env=env, prepare=prepare)


@contextlib.contextmanager
def mix_shop(
    settings: Settings, receivers: Receivers, *, reachable: bool
) -> Iterator[tuple[Shop, Cluster]]:
    """A server with the mix's people and conversations; reachable or not."""
    mix = settings.mix
    admins: list[SeededUser] = []
    people = mix.senders + mix.readers
    with (
        scratch_dir("notify-") as work,
        running_cluster(settings.store, work, people, "user", node_options(receivers, admins)) as (
            cluster,
            seeded,
        ),
    ):
        shop = Shop(
            cluster.base_urls[0], cluster.ws_urls[0], seeded[: mix.senders], seeded[mix.senders :]
        )
        make_conversations(shop, mix)
        if reachable:
            shop.subscriptions, shop.addresses = make_reachable(
                shop.base_url, shop.readers, receivers, admins[0].token
            )
        yield shop, cluster


def outbox(cluster: Cluster) -> dict[str, dict[str, int]]:
    """The deliveries in the server's outbox, by channel and state."""
    url = cluster.database_url or ServerSettings(data_dir=cluster.data_dir).resolved_database_url
    return asyncio.run(_outbox(url))


async def _outbox(url: str) -> dict[str, dict[str, int]]:
    db = Database(url)
    found: dict[str, dict[str, int]] = {}
    try:
        async with db.read() as conn:
            columns = (notifications.c.channel, notifications.c.state)
            for channel, state, count in await conn.execute(
                select(*columns, func.count()).group_by(*columns)
            ):
                found.setdefault(str(channel), {})[str(state)] = int(count)
    finally:
        await db.close()
    return found


def _cpu(cluster: Cluster) -> float:
    return sum(tree_cpu_seconds(pid) for pid in cluster.pids)


# --- parts 1 and 2 -------------------------------------------------------------------


def measure_plain(settings: Settings, receivers: Receivers) -> dict[str, Any]:
    """Part 2: the same messages, nobody reachable; how long sending them all takes."""
    with mix_shop(settings, receivers, reachable=False) as (shop, cluster):
        cpu = _cpu(cluster)
        sent = uvloop.run(send_all(shop, settings.mix, SEND_TIMEOUT_S))
        cpu = _cpu(cluster) - cpu
        time.sleep(PLAIN_SETTLE_S)  # the planner looks every 0.25 s: a mistake would show
        return {
            "sent": sent,
            "server_cpu_s": cpu,
            "outbox": outbox(cluster),
            "arrived": receivers.take(),
        }


def measure_notified(
    settings: Settings, receivers: Receivers, progress: Progress
) -> dict[str, Any]:
    """Part 1: send the mix, wait for every planned delivery (bounded), check each arrived once."""
    with mix_shop(settings, receivers, reachable=True) as (shop, cluster):
        receivers.take()  # a clean slate
        cpu, receivers_cpu = _cpu(cluster), receivers.cpu_seconds()
        sent = uvloop.run(send_all(shop, settings.mix, SEND_TIMEOUT_S))
        drained = drain(receivers, settings, progress)
        arrived = receivers.take()
        return {
            "sent": sent,
            "drain_s": drained,
            "server_cpu_s": _cpu(cluster) - cpu,
            "receivers_cpu_s": receivers.cpu_seconds() - receivers_cpu,
            "outbox": outbox(cluster),
            "arrived": arrived,
            "arrivals": check(arrived, shop, settings.mix, sent),
        }


def drain(receivers: Receivers, settings: Settings, progress: Progress) -> float:
    """Until every planned delivery is in, nothing new came for a while, or the cap; seconds."""
    planned = settings.mix.planned()
    wanted = (planned["push"], planned["mail"], planned["webhook"])
    started = last_change = time.monotonic()
    last: tuple[int, ...] = ()
    while True:
        counts = receivers.counts()
        now_in = (counts["push"], counts["mail_items"], counts["webhook"])
        now = time.monotonic()
        progress.set_note(f"notified: {sum(now_in):,}/{sum(wanted):,} arrived")
        if all(got >= want for got, want in zip(now_in, wanted, strict=True)):
            break
        if now_in != last:
            last, last_change = now_in, now
        if now - last_change >= settings.drain_idle_s or now - started >= settings.drain_max_s:
            break
        time.sleep(0.1)
    time.sleep(SETTLE_S)
    return time.monotonic() - started


# --- part 3: W1 on and off -----------------------------------------------------------


@contextlib.contextmanager
def w1_target(
    name: str, settings: Settings, receivers: Receivers, *, on: bool
) -> Iterator[tuple[Target, Cluster]]:
    """W1's 200 users and conversations on the notify servers' set-up; reachable when `on`."""
    admins: list[SeededUser] = []
    topology = Topology.make()
    with (
        scratch_dir("notify-w1-") as work,
        running_cluster(
            settings.store, work, USERS, "steady", node_options(receivers, admins, policy=None)
        ) as (cluster, seeded),
    ):
        conversations = _make_conversations(cluster.base_urls[0], topology, seeded)
        if on:
            make_reachable(cluster.base_urls[0], seeded, receivers, admins[0].token, ("erp",))
        yield (
            Target(
                name,
                cluster.ws_urls,
                cluster.pids,
                [LoadUser(n, u.id, u.token) for n, u in enumerate(seeded)],
                conversations,
                service_probes=[("receivers", receivers.cpu_seconds)],
            ),
            cluster,
        )


def measure_w1(
    settings: Settings, receivers: Receivers, progress: Progress
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any], list[str]]:
    """W1's rate steps off, then on: each target's steps, what the receivers and outbox saw."""
    assert settings.w1 is not None
    records: dict[str, list[dict[str, Any]]] = {}
    seen: dict[str, Any] = {}
    errors: list[str] = []
    raise_fd_limit()
    with load_pool(settings.w1.workers) as pool:
        for name, on in ((OFF, False), (ON, True)):
            w1 = settings.w1
            if on and (best_off := steady.best_rate(records[OFF])):
                # The target's own rate is stepped on too: 2x steps alone cannot show 0.9.
                w1 = dataclasses.replace(w1, rates=on_rates(w1.rates, best_off))
            with w1_target(name, settings, receivers, on=on) as (target, cluster):
                receivers.take()
                steps, step_errors = steady.measure_target(target, pool, w1, progress)
                records[name] = steps
                errors += step_errors
                seen[name] = {"outbox": outbox(cluster), "arrived": receivers.counts()}
                receivers.take()
    return records, seen, errors


def on_rates(rates: Sequence[int], best_off: int) -> tuple[int, ...]:
    """W1's steps with notifications on: the usual ones and W1_TARGET of off's best rate."""
    return tuple(sorted({*rates, math.ceil(best_off * W1_TARGET)}))


# --- the workload --------------------------------------------------------------------


def run(options: argparse.Namespace) -> dict[str, Any]:
    settings = Settings.from_options(options)
    w1_steps = 2 * len(settings.w1.rates) + 1 if settings.w1 is not None else 0
    with Progress(NAME, 2 + w1_steps) as progress, running_receivers() as receivers:
        progress.set_note("plain: sending")
        plain = measure_plain(settings, receivers)
        progress.advance(1, "notified: sending")
        notified = measure_notified(settings, receivers, progress)
        progress.advance(1)
        records: dict[str, list[dict[str, Any]]] = {}
        seen: dict[str, Any] = {}
        w1_errors: list[str] = []
        if settings.w1 is not None:
            records, seen, w1_errors = measure_w1(settings, receivers, progress)
    rows, checks = mix_rows(settings.mix, plain, notified)
    if settings.w1 is not None:
        more_rows, w1_checks = w1_rows(settings.w1, records, seen)
        rows += more_rows
        checks.update(w1_checks)
    return {
        "rows": rows,
        "settings": settings_document(settings),
        "checks": checks,
        "samples": {
            "plain": _part_sample(plain),
            "notified": _part_sample(notified),
            "w1": seen,
            "steps": [r for recs in records.values() for r in recs],
        },
        "errors": mix_errors(settings.mix, plain, notified) + w1_errors,
    }


def _part_sample(part: dict[str, Any]) -> dict[str, Any]:
    sent: Sent = part["sent"]
    sample = {
        "acked": len(sent.commit_ms),
        "send_s": sent.seconds,
        "first_send_at": sent.started,
        "last_ack_at": sent.finished,
        "send_errors": sent.errors[:20],
        "server_cpu_s": part["server_cpu_s"],
        "outbox": part["outbox"],
    }
    if "arrivals" in part:
        arrivals: dict[str, Arrivals] = part["arrivals"]
        sample["arrivals"] = {channel: a.summary() for channel, a in arrivals.items()}
        sample["drain_s"] = part["drain_s"]
        sample["receivers_cpu_s"] = part["receivers_cpu_s"]
    return sample


def settings_document(settings: Settings) -> dict[str, Any]:
    mix = settings.mix
    document: dict[str, Any] = {
        "store": settings.store.label,
        "messages": {"direct": mix.direct, "mention": mix.mention, "urgent": mix.urgent},
        "deliveries_planned": mix.planned(),
        "readers": mix.readers,
        "senders": mix.senders,
        "channels": mix.channels,
        "webhook_endpoints": list(ENDPOINTS),
        "sends_in_flight_per_sender": WINDOW,
        "policy": POLICY,
        "lag": "from the message's commit (the ts of its ack, stamped by the server in the "
        "transaction that stores it) to its arrival at the receiver (time.time())",
        "rate": "deliveries / (last arrival - first commit)",
        "drain_idle_s": settings.drain_idle_s,
        "drain_max_s": settings.drain_max_s,
    }
    if settings.w1 is not None:
        document["w1"] = {
            "rates": list(settings.w1.rates),
            "step_s": settings.w1.step_s,
            "load_generator_processes": settings.w1.workers,
            "target_ratio": W1_TARGET,
            "on": "every W1 user has a push subscription and an address; one endpoint exists",
        }
    return document
