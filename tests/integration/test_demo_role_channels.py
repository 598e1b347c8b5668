"""The demo shop uses the role channels routed events land in: one per role."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.support import ServerProcess


# The demo's content is the same on either store, and test_order_extras seeds it on
# PostgreSQL too: one demo seeding per store is enough.
@pytest.mark.sqlite_only
def test_the_demo_has_one_channel_per_role_and_its_talk_is_in_it(
    tmp_path: Path, store: str
) -> None:
    demo = ServerProcess(tmp_path, ("--rate-limits", "off", "--demo"), store=store)
    demo.start()
    try:
        wes = demo.login("wes", "orderchat-demo")["token"]
        with demo.http(wes) as client:
            convs = client.get("/api/conversations").json()["conversations"]
        titles = Counter(c["title"] for c in convs if c["kind"] == "channel")
        assert titles["仓库 #warehouse"] == 1
        warehouse = demo.db_rows("SELECT id FROM conversations WHERE role_channel = 'warehouse'")
        assert len(warehouse) == 1
        everywhere = Counter(
            t for (t,) in demo.db_rows("SELECT title FROM conversations WHERE kind = 'channel'")
        )
        assert all(n == 1 for n in everywhere.values()), everywhere
        seeded = demo.db_rows(
            "SELECT COUNT(*) FROM messages WHERE conv_id = ? AND kind = 'text'", warehouse[0][0]
        )
        assert seeded[0][0] >= 2  # the demo's warehouse chatter
    finally:
        demo.stop()
