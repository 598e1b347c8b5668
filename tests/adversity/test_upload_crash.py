"""A server killed in the middle of an upload: the upload resumes after the restart,
and no blob is ever visible half-written.

Every wait is bounded in time, every loop in count.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests import media_samples
from tests.media_support import (
    assert_blobs_whole,
    created_id,
    sha256,
    tus_create,
    tus_offset,
    tus_patch,
)
from tests.support import ServerProcess

pytestmark = pytest.mark.timeout(120)

SIZE = 48 * 1024 * 1024
KILL_AFTER_BYTES = 20 * 1024 * 1024


def _slow_body(data: bytes, sent: list[int], step: int = 256 * 1024) -> Iterator[bytes]:
    """The body in small pieces, counting what left, slowly enough to be killed under."""
    for start in range(0, len(data), step):
        piece = data[start : start + step]
        sent[0] += len(piece)
        if sent[0] >= KILL_AFTER_BYTES:
            time.sleep(0.002)
        yield piece


def test_an_upload_killed_half_way_resumes_from_what_is_on_disk(
    own_server: ServerProcess,
) -> None:
    own_server.start()
    own_server.create_admin()
    owner = own_server.user("sales")
    conv = own_server.conversation(owner, "channel", [], title="crash")["id"]
    data = media_samples.random_bytes(SIZE, seed=3)
    with own_server.http(owner.token) as http:
        upload_id = created_id(tus_create(http, conv=conv, length=SIZE, filename="big.bin"))
    sent = [0]

    def kill_when_half_sent() -> None:
        deadline = time.monotonic() + 60
        while sent[0] < KILL_AFTER_BYTES and time.monotonic() < deadline:
            time.sleep(0.005)
        own_server.kill()

    killer = threading.Thread(target=kill_when_half_sent)
    killer.start()
    with (
        pytest.raises(httpx.TransportError),
        httpx.Client(
            base_url=own_server.base_url,
            headers={"Authorization": f"Bearer {owner.token}"},
            timeout=30,
        ) as http,
    ):
        http.patch(
            f"/api/uploads/{upload_id}",
            content=_slow_body(data, sent),
            headers={
                "Tus-Resumable": "1.0.0",
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
        )
    killer.join(10)
    assert own_server.proc is None  # killed

    own_server.start()
    with own_server.http(owner.token) as http:
        offset = tus_offset(http, upload_id)
        # What the server kept is a prefix of what was sent, and nothing more.
        assert 0 < offset <= sent[0]
        assert own_server.db_rows("SELECT count(*) FROM blobs") == [(0,)]
        resumed = tus_patch(http, upload_id, offset, data[offset:])
        assert resumed.status_code == 204, resumed.text
        assert int(resumed.headers["Upload-Offset"]) == SIZE
        body = http.get(f"/api/media/{upload_id}").content
    assert sha256(body) == sha256(data)
    assert_blobs_whole(own_server)


def test_a_kill_right_after_the_last_byte_still_finishes_the_upload(
    own_server: ServerProcess,
) -> None:
    """The file is recorded first and moved second; whichever step a kill
    interrupts, the restart (or the client's HEAD) completes it."""
    own_server.start()
    own_server.create_admin()
    owner = own_server.user("sales")
    conv = own_server.conversation(owner, "channel", [], title="crash")["id"]
    data = media_samples.random_bytes(8 * 1024 * 1024, seed=5)
    with own_server.http(owner.token) as http:
        upload_id = created_id(tus_create(http, conv=conv, length=len(data), filename="b.bin"))
        assert tus_patch(http, upload_id, 0, data[:-1]).status_code == 204

    def last_byte() -> None:  # the kill may land before, during or after the answer
        with contextlib.suppress(httpx.TransportError), own_server.http(owner.token) as http:
            tus_patch(http, upload_id, len(data) - 1, data[-1:])

    sender = threading.Thread(target=last_byte)
    sender.start()
    time.sleep(0.01)
    own_server.kill()
    sender.join(10)

    own_server.start()
    with own_server.http(owner.token) as http:
        offset = tus_offset(http, upload_id)
        if offset < len(data):
            assert tus_patch(http, upload_id, offset, data[offset:]).status_code == 204
            assert tus_offset(http, upload_id) == len(data)
        body = http.get(f"/api/media/{upload_id}").content
    assert sha256(body) == sha256(data)
    assert_blobs_whole(own_server)
    assert not list((own_server.data_dir / "uploads").glob("*.part"))
