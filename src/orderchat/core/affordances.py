"""What a user may do with an order right now: the buttons an app should show.

Every action is checked again by the service that performs it; this view only
spares people buttons that would be refused. A customer gets no transitions
and no exceptions: those are staff work.
"""

from __future__ import annotations

from typing import Any

from orderchat.core.model import User, UserKind
from orderchat.core.permissions import allowed_actions
from orderchat.core.routing import EXCEPTION_REPORTERS, may_report
from orderchat.core.workflows import Workflow

REPORT_ISSUE = "report_issue"


def order_affordances(user: User, workflow: Workflow, status: str) -> dict[str, Any]:
    actions = allowed_actions(user)
    if user.kind is not UserKind.STAFF:
        return {"transitions": [], "issue_kinds": [], "actions": actions}
    moves = [
        {
            "to": move.target,
            "label": {lang: workflow.label(move.target, lang) for lang in ("zh-CN", "en")},
            "photos": move.photos,
            "photos_required": move.photos_required,
            "action": dict(move.action),
        }
        for move in workflow.moves_for(status, user.roles)
    ]
    kinds = [kind for kind in EXCEPTION_REPORTERS if may_report(kind, user.roles)]
    if kinds and status not in workflow.terminal:
        actions.append(REPORT_ISSUE)
    else:
        kinds = []
    return {"transitions": moves, "issue_kinds": kinds, "actions": actions}
