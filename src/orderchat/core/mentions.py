"""Who a message calls on: a person, a role, or everyone in the conversation.

A mention is stored as a token: a user id (`u_…`), a role (`@warehouse`) or
`@all`. Clients may list mentions explicitly; the server also finds them in the
text, so a plain terminal client that types "@warehouse" works the same as the
web app. A role mention reaches the members holding that role *in this
conversation*, never the whole staff.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from orderchat.core.errors import BadRequest
from orderchat.core.ids import UserId
from orderchat.core.model import MAX_MENTIONS, Role
from orderchat.core.texts import say

ALL = "@all"
_ALL_WORDS = frozenset({"all", "everyone", "所有人", "全体成员"})
_TOKEN = re.compile(r"(?<![\w.])@([\w.\-]+)")
_ROLE_NAMES = frozenset(r.value for r in Role)


def _normalize_explicit(
    entry: object, members: Mapping[UserId, tuple[Role, ...]], usernames: Mapping[str, UserId]
) -> str:
    if not isinstance(entry, str) or not entry:
        raise BadRequest(say("mentions.each_mention_must_user_id"))
    if entry.startswith("@"):
        name = entry[1:]
        if name in _ALL_WORDS:
            return ALL
        if name in _ROLE_NAMES:
            return entry
        if name in usernames:
            return usernames[name]
        raise BadRequest(say("mentions.neither_role_nor_member_conversation", entry=entry))
    if UserId(entry) not in members:
        raise BadRequest(say("mentions.mentioned_user_not_member_conversation", entry=entry))
    return entry


def _found_in_text(text: str, usernames: Mapping[str, UserId]) -> Iterable[str]:
    if "@" not in text:
        return
    for match in _TOKEN.finditer(text):
        name = match.group(1).rstrip(".-")
        if name in _ALL_WORDS:
            yield ALL
        elif name in _ROLE_NAMES:
            yield f"@{name}"
        elif name in usernames:
            yield usernames[name]


def resolve_mentions(
    text: str,
    explicit: Iterable[object],
    members: Mapping[UserId, tuple[Role, ...]],
    usernames: Mapping[str, UserId],
) -> tuple[str, ...]:
    """Return the message's mention tokens, explicit ones first, without repeats.

    Args:
        members: the conversation's members and their roles.
        usernames: username -> id for the members only.

    Raises:
        BadRequest: an explicit mention names a non-member or an unknown role.
    """
    tokens: list[str] = []
    for entry in explicit:
        token = _normalize_explicit(entry, members, usernames)
        if token not in tokens:
            tokens.append(token)
    for token in _found_in_text(text, usernames):
        if token not in tokens:
            tokens.append(token)
    if len(tokens) > MAX_MENTIONS:
        raise BadRequest(say("mentions.at_most_mentions_per_message", max_mentions=MAX_MENTIONS))
    return tuple(tokens)


def mentioned_users(
    tokens: Iterable[str], members: Mapping[UserId, tuple[Role, ...]]
) -> frozenset[UserId]:
    """The members a message's mentions reach."""
    reached: set[UserId] = set()
    for token in tokens:
        if token == ALL:
            return frozenset(members)
        if token.startswith("@"):
            role = Role(token[1:])
            reached.update(uid for uid, roles in members.items() if role in roles)
        elif UserId(token) in members:
            reached.add(UserId(token))
    return frozenset(reached)
