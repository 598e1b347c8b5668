"""Bodies about who is signed in: users, sessions, and the server's own health."""

from __future__ import annotations

from typing import Any, Literal

from orderchat.api.response_schemas._base import Body, omitted
from orderchat.core.model import Role, UserKind


class User(Body):
    """A user as every answer shows them (`protocol.server_codec.user_json`)."""

    id: str
    username: str
    display_name: str
    roles: list[Role]
    kind: UserKind


class DirectoryUser(Body):
    """A user in `GET /api/users`: a customer's directory leaves out the login names."""

    id: str
    username: str = omitted()
    display_name: str
    roles: list[Role]
    kind: UserKind


class UserList(Body):
    users: list[DirectoryUser]


class OnlineDevice(Body):
    """One connected device of a person: its name and since when (ms)."""

    device: str
    since_ts: int


class Presence(Body):
    """`GET /api/presence`: each asked-for person's connected devices, on any node."""

    presence: dict[str, list[OnlineDevice]]


class Session(Body):
    """A new session: the bearer token, whose it is, and when it ends."""

    token: str
    user: User
    expires_ts: int


class CustomerSession(Session):
    """A session from an invitation link, with the order the link was for."""

    order: str


class Revoked(Body):
    """How many sessions signing out everywhere ended."""

    revoked: int


class StaffMember(User):
    """A person in the admin console's staff list."""

    disabled: bool
    active_sessions: int
    last_sign_in_ts: int | None


class StaffList(Body):
    staff: list[StaffMember]


class StaffLink(Body):
    """What a staff link is for: an invitation to join, or a password reset."""

    kind: Literal["invite", "reset"]
    username: str
    display_name: str | None
    roles: list[Role]
    expires_ts: int


class IssuedStaffLink(StaffLink):
    """A new staff link: its token is shown this once; `path` opens it in the web app."""

    token: str
    path: str


class StaffState(Body):
    """A person disabled, enabled or signed out, and how many sessions that ended."""

    username: str
    disabled: bool = omitted()
    ended_sessions: int


class Health(Body):
    status: str


class Stats(Body):
    connections: int
    commit_batches: int
    committed_ops: int
    ops_per_batch: float


class AuditEntry(Body):
    """One sensitive action (core/audit.py); `actor` null: the server itself."""

    id: int
    ts: int
    action: str
    actor: str | None
    actor_name: str | None
    target: str
    conv: str | None
    details: dict[str, Any]


class AuditPage(Body):
    entries: list[AuditEntry]
    next: int | None
