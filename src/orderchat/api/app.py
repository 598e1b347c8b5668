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
    audit,
    auth,
    calls,
    confirmations,
    consults,
    conversations,
    evidence,
    finance,
    health,
    inventory,
    media,
    notify,
    orders,
    products,
    proof,
    rules,
    search,
    staff_admin,
    uploads,
    users,
    web,
    webhooks,
    ws,
)
from orderchat.api.runtime import Runtime
from orderchat.api.wiring import build_runtime
from orderchat.realtime.socket import AsgiSocket
from orderchat.services.anchors import run_daily as run_evidence_jobs
from orderchat.services.idempotency import IdempotencyKeys
from orderchat.services.ports import Clock
from orderchat.services.staff import INVITE_TTL_S
from orderchat.settings import Settings

logger = logging.getLogger(__name__)


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
    from orderchat.demo.consults import DemoConsultServices
    from orderchat.demo.orders import DemoServices
    from orderchat.demo.seed import demo_invitations, seed_demo

    business = DemoServices(
        runtime.db,
        runtime.orders,
        runtime.inventory,
        runtime.finance,
        runtime.confirmations,
        runtime.media,
    )
    await seed_demo(
        runtime.staff,
        runtime.conversations,
        runtime.messaging,
        runtime.db,
        runtime.ids,
        business,
        runtime.media,
        DemoConsultServices(runtime.consults, runtime.products, runtime.messaging, runtime.ids),
    )
    settings = runtime.settings
    logger.info("pre-sales chat for visitors: http://%s:%d/chat", settings.host, settings.port)
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
    runtime.calls.ringer = runtime.notify.ringer
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


def create_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    """The app; `clock` is the time every part reads (a test's settable one, else the system's)."""
    # long because: it is the one place the app is put together, every router listed in order.
    runtime = build_runtime(settings, clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await _start(runtime)
        # Every node runs the schedule; a claim in the database lets one post each day.
        stop_digest = asyncio.Event()
        digest = asyncio.create_task(
            runtime.finance.run_daily_digest(settings.digest_time, stop_digest, runtime.leases),
            name="daily-digest",
        )
        call_timers = asyncio.create_task(runtime.calls.run_timers(stop_digest), name="call-timers")
        consult_timers = asyncio.create_task(
            runtime.consults.run_timers(stop_digest), name="consult-timers"
        )
        evidence = asyncio.create_task(
            run_evidence_jobs(
                stop_digest, runtime.clock, runtime.leases, runtime.anchors, runtime.retention
            ),
            name="evidence-jobs",
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
            await call_timers
            await consult_timers
            await evidence
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
        calls,
        search,
        audit,
        evidence,
        proof,
        consults,
        products,
        web,
    ):
        app.include_router(module.router)
    app.include_router(notify.pages)
    app.mount("/assets", web.assets(), name="assets")
    openapi.install(app)
    return app
