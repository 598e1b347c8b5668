"""The consult rules as a shop writes them (`consults.toml`), and the choices they make."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from orderchat.core.consults import (
    AgentLoad,
    ConsultRules,
    Strategy,
    away_text,
    choose_agent,
    parse_rules,
)
from orderchat.core.errors import BadRequest
from orderchat.core.ids import UserId
from orderchat.core.model import Role
from orderchat.services.consults.rules_file import load_rules

SHOP = """
first_response_s = 120
max_open_per_agent = 3
timezone = "Asia/Shanghai"

[hours]
days = ["mon", "tue", "wed", "thu", "fri", "sat"]
open = "09:00"
close = "21:00"
away = { zh-CN = "我们 {next_open} 上班", en = "Back at {next_open}" }

[[queue]]
name = "brands"
languages = ["en"]
roles = ["sales"]
strategy = "last_agent"

[[queue]]
name = "shop"
roles = ["customer_service"]
strategy = "round_robin"
"""

A, B, C, D = (UserId(f"u_{c}") for c in "abcd")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).timestamp() * 1000)


@pytest.fixture
def rules() -> ConsultRules:
    return parse_rules(SHOP)


def test_the_first_queue_that_takes_the_language_gets_the_consult(rules: ConsultRules) -> None:
    assert rules.queue_for("en").name == "brands"
    assert rules.queue_for("zh-CN").name == "shop"
    assert rules.queue_for("en").roles == (Role.SALES,)


def test_round_robin_is_fair_over_a_hundred_consults(rules: ConsultRules) -> None:
    queue = rules.queue_for("zh-CN")
    given: list[UserId] = []
    last = None
    for _ in range(100):
        # Every agent answers and closes at once: nobody is ever at capacity.
        chosen = choose_agent(queue, [AgentLoad(a, 0) for a in (C, A, B)], 3, last)
        assert chosen is not None
        given.append(chosen)
        last = chosen
    counts = Counter(given)
    assert max(counts.values()) - min(counts.values()) <= 1, counts
    assert given[:6] == [A, B, C, A, B, C]


def test_round_robin_skips_agents_at_capacity_and_queues_when_all_are(
    rules: ConsultRules,
) -> None:
    queue = rules.queue_for("zh-CN")
    loads = [AgentLoad(A, 3), AgentLoad(B, 1), AgentLoad(C, 3)]
    assert choose_agent(queue, loads, 3, A) == B
    assert choose_agent(queue, loads, 3, B) == B  # the only one with room
    full = [AgentLoad(a, 3) for a in (A, B, C)]
    assert choose_agent(queue, full, 3, None) is None
    assert choose_agent(queue, [], 3, None) is None


def test_fewest_open_picks_the_least_busy_then_continues_the_turn() -> None:
    rules = parse_rules(SHOP.replace('strategy = "round_robin"', 'strategy = "fewest_open"'))
    queue = rules.queue_for("zh-CN")
    assert queue.strategy is Strategy.FEWEST_OPEN
    loads = [AgentLoad(A, 2), AgentLoad(B, 0), AgentLoad(C, 0), AgentLoad(D, 1)]
    assert choose_agent(queue, loads, 3, None) == B
    assert choose_agent(queue, loads, 3, B) == C


def test_last_agent_keeps_a_returning_visitor_with_whoever_served_them(
    rules: ConsultRules,
) -> None:
    queue = rules.queue_for("en")
    loads = [AgentLoad(A, 0), AgentLoad(B, 2), AgentLoad(C, 0)]
    assert choose_agent(queue, loads, 3, A, last_agent=B) == B
    # At capacity, or gone from the queue: the turn goes on as round-robin.
    assert choose_agent(queue, [AgentLoad(A, 0), AgentLoad(B, 3)], 3, A, last_agent=B) == A
    assert choose_agent(queue, loads, 3, A, last_agent=D) == B


def test_hours_say_when_the_shop_is_open_and_when_it_opens_next(rules: ConsultRules) -> None:
    assert rules.is_open(at("2026-12-07T10:00"))  # a Monday morning
    assert not rules.is_open(at("2026-12-07T08:59"))
    assert not rules.is_open(at("2026-12-07T21:00"))
    assert rules.next_open_ms(at("2026-12-07T22:30")) == at("2026-12-08T09:00")
    # Saturday night: Sunday is closed, so Monday morning.
    assert rules.next_open_ms(at("2026-12-12T21:30")) == at("2026-12-14T09:00")
    assert rules.next_open_ms(at("2026-12-07T10:00")) == at("2026-12-07T10:00")
    assert away_text(rules, "en", "09:00") == "Back at 09:00"


def test_an_evening_shift_runs_past_midnight() -> None:
    late = parse_rules(
        '[hours]\ndays = ["fri"]\nopen = "20:00"\nclose = "02:00"\n'
        '[[queue]]\nname = "night"\nroles = ["sales"]\n'
    )
    assert late.is_open(at("2026-12-11T23:00"))  # Friday
    assert late.is_open(at("2026-12-12T01:30"))  # Saturday, still Friday's shift
    assert not late.is_open(at("2026-12-12T23:00"))
    always = parse_rules('[[queue]]\nname = "all"\nroles = ["sales"]\n')
    assert always.is_open(at("2026-12-13T03:00")) and always.hours is None


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[[queue]]\nname = 'x'\n", "queue[0].roles"),
        ("[[queue]]\nname = 'x'\nroles = ['cook']\n", "queue[0].roles"),
        ("[[queue]]\nname = 'x'\nroles = ['sales']\nstrategy = 'random'\n", "strategy"),
        ("[[queue]]\nname = 'x'\nroles = ['sales']\nlanguages = ['fr']\n", "languages"),
        ("timezone = 'Mars/Olympus'\n[[queue]]\nname = 'x'\nroles = ['sales']\n", "timezone"),
        ("max_open_per_agent = 0\n[[queue]]\nname = 'x'\nroles = ['sales']\n", "max_open"),
        ("[hours]\nopen = '9am'\n[[queue]]\nname = 'x'\nroles = ['sales']\n", "hours.open"),
        ("[hours]\ndays = ['someday']\n[[queue]]\nname = 'x'\nroles = ['sales']\n", "days"),
        ("surprise = 1\n[[queue]]\nname = 'x'\nroles = ['sales']\n", "surprise"),
        (
            "[[queue]]\nname = 'x'\nroles = ['sales']\n[[queue]]\nname = 'x'\nroles = ['qc']\n",
            "differ",
        ),
        ("", "queue"),
        ("not toml = = 1", "consults.toml"),
    ],
)
def test_a_file_that_breaks_a_rule_is_refused_saying_where(text: str, where: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_rules(text)
    assert where in refused.value.message


def test_the_built_in_rules_parse_and_a_shop_file_replaces_them(tmp_path: object) -> None:
    from pathlib import Path

    built_in = load_rules(None)
    assert [q.name for q in built_in.queues] == ["english", "shop"]
    shop_dir = Path(str(tmp_path))
    (shop_dir / "consults.toml").write_text(SHOP, encoding="utf-8")
    assert load_rules(shop_dir).first_response_s == 120
    (shop_dir / "consults.toml").write_text("[[queue]]\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"consults\.toml"):
        load_rules(shop_dir)
