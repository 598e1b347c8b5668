"""The `notify` workload's table: parts 1 and 2 per channel, part 3 against its target.

Rows follow `bench/_report.py`; a row's `reference` names the row it is set
against (the plain run's send time, W1's best rate with notifications off).
"""

from __future__ import annotations

from typing import Any

from bench import steady
from bench._notify_mix import Arrivals, Mix, Sent
from bench._report import Row

W1_TARGET = 0.90  # best rate with notifications on / off
OFF, ON = "W1 notifications off", "W1 notifications on"


def mix_errors(mix: Mix, plain: dict[str, Any], notified: dict[str, Any]) -> list[str]:
    """Sends refused or unanswered, deliveries lost, doubled or stray, pushes refused."""
    errors: list[str] = []
    for label, part in (("plain", plain), ("notified", notified)):
        sent: Sent = part["sent"]
        if len(sent.commit_ms) != mix.messages:
            errors.append(
                f"{label}: {len(sent.commit_ms)} of {mix.messages} sends acked: {sent.errors[:3]}"
            )
        if part["arrived"].refused:
            errors.append(
                f"{label}: the push service refused {part['arrived'].refused} pushes: "
                f"{part['arrived'].refusals[:3]}"
            )
    planned_plain = sum(sum(states.values()) for states in plain["outbox"].values())
    if planned_plain:
        errors.append(f"plain: {planned_plain} deliveries planned where nobody is reachable")
    arrivals: dict[str, Arrivals] = notified["arrivals"]
    for channel, a in arrivals.items():
        if a.missing or a.duplicates or a.unexpected:
            errors.append(
                f"notified {channel}: {a.missing} of {a.expected} missing, {a.duplicates} doubled, "
                f"{a.unexpected} unexpected (outbox: {notified['outbox'].get(channel)})"
            )
    return errors


def mix_rows(
    mix: Mix, plain: dict[str, Any], notified: dict[str, Any]
) -> tuple[list[Row], dict[str, Any]]:
    """Parts 1 and 2: rates and lags per channel, each-once counts, the send times side by side."""
    arrivals: dict[str, Arrivals] = notified["arrivals"]
    sent: Sent = notified["sent"]
    first_commit = min(sent.commit_ms.values(), default=0) / 1000
    delivered = sum(a.delivered for a in arrivals.values())
    last = max((a.last_at for a in arrivals.values()), default=first_commit)
    rows: list[Row] = [
        {
            "metric": "deliveries planned",
            "value": sum(mix.planned().values()),
            "unit": "deliveries",
        },
        {
            "metric": "deliveries/s, all channels",
            "value": delivered / max(last - first_commit, 1e-9),
            "unit": "deliveries/s",
        },
    ]
    for channel, a in arrivals.items():
        rows.append(
            {
                "metric": f"{channel} deliveries/s",
                "value": a.delivered / max(a.last_at - first_commit, 1e-9),
                "unit": "deliveries/s",
            }
        )
    for channel, a in arrivals.items():
        for label, value in (
            ("p50", a.lag_ms(0.5)),
            ("p99", a.lag_ms(0.99)),
            ("max", a.lags_ms[-1] if a.lags_ms else 0.0),
        ):
            rows.append({"metric": f"{channel} lag {label}", "value": value, "unit": "ms"})
    rows += _counts_rows(mix, plain, notified, last)
    missing = sum(a.missing for a in arrivals.values())
    doubled = sum(a.duplicates + a.unexpected for a in arrivals.values())
    checks = {
        "deliveries": {
            "planned": mix.planned(),
            "delivered": {c: a.delivered for c, a in arrivals.items()},
            "missing": missing,
            "duplicates": doubled,
            "each_once": missing == 0 and doubled == 0,
        },
        "outbox_notified": notified["outbox"],
        "outbox_plain": plain["outbox"],
    }
    return rows, checks


def _counts_rows(
    mix: Mix, plain: dict[str, Any], notified: dict[str, Any], last: float
) -> list[Row]:
    arrivals: dict[str, Arrivals] = notified["arrivals"]
    sent: Sent = notified["sent"]
    plain_sent: Sent = plain["sent"]
    n = f"{mix.messages:,}"
    plain_label = f"send {n} messages, plain"
    plain_rate = f"send rate, plain ({n} messages)"
    return [
        {"metric": "mails sent (SMTP)", "value": arrivals["mail"].requests, "unit": "mails"},
        {"metric": "deliveries missing", "value": sum(a.missing for a in arrivals.values())},
        {
            "metric": "deliveries doubled or stray",
            "value": sum(a.duplicates + a.unexpected for a in arrivals.values()),
        },
        {"metric": "last delivery after the first send", "value": last - sent.started, "unit": "s"},
        {
            "metric": f"send {n} messages, notifications planned",
            "value": sent.seconds,
            "unit": "s",
            "reference": plain_label,
        },
        {"metric": plain_label, "value": plain_sent.seconds, "unit": "s"},
        {
            "metric": f"send rate, notifications planned ({n} messages)",
            "value": len(sent.commit_ms) / sent.seconds,
            "unit": "msg/s",
            "reference": plain_rate,
        },
        {
            "metric": plain_rate,
            "value": len(plain_sent.commit_ms) / plain_sent.seconds,
            "unit": "msg/s",
        },
        {
            "metric": "server CPU, notified (send and drain)",
            "value": notified["server_cpu_s"],
            "unit": "CPU s",
        },
        {"metric": "server CPU, plain (send)", "value": plain["server_cpu_s"], "unit": "CPU s"},
        {
            "metric": "receivers CPU, notified",
            "value": notified["receivers_cpu_s"],
            "unit": "CPU s",
        },
    ]


def w1_rows(
    w1: steady.Settings, records: dict[str, list[dict[str, Any]]], seen: dict[str, Any]
) -> tuple[list[Row], dict[str, Any]]:
    """Part 3: the best rates and their ratio, p99 and CPU side by side, what went out when on."""
    best, ratio, rows = steady.on_off_rows(records, OFF, ON, W1_TARGET)
    for channel, states in sorted(seen.get(ON, {}).get("outbox", {}).items()):
        for state, count in sorted(states.items()):
            rows.append(
                {
                    "metric": f"{ON}: {channel} deliveries {state} at the end",
                    "value": count,
                    "unit": "deliveries",
                }
            )
    verdict_rows, verdict = steady.on_off_verdict(best, ratio, OFF, W1_TARGET, w1.rates)
    rows += verdict_rows
    rows += steady.build_rows(records, w1)
    checks = {
        "w1_on_vs_off": verdict,
        "w1_outbox": {name: seen.get(name, {}).get("outbox") for name in (OFF, ON)},
    }
    return rows, checks
