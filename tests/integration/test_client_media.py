"""Files through the SDK: an upload that survives a cut network, sent and received."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import httpx
import pytest

from orderchat.client import (
    BadRequestError,
    Client,
    ConflictError,
    HttpApi,
    MessageReceived,
    TooLargeError,
)
from orderchat.client._uploads import upload
from tests import media_samples
from tests.integration.test_client_sdk import FAST, next_of, session_for
from tests.media_support import CuttingProxy
from tests.support import ServerProcess


async def test_a_file_is_uploaded_sent_and_received_by_the_other_member(
    server: ServerProcess, tmp_path: Path
) -> None:
    sender, receiver = server.user("sales"), server.user("warehouse")
    conv = server.conversation(sender, "channel", [receiver], title="样品")["id"]
    picture = tmp_path / "样品照片.jpg"
    picture.write_bytes(media_samples.jpeg(640, 480))
    async with (
        Client(await session_for(server, sender), options=FAST) as alice,
        Client(await session_for(server, receiver), options=FAST) as bob,
    ):
        upload_id = await alice.api.upload(conv, picture, content_type="image/jpeg")
        stream = bob.events()
        ack = await alice.send_files(conv, [upload_id], kind="image", text="第二轮")
        got = await next_of(stream, MessageReceived)
        assert got.message.seq == ack.seq
        assert got.message.text == "第二轮"
        (attachment,) = got.message.attachments
        assert isinstance(attachment, dict)
        assert attachment["id"] == upload_id
        assert attachment["name"] == "样品照片.jpg"
        assert attachment["sha256"] == hashlib.sha256(picture.read_bytes()).hexdigest()
        listed = await bob.api.files(conv, kind="image")
        assert [f["id"] for f in listed] == [upload_id]
        with pytest.raises(ConflictError):  # one upload, one message
            await alice.send_files(conv, [upload_id], kind="image")


async def test_an_upload_cut_off_resumes_where_the_server_stopped(server: ServerProcess) -> None:
    sender = server.user("sales")
    conv = server.conversation(sender, "channel", [], title="cuts")["id"]
    data = media_samples.random_bytes(600_000, seed=7)
    token = sender.token
    with CuttingProxy(server.port) as proxy:
        cut = proxy.cut(total_bytes=350_000, method=None)
        async with httpx.AsyncClient(
            base_url=proxy.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as http:
            upload_id = await upload(http, conv, data, filename="cut.bin", chunk_bytes=256 * 1024)
        assert cut.done.is_set()
    with server.http(token) as http_sync:
        body = http_sync.get(f"/api/media/{upload_id}").content
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest()


async def test_refusals_are_the_sdks_errors(server: ServerProcess, tmp_path: Path) -> None:
    sender = server.user("sales")
    conv = server.conversation(sender, "channel", [], title="refusals")["id"]
    async with HttpApi(await session_for(server, sender)) as api:
        with pytest.raises(BadRequestError):
            await api.upload(
                conv, media_samples.html_disguised(), filename="x.png", content_type="image/png"
            )
        with pytest.raises(BadRequestError):
            await api.upload(conv, b"", filename="empty.txt")
    own = ServerProcess(tmp_path, ("--max-upload-bytes", "1000"))
    own.start()
    own.create_admin()
    try:
        account = own.user("sales")
        small_conv = own.conversation(account, "channel", [], title="small")["id"]
        async with HttpApi(await session_for(own, account)) as api:
            with pytest.raises(TooLargeError):
                await api.upload(small_conv, b"x" * 1001, filename="big.txt")
            await asyncio.sleep(0)
    finally:
        own.stop()
