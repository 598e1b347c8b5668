"""tus expiration: an unfinished upload is gone after its time, its bytes with it."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

from tests.media_support import created_id, tus_create, tus_head, tus_patch
from tests.support import ServerProcess


def test_an_unfinished_upload_expires_and_its_bytes_are_deleted(
    own_server: ServerProcess,
) -> None:
    own_server.extra_args = (*own_server.extra_args, "--upload-ttl-s", "1")
    own_server.start()
    own_server.create_admin()
    owner = own_server.user("sales")
    conv = own_server.conversation(owner, "channel", [], title="expiry")["id"]
    with own_server.http(owner.token) as http:
        created = tus_create(http, conv=conv, length=1000, filename="slow.bin")
        upload_id = created_id(created)
        expires = parsedate_to_datetime(created.headers["Upload-Expires"]).timestamp()
        assert abs(expires - (time.time() + 1)) < 5
        assert tus_patch(http, upload_id, 0, b"x" * 400).status_code == 204
        time.sleep(1.5)
        assert tus_head(http, upload_id).status_code == 404
        assert tus_patch(http, upload_id, 400, b"x" * 600).status_code == 404
    assert list((own_server.data_dir / "uploads").glob("*.part"))  # not swept yet
    # The sweep runs at start, then every ten minutes. A clean stop hands back the sweep's
    # lease; a killed node's would bar the next start until it expired (PostgreSQL).
    own_server.stop()
    own_server.start()
    deadline = time.monotonic() + 10
    while list((own_server.data_dir / "uploads").glob("*.part")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not list((own_server.data_dir / "uploads").glob("*.part"))
    assert own_server.db_rows("SELECT count(*) FROM uploads") == [(0,)]
