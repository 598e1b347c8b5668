"""The admin console's API against a real server: every verb, refusals that change
nothing, the last-admin rules, staff links, and onboarding by role."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.order_support import Shop, assert_unchanged, expect_error
from tests.support import Account, Peer, ServerProcess, run_cli, wait_closed

_names = itertools.count(1)
STRONG = "kettle-harbour-lantern"
Json = dict[str, Any]


@pytest.fixture(scope="module")
def shop(server: ServerProcess) -> Iterator[Shop]:
    opened = Shop.open(server)
    yield opened
    opened.close()


def admin(shop: Shop) -> httpx.Client:
    return shop.client("admin")


def fresh_name(prefix: str = "new") -> str:
    return f"{prefix}{next(_names)}"


def snapshot(server: ServerProcess) -> dict[str, list[tuple[Any, ...]]]:
    """Every table the console writes, sessions included ('changes nothing' checks)."""
    found = server.db_snapshot()
    for table in ("sessions", "staff_links"):
        found[table] = sorted(server.db_rows(f"SELECT * FROM {table}"), key=repr)
    return found


def role_channel(server: ServerProcess, role: str) -> str:
    rows = server.db_rows("SELECT id FROM conversations WHERE role_channel = ?", role)
    assert len(rows) == 1, rows
    return str(rows[0][0])


def conv_ids(server: ServerProcess, token: str) -> set[str]:
    with server.http(token, language="en") as client:
        resp = client.get("/api/conversations")
    assert resp.status_code == 200, resp.text
    return {c["id"] for c in resp.json()["conversations"]}


def add_person(shop: Shop, *roles: str, username: str | None = None) -> Account:
    name = username or fresh_name()
    body = {"username": name, "password": STRONG, "roles": list(roles), "display_name": name}
    resp = admin(shop).post("/api/admin/staff", json=body)
    assert resp.status_code == 201, resp.text
    token = shop.server.login(name, STRONG)["token"]
    return Account(resp.json()["id"], name, STRONG, token, list(roles))


# --- who may ----------------------------------------------------------------------------


def test_every_admin_verb_is_forbidden_to_non_admins_and_changes_nothing(shop: Shop) -> None:
    target = add_person(shop, "sales")
    before = snapshot(shop.server)
    calls: list[tuple[str, str, Json | None]] = [
        ("GET", "/api/admin/staff", None),
        (
            "POST",
            "/api/admin/staff",
            {"username": fresh_name(), "password": STRONG, "roles": ["qc"]},
        ),
        ("POST", "/api/admin/invitations", {"username": fresh_name(), "roles": ["qc"]}),
        ("PUT", f"/api/admin/staff/{target.username}/roles", {"roles": ["admin"]}),
        ("POST", f"/api/admin/staff/{target.username}/disable", None),
        ("POST", f"/api/admin/staff/{target.username}/enable", None),
        ("POST", f"/api/admin/staff/{target.username}/password-reset", None),
        ("POST", f"/api/admin/staff/{target.username}/sign-out", None),
    ]
    for method, path, body in calls:
        resp = shop.client("warehouse").request(method, path, json=body)
        expect_error(resp, 403, "forbidden")
        with httpx.Client(
            base_url=shop.server.base_url, headers={"Accept-Language": "en"}, timeout=10
        ) as anonymous:
            expect_error(anonymous.request(method, path, json=body), 401, "unauthorized")
    assert_unchanged(before, snapshot(shop.server))


def test_staff_list_shows_roles_state_and_live_sessions(shop: Shop) -> None:
    person = add_person(shop, "finance", "sales")
    resp = admin(shop).get("/api/admin/staff")
    assert resp.status_code == 200, resp.text
    rows = {row["username"]: row for row in resp.json()["staff"]}
    row = rows[person.username]
    assert row["roles"] == ["finance", "sales"]
    assert row["disabled"] is False
    assert row["active_sessions"] == 1
    assert isinstance(row["last_sign_in_ts"], int)
    assert rows[shop.staff["admin"].username]["roles"] == ["admin"]


# --- adding people ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"username": "weak1", "password": "password123", "roles": ["qc"]}, 400),
        ({"username": "weak2", "password": "aaaaaaaaaaaa", "roles": ["qc"]}, 400),
        ({"username": "bad role", "password": STRONG, "roles": ["qc"]}, 400),
        ({"username": "norole", "password": STRONG, "roles": []}, 400),
        ({"username": "unknownrole", "password": STRONG, "roles": ["chef"]}, 400),
        ({"username": "extra", "password": STRONG, "roles": ["qc"], "admin": True}, 400),
        ({"username": "nameless", "password": STRONG, "roles": ["qc"], "display_name": " "}, 400),
    ],
)
def test_adding_a_person_with_bad_input_is_refused_and_changes_nothing(
    shop: Shop, body: Json, status: int
) -> None:
    before = snapshot(shop.server)
    expect_error(admin(shop).post("/api/admin/staff", json=body), status, "bad_request")
    assert_unchanged(before, snapshot(shop.server))


def test_a_weak_password_gets_the_policy_reason(shop: Shop) -> None:
    body = {"username": fresh_name(), "password": "password123", "roles": ["qc"]}
    error = expect_error(admin(shop).post("/api/admin/staff", json=body), 400, "bad_request")
    assert error["reason"].startswith("passwords.")


def test_a_taken_username_is_a_conflict_and_changes_nothing(shop: Shop) -> None:
    person = add_person(shop, "qc")
    before = snapshot(shop.server)
    body = {"username": person.username, "password": STRONG, "roles": ["sales"]}
    expect_error(admin(shop).post("/api/admin/staff", json=body), 409, "conflict")
    assert_unchanged(before, snapshot(shop.server))


# --- onboarding by role -----------------------------------------------------------------


def test_a_new_warehouse_person_joins_the_channel_and_open_threads_naming_warehouse(
    shop: Shop,
) -> None:
    open_retail = shop.create_order("retail")
    open_oem = shop.create_order("oem")
    cancelled = shop.create_order("retail")
    moved = shop.move(cancelled["id"], "cancelled", "customer_service")
    assert moved.status_code == 200, moved.text
    person = add_person(shop, "warehouse")
    mine = conv_ids(shop.server, person.token)
    assert role_channel(shop.server, "warehouse") in mine
    assert {open_retail["conv"], open_oem["conv"]} <= mine
    assert cancelled["conv"] not in mine
    assert role_channel(shop.server, "finance") not in mine


def test_losing_a_role_leaves_only_what_the_role_brought(shop: Shop) -> None:
    retail = shop.create_order("retail")
    oem = shop.create_order("oem")
    personal = shop.create_order("retail")
    person = add_person(shop, "qc")
    # Added in person while no role put them there: that thread stays theirs.
    resp = shop.client("customer_service").post(
        f"/api/conversations/{personal['conv']}/members", json={"members": [person.id]}
    )
    assert resp.status_code == 200, resp.text
    path = f"/api/admin/staff/{person.username}/roles"
    resp = admin(shop).put(path, json={"roles": ["qc", "warehouse"]})
    assert resp.status_code == 200, resp.text
    assert {retail["conv"], oem["conv"], personal["conv"]} <= conv_ids(shop.server, person.token)
    # Purchasing: named by the OEM workflow, not by retail.
    resp = admin(shop).put(path, json={"roles": ["purchasing"]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["roles"] == ["purchasing"]
    mine = conv_ids(shop.server, person.token)
    assert role_channel(shop.server, "warehouse") not in mine
    assert role_channel(shop.server, "qc") not in mine
    assert role_channel(shop.server, "purchasing") in mine
    assert retail["conv"] not in mine
    assert oem["conv"] in mine
    assert personal["conv"] in mine


def test_staff_already_there_leave_a_thread_their_lost_role_put_them_in(shop: Shop) -> None:
    person = add_person(shop, "logistics")
    order = shop.create_order("retail")
    assert order["conv"] in conv_ids(shop.server, person.token)
    resp = admin(shop).put(f"/api/admin/staff/{person.username}/roles", json={"roles": ["qc"]})
    assert resp.status_code == 200, resp.text
    assert order["conv"] not in conv_ids(shop.server, person.token)


def test_the_creator_of_an_order_stays_in_its_thread_without_the_role(shop: Shop) -> None:
    person = add_person(shop, "customer_service")
    with shop.server.http(person.token, language="en") as client:
        resp = client.post("/api/orders", json=shop.order_body("retail"))
    assert resp.status_code == 201, resp.text
    conv = resp.json()["conv"]
    resp = admin(shop).put(f"/api/admin/staff/{person.username}/roles", json={"roles": ["qc"]})
    assert resp.status_code == 200, resp.text
    assert conv in conv_ids(shop.server, person.token)


async def test_role_changes_reach_the_persons_live_connection_as_member_events(
    shop: Shop,
) -> None:
    person = add_person(shop, "qc")
    peer = await Peer.open(shop.server, person.token)
    try:
        resp = admin(shop).put(
            f"/api/admin/staff/{person.username}/roles", json={"roles": ["logistics"]}
        )
        assert resp.status_code == 200, resp.text
        seen: dict[str, str] = {}
        for _ in range(50):
            frame = await peer.recv_op("member", timeout=10)
            if person.id in frame["users"]:
                seen[frame["conv"]] = frame["action"]
            if role_channel(shop.server, "logistics") in seen and len(seen) >= 2:
                break
        assert seen[role_channel(shop.server, "qc")] == "removed"
        assert seen[role_channel(shop.server, "logistics")] == "added"
    finally:
        await peer.close()


def test_the_cli_and_the_api_share_onboarding(shop: Shop) -> None:
    """`POST /api/users` (what the CLI's rules back) also puts people in their channels."""
    name = fresh_name("cli")
    resp = admin(shop).post(
        "/api/users", json={"username": name, "password": STRONG, "roles": ["production"]}
    )
    assert resp.status_code == 201, resp.text
    token = shop.server.login(name, STRONG)["token"]
    assert role_channel(shop.server, "production") in conv_ids(shop.server, token)


# --- roles and the last admin -------------------------------------------------------------


def test_roles_bad_input_and_unknown_people_change_nothing(shop: Shop) -> None:
    person = add_person(shop, "sales")
    before = snapshot(shop.server)
    path = f"/api/admin/staff/{person.username}/roles"
    expect_error(admin(shop).put(path, json={"roles": []}), 400, "bad_request")
    expect_error(admin(shop).put(path, json={"roles": ["chef"]}), 400, "bad_request")
    expect_error(admin(shop).put(path, json={"roles": "sales"}), 400, "bad_request")
    expect_error(admin(shop).put(path, json={}), 400, "bad_request")
    missing = "/api/admin/staff/nobody-here/roles"
    expect_error(admin(shop).put(missing, json={"roles": ["qc"]}), 404, "not_found")
    expect_error(admin(shop).post("/api/admin/staff/nobody-here/disable"), 404, "not_found")
    assert_unchanged(before, snapshot(shop.server))


def test_the_last_admin_keeps_the_admin_role_and_nobody_disables_themselves(
    shop: Shop,
) -> None:
    me = shop.staff["admin"]
    admins = [
        r for r in admin(shop).get("/api/admin/staff").json()["staff"] if "admin" in r["roles"]
    ]
    assert [a["username"] for a in admins if not a["disabled"]] == [me.username]
    before = snapshot(shop.server)
    resp = admin(shop).put(f"/api/admin/staff/{me.username}/roles", json={"roles": ["sales"]})
    assert expect_error(resp, 409, "conflict")["reason"] == "staff.last_admin"
    resp = admin(shop).post(f"/api/admin/staff/{me.username}/disable")
    assert expect_error(resp, 409, "conflict")["reason"] == "staff.cannot_disable_self"
    assert_unchanged(before, snapshot(shop.server))
    # With a second admin, the first may step down; the second may not then.
    second = add_person(shop, "admin")
    resp = admin(shop).put(
        f"/api/admin/staff/{me.username}/roles", json={"roles": ["admin", "sales"]}
    )
    assert resp.status_code == 200, resp.text
    with shop.server.http(second.token, language="en") as client:
        resp = client.put(f"/api/admin/staff/{second.username}/roles", json={"roles": ["qc"]})
        assert resp.status_code == 200, resp.text
        resp = client.get("/api/admin/staff")
        expect_error(resp, 403, "forbidden")
    resp = admin(shop).put(f"/api/admin/staff/{me.username}/roles", json={"roles": ["sales"]})
    expect_error(resp, 409, "conflict")
    resp = admin(shop).put(f"/api/admin/staff/{me.username}/roles", json={"roles": ["admin"]})
    assert resp.status_code == 200, resp.text


# --- disabling and signing out ----------------------------------------------------------


async def test_disabling_closes_the_persons_live_connections_at_once(shop: Shop) -> None:
    person = add_person(shop, "sales")
    second = shop.server.login(person.username, STRONG)["token"]
    phone = await Peer.open(shop.server, person.token, device="phone")
    laptop = await Peer.open(shop.server, second, device="laptop")
    resp = admin(shop).post(f"/api/admin/staff/{person.username}/disable")
    assert resp.status_code == 200, resp.text
    assert resp.json()["ended_sessions"] == 2
    assert await wait_closed(phone, timeout_s=5) == 4001
    assert await wait_closed(laptop, timeout_s=5) == 4001
    with shop.server.http(person.token, language="en") as client:
        expect_error(client.get("/api/conversations"), 401, "unauthorized")
    with httpx.Client(
        base_url=shop.server.base_url, headers={"Accept-Language": "en"}, timeout=10
    ) as client:
        login = client.post(
            "/api/auth/login", json={"username": person.username, "password": STRONG}
        )
        expect_error(login, 401, "unauthorized")
    row = {r["username"]: r for r in admin(shop).get("/api/admin/staff").json()["staff"]}
    assert row[person.username]["disabled"] is True
    assert row[person.username]["active_sessions"] == 0
    resp = admin(shop).post(f"/api/admin/staff/{person.username}/enable")
    assert resp.status_code == 200, resp.text
    shop.server.login(person.username, STRONG)


async def test_signing_someone_out_ends_every_session_but_not_the_account(shop: Shop) -> None:
    person = add_person(shop, "qc")
    peer = await Peer.open(shop.server, person.token)
    resp = admin(shop).post(f"/api/admin/staff/{person.username}/sign-out")
    assert resp.status_code == 200, resp.text
    assert resp.json()["ended_sessions"] == 1
    assert await wait_closed(peer, timeout_s=5) == 4001
    shop.server.login(person.username, STRONG)


# --- staff links -------------------------------------------------------------------------


def invite(shop: Shop, *roles: str, username: str | None = None) -> Json:
    body = {"username": username or fresh_name("inv"), "roles": list(roles)}
    resp = admin(shop).post("/api/admin/invitations", json=body)
    assert resp.status_code == 201, resp.text
    issued: Json = resp.json()
    assert issued["path"] == "/#/join/" + issued["token"]
    return issued


def anonymous(shop: Shop) -> httpx.Client:
    return httpx.Client(
        base_url=shop.server.base_url, headers={"Accept-Language": "en"}, timeout=10
    )


def test_an_invitation_signs_the_new_person_in_with_their_role_channel(shop: Shop) -> None:
    issued = invite(shop, "warehouse")
    with anonymous(shop) as client:
        checked = client.post("/api/staff-links/check", json={"token": issued["token"]})
        assert checked.status_code == 200, checked.text
        assert checked.json()["kind"] == "invite"
        assert checked.json()["roles"] == ["warehouse"]
        before = snapshot(shop.server)
        weak = client.post(
            "/api/staff-links/accept", json={"token": issued["token"], "password": "123456789"}
        )
        expect_error(weak, 400, "bad_request")
        assert_unchanged(before, snapshot(shop.server))
        accepted = client.post(
            "/api/staff-links/accept",
            json={"token": issued["token"], "password": STRONG, "display_name": "仓库 新人"},
        )
        assert accepted.status_code == 200, accepted.text
        body = accepted.json()
        assert body["user"]["display_name"] == "仓库 新人"
        assert body["user"]["roles"] == ["warehouse"]
        assert role_channel(shop.server, "warehouse") in conv_ids(shop.server, body["token"])
        before = snapshot(shop.server)
        again = client.post(
            "/api/staff-links/accept", json={"token": issued["token"], "password": STRONG}
        )
        assert "used" in expect_error(again, 409, "conflict")["message"]
        assert_unchanged(before, snapshot(shop.server))
    shop.server.login(issued["username"], STRONG)


def test_forged_expired_and_replaced_links_change_nothing(shop: Shop) -> None:
    expired = invite(shop, "qc")
    shop.server.db_execute(
        "UPDATE staff_links SET expires_at_ms = 1 WHERE username = ?", expired["username"]
    )
    replaced = invite(shop, "qc")
    newer = invite(shop, "sales", username=replaced["username"])
    before = snapshot(shop.server)
    with anonymous(shop) as client:
        for token, status, words in [
            ("not-a-real-token", 404, "not valid"),
            (expired["token"], 409, "expired"),
            (replaced["token"], 409, "replaced"),
        ]:
            checked = client.post("/api/staff-links/check", json={"token": token})
            assert words in expect_error(checked, status)["message"]
            accept = {"token": token, "password": STRONG}
            accepted = client.post("/api/staff-links/accept", json=accept)
            assert words in expect_error(accepted, status)["message"]
        expect_error(client.post("/api/staff-links/check", json={}), 400, "bad_request")
        expect_error(client.post("/api/staff-links/check", json={"token": ""}), 400)
    assert_unchanged(before, snapshot(shop.server))
    with anonymous(shop) as client:
        ok = client.post(
            "/api/staff-links/accept", json={"token": newer["token"], "password": STRONG}
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["user"]["roles"] == ["sales"]


def test_inviting_a_taken_username_or_bad_roles_is_refused(shop: Shop) -> None:
    person = add_person(shop, "qc")
    before = snapshot(shop.server)
    resp = admin(shop).post(
        "/api/admin/invitations", json={"username": person.username, "roles": ["qc"]}
    )
    expect_error(resp, 409, "conflict")
    resp = admin(shop).post("/api/admin/invitations", json={"username": "x y", "roles": ["qc"]})
    expect_error(resp, 400, "bad_request")
    resp = admin(shop).post("/api/admin/invitations", json={"username": "xy", "roles": ["chef"]})
    expect_error(resp, 400, "bad_request")
    assert_unchanged(before, snapshot(shop.server))


async def test_a_reset_link_sets_a_new_password_and_ends_the_old_sessions(shop: Shop) -> None:
    person = add_person(shop, "finance")
    peer = await Peer.open(shop.server, person.token)
    resp = admin(shop).post(f"/api/admin/staff/{person.username}/password-reset")
    assert resp.status_code == 201, resp.text
    issued = resp.json()
    assert issued["kind"] == "reset"
    # The link alone signs nobody out: the person may be at work right now.
    with shop.server.http(person.token, language="en") as client:
        assert client.get("/api/conversations").status_code == 200
    new_password = "orchard-compass-violet"
    with anonymous(shop) as client:
        resp = client.post(
            "/api/staff-links/accept", json={"token": issued["token"], "password": new_password}
        )
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["id"] == person.id
    assert await wait_closed(peer, timeout_s=5) == 4001
    with shop.server.http(person.token, language="en") as client:
        expect_error(client.get("/api/conversations"), 401, "unauthorized")
    shop.server.login(person.username, new_password)
    with anonymous(shop) as client:
        login = client.post(
            "/api/auth/login", json={"username": person.username, "password": STRONG}
        )
        expect_error(login, 401)


# --- the command line keeps the same rules --------------------------------------------------


def test_the_cli_invites_with_a_link_the_web_page_accepts(shop: Shop) -> None:
    name = fresh_name("cliinv")
    where = ("--data-dir", str(shop.server.data_dir), *shop.server.database_args)
    done = run_cli("user", "invite", name, "--role", "warehouse", *where)
    path = done.stdout.strip().splitlines()[-1]
    assert path.startswith("/#/join/")
    with anonymous(shop) as client:
        token = path.removeprefix("/#/join/")
        accepted = client.post("/api/staff-links/accept", json={"token": token, "password": STRONG})
    assert accepted.status_code == 200, accepted.text
    assert role_channel(shop.server, "warehouse") in conv_ids(shop.server, accepted.json()["token"])


def test_the_cli_keeps_the_last_admin(tmp_path: Path, store: str) -> None:
    data = ["--data-dir", str(tmp_path), *ServerProcess(tmp_path, store=store).database_args]
    run_cli("user", "add", "owner", "--password", STRONG, "--role", "admin", *data)
    for verb in (["roles", "owner", "--set", "sales"], ["disable", "owner"]):
        done = run_cli("user", *verb, *data, check=False)
        assert done.returncode == 2, done
        assert "last enabled admin" in done.stderr
    listed = run_cli("user", "list", *data).stdout
    assert "\towner\towner\tadmin\tenabled" in listed
