"""`orderchat user list|add|passwd|disable|enable|roles` on a live server's data dir."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import ServerProcess, run_cli

pytestmark = pytest.mark.timeout(90)

_names = itertools.count(1)

STRONG = "sturdy-passphrase"
WEAK = ["short-pw", "zzzzzzzzzzzz", "password123", "QwertyUiop"]
READ_ONLY_VERBS = [
    ["list"],
    ["passwd", "nobody", "--password", STRONG],
    ["disable", "nobody"],
    ["enable", "nobody"],
    ["roles", "nobody", "--set", "sales"],
]


def _user(
    server: ServerProcess, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    where = ("--data-dir", str(server.data_dir), *server.database_args)
    return run_cli("user", *args, *where, check=check)


def _add(server: ServerProcess, roles: str = "sales", password: str = STRONG) -> tuple[str, str]:
    username = f"staff{next(_names)}"
    done = _user(server, "add", username, "--password", password, "--role", roles)
    return username, done.stdout.strip().splitlines()[-1]


def _login(server: ServerProcess, username: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/api/auth/login",
        json={"username": username, "password": password},
        timeout=10,
    )


def _database_line(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout.splitlines()[0]


# --- each verb ----------------------------------------------------------------


def test_user_add_says_which_database_and_prints_the_id_last(server: ServerProcess) -> None:
    username = f"staff{next(_names)}"
    done = _user(server, "add", username, "--password", STRONG, "--role", "qc", "--name", "Q C")
    lines = done.stdout.strip().splitlines()
    assert lines[0] == f"database: {server.db_where}"
    assert lines[-1].startswith("u_")
    assert _login(server, username, STRONG).json()["user"]["id"] == lines[-1]


def test_user_list_shows_every_staff_user_with_state(server: ServerProcess) -> None:
    username, user_id = _add(server, "sales,warehouse")
    done = _user(server, "list")
    assert _database_line(done) == f"database: {server.db_where}"
    rows = [line.split("\t") for line in done.stdout.splitlines()[1:]]
    assert [user_id, username, username, "sales,warehouse", "enabled"] in rows
    assert server.admin is not None
    assert any(row[1] == server.admin.username for row in rows)


def test_user_list_takes_a_database_url(server: ServerProcess, tmp_path: Path) -> None:
    unused = str(tmp_path / "unused")
    done = run_cli("user", "list", "--database", server.db_url, "--data-dir", unused)
    assert _database_line(done) == f"database: {server.db_where}"
    assert not (tmp_path / "unused").exists()


def test_passwd_replaces_the_password(server: ServerProcess) -> None:
    username, _ = _add(server)
    done = _user(server, "passwd", username, "--password", "another-passphrase")
    assert _database_line(done) == f"database: {server.db_where}"
    assert _login(server, username, STRONG).status_code == 401
    assert _login(server, username, "another-passphrase").status_code == 200


def test_passwd_reads_the_password_from_stdin(server: ServerProcess) -> None:
    username, _ = _add(server)
    done = subprocess.run(
        [
            sys.executable, "-m", "orderchat", "user", "passwd", username,
            "--password", "-", "--data-dir", str(server.data_dir), *server.database_args,
        ],
        input="piped-in-passphrase\n", capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _login(server, username, "piped-in-passphrase").status_code == 200


def test_roles_replaces_the_roles(server: ServerProcess) -> None:
    username, _ = _add(server, "sales")
    done = _user(server, "roles", username, "--set", "finance,qc")
    assert "finance,qc" in done.stdout
    assert _login(server, username, STRONG).json()["user"]["roles"] == ["finance", "qc"]
    bad = _user(server, "roles", username, "--set", "janitor", check=False)
    assert bad.returncode == 2
    assert "unknown role" in bad.stderr


def test_a_verb_on_an_unknown_user_says_so(server: ServerProcess) -> None:
    done = _user(server, "disable", "nobody-here", check=False)
    assert done.returncode == 2
    assert "no staff user 'nobody-here'" in done.stderr
    assert "Traceback" not in done.stderr


def test_disable_ends_live_sessions_and_enable_allows_sign_in(server: ServerProcess) -> None:
    username, user_id = _add(server)
    token = _login(server, username, STRONG).json()["token"]
    with server.http(token) as client:
        assert client.get("/api/me").status_code == 200
        done = _user(server, "disable", username)
        assert "ended 1 session" in done.stdout
        assert client.get("/api/me").status_code == 401
    refused = _login(server, username, STRONG)
    assert refused.status_code == 401
    assert refused.json()["error"]["reason"] == "accounts.account_disabled_ask_admin_enable"
    assert _login(server, username, STRONG + "x").json()["error"]["reason"] == (
        "accounts.wrong_username_password"
    )
    listed = _user(server, "list").stdout.splitlines()
    assert any(line.startswith(user_id) and line.endswith("\tdisabled") for line in listed)
    _user(server, "enable", username)
    signed_in = _login(server, username, STRONG)
    assert signed_in.status_code == 200
    with server.http(signed_in.json()["token"]) as client:
        assert client.get("/api/me").status_code == 200
    with server.http(token) as client:
        assert client.get("/api/me").status_code == 401, "enabling must not revive old sessions"


# --- a data dir without a database ----------------------------------------------


@pytest.mark.parametrize("verb", READ_ONLY_VERBS, ids=lambda v: v[0])
def test_a_verb_refuses_a_data_dir_without_a_database(verb: list[str], tmp_path: Path) -> None:
    data_dir = tmp_path / "typo"
    done = run_cli("user", *verb, "--data-dir", str(data_dir), check=False)
    assert done.returncode == 2
    assert f"no database at {(data_dir / 'orderchat.db').resolve()}" in done.stderr
    assert not data_dir.exists()


def test_user_add_creates_the_database_and_says_where(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    done = run_cli("user", "add", "first", "--password", STRONG, "--role", "admin",
                   "--data-dir", str(data_dir))  # fmt: skip
    db = (data_dir / "orderchat.db").resolve()
    assert _database_line(done) == f"database: {db}"
    assert db.is_file()
    assert done.stdout.strip().splitlines()[-1].startswith("u_")


# --- the password policy --------------------------------------------------------


@pytest.mark.pg_sample(1)
@pytest.mark.parametrize("password", WEAK)
def test_user_add_refuses_a_weak_password_and_stores_nothing(
    server: ServerProcess, password: str
) -> None:
    username = f"weak{next(_names)}"
    before = server.db_rows("SELECT count(*) FROM users")
    done = _user(server, "add", username, "--password", password, "--role", "sales", check=False)
    assert done.returncode == 2
    assert "password" in done.stderr
    assert "Traceback" not in done.stderr
    assert server.db_rows("SELECT count(*) FROM users") == before


def test_user_add_refuses_the_username_as_password(server: ServerProcess) -> None:
    username = f"same-as-the-name{next(_names)}"
    done = _user(server, "add", username, "--password", username, "--role", "qc", check=False)
    assert done.returncode == 2
    assert "must not be the username" in done.stderr
    assert server.db_rows("SELECT id FROM users WHERE username = ?", username) == []


@pytest.mark.pg_sample(1)
@pytest.mark.parametrize("password", WEAK)
def test_the_api_refuses_a_weak_password_and_stores_nothing(
    server: ServerProcess, password: str
) -> None:
    assert server.admin is not None
    username = f"weakapi{next(_names)}"
    with server.http(server.admin.token) as client:
        resp = client.post(
            "/api/users", json={"username": username, "password": password, "roles": ["sales"]}
        )
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["reason"].startswith("passwords."), resp.text
    assert server.db_rows("SELECT id FROM users WHERE username = ?", username) == []


def test_passwd_refuses_a_weak_password_and_keeps_the_old_one(server: ServerProcess) -> None:
    username, _ = _add(server)
    done = _user(server, "passwd", username, "--password", "password123", check=False)
    assert done.returncode == 2
    assert "too common" in done.stderr
    assert _login(server, username, STRONG).status_code == 200
