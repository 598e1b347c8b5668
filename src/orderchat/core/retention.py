"""Retention: how long each kind of conversation keeps what was said.

Nothing is deleted unless an administrator sets a rule. A purge removes a
message's content (text, files, details, every edit's text) and records what
it removed; it never removes the message's place or its hash, so the
conversation's hash chain still verifies link by link, and the purged links
are known to be purged rather than missing. An order under legal hold is never
purged, whatever the rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from orderchat.core.errors import BadRequest
from orderchat.core.model import ConversationKind
from orderchat.core.texts import say

DAY_MS = 24 * 3600 * 1000
MIN_DAYS = 1
MAX_DAYS = 36_500  # a hundred years: beyond it, say "forever"
# Messages purged per transaction: a run never holds the write lock for long.
PURGE_BATCH = 500


@dataclass(frozen=True, slots=True)
class RetentionRule:
    kind: ConversationKind
    days: int | None  # None: kept forever


def check_rule(kind: str, days: object) -> RetentionRule:
    try:
        chosen = ConversationKind(kind)
    except ValueError:
        raise BadRequest(say("retention.unknown_kind", kind=kind)) from None
    if days is None:
        return RetentionRule(chosen, None)
    if isinstance(days, bool) or not isinstance(days, int) or not MIN_DAYS <= days <= MAX_DAYS:
        raise BadRequest(say("retention.days_out_of_range", low=MIN_DAYS, high=MAX_DAYS))
    return RetentionRule(chosen, days)


def cutoff_ms(now_ms: int, days: int) -> int:
    """Messages sent before this instant are past the rule."""
    return now_ms - days * DAY_MS


@dataclass(frozen=True, slots=True)
class PurgeReport:
    conversations: int = 0
    messages: int = 0
    files: int = 0

    def __add__(self, other: PurgeReport) -> PurgeReport:
        return PurgeReport(
            self.conversations + other.conversations,
            self.messages + other.messages,
            self.files + other.files,
        )
