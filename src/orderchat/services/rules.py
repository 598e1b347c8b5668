"""The shop's rules as files, for reading: where each comes from and whether it is valid now.

The server runs the workflows it loaded at start-up (a shop file that did not
parse then stopped the start). A file edited since may no longer parse, so
the report reads every file again and says, per file, whether it is valid, and
whether the server is running it. Nothing here changes a rule.

Routing rules are built in (`core/routing.py`); the notification policy is
`notify.toml`, the shop's beside its workflows or the built-in one; and so are
the consult rules, `consults.toml`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from orderchat.core import routing
from orderchat.core.consults import ConsultRules, parse_rules
from orderchat.core.errors import BadRequest
from orderchat.core.notify import Policy, parse_policy
from orderchat.core.routing import ROUTES, Route
from orderchat.core.workflows import LANGUAGES, Workflow, parse_workflow
from orderchat.services.consults.rules_file import read_rules_text, rules_path
from orderchat.services.orders.workflows import (
    BUILT_IN,
    NOT_WORKFLOWS,
    NOTIFY_POLICY_FILE,
    Workflows,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RuleFile:
    """One file of rules: where it is, whether it parses now, and what the server runs."""

    path: str
    origin: str  # "built_in" or "shop"
    errors: tuple[str, ...]
    workflow: Workflow | None = None  # a workflow file that parses
    running: bool = False  # the server runs this file's workflow
    overridden_by: str | None = None  # a built-in replaced by a shop file of the same name

    @property
    def valid(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class RoutingRules:
    path: str
    errors: tuple[str, ...]
    routes: tuple[tuple[str, Route], ...]


@dataclass(frozen=True, slots=True)
class NotifyRules:
    path: str
    origin: str
    errors: tuple[str, ...]
    policy: Policy | None  # the file as it parses now


@dataclass(frozen=True, slots=True)
class ConsultRulesFile:
    path: str
    origin: str
    errors: tuple[str, ...]
    rules: ConsultRules | None  # the file as it parses now


@dataclass(frozen=True, slots=True)
class RulesReport:
    workflows: tuple[RuleFile, ...]
    routing: RoutingRules
    shop_dir: str
    notifications: NotifyRules
    consults: ConsultRulesFile


def describe_rules(running: Workflows, shop_dir: Path) -> RulesReport:
    """Every rule file read again now, next to what the server runs."""
    files = [_built_in(name) for name in BUILT_IN]
    shop = sorted(shop_dir.glob("*.toml")) if shop_dir.is_dir() else []
    shop = [path for path in shop if path.name not in NOT_WORKFLOWS]
    files += [_read(path, "shop") for path in shop]
    by_name = running.sources()
    named = {f.workflow.name: f.path for f in files if f.workflow and f.origin == "shop"}
    report = []
    for found in files:
        name = found.workflow.name if found.workflow else None
        overridden = named.get(name) if name and found.origin == "built_in" else None
        report.append(
            RuleFile(
                path=found.path,
                origin=found.origin,
                errors=found.errors,
                workflow=found.workflow,
                running=name is not None and by_name.get(name) == found.path,
                overridden_by=overridden,
            )
        )
    return RulesReport(
        tuple(report), _routing(), str(shop_dir.resolve()), _notify(shop_dir), _consults(shop_dir)
    )


def _consults(shop_dir: Path) -> ConsultRulesFile:
    """The consult rules the next start would load: the shop's if it has one."""
    path, origin = rules_path(shop_dir)
    try:
        return ConsultRulesFile(path, origin, (), parse_rules(read_rules_text(shop_dir)))
    except (OSError, UnicodeDecodeError) as exc:
        return ConsultRulesFile(path, origin, (f"cannot read the file: {exc}",), None)
    except BadRequest as exc:
        return ConsultRulesFile(path, origin, (exc.message,), None)


def _notify(shop_dir: Path) -> NotifyRules:
    """The policy file the next start would load: the shop's if it has one."""
    own = shop_dir / NOTIFY_POLICY_FILE
    resource = resources.files("orderchat.workflows").joinpath(NOTIFY_POLICY_FILE)
    shop = own.is_file()
    path = str(own.resolve()) if shop else str(resource)
    origin = "shop" if shop else "built_in"
    try:
        text = own.read_text("utf-8") if shop else resource.read_text("utf-8")
        return NotifyRules(path, origin, (), parse_policy(text))
    except (OSError, UnicodeDecodeError) as exc:
        return NotifyRules(path, origin, (f"cannot read the file: {exc}",), None)
    except BadRequest as exc:
        return NotifyRules(path, origin, (exc.message,), None)


def _built_in(name: str) -> RuleFile:
    resource = resources.files("orderchat.workflows").joinpath(f"{name}.toml")
    return _parse(str(resource), "built_in", lambda: resource.read_text("utf-8"))


def _read(path: Path, origin: str) -> RuleFile:
    return _parse(str(path.resolve()), origin, lambda: path.read_text("utf-8"))


def _parse(path: str, origin: str, read: Callable[[], str]) -> RuleFile:
    try:
        text = read()
    except (OSError, UnicodeDecodeError) as exc:
        logger.warning("rule file %s unreadable: %s", path, exc)
        return RuleFile(path, origin, (f"cannot read the file: {exc}",))
    try:
        workflow = parse_workflow(text)
    except BadRequest as exc:
        return RuleFile(path, origin, (exc.message,))
    return RuleFile(path, origin, (), workflow)


def _routing() -> RoutingRules:
    problems: list[str] = []
    for event, route in ROUTES.items():
        missing = [language for language in LANGUAGES if not route.text.get(language)]
        if missing:
            problems.append(f"{event}: no text in {', '.join(missing)}")
        if not route.roles and not route.customer:
            problems.append(f"{event}: tells nobody")
    path = str(Path(routing.__file__).resolve())
    return RoutingRules(path, tuple(problems), tuple(ROUTES.items()))
