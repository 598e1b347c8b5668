"""PNG plots of the steady and idle workloads, written next to their JSON.

matplotlib with the Agg backend (no display needed); imported only here, so the
workloads still run, and say why, where matplotlib is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, NullFormatter

COLOURS = {"orderchat": "tab:red", "relay": "tab:blue", "durable relay": "tab:green"}
DPI = 120


def _colour(target: str, index: int) -> str:
    return COLOURS.get(target, f"C{index}")


def _rate_label(rate: float) -> str:
    return f"{rate / 1000:g}k" if rate >= 1000 else f"{rate:g}"


def plot_steady(records: Mapping[str, Sequence[Mapping[str, Any]]], path: Path) -> Path:
    """p50 (dashed) and p99 (solid) latency against offered rate, log-log, per target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=DPI)
    rates_seen: set[float] = set()
    try:
        for index, (target, steps) in enumerate(records.items()):
            rates_seen.update(s["rate"] for s in steps)
            points = [s for s in steps if s["p99_ms"] > 0]
            if not points:
                continue
            rates = [s["rate"] for s in points]
            colour = _colour(target, index)
            ax.plot(rates, [s["p99_ms"] for s in points], "o-", color=colour, label=f"{target} p99")
            ax.plot(
                rates,
                [max(s["p50_ms"], 1e-3) for s in points],
                "s--",
                color=colour,
                alpha=0.7,
                label=f"{target} p50",
            )
        ax.axhline(200, color="grey", linewidth=0.8, linestyle=":", label="200 ms")
        ax.set_xscale("log")
        ax.set_yscale("log")
        if rates_seen:
            ticks = sorted(rates_seen)
            ax.set_xticks(ticks, [_rate_label(t) for t in ticks], minor=False)
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.set_xlabel("offered rate (msg/s)")
        ax.set_ylabel("end-to-end latency (ms)")
        ax.set_title("steady: latency against send rate")
        ax.grid(True, which="both", linewidth=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def plot_idle(records: Mapping[str, Sequence[Mapping[str, Any]]], path: Path) -> Path:
    """Server RSS (MiB) against open idle connections, per target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=DPI)
    try:
        for index, (target, steps) in enumerate(records.items()):
            if not steps:
                continue
            ax.plot(
                [s["connections"] for s in steps],
                [s["rss_mib"] for s in steps],
                "o-",
                color=_colour(target, index),
                label=target,
            )
        ax.set_xlabel("idle authenticated connections")
        ax.set_ylabel("server RSS (MiB)")
        ax.set_title("idle: server memory against connections")
        ax.set_ylim(bottom=0)
        ax.grid(True, linewidth=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path
