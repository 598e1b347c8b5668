"""HTTP routes: the shop's rules (workflows, routing) as files, read-only, for staff."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from orderchat.api.openapi import errors
from orderchat.api.responses import Json
from orderchat.api.routes.orders import workflow_view
from orderchat.api.runtime import AuthDep, RuntimeDep
from orderchat.core.consults import DAYS
from orderchat.core.notify import Channel, Occasion
from orderchat.core.permissions import require_staff
from orderchat.services.rules import (
    ConsultRulesFile,
    NotifyRules,
    RuleFile,
    RulesReport,
    describe_rules,
)

router = APIRouter(prefix="/api", tags=["rules"])


@router.get("/rules", responses=errors(401, 403))
async def list_rules(auth: AuthDep, runtime: RuntimeDep) -> Json:
    """Each rule file, where it is, and whether it is valid now (it is read again)."""
    require_staff(auth.user)
    shop_dir = runtime.settings.workflows_dir
    # A few small files; read off the event loop all the same.
    report = await asyncio.to_thread(describe_rules, runtime.workflows, shop_dir)
    return Json(rules_view(report))


def rules_view(report: RulesReport) -> dict[str, Any]:
    routing = report.routing
    return {
        "shop_dir": report.shop_dir,
        "workflows": [_file_view(f) for f in report.workflows],
        "routing": {
            "source": {"origin": "built_in", "path": routing.path},
            "valid": not routing.errors,
            "errors": list(routing.errors),
            "routes": [
                {
                    "event": event,
                    "roles": sorted(r.value for r in route.roles),
                    "customer": route.customer,
                    "urgent": route.urgent,
                    "text": dict(route.text),
                }
                for event, route in routing.routes
            ],
        },
        "notifications": _notify_view(report.notifications),
        "consult": _consult_view(report.consults),
    }


def _consult_view(found: ConsultRulesFile) -> dict[str, Any]:
    rules = found.rules
    hours = rules.hours if rules else None
    return {
        "configured": True,
        "source": {"origin": found.origin, "path": found.path},
        "valid": not found.errors,
        "errors": list(found.errors),
        "first_response_s": rules.first_response_s if rules else None,
        "max_open_per_agent": rules.max_open_per_agent if rules else None,
        "timezone": rules.timezone if rules else None,
        "hours": None
        if hours is None
        else {
            "days": [DAYS[d] for d in sorted(hours.days)],
            "open": _hhmm(hours.open_minute),
            "close": _hhmm(hours.close_minute),
            "away": dict(hours.away) if hours.away else None,
        },
        "queues": [
            {
                "name": q.name,
                "roles": [r.value for r in q.roles],
                "strategy": q.strategy.value,
                "languages": sorted(q.languages) if q.languages is not None else None,
            }
            for q in (rules.queues if rules else ())
        ],
    }


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _notify_view(found: NotifyRules) -> dict[str, Any]:
    policy = found.policy
    return {
        "source": {"origin": found.origin, "path": found.path},
        "valid": not found.errors,
        "errors": list(found.errors),
        "occasions": []
        if policy is None
        else [
            {
                "occasion": occasion.value,
                "push_after_s": policy.delay(occasion, Channel.PUSH),
                "email_after_s": policy.delay(occasion, Channel.EMAIL),
            }
            for occasion in Occasion
        ],
        "ladder": None
        if policy is None
        else {
            "escalate_after_s": policy.ladder.escalate_after_s,
            "every_s": policy.ladder.every_s,
            "reminders": policy.ladder.reminders,
            "channels": [c.value for c in policy.ladder.channels],
        },
    }


def _file_view(found: RuleFile) -> dict[str, Any]:
    view: dict[str, Any] = {
        "source": {"origin": found.origin, "path": found.path},
        "valid": found.valid,
        "errors": list(found.errors),
        "running": found.running,
        "overridden_by": found.overridden_by,
        "workflow": None if found.workflow is None else workflow_view(found.workflow),
    }
    return view
