"""What a password hash costs: the recommended Argon2id parameters unless the shop
sets others, and an account hashed at an old cost is hashed again when it signs in.

The rest of the suite runs at Argon2's floor (tests/conftest.py); this module
starts its servers at the recommended cost.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import ServerProcess, run_cli

pytestmark = [pytest.mark.timeout(90), pytest.mark.sqlite_only]

RECOMMENDED = {"ORDERCHAT_PASSWORD_TIME_COST": "3", "ORDERCHAT_PASSWORD_MEMORY_KIB": "65536"}
CHEAP = {"ORDERCHAT_PASSWORD_TIME_COST": "1", "ORDERCHAT_PASSWORD_MEMORY_KIB": "1024"}
PASSWORD = "lantern-harbour-91"


def _stored_hash(server: ServerProcess, username: str) -> str:
    (row,) = server.db_rows("SELECT password_hash FROM users WHERE username = ?", username)
    return str(row[0])


def test_a_password_set_at_the_recommended_cost_is_hashed_again_after_the_cost_changes(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERCHAT_PASSWORD_")}
    add = ("user", "add", "keeper", "--password", PASSWORD, "--role", "admin")
    done = run_cli(*add, "--data-dir", str(tmp_path), check=False, env=env | RECOMMENDED)
    assert done.returncode == 0, done.stderr
    server = ServerProcess(tmp_path, (), env=RECOMMENDED)
    server.start()
    try:
        assert _stored_hash(server, "keeper").startswith("$argon2id$v=19$m=65536,t=3,p=4$")
        server.login("keeper", PASSWORD)
        assert _stored_hash(server, "keeper").startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    finally:
        server.stop()
    cheaper = ServerProcess(tmp_path, (), env=CHEAP)
    cheaper.start()
    try:
        assert cheaper.log_path is not None
        assert "below the recommended cost" in cheaper.log_path.read_text()
        cheaper.login("keeper", PASSWORD)  # the old hash still signs in ...
        # ... and is made again at the shop's cost now.
        assert _stored_hash(cheaper, "keeper").startswith("$argon2id$v=19$m=1024,t=1,p=4$")
        cheaper.login("keeper", PASSWORD)
    finally:
        cheaper.stop()


def test_a_cost_that_is_not_a_number_or_too_low_stops_the_server_with_a_reason(
    tmp_path: Path,
) -> None:
    for bad, says in (("lots", "whole number"), ("512", "at least 1024")):
        env = {"ORDERCHAT_PASSWORD_MEMORY_KIB": bad}
        add = ("user", "add", "x", "--password", "lantern-harbour-91", "--role", "sales")
        for command in (("serve", "--port", "0"), add):
            where = ("--data-dir", str(tmp_path))
            done = run_cli(*command, *where, check=False, env=os.environ | env)
            assert done.returncode != 0
            assert "ORDERCHAT_PASSWORD_MEMORY_KIB" in done.stderr and says in done.stderr
            assert "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "orderchat.db").exists(), "nothing was started"
