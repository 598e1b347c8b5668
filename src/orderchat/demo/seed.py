"""Demo data for `orderchat serve --demo`: a small outdoor-gear shop's staff and chats.

Seeded once, into an empty database; a restart keeps what people did since.
"""

from __future__ import annotations

import logging

from orderchat.core.ids import IdMinter
from orderchat.core.model import MessageKind, Role, User, parse_new_conversation, parse_new_staff
from orderchat.core.routing import ROLE_CHANNEL_TITLES
from orderchat.demo.consults import DemoConsultServices, seed_consults
from orderchat.demo.media import seed_media
from orderchat.demo.orders import DemoServices, seed_orders
from orderchat.protocol.frames import PostMessage
from orderchat.services.chat.conversations import Conversations
from orderchat.services.chat.messaging import Messaging
from orderchat.services.media.media import Media
from orderchat.services.orders.orders import Orders
from orderchat.services.staff import Staff
from orderchat.storage import accounts as account_store
from orderchat.storage import conversations as conv_store
from orderchat.storage import orders as order_store
from orderchat.storage.engine import Database

logger = logging.getLogger(__name__)

DEMO_PASSWORD = "orderchat-demo"

STAFF = [
    ("boss", "老板 王建国", "admin"),
    ("amy", "客服 李小美", "customer_service"),
    ("sam", "销售 张伟", "sales"),
    ("pat", "采购 刘洋", "purchasing"),
    ("wes", "仓库 陈强", "warehouse"),
    ("leo", "物流 赵磊", "logistics"),
    ("fay", "财务 孙芳", "finance"),
    ("pete", "生产 周鹏", "production"),
    ("quinn", "质检 吴青", "qc"),
    ("lily", "外贸业务 林莉", "sales"),
]

CHANNELS = [
    ("全员 All staff", [u for u, _, _ in STAFF]),
]

# The role channels are the shop's one channel per role (the one routed order
# events land in); these people join them besides the role's holders.
ROLE_CHANNEL_GUESTS = [
    (Role.WAREHOUSE, ["boss", "leo", "amy"]),
    (Role.PURCHASING, ["boss", "wes"]),
    (Role.FINANCE, ["boss", "sam"]),
]

CHATTER = [
    ("全员 All staff", "boss", "早上好！今天双十一预售开始，大家辛苦了 💪"),
    ("全员 All staff", "amy", "收到，客服这边已经排好班了。"),
    ("仓库 #warehouse", "amy", "@warehouse 订单 OD-10023 客户备注：去西藏，请检查防水性能。"),
    ("仓库 #warehouse", "wes", "好的，拣货时会逐件检查防水涂层。"),
    ("采购 #purchasing", "wes", "@purchasing 65L 登山包（黑色）库存只剩 3 个了。"),
    ("采购 #purchasing", "pat", "已联系供应商，下周二到货 200 个。"),
    (
        "采购 #purchasing",
        "pat",
        "PO-2026-031 的皮料到了：1.2 mm 头层牛皮荔枝纹，和客户确认的样品一致，色号 18-1142。",
    ),
    ("财务 #finance", "sam", "@fay 户外俱乐部的团购尾款今天到账了吗？"),
]


async def seed_demo(
    staff_service: Staff,
    conversations: Conversations,
    messaging: Messaging,
    db: Database,
    ids: IdMinter,
    business: DemoServices | None = None,
    media: Media | None = None,
    consults: DemoConsultServices | None = None,
) -> None:
    async with db.read() as conn:
        if await account_store.list_users(conn):
            logger.info("demo data already present")
            return
    users: dict[str, User] = {}
    for username, name, role in STAFF:
        staff = parse_new_staff(username, DEMO_PASSWORD, [role], name)
        users[username] = await staff_service.add(None, staff)
    boss = users["boss"]
    channels: dict[str, str] = {}
    for title, names in CHANNELS:
        new = parse_new_conversation("channel", title, [users[n].id for n in names])
        view = await conversations.create(boss, new)
        channels[title] = view.conv.id
    for role, guests in ROLE_CHANNEL_GUESTS:
        async with db.read() as conn:
            conv_id = await conv_store.find_role_channel(conn, role.value)
        assert conv_id is not None  # adding the role's holder made it
        await conversations.add_members(boss, conv_id, tuple(users[n].id for n in guests))
        channels[ROLE_CHANNEL_TITLES[role]] = conv_id
    new = parse_new_conversation("direct", None, [users["sam"].id])
    direct = await conversations.create(users["amy"], new)
    script: list[tuple[str | None, str, str]] = [
        *CHATTER,
        (None, "sam", "这个客户想要 20 顶帐篷，能给批发价吗？"),
    ]
    for channel, sender, text in script:
        conv: str = channels[channel] if channel is not None else direct.conv.id
        frame = PostMessage(ids.new("demo"), conv, MessageKind.TEXT, text, (), (), None)
        await messaging.post(users[sender], frame)
    if business is not None:
        await seed_orders(business, users)
    if media is not None:
        await seed_media(media, messaging, db, ids, users, channels)
    if consults is not None:
        await seed_consults(consults, users)
    logger.info(
        "demo data seeded: sign in as %s with password %s",
        ", ".join(u for u, _, _ in STAFF),
        DEMO_PASSWORD,
    )


# Orders whose customer page `serve --demo` opens a fresh link to, and who invites.
DEMO_LINKS = (("PO-2026-031", "lily"), ("OD-10041", "amy"))


async def demo_invitations(db: Database, orders: Orders) -> list[tuple[str, str]]:
    """Fresh customer links (order number, token) to try the customer page at once.

    Made at every start, since a link's token is stored hashed and cannot be
    shown again.
    """
    links: list[tuple[str, str]] = []
    for number, inviter in DEMO_LINKS:
        async with db.read() as conn:
            order_id = await order_store.find_order_id(conn, number=number)
            login = await account_store.find_login(conn, inviter)
        if order_id is None or login is None:
            continue
        invitation = await orders.invite(login[0], order_id)
        links.append((number, invitation.token))
    return links
