"""The admin audit log over a real server, on both stores: every sensitive action
leaves one entry naming who did what to whom, a refused action leaves none, and
only administrators read or export it."""

from __future__ import annotations

import csv
import io
import itertools
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.order_support import Shop, assert_unchanged
from tests.support import PeerPool

_refs = itertools.count(1)
Json = dict[str, Any]


@pytest.fixture
def shop(order_shop: Shop) -> Shop:
    return order_shop


def _log(shop: Shop, **params: Any) -> list[Json]:
    resp = shop.call("admin", "GET", "/api/admin/audit?" + urlencode(params, doseq=True))
    assert resp.status_code == 200, resp.text
    entries: list[Json] = resp.json()["entries"]
    return entries


def _actions(entries: list[Json]) -> list[str]:
    return [e["action"] for e in entries]


def test_staff_changes_are_on_the_record_with_who_did_them(shop: Shop) -> None:
    admin = shop.staff["admin"]
    someone = shop.server.user("sales")
    resp = shop.call(
        "admin",
        "PUT",
        f"/api/admin/staff/{someone.username}/roles",
        {"roles": ["sales", "finance"]},
    )
    assert resp.status_code == 200, resp.text
    for verb in ("sign-out", "disable", "enable"):
        resp = shop.call("admin", "POST", f"/api/admin/staff/{someone.username}/{verb}")
        assert resp.status_code == 200, resp.text
    resp = shop.call("admin", "POST", f"/api/admin/staff/{someone.username}/password-reset")
    assert resp.status_code == 201, resp.text
    entries = _log(shop, target=someone.id)
    assert _actions(entries) == [
        "staff.password_reset_issued",
        "staff.enabled",
        "staff.disabled",
        "staff.signed_out",
        "staff.roles_changed",
        "staff.added",
    ]
    assert {e["actor"] for e in entries} == {admin.id}
    roles = next(e for e in entries if e["action"] == "staff.roles_changed")["details"]
    assert (roles["before"], roles["after"]) == (["sales"], ["sales", "finance"])
    assert entries[3]["details"]["sessions_ended"] >= 1  # the sign-out
    family = _log(shop, target=someone.id, action="staff.*")
    assert len(family) == len(entries)
    assert _actions(_log(shop, target=someone.id, action="staff.disabled")) == ["staff.disabled"]
    by_name = _log(shop, q=someone.username, action="staff.roles_changed")
    assert [e["target"] for e in by_name][:1] == [someone.id]


def test_a_refused_action_leaves_no_entry(shop: Shop) -> None:
    someone = shop.server.user("qc")
    before = _log(shop, target=someone.id)
    resp = shop.call(
        "admin", "PUT", f"/api/admin/staff/{someone.username}/roles", {"roles": ["astronaut"]}
    )
    assert resp.status_code == 400, resp.text
    resp = shop.call("sales", "POST", f"/api/admin/staff/{someone.username}/disable")
    assert resp.status_code == 403, resp.text
    assert _log(shop, target=someone.id) == before


async def test_recalls_members_invitations_and_webhooks_are_on_the_record(shop: Shop) -> None:
    ann, bob = shop.staff["sales"], shop.staff["warehouse"]
    extra = shop.server.user("qc")
    conv = shop.server.conversation(ann, "channel", [bob], title=f"审计{next(_refs)}")["id"]
    async with PeerPool(shop.server) as pool:
        peer = await pool.open(ann.token)
        sent = await peer.send_text(conv, "报价单发错了", f"audit-{next(_refs)}")
        await peer.send(
            {"op": "recall", "ref": f"audit-{next(_refs)}", "conv": conv, "seq": sent["seq"]}
        )
        await peer.recv_op("ack")
    resp = shop.call(ann, "POST", f"/api/conversations/{conv}/members", {"members": [extra.id]})
    assert resp.status_code == 200, resp.text
    resp = shop.call(ann, "DELETE", f"/api/conversations/{conv}/members/{extra.id}")
    assert resp.status_code == 200, resp.text
    (recall,) = _log(shop, target=sent["id"])
    assert (recall["action"], recall["actor"], recall["conv"]) == ("message.recalled", ann.id, conv)
    assert recall["details"]["seq"] == sent["seq"]
    assert _actions(_log(shop, target=conv, action="conversation.*")) == [
        "conversation.members_added"
    ]
    (removed,) = _log(shop, target=extra.id, action="conversation.member_removed")
    assert (removed["actor"], removed["conv"]) == (ann.id, conv)

    order = shop.create_order()
    shop.invite(order)
    (invited,) = _log(shop, target=order["id"], action="order.customer_invited")
    assert invited["details"]["number"] == order["number"]

    body = {"url": f"https://hooks.example/audit{next(_refs)}", "topics": ["order.status"]}
    made = shop.call("admin", "POST", "/api/admin/webhooks", body).json()
    changed = shop.call(
        "admin",
        "PUT",
        f"/api/admin/webhooks/{made['id']}",
        {**body, "topics": ["order.status", "order.exception"]},
    )
    assert changed.status_code == 200, changed.text
    assert shop.call("admin", "DELETE", f"/api/admin/webhooks/{made['id']}").status_code == 204
    hooks = _log(shop, target=made["id"])
    assert _actions(hooks) == ["webhook.deleted", "webhook.changed", "webhook.created"]
    assert "secret" not in str(hooks[2]["details"]).replace("secret_changed", "")


def test_an_audit_search_and_an_export_are_themselves_on_the_record(shop: Shop) -> None:
    word = f"审计搜索{next(_refs)}"
    resp = shop.call("admin", "GET", "/api/search?" + urlencode({"q": word, "audit": "true"}))
    assert resp.status_code == 200, resp.text
    searched = _log(shop, action="search.audit", q=word)
    assert [e["details"]["query"] for e in searched] == [word]
    resp = shop.call("admin", "GET", "/api/admin/audit.csv?" + urlencode({"q": word}))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))
    # The export is logged before it is read, and names what it was asked for.
    assert [r["action"] for r in rows] == ["audit.exported", "search.audit"]
    assert word in rows[1]["details"]
    assert _actions(_log(shop, action="audit.exported", limit=1)) == ["audit.exported"]


def test_paging_walks_the_log_newest_first_without_gaps(shop: Shop) -> None:
    someone = shop.server.user("logistics")
    for _ in range(3):
        shop.call("admin", "POST", f"/api/admin/staff/{someone.username}/sign-out")
    whole = _log(shop, target=someone.id)
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        params: Json = {"target": someone.id, "limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        resp = shop.call("admin", "GET", "/api/admin/audit?" + urlencode(params)).json()
        seen += [e["id"] for e in resp["entries"]]
        cursor = resp["next"]
        if cursor is None:
            break
    assert seen == [e["id"] for e in whole] and len(seen) == 4


BAD = (
    ("sales", "", 403),
    ("sales", ".csv", 403),
    ("admin", "?action=staff.eaten", 400),
    ("admin", "?action=nothing.*", 400),
    ("admin", "?q=" + "x" * 101, 400),
    ("admin", "?cursor=0", 400),
    ("admin", "?limit=201", 400),
    ("admin", "?since=-5", 400),
)


@pytest.mark.pg_sample(2)
@pytest.mark.parametrize(("who", "query", "status"), BAD, ids=[f"{b[0]}{b[1]}" for b in BAD])
def test_bad_audit_reads_get_a_clear_error_and_change_nothing(
    shop: Shop, who: str, query: str, status: int
) -> None:
    before = shop.server.db_snapshot()
    resp = shop.call(who, "GET", f"/api/admin/audit{query}")
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]
    assert_unchanged(before, shop.server.db_snapshot())
    assert shop.call(None, "GET", "/api/admin/audit").status_code == 401
