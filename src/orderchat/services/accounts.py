"""Staff accounts, sign-in and sessions.

Tokens are 256 random bits handed to the client once; only their SHA-256 is
stored, so a copy of the database signs nobody in. Each sign-in is a session of
its own (one per device), with an expiry, revocable alone or all together.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from orderchat.core.errors import BadRequest, Forbidden, Unauthorized
from orderchat.core.ids import IdMinter, OrderId, SessionId, UserId
from orderchat.core.model import MAX_PASSWORD_CHARS, NewStaff, Role, Session, User, UserKind
from orderchat.core.passwords import PasswordCost, check_password
from orderchat.core.ratelimit import Rate
from orderchat.core.texts import say
from orderchat.services.limits import ClusterRateLimiter, SharedBuckets
from orderchat.services.ports import Clock, Publisher, Revocation
from orderchat.storage import accounts as store
from orderchat.storage import orders as order_store
from orderchat.storage.engine import Database

logger = logging.getLogger(__name__)

# Five quick tries, then one every 12 s, per username; an office behind one
# address gets more before it is slowed down.
LOGIN_PER_USERNAME = Rate(burst=5, per_s=5 / 60)
LOGIN_PER_ADDRESS = Rate(burst=30, per_s=30 / 60)


@dataclass(frozen=True, slots=True)
class Authenticated:
    user: User
    session: Session


@dataclass(frozen=True, slots=True)
class SignedIn:
    token: str
    user: User
    session_id: SessionId
    expires_at_ms: int
    order_id: OrderId | None = None  # the order an invitation link was for


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str
    session_id: SessionId
    device: str
    expires_at_ms: int

    def signed_in(self, user: User) -> SignedIn:
        return SignedIn(self.token, user, self.session_id, self.expires_at_ms)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    def __init__(
        self,
        db: Database,
        publisher: Publisher,
        clock: Clock,
        ids: IdMinter,
        *,
        session_ttl_s: float,
        rate_limits: bool,
        shared_limits: SharedBuckets | None = None,
        password_cost: PasswordCost | None = None,
    ) -> None:
        self._db = db
        self._publisher = publisher
        self._clock = clock
        self._ids = ids
        self._ttl_ms = int(session_ttl_s * 1000)
        cost = password_cost or PasswordCost()
        self._hasher = PasswordHasher(
            time_cost=cost.time_cost, memory_cost=cost.memory_kib, parallelism=cost.parallelism
        )
        # Verifying against this when the username is unknown keeps the answer's
        # timing from telling which usernames exist.
        self._dummy_hash = self._hasher.hash(secrets.token_hex(16))
        self._by_username = ClusterRateLimiter(
            "signin-user", LOGIN_PER_USERNAME, enabled=rate_limits, shared=shared_limits
        )
        self._by_address = ClusterRateLimiter(
            "signin-addr", LOGIN_PER_ADDRESS, enabled=rate_limits, shared=shared_limits
        )

    async def create_user(self, new: NewStaff) -> User:
        """Raises BadRequest for a password the policy refuses, Conflict for a taken username."""
        check_password(new.password, new.username)
        user = User(
            id=self._ids.user(),
            username=new.username,
            display_name=new.display_name,
            roles=new.roles,
            kind=UserKind.STAFF,
        )
        hashed = await asyncio.to_thread(self._hasher.hash, new.password)
        async with self._db.write("create_user") as conn:
            await store.insert_user_txn(conn, user, hashed, self._clock.now_ms())
        logger.info("user created id=%s roles=%s", user.id, ",".join(user.roles))
        return user

    async def login(
        self, username: str, password: str, address: str, device: str | None = None
    ) -> SignedIn:
        _check_device(device)
        now_s = self._clock.monotonic_s()
        await self._by_address.hit(address, now_s, say("ratelimit.signins_from_address"))
        await self._by_username.hit(username.lower(), now_s, say("ratelimit.signins_for_user"))
        async with self._db.read() as conn:
            found = await store.find_credentials(conn, username)
        stored_hash = found[1] if found and found[1] else self._dummy_hash
        ok = await asyncio.to_thread(self._verify, stored_hash, password[:MAX_PASSWORD_CHARS])
        if found is None or not ok:
            logger.info("sign-in refused")
            raise Unauthorized(say("accounts.wrong_username_password"))
        user, _, disabled = found
        if disabled:
            # Said only after the right password, so it tells a stranger nothing.
            logger.info("sign-in refused: user=%s is disabled", user.id)
            raise Unauthorized(say("accounts.account_disabled_ask_admin_enable"))
        if self._hasher.check_needs_rehash(stored_hash):
            await self._rehash(user, password[:MAX_PASSWORD_CHARS])
        return await self._new_session(user, device or "web", self._clock.now_ms())

    async def _rehash(self, user: User, password: str) -> None:
        """The shop changed what a hash costs: this account's is made again at the new cost."""
        hashed = await asyncio.to_thread(self._hasher.hash, password)
        async with self._db.write("rehash_password") as conn:
            await store.update_password_txn(conn, user.id, hashed)
        logger.info("password hashed again at the current cost user=%s", user.id)

    async def sign_in_with_invitation(
        self, token: str, address: str, device: str | None = None
    ) -> SignedIn:
        """A customer opens their invitation link: they get a session of their own."""
        if not 1 <= len(token) <= 256:
            raise BadRequest(say("accounts.invitation_token_required"))
        _check_device(device)
        await self._by_address.hit(
            address, self._clock.monotonic_s(), say("ratelimit.signins_from_address")
        )
        now_ms = self._clock.now_ms()
        async with self._db.read() as conn:
            invitation = await order_store.find_invitation(conn, token_hash(token))
            if invitation is None or invitation.revoked_at_ms is not None:
                raise Unauthorized(say("accounts.invitation_link_not_valid"))
            if invitation.expires_at_ms <= now_ms:
                raise Unauthorized(say("accounts.invitation_link_has_expired_ask"))
            user = await store.get_user(conn, invitation.customer_id)
        signed = await self._new_session(user, device or "invitation", now_ms)
        return dataclasses.replace(signed, order_id=invitation.order_id)

    async def count_attempt(self, address: str, device: str | None) -> None:
        """One sign-in attempt another way (a staff link): the same limits as a password."""
        _check_device(device)
        await self._by_address.hit(
            address, self._clock.monotonic_s(), say("ratelimit.signins_from_address")
        )

    async def sign_in_as(self, user: User, device: str | None) -> SignedIn:
        """A session for someone who just proved who they are another way (a staff link)."""
        return await self._new_session(user, device or "web", self._clock.now_ms())

    def session_to_open(self, device: str) -> NewSession:
        """A session made inside another write (a visitor's first consult), saving a commit."""
        now_ms = self._clock.now_ms()
        return NewSession(
            secrets.token_urlsafe(32), self._ids.session(), device, now_ms + self._ttl_ms
        )

    async def hash_password(self, password: str) -> str:
        """Off the event loop: argon2 is made to be slow."""
        return await asyncio.to_thread(self._hasher.hash, password)

    async def _new_session(self, user: User, device: str, now_ms: int) -> SignedIn:
        token = secrets.token_urlsafe(32)
        session_id = self._ids.session()
        expires = now_ms + self._ttl_ms
        async with self._db.write("create_session") as conn:
            await store.insert_session_txn(
                conn, session_id, user.id, token_hash(token), device, now_ms, expires
            )
        logger.info("signed in user=%s session=%s", user.id, session_id)
        return SignedIn(token, user, session_id, expires)

    def _verify(self, stored_hash: str, password: str) -> bool:
        try:
            return bool(self._hasher.verify(stored_hash, password))
        except (VerificationError, InvalidHashError):
            return False

    async def authenticate(self, token: str | None) -> Authenticated:
        if not token or len(token) > 256:
            raise Unauthorized(say("accounts.session_token_required"))
        async with self._db.read() as conn:
            found = await store.find_session(conn, token_hash(token))
        if found is None:
            raise Unauthorized(say("accounts.unknown_session_token"))
        session, user = found
        if session.revoked_at_ms is not None:
            raise Unauthorized(say("accounts.session_was_signed_out"))
        if session.expires_at_ms <= self._clock.now_ms():
            raise Unauthorized(say("accounts.session_has_expired_sign_in"))
        return Authenticated(user, session)

    async def logout(self, auth: Authenticated) -> None:
        await self._revoke(auth, only_this=True)

    async def logout_everywhere(self, auth: Authenticated) -> int:
        return await self._revoke(auth, only_this=False)

    async def _revoke(self, auth: Authenticated, *, only_this: bool) -> int:
        async with self._db.write("revoke_sessions") as conn:
            revoked = await store.revoke_sessions_txn(
                conn,
                auth.user.id,
                self._clock.now_ms(),
                auth.session.id if only_this else None,
            )
        if revoked:
            self._publisher.publish([Revocation(frozenset(revoked))])
        logger.info("signed out user=%s sessions=%d", auth.user.id, len(revoked))
        return len(revoked)

    async def revoke_all(self, user_id: UserId) -> int:
        """Sign a person out on every device now (their data was erased)."""
        async with self._db.write("revoke_sessions") as conn:
            revoked = await store.revoke_sessions_txn(conn, user_id, self._clock.now_ms())
        if revoked:
            self._publisher.publish([Revocation(frozenset(revoked))])
        return len(revoked)

    async def list_staff_accounts(self) -> list[tuple[User, bool]]:
        """Every staff user with whether it is disabled: what `orderchat user list` shows."""
        async with self._db.read() as conn:
            return await store.list_staff_accounts(conn)

    async def set_password(self, username: str, password: str) -> User:
        """Raises NotFound for an unknown staff user, BadRequest for a weak password."""
        if len(password) > MAX_PASSWORD_CHARS:
            raise BadRequest(
                say("model.password_longer_than_characters", max_password_chars=MAX_PASSWORD_CHARS)
            )
        check_password(password, username)
        hashed = await asyncio.to_thread(self._hasher.hash, password)
        async with self._db.write("set_password") as conn:
            user, _ = await store.get_staff_by_username(conn, username)
            await store.update_password_txn(conn, user.id, hashed)
        logger.info("password changed user=%s", user.id)
        return user

    async def list_staff(self) -> list[User]:
        async with self._db.read() as conn:
            return await store.list_users(conn, UserKind.STAFF)

    async def directory(self, user: User) -> list[User]:
        """The people `user` may look up: all staff for staff, a customer's own contacts."""
        if user.kind is UserKind.STAFF:
            return await self.list_staff()
        async with self._db.read() as conn:
            return await store.contacts(conn, user.id)

    @staticmethod
    def require_admin(user: User) -> None:
        if Role.ADMIN not in user.roles:
            raise Forbidden(say("accounts.only_admin_may_do"))


def _check_device(device: str | None) -> None:
    """A device name is what hello takes too: 1-64 characters, or none for the default."""
    if device is not None and not 1 <= len(device) <= 64:
        raise BadRequest(say("accounts.device_must_1_64_characters"))
