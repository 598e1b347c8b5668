"""Running a shop's staff: add people, invite them by link, change their roles,
disable them, reset a password, sign them out. The admin API and `orderchat user`
both call these, so both keep the same rules.

`actor` is the admin who asks, or None for the operator at the server's command
line (who may do anything an admin may). Two rules hold for everyone: the shop
always keeps one enabled admin, and nobody disables themselves.

Password resets are links, not passwords an admin makes up: the admin never
learns the new password, and it never travels in a chat message. Using the link
sets the password and ends every other session of that person. A new link for
the same person replaces the ones not used yet.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from dataclasses import dataclass

from orderchat.core.audit import AuditAction, AuditEntry
from orderchat.core.errors import BadRequest, Conflict, Forbidden, NotFound
from orderchat.core.ids import IdMinter, UserId
from orderchat.core.model import (
    MAX_DISPLAY_NAME_CHARS,
    MAX_PASSWORD_CHARS,
    NewStaff,
    Role,
    User,
    UserKind,
    parse_roles,
    validate_username,
)
from orderchat.core.passwords import check_password
from orderchat.core.texts import say
from orderchat.services.accounts import Accounts, SignedIn, token_hash
from orderchat.services.onboarding import (
    forget_member_roles_txn,
    join_roles_txn,
    leave_roles_txn,
)
from orderchat.services.orders.workflows import Workflows
from orderchat.services.ports import Clock, Publisher, Revocation
from orderchat.services.writer import GroupCommitWriter, WriteTxn
from orderchat.storage import accounts as account_store
from orderchat.storage import audit as audit_store
from orderchat.storage import staff as staff_store
from orderchat.storage.engine import Database
from orderchat.storage.staff import StaffLink

__all__ = ["Invite", "IssuedLink", "Staff", "StaffEntry", "StaffLink"]

logger = logging.getLogger(__name__)

INVITE_TTL_S = 7 * 24 * 3600  # long enough to reach someone who starts next week
RESET_TTL_S = 24 * 3600  # a reset is for now; a stale one is a risk
INVITE = "invite"
RESET = "reset"
LINK_PATH = "/#/join/"


FIRST_ADMIN = "admin"  # the username of the first admin a fresh install invites


@dataclass(frozen=True, slots=True)
class StaffEntry:
    user: User
    disabled: bool
    active_sessions: int
    last_sign_in_ms: int | None


@dataclass(frozen=True, slots=True)
class IssuedLink:
    """A link as the admin gets it: the token is shown this once."""

    token: str
    link: StaffLink

    @property
    def path(self) -> str:
        return LINK_PATH + self.token


@dataclass(frozen=True, slots=True)
class Invite:
    username: str
    roles: tuple[Role, ...]
    display_name: str | None = None


def _display_name(raw: str | None) -> str | None:
    """A chosen display name, stripped; None when none was given."""
    shown = (raw or "").strip()
    if len(shown) > MAX_DISPLAY_NAME_CHARS:
        raise BadRequest(
            say(
                "model.display_name_must_1_characters",
                max_display_name_chars=MAX_DISPLAY_NAME_CHARS,
            )
        )
    return shown or None


def _require_admin(actor: User | None) -> None:
    if actor is not None and not actor.is_admin:
        raise Forbidden(say("staff.only_admin_may_manage"))


class Staff:
    def __init__(
        self,
        db: Database,
        writer: GroupCommitWriter,
        accounts: Accounts,
        publisher: Publisher,
        clock: Clock,
        ids: IdMinter,
        workflows: Workflows,
    ) -> None:
        self._db = db
        self._writer = writer
        self._accounts = accounts
        self._publisher = publisher
        self._clock = clock
        self._ids = ids
        self._workflows = workflows

    # --- reading ------------------------------------------------------------------

    async def list_staff(self, actor: User | None) -> list[StaffEntry]:
        _require_admin(actor)
        async with self._db.read() as conn:
            accounts = await account_store.list_staff_accounts(conn)
            stats = await staff_store.session_stats(conn, self._clock.now_ms())
        entries = []
        for user, disabled in accounts:
            found = stats.get(user.id)
            active, last = (found.active, found.last_sign_in_ms) if found else (0, None)
            entries.append(StaffEntry(user, disabled, active, last))
        return entries

    # --- adding people ------------------------------------------------------------

    async def add(self, actor: User | None, new: NewStaff) -> User:
        """Raises BadRequest for a password the policy refuses, Conflict for a taken username."""
        _require_admin(actor)
        check_password(new.password, new.username)
        hashed = await self._accounts.hash_password(new.password)
        user = User(
            id=self._ids.user(),
            username=new.username,
            display_name=new.display_name,
            roles=new.roles,
            kind=UserKind.STAFF,
        )
        op = _CreateStaff(user, hashed, None, self._workflows, None if actor is None else actor.id)
        created: User = await self._writer.submit(op)
        logger.info("staff added id=%s roles=%s", user.id, ",".join(user.roles))
        return created

    async def invite(self, actor: User | None, invite: Invite) -> IssuedLink:
        _require_admin(actor)
        username = validate_username(invite.username)
        roles = parse_roles(list(invite.roles))
        shown = _display_name(invite.display_name)
        async with self._db.read() as conn:
            if await account_store.find_credentials(conn, username) is not None:
                raise Conflict(say("accounts.username_taken", username=username))
        return await self._issue(actor, INVITE, username, roles, shown, None)

    async def first_admin_link(self) -> IssuedLink | None:
        """A link that makes the first admin, while the shop has no enabled admin.

        A fresh install can then be set up from the browser: the operator opens
        the link the server logs, chooses a password, and adds everyone else in
        the console. Issued again at each start until an admin exists; a newer
        link replaces the older one. None once there is an admin, or when the
        name `admin` is held by a disabled account (then the CLI decides).
        """
        async with self._db.read() as conn:
            if await staff_store.count_enabled_admins(conn):
                return None
            if await account_store.find_credentials(conn, FIRST_ADMIN) is not None:
                return None
        return await self._issue(None, INVITE, FIRST_ADMIN, (Role.ADMIN,), None, None)

    async def reset_link(self, actor: User | None, username: str) -> IssuedLink:
        _require_admin(actor)
        async with self._db.read() as conn:
            user, disabled = await account_store.get_staff_by_username(conn, username)
        if disabled:
            raise Conflict(say("staff.user_disabled_enable_first", username=username))
        return await self._issue(actor, RESET, user.username, user.roles, None, user.id)

    async def _issue(
        self,
        actor: User | None,
        kind: str,
        username: str,
        roles: tuple[Role, ...],
        display_name: str | None,
        user_id: UserId | None,
    ) -> IssuedLink:
        now_ms = self._clock.now_ms()
        ttl_s = INVITE_TTL_S if kind == INVITE else RESET_TTL_S
        token = secrets.token_urlsafe(32)
        link = StaffLink(
            id=self._ids.new("sl"),
            kind=kind,
            username=username,
            display_name=display_name,
            roles=roles,
            user_id=user_id,
            created_by=None if actor is None else actor.id,
            created_at_ms=now_ms,
            expires_at_ms=now_ms + ttl_s * 1000,
            used_at_ms=None,
            revoked_at_ms=None,
        )
        action = AuditAction.STAFF_INVITED if kind == INVITE else AuditAction.PASSWORD_RESET_ISSUED
        details: dict[str, object] = {"username": username, "roles": list(roles), "link": link.id}
        entry = AuditEntry(action, link.created_by, user_id or username, now_ms, None, details)
        async with self._db.write("issue_staff_link") as conn:
            await staff_store.revoke_open_links_txn(conn, kind, username, now_ms)
            await staff_store.insert_link_txn(conn, link, token_hash(token))
            await audit_store.record_txn(conn, entry)
        logger.info("staff link issued kind=%s id=%s", kind, link.id)
        return IssuedLink(token, link)

    async def check_link(self, token: str) -> StaffLink:
        """The link a token names, if it can still be used; raises otherwise."""
        if not isinstance(token, str) or not 1 <= len(token) <= 256:
            raise BadRequest(say("staff.link_token_required"))
        async with self._db.read() as conn:
            link = await staff_store.find_link(conn, token_hash(token))
        if link is None:
            raise NotFound(say("staff.link_not_valid"))
        if link.used_at_ms is not None:
            raise Conflict(say("staff.link_used"))
        if link.revoked_at_ms is not None:
            raise Conflict(say("staff.link_replaced"))
        if link.expires_at_ms <= self._clock.now_ms():
            raise Conflict(say("staff.link_expired"))
        return link

    async def accept_link(
        self,
        token: str,
        password: str,
        display_name: str | None,
        address: str,
        device: str | None = None,
    ) -> SignedIn:
        """The person sets their password (and name, when invited) and is signed in."""
        await self._accounts.count_attempt(address, device)
        link = await self.check_link(token)
        if not isinstance(password, str) or not password:
            raise BadRequest(say("model.password_must_non_empty_string"))
        if len(password) > MAX_PASSWORD_CHARS:
            raise BadRequest(
                say("model.password_longer_than_characters", max_password_chars=MAX_PASSWORD_CHARS)
            )
        check_password(password, link.username)
        hashed = await self._accounts.hash_password(password)
        if link.kind == INVITE:
            user = await self._accept_invite(link, hashed, display_name)
        else:
            user = await self._accept_reset(link, hashed)
        return await self._accounts.sign_in_as(user, device)

    async def _accept_invite(self, link: StaffLink, hashed: str, display_name: str | None) -> User:
        shown = _display_name(display_name) or link.display_name or link.username
        user = User(
            id=self._ids.user(),
            username=link.username,
            display_name=shown,
            roles=link.roles,
            kind=UserKind.STAFF,
        )
        created: User = await self._writer.submit(
            _CreateStaff(user, hashed, link, self._workflows, link.created_by)
        )
        logger.info("invitation used link=%s user=%s", link.id, user.id)
        return created

    async def _accept_reset(self, link: StaffLink, hashed: str) -> User:
        now_ms = self._clock.now_ms()
        assert link.user_id is not None  # a reset link always names its account
        async with self._db.write("reset_password") as conn:
            user = await account_store.get_user(conn, link.user_id)
            if not await staff_store.mark_link_used_txn(conn, link.id, user.id, now_ms):
                raise Conflict(say("staff.link_used"))
            await account_store.update_password_txn(conn, user.id, hashed)
            revoked = await account_store.revoke_sessions_txn(conn, user.id, now_ms)
        if revoked:
            self._publisher.publish([Revocation(frozenset(revoked))])
        logger.info("password reset by link=%s user=%s", link.id, user.id)
        return user

    # --- changing people ----------------------------------------------------------

    async def set_disabled(self, actor: User | None, username: str, disabled: bool) -> int:
        """Disable (ending every session and live connection at once) or enable someone."""
        _require_admin(actor)
        now_ms = self._clock.now_ms()
        async with self._db.write("set_disabled") as conn:
            user, _ = await account_store.get_staff_by_username(conn, username)
            if disabled:
                if actor is not None and actor.id == user.id:
                    raise Conflict(say("staff.cannot_disable_self"))
                if user.is_admin and await staff_store.count_enabled_admins(conn) <= 1:
                    raise Conflict(say("staff.last_admin"))
            await account_store.update_disabled_txn(conn, user.id, disabled)
            revoked = (
                await account_store.revoke_sessions_txn(conn, user.id, now_ms) if disabled else []
            )
            action = AuditAction.STAFF_DISABLED if disabled else AuditAction.STAFF_ENABLED
            details = {"username": user.username, "sessions_ended": len(revoked)}
            by = None if actor is None else actor.id
            await audit_store.record_txn(
                conn, AuditEntry(action, by, user.id, now_ms, None, details)
            )
        if revoked:
            self._publisher.publish([Revocation(frozenset(revoked))])
        logger.info("user=%s disabled=%s sessions ended=%d", user.id, disabled, len(revoked))
        return len(revoked)

    async def set_roles(self, actor: User | None, username: str, roles: tuple[Role, ...]) -> User:
        """Replace someone's roles; they join and leave what the roles bring at once."""
        _require_admin(actor)
        roles = parse_roles(list(roles))
        op = _SetRoles(username, roles, self._workflows, None if actor is None else actor.id)
        user: User = await self._writer.submit(op)
        logger.info("roles changed user=%s roles=%s", user.id, ",".join(user.roles))
        return user

    async def set_password(self, actor: User | None, username: str, password: str) -> User:
        """The operator's way (`orderchat user passwd`); admins hand out reset links."""
        _require_admin(actor)
        return await self._accounts.set_password(username, password)

    async def sign_out_everywhere(self, actor: User | None, username: str) -> int:
        _require_admin(actor)
        now_ms = self._clock.now_ms()
        async with self._db.write("sign_out_staff") as conn:
            user, _ = await account_store.get_staff_by_username(conn, username)
            revoked = await account_store.revoke_sessions_txn(conn, user.id, now_ms)
            details = {"username": user.username, "sessions_ended": len(revoked)}
            by = None if actor is None else actor.id
            entry = AuditEntry(AuditAction.STAFF_SIGNED_OUT, by, user.id, now_ms, None, details)
            await audit_store.record_txn(conn, entry)
        if revoked:
            self._publisher.publish([Revocation(frozenset(revoked))])
        logger.info("signed out user=%s sessions=%d by an admin", user.id, len(revoked))
        return len(revoked)


@dataclass(frozen=True, slots=True)
class _CreateStaff:
    user: User
    password_hash: str
    link: StaffLink | None
    workflows: Workflows
    by: UserId | None

    async def apply(self, tx: WriteTxn) -> User:
        # Checked before the first write: the writer undoes buffered writes only.
        if await account_store.find_credentials(tx.conn, self.user.username) is not None:
            raise Conflict(say("accounts.username_taken", username=self.user.username))
        if self.link is not None and not await staff_store.mark_link_used_txn(
            tx.conn, self.link.id, self.user.id, tx.now_ms
        ):
            raise Conflict(say("staff.link_used"))
        await account_store.insert_user_txn(tx.conn, self.user, self.password_hash, tx.now_ms)
        await join_roles_txn(tx, self.user.id, self.user.roles, self.workflows, self.by)
        details = {"username": self.user.username, "roles": list(self.user.roles)}
        if self.link is not None:
            details["link"] = self.link.id
        entry = AuditEntry(AuditAction.STAFF_ADDED, self.by, self.user.id, tx.now_ms, None, details)
        await audit_store.record_txn(tx.conn, entry)
        return self.user


@dataclass(frozen=True, slots=True)
class _SetRoles:
    username: str
    roles: tuple[Role, ...]
    workflows: Workflows
    by: UserId | None

    async def apply(self, tx: WriteTxn) -> User:
        user, disabled = await account_store.get_staff_by_username(tx.conn, self.username)
        losing_admin = user.is_admin and Role.ADMIN not in self.roles
        if losing_admin and not disabled and await staff_store.count_enabled_admins(tx.conn) <= 1:
            raise Conflict(say("staff.last_admin"))
        await account_store.update_roles_txn(tx.conn, user.id, self.roles)
        memberships = await staff_store.current_memberships(tx.conn, user.id)
        forget_member_roles_txn(tx, [m.conv_id for m in memberships])
        added = [r for r in self.roles if r not in user.roles]
        removed = [r for r in user.roles if r not in self.roles]
        await leave_roles_txn(tx, user.id, removed, self.roles, self.workflows, self.by)
        await join_roles_txn(tx, user.id, added, self.workflows, self.by)
        details = {"username": user.username, "before": list(user.roles), "after": list(self.roles)}
        entry = AuditEntry(AuditAction.ROLES_CHANGED, self.by, user.id, tx.now_ms, None, details)
        await audit_store.record_txn(tx.conn, entry)
        return dataclasses.replace(user, roles=self.roles)
