"""Bodies about the shop's rules: workflow and routing files, and whether each is valid."""

from __future__ import annotations

from typing import Literal

from orderchat.api.response_schemas._base import Body, Texts
from orderchat.api.response_schemas.orders import Workflow


class RuleSource(Body):
    origin: Literal["built_in", "shop"]  # shipped with OrderChat, or the shop's own file
    path: str


class WorkflowFile(Body):
    source: RuleSource
    valid: bool  # the file parses now
    errors: list[str]
    running: bool  # the server runs this file's workflow (loaded at start-up)
    overridden_by: str | None  # a shop file of the same workflow name replaces this one
    workflow: Workflow | None  # null when the file does not parse


class Route(Body):
    event: str
    roles: list[str]
    customer: bool
    urgent: bool  # posted urgent: it climbs the notification ladder until read
    text: Texts


class RoutingRules(Body):
    source: RuleSource
    valid: bool
    errors: list[str]
    routes: list[Route]


class OccasionDelays(Body):
    occasion: str
    push_after_s: int | None  # seconds unread before a push; null: never
    email_after_s: int | None


class LadderRules(Body):
    escalate_after_s: int
    every_s: int
    reminders: int
    channels: list[Literal["push", "email"]]


class NotifyRules(Body):
    """The notification policy the next start loads (docs/notifications.md)."""

    source: RuleSource
    valid: bool
    errors: list[str]
    occasions: list[OccasionDelays]
    ladder: LadderRules | None


class ConsultQueue(Body):
    name: str
    roles: list[str]
    strategy: str
    languages: list[str] | None


class ConsultHours(Body):
    days: list[str]
    open: str
    close: str
    away: dict[str, str] | None


class ConsultRules(Body):
    configured: Literal[True]
    source: RuleSource
    valid: bool
    errors: list[str]
    first_response_s: int | None
    max_open_per_agent: int | None
    timezone: str | None
    hours: ConsultHours | None
    queues: list[ConsultQueue]


class Rules(Body):
    shop_dir: str  # where a shop puts its own workflow files
    workflows: list[WorkflowFile]
    routing: RoutingRules
    notifications: NotifyRules
    consult: ConsultRules
