"""Product cards: a catalogue SKU with its picture, options and the stock available now.

A card is shared into a chat as a `product` message (docs/consults.md §4) and
read back live, so a visitor sees today's stock on yesterday's card. The
picture is the shop's own product photo: anyone may fetch it, as on the shop's
website. It is kept in the blob store, re-encoded here so that what is served
is a plain JPEG whatever was uploaded.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from orderchat.core.errors import BadRequest, NotFound, TooLarge
from orderchat.core.model import User
from orderchat.core.permissions import Action, check
from orderchat.core.texts import say
from orderchat.media.blobstore import BlobStore
from orderchat.services.consults.outcomes import product_card
from orderchat.storage import products as product_store
from orderchat.storage.engine import Database

MAX_PICTURE_BYTES = 8 * 1024 * 1024
PICTURE_SIDE = 1024
MAX_OPTIONS = 10
MAX_OPTION_VALUES = 30


class Products:
    def __init__(self, db: Database, blobs: BlobStore, work_dir: Path) -> None:
        self._db = db
        self._blobs = blobs
        self._work_dir = work_dir

    async def card(self, code: str) -> dict[str, Any]:
        async with self._db.read() as conn:
            return product_card(await product_store.get_product(conn, code))

    async def picture(self, code: str) -> tuple[Path, str]:
        """Where the SKU's picture is, and its hash (the ETag)."""
        async with self._db.read() as conn:
            sha = await product_store.picture_of(conn, code)
        path = self._blobs.local_path(sha) if sha else None
        if sha is None or path is None or not path.exists():
            raise NotFound(say("products.no_picture", sku=code))
        return path, sha

    async def set_picture(self, user: User, code: str, data: bytes) -> dict[str, Any]:
        check(user, Action.MANAGE_CATALOGUE)
        if len(data) > MAX_PICTURE_BYTES:
            raise TooLarge(say("products.picture_too_large", mb=MAX_PICTURE_BYTES // 2**20))
        jpeg = await asyncio.to_thread(_as_jpeg, data)
        sha = hashlib.sha256(jpeg).hexdigest()
        async with self._db.read() as conn:
            await product_store.get_product(conn, code)
        staged = await asyncio.to_thread(self._stage, jpeg)
        try:
            await self._blobs.put(sha, staged)
        finally:
            await asyncio.to_thread(staged.unlink, True)
        async with self._db.write("product-picture") as conn:
            await product_store.set_extras_txn(conn, code, picture_sha256=sha)
        return await self.card(code)

    def _stage(self, data: bytes) -> Path:
        self._work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self._work_dir, delete=False) as out:
            out.write(data)
            return Path(out.name)

    async def set_options(self, user: User, code: str, raw: object) -> dict[str, Any]:
        check(user, Action.MANAGE_CATALOGUE)
        options = parse_options(raw)
        async with self._db.write("product-options") as conn:
            await product_store.set_extras_txn(conn, code, options=options)
        return await self.card(code)


def _as_jpeg(data: bytes) -> bytes:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            upright = ImageOps.exif_transpose(image).convert("RGB")
    # Pillow reports a broken file as SyntaxError too (a bad chunk checksum).
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise BadRequest(say("products.picture_not_image")) from None
    upright.thumbnail((PICTURE_SIDE, PICTURE_SIDE))
    out = io.BytesIO()
    upright.save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue()


def parse_options(raw: object) -> list[dict[str, object]]:
    """`[{"name": "颜色", "values": ["红", "蓝"]}, …]`: what a visitor chooses between."""
    if not isinstance(raw, list) or len(raw) > MAX_OPTIONS:
        raise BadRequest(say("products.options_invalid", most=MAX_OPTIONS))
    options: list[dict[str, object]] = []
    for entry in raw:
        if not isinstance(entry, dict) or set(entry) != {"name", "values"}:
            raise BadRequest(say("products.options_invalid", most=MAX_OPTIONS))
        name, values = entry["name"], entry["values"]
        good_name = isinstance(name, str) and 0 < len(name.strip()) <= 40
        good_values = (
            isinstance(values, list)
            and 0 < len(values) <= MAX_OPTION_VALUES
            and all(isinstance(v, str) and 0 < len(v.strip()) <= 40 for v in values)
        )
        if not (good_name and good_values):
            raise BadRequest(say("products.options_invalid", most=MAX_OPTIONS))
        options.append({"name": name.strip(), "values": [v.strip() for v in values]})
    return options
