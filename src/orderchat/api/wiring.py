"""Every part of a server, built from its settings: what `serve` runs and what the
command-line verbs use without the web edge.

Apart from the app (api/app.py) so that `orderchat user …` and `orderchat skus …`
start without building a route they never serve.
"""

from __future__ import annotations

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
from orderchat.services.accounts import Accounts
from orderchat.services.anchors import Anchors
from orderchat.services.audit import AuditLog
from orderchat.services.calls import Calls
from orderchat.services.chat.commands import Commands
from orderchat.services.chat.conversations import Conversations
from orderchat.services.chat.messaging import Messaging
from orderchat.services.cluster import DatabaseStream, node_name
from orderchat.services.consults.rules_file import load_rules
from orderchat.services.consults.service import Consults, ConsultSettings
from orderchat.services.consults.visitors import Visitors
from orderchat.services.dossier.service import Dossiers
from orderchat.services.leases import Leases
from orderchat.services.media.limits import MediaLimits
from orderchat.services.media.media import Media
from orderchat.services.money.finance import Finance
from orderchat.services.notify.system import NotifyConfig, NotifySystem
from orderchat.services.orders.confirmations import Confirmations
from orderchat.services.orders.orders import Orders
from orderchat.services.orders.workflows import Workflows
from orderchat.services.ports import Clock, SystemClock, system_ids
from orderchat.services.products import Products
from orderchat.services.proof import ChainProofs
from orderchat.services.retention import Retention
from orderchat.services.search import Search
from orderchat.services.staff import Staff
from orderchat.services.stock.command import STOCK_COMMAND
from orderchat.services.stock.inventory import Inventory
from orderchat.services.webhooks import Webhooks
from orderchat.services.writer import GroupCommitWriter
from orderchat.settings import Settings
from orderchat.storage.engine import Database, shown_url


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    # long because: it is the one list of every part and what each is given.
    clock = clock or SystemClock()
    # One minter for the process: every id it mints comes from the same clock
    # and the same OS-seeded generator, reseeded in a forked child.
    ids = system_ids(clock)
    db = Database(settings.resolved_database_url)
    hub = Hub()
    bus = _bus(settings, db, hub)
    writer = GroupCommitWriter(
        db, bus, clock, ids, settings.max_batch, index_search=settings.search_index
    )
    blobs = LocalBlobStore(settings.data_dir)
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
        password_cost=settings.password_cost,
    )
    staff = Staff(db, writer, accounts, bus, clock, ids, workflows)
    node = settings.node_name or node_name()
    leases = Leases(db, clock, node)
    consults = Consults(
        db,
        writer,
        clock,
        accounts,
        leases,
        workflows,
        ConsultSettings(
            load_rules(settings.workflows_dir),
            visitor_max_upload_bytes=settings.visitor_max_upload_bytes,
            rate_limits=settings.rate_limits,
        ),
        shared_limits,
    )
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
            consults=consults.hooks,
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
            blobs,
            PartialFiles(settings.data_dir),
            settings.data_dir / "work",
            MediaLimits(
                max_upload_bytes=settings.max_upload_bytes,
                quota_bytes=settings.upload_quota_bytes,
                upload_ttl_s=settings.upload_ttl_s,
                preview=PreviewLimits(timeout_s=settings.preview_timeout_s),
                visitor_max_upload_bytes=settings.visitor_max_upload_bytes,
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
        calls=Calls(
            db,
            writer,
            bus,
            clock,
            leases,
            settings.call_rules,
            settings.ice,
            rate_limits=settings.rate_limits,
        ),
        search=Search(db, clock),
        audit=AuditLog(db, clock),
        retention=Retention(db, clock, blobs),
        anchors=Anchors(db, writer, clock),
        proofs=ChainProofs(db),
        dossiers=Dossiers(db, clock, workflows, blobs, settings.data_dir / "work"),
        consults=consults,
        products=Products(db, blobs, settings.data_dir / "work"),
        visitors=Visitors(
            db, clock, accounts, blobs, settings.smtp, settings.link_base, settings.shop_name
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
