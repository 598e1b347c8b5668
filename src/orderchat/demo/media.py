"""The demo's files: sample photos and a drawing in the handbag factory's order,
a packing photo in the warehouse channel. Sent the way any client sends them:
an upload first, then a message that carries it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from orderchat.core.ids import IdMinter
from orderchat.core.model import MessageKind, User
from orderchat.demo import files as demo_files
from orderchat.protocol.frames import PostMessage
from orderchat.services.chat.messaging import Messaging
from orderchat.services.media.media import Media
from orderchat.storage import orders as order_store
from orderchat.storage.engine import Database


async def seed_media(
    media: Media,
    messaging: Messaging,
    db: Database,
    ids: IdMinter,
    users: dict[str, User],
    channels: dict[str, str],
) -> None:
    async with db.read() as conn:
        order_id = await order_store.find_order_id(conn, number="PO-2026-031")
        lune = None if order_id is None else await order_store.get_order(conn, order_id)
    if lune is not None:
        pete, lily = users["pete"], users["lily"]
        photos = [
            await upload_file(
                media,
                pete,
                lune.conv_id,
                "样品-第一轮-焦糖色.jpg",
                "image/jpeg",
                demo_files.sample_photo((176, 110, 60), "Sample round 1 - caramel"),
            ),
            await upload_file(
                media,
                pete,
                lune.conv_id,
                "样品-第二轮-深焦糖色.jpg",
                "image/jpeg",
                demo_files.sample_photo((128, 74, 38), "Sample round 2 - dark caramel"),
            ),
        ]
        await _send(
            messaging,
            ids,
            pete,
            lune.conv_id,
            MessageKind.IMAGE,
            photos,
            "Round 2 samples: the first caramel on the left, the darker one on the right",
        )
        drawing = await upload_file(
            media,
            lily,
            lune.conv_id,
            "TOTE BAG-0423 drawing.pdf",
            "application/pdf",
            demo_files.design_drawing(),
        )
        await _send(
            messaging,
            ids,
            lily,
            lune.conv_id,
            MessageKind.FILE,
            [drawing],
            "Latest drawing: please confirm the sizes",
        )
    warehouse = channels.get("仓库 #warehouse")
    if warehouse is not None:
        await _seed_parcel(media, messaging, ids, users["wes"], warehouse)


async def _seed_parcel(
    media: Media, messaging: Messaging, ids: IdMinter, wes: User, warehouse: str
) -> None:
    parcel = await upload_file(
        media, wes, warehouse, "OD-10024-打包.jpg", "image/jpeg", demo_files.parcel_photo()
    )
    await _send(messaging, ids, wes, warehouse, MessageKind.IMAGE, [parcel], "OD-10024 已打包")


async def upload_file(
    media: Media, user: User, conv: str, name: str, mime: str, data: bytes
) -> str:
    started = await media.uploads.create(
        user, len(data), {"conv": conv, "filename": name, "filetype": mime}
    )

    async def body() -> AsyncIterator[bytes]:
        yield data

    await media.uploads.append(user, started.id, 0, None, body())
    return started.id


async def _send(
    messaging: Messaging,
    ids: IdMinter,
    user: User,
    conv: str,
    kind: MessageKind,
    upload_ids: list[str],
    caption: str,
) -> None:
    frame = PostMessage(ids.new("demo"), conv, kind, caption, tuple(upload_ids), (), None)
    await messaging.post(user, frame)
