"""Accounts and sessions: the `user add` command, login, rate limits, logout."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support import (
    Account,
    PeerPool,
    ServerProcess,
    barrier,
    run_cli,
    start_server,
    wait_closed,
)

pytestmark = pytest.mark.timeout(60)

_names = itertools.count(1)

STRONG = "sturdy-passphrase"


def _username(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


def _user_rows(server: ServerProcess, username: str) -> list[tuple[object, ...]]:
    return server.db_rows("SELECT id FROM users WHERE username = ?", username)


def _add(server: ServerProcess, *args: str) -> tuple[int, str]:
    where = ("--data-dir", str(server.data_dir), *server.database_args)
    done = run_cli("user", "add", *args, *where, check=False)
    return done.returncode, done.stdout + done.stderr


# --- orderchat user add -------------------------------------------------------


def test_user_add_prints_the_id_and_the_user_can_log_in(server: ServerProcess) -> None:
    username = _username("cli.user_")
    username += "-" * (64 - len(username))  # the longest allowed, with '.', '_' and '-'
    code, output = _add(
        server, username, "--password", "s3cret pass", "--role", "sales,warehouse",
        "--name", "Wang Fang",
    )  # fmt: skip
    assert code == 0, output
    user_id = output.strip().splitlines()[-1]
    assert user_id.startswith("u_")
    user = server.login(username, "s3cret pass")["user"]
    assert (user["id"], user["username"], user["display_name"], user["roles"]) == (
        user_id,
        username,
        "Wang Fang",
        ["sales", "warehouse"],
    )


BAD_USERNAMES = ["bad name", "", "x" * 65, "ünïcode"]
BAD_ROLES = ["janitor", "sales,janitor"]


@pytest.mark.slow
def test_user_add_rejects_bad_usernames_and_roles_and_stores_nothing(
    server: ServerProcess,
) -> None:
    attempts = [(name, "sales") for name in BAD_USERNAMES]
    attempts += [(_username("badrole"), roles) for roles in BAD_ROLES]
    before = server.db_rows("SELECT count(*) FROM users")
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(lambda a: _add(server, a[0], "--password", STRONG, "--role", a[1]), attempts)
        )
    accepted = [(a, out) for a, (code, out) in zip(attempts, results, strict=True) if code == 0]
    crashed = [
        (a, out) for a, (_, out) in zip(attempts, results, strict=True) if "Traceback" in out
    ]
    assert accepted == [], "bad usernames or roles were accepted"
    assert crashed == [], "bad input should get a message, not a traceback"
    assert server.db_rows("SELECT count(*) FROM users") == before


def test_user_add_rejects_a_taken_username(server: ServerProcess) -> None:
    assert server.admin is not None
    taken = server.admin.username
    code, output = _add(server, taken, "--password", STRONG, "--role", "qc")
    assert code != 0, output
    assert len(_user_rows(server, taken)) == 1
    assert server.login(taken, server.admin.password)["user"]["roles"] == ["admin"]


# --- login and the directory --------------------------------------------------


def test_login_returns_token_and_user(server: ServerProcess) -> None:
    alice = server.user("finance")
    body = server.login(alice.username, alice.password)
    assert isinstance(body["token"], str)
    assert body["token"]
    assert body["token"] != alice.token
    assert body["user"]["id"] == alice.id
    assert body["user"]["roles"] == ["finance"]
    with server.http(body["token"]) as client:
        me = client.get("/api/me")
    assert me.status_code == 200, me.text
    assert me.json()["id"] == alice.id


@pytest.mark.parametrize("which", ["wrong-password", "unknown-user", "empty-password"])
def test_login_with_wrong_credentials_is_401(server: ServerProcess, which: str) -> None:
    alice = server.user()
    username, password = {
        "wrong-password": (alice.username, alice.password + "x"),
        "unknown-user": ("nobody-at-all", alice.password),
        "empty-password": (alice.username, ""),
    }[which]
    with server.http() as client:
        resp = client.post("/api/auth/login", json={"username": username, "password": password})
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"]["code"] == "unauthorized"
    assert "token" not in resp.text


@pytest.mark.parametrize(
    "body",
    [
        '{"username": "a", ',
        "[]",
        '{"username": "a"}',
        '{"username": 5, "password": "p"}',
        '{"username": "a", "password": ["p"]}',
    ],
    ids=["invalid-json", "array", "no-password", "username-int", "password-list"],
)
def test_login_with_a_malformed_body_is_400(server: ServerProcess, body: str) -> None:
    with server.http() as client:
        resp = client.post(
            "/api/auth/login", content=body, headers={"Content-Type": "application/json"}
        )
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "bad_request"


def test_directory_lists_staff_without_secrets(server: ServerProcess) -> None:
    alice, bob = server.user(), server.user("qc")
    with server.http(alice.token) as client:
        resp = client.get("/api/users")
    assert resp.status_code == 200, resp.text
    users = {u["id"]: u for u in resp.json()["users"]}
    assert users[bob.id]["roles"] == ["qc"]
    assert users[bob.id]["username"] == bob.username
    text = resp.text.lower()
    assert "password" not in text
    assert "argon2" not in text


def test_admin_creates_users_over_http(server: ServerProcess) -> None:
    assert server.admin is not None
    username = _username("hired")
    with server.http(server.admin.token) as client:
        resp = client.post(
            "/api/users",
            json={
                "username": username,
                "password": "hired-passphrase",
                "roles": ["logistics"],
                "display_name": "Li Lei",
            },
        )
    assert resp.status_code == 201, resp.text
    user = resp.json()
    assert user["id"].startswith("u_")
    assert (user["username"], user["display_name"], user["roles"]) == (
        username,
        "Li Lei",
        ["logistics"],
    )
    assert server.login(username, "hired-passphrase")["user"]["id"] == user["id"]


# --- rate limits --------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with its default rate limits on."""
    proc = start_server(tmp_path_factory.mktemp("limited"))
    yield proc
    proc.stop()


def _staff(server: ServerProcess, prefix: str) -> tuple[str, str]:
    """A user made through the admin API without logging in from the test's address."""
    assert server.admin is not None
    username = _username(prefix)
    with server.http(server.admin.token) as client:
        resp = client.post(
            "/api/users", json={"username": username, "password": STRONG, "roles": ["sales"]}
        )
    assert resp.status_code == 201, resp.text
    return username, STRONG


def _from(address: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(transport=transport, timeout=10)


def _login_from(
    server: ServerProcess, address: str, username: str, password: str
) -> httpx.Response:
    with _from(address) as client:
        return client.post(
            f"{server.base_url}/api/auth/login", json={"username": username, "password": password}
        )


def _expect_rate_limited(resp: httpx.Response) -> None:
    assert resp.status_code == 429, resp.text
    assert resp.json()["error"]["code"] == "rate_limited"
    retry_after = resp.headers.get("Retry-After")
    assert retry_after is not None, "429 without Retry-After"
    assert float(retry_after) > 0


@pytest.mark.slow
def test_login_is_rate_limited_per_username(limited: ServerProcess) -> None:
    victim, victim_password = _staff(limited, "victim")
    bystander, bystander_password = _staff(limited, "bystander")
    limited_at = None
    for attempt in range(60):
        resp = _login_from(limited, f"127.0.1.{attempt + 1}", victim, "guess")
        if resp.status_code == 429:
            limited_at = attempt
            break
        assert resp.status_code == 401, resp.text
    assert limited_at is not None, "60 wrong passwords from 60 addresses were never limited"
    _expect_rate_limited(resp)
    right = _login_from(limited, "127.0.2.1", victim, victim_password)
    _expect_rate_limited(right)
    other = _login_from(limited, "127.0.2.1", bystander, bystander_password)
    assert other.status_code == 200, "the limit is per username, not global"


@pytest.mark.slow
def test_login_is_rate_limited_per_address(limited: ServerProcess) -> None:
    regular, password = _staff(limited, "regular")
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(
            pool.map(lambda n: _login_from(limited, "127.0.3.1", f"nobody-{n}", "guess"), range(40))
        )
    statuses = sorted({resp.status_code for resp in answers})
    assert statuses == [401, 429], f"40 failed logins from one address answered {statuses}"
    _expect_rate_limited(next(resp for resp in answers if resp.status_code == 429))
    _expect_rate_limited(_login_from(limited, "127.0.3.1", regular, password))
    elsewhere = _login_from(limited, "127.0.3.2", regular, password)
    assert elsewhere.status_code == 200, elsewhere.text


# --- logout -------------------------------------------------------------------


def _second_token(server: ServerProcess, account: Account) -> str:
    token: str = server.login(account.username, account.password)["token"]
    return token


def _me_status(server: ServerProcess, token: str) -> int:
    with server.http(token) as client:
        return client.get("/api/me").status_code


async def test_logout_revokes_the_token_and_closes_its_sockets_with_4001(
    server: ServerProcess,
) -> None:
    alice = server.user()
    phone_token = _second_token(server, alice)
    async with PeerPool(server) as pool:
        phone = await pool.open(phone_token, "phone")
        phone_again = await pool.open(phone_token, "phone-2")
        laptop = await pool.open(alice.token, "laptop")
        with server.http(phone_token) as client:
            resp = client.post("/api/auth/logout")
        assert resp.status_code == 204, resp.text
        assert await wait_closed(phone) == 4001
        assert await wait_closed(phone_again) == 4001
        assert await barrier(laptop) == []
    assert _me_status(server, phone_token) == 401
    assert _me_status(server, alice.token) == 200
    with server.http(phone_token) as client:
        assert client.post("/api/auth/logout").status_code == 401


async def test_logout_all_revokes_every_device(server: ServerProcess) -> None:
    alice, bob = server.user(), server.user()
    tokens = [alice.token, *(_second_token(server, alice) for _ in range(2))]
    async with PeerPool(server) as pool:
        conns = [await pool.open(t, f"device-{i}") for i, t in enumerate(tokens)]
        bob_conn = await pool.open(bob.token)
        with server.http(tokens[1]) as client:
            resp = client.post("/api/auth/logout-all")
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"revoked": 3}
        for conn in conns:
            assert await wait_closed(conn) == 4001
        assert await barrier(bob_conn) == []
    assert [_me_status(server, t) for t in tokens] == [401, 401, 401]
    assert _me_status(server, bob.token) == 200
    fresh = server.login(alice.username, alice.password)["token"]
    assert _me_status(server, fresh) == 200


def test_requests_without_a_valid_token_are_401(server: ServerProcess) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer"},
    ):
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as client:
            resp = client.get("/api/me")
        assert resp.status_code == 401, (headers, resp.text)
        assert resp.json()["error"]["code"] == "unauthorized"
