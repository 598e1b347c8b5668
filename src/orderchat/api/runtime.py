"""The running server's parts, wired once in `create_app` and reached by routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Cookie, Depends, Header, Request

from orderchat.core.errors import Unauthorized
from orderchat.core.ids import IdMinter
from orderchat.core.texts import say
from orderchat.realtime.bus import MemoryBus
from orderchat.realtime.connection import ConnectionConfig
from orderchat.realtime.hub import Hub
from orderchat.realtime.presence import LocalPresence
from orderchat.realtime.redis_bus import OrderedBus
from orderchat.services.accounts import Accounts, Authenticated
from orderchat.services.anchors import Anchors
from orderchat.services.audit import AuditLog
from orderchat.services.calls import Calls
from orderchat.services.chat.conversations import Conversations
from orderchat.services.chat.messaging import Messaging
from orderchat.services.consults.service import Consults
from orderchat.services.consults.visitors import Visitors
from orderchat.services.dossier.service import Dossiers
from orderchat.services.leases import Leases
from orderchat.services.media.media import Media
from orderchat.services.money.finance import Finance
from orderchat.services.notify.service import Notifications
from orderchat.services.notify.system import NotifySystem
from orderchat.services.orders.confirmations import Confirmations
from orderchat.services.orders.orders import Orders
from orderchat.services.orders.workflows import Workflows
from orderchat.services.ports import Clock
from orderchat.services.products import Products
from orderchat.services.proof import ChainProofs
from orderchat.services.retention import Retention
from orderchat.services.search import Search
from orderchat.services.staff import Staff
from orderchat.services.stock.inventory import Inventory
from orderchat.services.webhooks import Webhooks
from orderchat.services.writer import GroupCommitWriter
from orderchat.settings import Settings
from orderchat.storage.engine import Database


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    clock: Clock
    ids: IdMinter
    db: Database
    hub: Hub
    bus: MemoryBus | OrderedBus
    writer: GroupCommitWriter
    accounts: Accounts
    conversations: Conversations
    messaging: Messaging
    connection_config: ConnectionConfig
    workflows: Workflows
    orders: Orders
    inventory: Inventory
    finance: Finance
    confirmations: Confirmations
    webhooks: Webhooks
    media: Media
    staff: Staff
    leases: Leases
    presence: LocalPresence
    notify: NotifySystem
    calls: Calls
    search: Search
    audit: AuditLog
    retention: Retention
    anchors: Anchors
    proofs: ChainProofs
    dossiers: Dossiers
    consults: Consults
    visitors: Visitors
    products: Products

    @property
    def notifications(self) -> Notifications:
        return self.notify.service


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer TOKEN` header."""
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthorized(say("runtime.send_authorization_bearer_token"))
    return authorization[len("Bearer ") :].strip()


async def authenticate(
    runtime: RuntimeDep, authorization: Annotated[str | None, Header()] = None
) -> Authenticated:
    return await runtime.accounts.authenticate(bearer_token(authorization))


AuthDep = Annotated[Authenticated, Depends(authenticate)]

MEDIA_COOKIE = "orderchat_media"
MEDIA_COOKIE_PATH = "/api/media"


async def authenticate_media(
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
    orderchat_media: Annotated[str | None, Cookie()] = None,
) -> Authenticated:
    """The bearer header, or the media cookie a browser's <img> and <video> carry.

    The cookie is accepted on these read-only routes alone: it is HttpOnly,
    SameSite=Strict and scoped to the media path, so another site can neither
    read it nor make a browser send it, and it can change nothing.
    """
    if authorization or not orderchat_media:
        return await authenticate(runtime, authorization)
    return await runtime.accounts.authenticate(orderchat_media)


MediaAuthDep = Annotated[Authenticated, Depends(authenticate_media)]
