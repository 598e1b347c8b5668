"""create_app: builds every part once and wires them together explicitly."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from orderchat import __version__
from orderchat.api import errors, idempotency, openapi
from orderchat.api.routes import (
    auth,
    confirmations,
    conversations,
    finance,
    health,
    inventory,
    media,
    notify,
    orders,
    rules,
    staff_admin,
    uploads,
    users,
    web,
    webhooks,
    ws,
)
from orderchat.api.runtime import Runtime
from orderchat.media.blobstore import LocalBlobStore
from orderchat.media.partials import PartialFiles
from orderchat.media.processor import PreviewLimits
from orderchat.realtime.bus import MemoryBus
from orderchat.realtime.connection import ConnectionConfig
from orderchat.realtime.hub import Hub
from orderchat.realtime.ordering import OrderedDelivery
from orderchat.realtime.presence import LocalPresence, RedisPresence
from orderchat.realtime.redis_bus import OrderedBus, RedisRelay, channel_for
from orderchat.realtime.redis_limits import RedisBuckets
from orderchat.realtime.socket import AsgiSocket
from orderchat.services.accounts import Accounts
from orderchat.services.chat.commands import Commands
from orderchat.services.chat.conversations import Conversations
from orderchat.services.chat.messaging import Messaging
from orderchat.services.cluster import DatabaseStream, node_name
from orderchat.services.idempotency import IdempotencyKeys
from orderchat.services.leases import Leases
from orderchat.services.media.limits import MediaLimits
from orderchat.services.media.media import Media
from orderchat.services.money.finance import Finance
from orderchat.services.notify.system import NotifyConfig, NotifySystem
from orderchat.services.orders.confirmations import Confirmations
from orderchat.services.orders.orders import Orders
from orderchat.services.orders.workflows import Workflows
from orderchat.services.ports import Clock, SystemClock, system_ids
from orderchat.services.staff import INVITE_TTL_S, Staff
from orderchat.services.stock.command import STOCK_COMMAND
from orderchat.services.stock.inventory import Inventory
from orderchat.services.webhooks import Webhooks
from orderchat.services.writer import GroupCommitWriter
from orderchat.settings import Settings
from orderchat.storage.engine import Database, shown_url

logger = logging.getLogger(__name__)


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    # long because: it is the one list of every part and what each is given.
    clock = clock or SystemClock()
    # One minter for the process: every id it mints comes from the same clock
    # and the same OS-seeded generator, reseeded in a forked child.
    ids = system_ids(clock)
    db = Database(settings.resolved_database_url)
    hub = Hub()
    bus = _bus(settings, db, hub)
    writer = GroupCommitWriter(db, bus, clock, ids, settings.max_batch)
    workflows = Workflows.load(settings.workflows_dir)
    shared_limits = None
    if settings.redis_url:
        shared_limits = RedisBuckets(settings.redis_url, channel_for(shown_url(db.url)) + ":limits")
    accounts = Accounts(
        db,
        bus,
        clock,
        ids,
        session_ttl_s=settings.session_ttl_s,
        rate_limits=settings.rate_limits,
        shared_limits=shared_limits,
    )
    staff = Staff(db, writer, accounts, bus, clock, ids, workflows)
    node = settings.node_name or node_name()
    leases = Leases(db, clock, node)
    presence = LocalPresence(hub, node)
    if settings.redis_url and db.shared:
        prefix = channel_for(shown_url(db.url))
        presence = RedisPresence(hub, node, settings.redis_url, prefix)
        hub.watcher = presence
    return Runtime(
        settings=settings,
        clock=clock,
        ids=ids,
        db=db,
        hub=hub,
        bus=bus,
        writer=writer,
        accounts=accounts,
        conversations=Conversations(db, writer, workflows),
        messaging=Messaging(
            db,
            writer,
            bus,
            clock,
            commands=Commands([STOCK_COMMAND]),
            recall_window_s=settings.recall_window_s,
            rate_limits=settings.rate_limits,
        ),
        connection_config=ConnectionConfig(
            queue_frames=settings.ws_queue_frames,
            hello_timeout_s=settings.hello_timeout_s,
            resume_page=settings.resume_page,
        ),
        workflows=workflows,
        orders=Orders(db, writer, clock, workflows, settings.invitation_ttl_s),
        inventory=Inventory(db, writer, clock),
        finance=Finance(db, writer, clock, workflows),
        confirmations=Confirmations(db, writer, clock, workflows),
        webhooks=Webhooks(db, writer, clock, accounts, workflows, settings.webhook_secret),
        media=Media(
            db,
            writer,
            clock,
            LocalBlobStore(settings.data_dir),
            PartialFiles(settings.data_dir),
            settings.data_dir / "work",
            MediaLimits(
                max_upload_bytes=settings.max_upload_bytes,
                quota_bytes=settings.upload_quota_bytes,
                upload_ttl_s=settings.upload_ttl_s,
                preview=PreviewLimits(timeout_s=settings.preview_timeout_s),
            ),
            rate_limits=settings.rate_limits,
            leases=leases,
            shared_limits=shared_limits,
        ),
        staff=staff,
        leases=leases,
        presence=presence,
        notify=NotifySystem(
            db,
            clock,
            ids,
            leases,
            NotifyConfig(
                public_url=settings.link_base,
                shop_name=settings.shop_name,
                policy_dir=settings.workflows_dir,
                smtp=settings.smtp,
                allow_private_targets=settings.allow_private_targets,
            ),
        ),
    )


def _bus(settings: Settings, db: Database, hub: Hub) -> MemoryBus | OrderedBus:
    """In-process on SQLite; on PostgreSQL, ordered by the horizon and relayed by Redis."""
    if not db.shared:
        return MemoryBus(hub)
    ordering = OrderedDelivery(hub, DatabaseStream(db))
    relay = None
    if settings.redis_url:
        node = settings.node_name or node_name()
        channel = channel_for(shown_url(db.url))
        relay = RedisRelay(settings.redis_url, channel, node, ordering)
    return OrderedBus(ordering, relay)


class OrderChatApp(FastAPI):
    """The API, with WebSockets taken straight to their connection.

    A WebSocket lives for hours, and every ASGI layer it passes through keeps
    a frame alive for all that time; the HTTP middleware (errors as JSON,
    idempotency keys) has nothing to do for it. Going around it saves about a
    third of an idle connection's memory.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == ws.PATH:
            await ws.serve_websocket(AsgiSocket(receive, send), self.state.runtime)
            return
        await super().__call__(scope, receive, send)


def _freeze_startup_objects() -> None:
    """Keep the full garbage collections from walking what lives for the whole run.

    The modules, classes and caches of a started server are some 150,000
    objects; every full collection walked them all, about 90 ms of stalled
    event loop here, a few times a minute under load, and that was the tail
    of the delivery latency. Frozen, they are left out of every collection.
    """
    gc.collect()
    gc.freeze()


async def _seed_demo(runtime: Runtime) -> None:
    """Seed the demo shop into an empty store, and log its customers' pages."""
    from orderchat.demo.orders import DemoServices
    from orderchat.demo.seed import demo_invitations, seed_demo

    business = DemoServices(
        runtime.db,
        runtime.orders,
        runtime.inventory,
        runtime.finance,
        runtime.confirmations,
    )
    await seed_demo(
        runtime.staff,
        runtime.conversations,
        runtime.messaging,
        runtime.db,
        runtime.ids,
        business,
        runtime.media,
    )
    settings = runtime.settings
    for number, token in await demo_invitations(runtime.db, runtime.orders):
        logger.info(
            "customer page of %s: http://%s:%d/c#%s",
            number,
            settings.host,
            settings.port,
            token,
        )


async def _start(runtime: Runtime) -> None:
    """The store at its newest schema, the writer and media running, and the shop ready."""
    await runtime.db.migrate()
    await runtime.bus.start()
    await runtime.presence.start()
    runtime.writer.start()
    await runtime.media.start()
    await runtime.notify.start()
    if runtime.settings.demo:
        await _seed_demo(runtime)
    await _offer_first_admin(runtime)


async def _offer_first_admin(runtime: Runtime) -> None:
    """Log the link that makes the first admin, while the shop has none."""
    first = await runtime.staff.first_admin_link()
    if first is not None:
        settings = runtime.settings
        logger.warning(
            "no admin yet: open http://%s:%d%s to create the first one (valid %d days)",
            settings.host,
            settings.port,
            first.path,
            INVITE_TTL_S // 86400,
        )


async def _stop(runtime: Runtime) -> None:
    """The parts stopped in the reverse order of their start: the store closes last."""
    await runtime.notify.stop()
    await runtime.media.stop()
    await runtime.writer.stop()
    await runtime.presence.stop()
    await runtime.bus.stop()
    await runtime.db.close()


def create_app(settings: Settings) -> FastAPI:
    runtime = build_runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await _start(runtime)
        # Every node runs the schedule; a claim in the database lets one post each day.
        stop_digest = asyncio.Event()
        digest = asyncio.create_task(
            runtime.finance.run_daily_digest(settings.digest_time, stop_digest, runtime.leases),
            name="daily-digest",
        )
        _freeze_startup_objects()
        logger.info("serving on http://%s:%d", settings.host, settings.port)
        try:
            yield
        finally:
            stop_digest.set()
            digest.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await digest
            await _stop(runtime)

    app = OrderChatApp(
        title="OrderChat",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    errors.install(app)
    idempotency.install(
        app, IdempotencyKeys(runtime.db, runtime.clock), runtime.accounts.authenticate
    )
    for module in (
        health,
        auth,
        users,
        staff_admin,
        conversations,
        orders,
        inventory,
        rules,
        finance,
        confirmations,
        webhooks,
        uploads,
        media,
        notify,
        web,
    ):
        app.include_router(module.router)
    app.include_router(notify.pages)
    app.mount("/assets", web.assets(), name="assets")
    openapi.install(app)
    return app
