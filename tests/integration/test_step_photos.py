"""Evidence photos of order steps, over HTTP against a real server on both stores.

A step's photos are attachments of the message the step posts: the customer
opens them when the step is theirs to see and gets 404 when it is staff-only,
the order's file library lists them, and the step's note is their caption. A
step the workflow marks `photos = true` is refused without one; a photo that is
someone else's, unknown, unfinished, not a picture or one too many is refused
too, and every refusal leaves the database as it was.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.media_samples import jpeg, pdf
from tests.media_support import raw_upload, settle_previews, started_upload
from tests.order_support import Customer, Json, Shop, assert_unchanged, expect_error

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def shop(order_shop: Shop) -> Shop:
    return order_shop


def _step_message(shop: Shop, order: Json, who: str | Customer, step: str) -> Json:
    """The message of the step `from->to` as `who` reads it in the order's conversation."""
    resp = shop.call(who, "GET", f"/api/conversations/{order['conv']}/messages?limit=200")
    assert resp.status_code == 200, resp.text
    found = [
        m
        for m in resp.json()["messages"]
        if m["kind"] == "order_event"
        and m["meta"]["event"] == "status_changed"
        and "{from}->{to}".format(**m["meta"]["details"]) == step
    ]
    assert len(found) == 1, found
    message: Json = found[0]
    return message


def _library(shop: Shop, order: Json, who: str | Customer, kind: str = "") -> list[str]:
    query = f"?kind={kind}" if kind else ""
    resp = shop.call(who, "GET", f"/api/orders/{order['id']}/files{query}")
    assert resp.status_code == 200, resp.text
    return [f["id"] for f in resp.json()["files"]]


def _fetch(shop: Shop, who: str | Customer, photo: str) -> int:
    return shop.client(who).get(f"/api/media/{photo}").status_code


def _uploads(shop: Shop) -> list[tuple[Any, ...]]:
    """Which message each upload went out with: the snapshot leaves uploads out."""
    return shop.server.db_rows("SELECT id, message_id, seq FROM uploads ORDER BY id")


def test_a_customer_visible_steps_photos_travel_with_its_message(shop: Shop) -> None:
    order = shop.order_at("retail", "picking", language="en")
    customer = shop.customer(order)
    data = jpeg(color=(30, 120, 200))
    photo = shop.photo(order, "warehouse", data)
    moved = shop.move(
        order["id"], "packed", "warehouse", photos=[{"id": photo}], note="two boxes, taped twice"
    )
    assert moved.status_code == 200, moved.text

    for reader in ("warehouse", customer):
        message = _step_message(shop, order, reader, "picking->packed")
        assert [a["id"] for a in message["attachments"]] == [photo]
        assert message["attachments"][0]["caption"] == "two boxes, taped twice"
        assert message["attachments"][0]["kind"] == "image"
        assert message["meta"]["details"]["photos"] == [photo]
    assert "internal" not in _step_message(shop, order, "warehouse", "picking->packed")
    got = shop.client(customer).get(f"/api/media/{photo}")
    assert (got.status_code, got.content) == (200, data)
    for reader in ("customer_service", customer):
        assert photo in _library(shop, order, reader)
        assert photo in _library(shop, order, reader, "image")
    # Logistics, told in its channel, opens the photo from the copy it was told with.
    posts = shop.channel_posts(order["id"])["logistics"]
    (post,) = [m for m in posts if m["meta"]["details"].get("to") == "packed"]
    channel = shop.role_channels()["logistics"][0]
    copies = shop.call("logistics", "GET", f"/api/conversations/{channel}/messages?limit=200")
    (copy,) = [m for m in copies.json()["messages"] if m["seq"] == post["seq"]]
    assert [a["id"] for a in copy["attachments"]] == [photo]
    assert _fetch(shop, "logistics", photo) == 200


def test_a_staff_only_steps_photos_stay_with_staff(shop: Shop) -> None:
    order = shop.order_at("oem", "qc")
    customer = shop.customer(order)
    photo = shop.photo(order, "qc")
    note = "uneven hems on 40 pieces"
    moved = shop.move(order["id"], "sewing", "qc", photos=[photo], note=note)
    assert moved.status_code == 200, moved.text

    message = _step_message(shop, order, "production", "qc->sewing")
    assert message["internal"] is True
    assert [(a["id"], a["caption"]) for a in message["attachments"]] == [(photo, note)]
    assert _fetch(shop, "production", photo) == 200
    assert _fetch(shop, "admin", photo) == 200
    assert _fetch(shop, customer, photo) in (403, 404)
    assert shop.client(customer).get(f"/api/media/{photo}/info").status_code in (403, 404)
    assert photo in _library(shop, order, "production", "image")
    assert photo not in _library(shop, order, customer)
    assert photo not in _library(shop, order, customer, "image")


def test_a_step_that_needs_photos_is_refused_without_one(shop: Shop) -> None:
    order = shop.order_at("retail", "picking")
    settle_previews(shop.server)
    before = shop.server.db_snapshot()
    without: list[list[str] | None] = [None, []]
    for photos in without:
        extra = {} if photos is None else {"photos": photos}
        resp = shop.move(order["id"], "packed", "warehouse", **extra)
        error = expect_error(resp, 400, "bad_request")
        assert error["reason"] == "photos.step_needs_photo", error
        assert "Packed" in error["message"] or "已打包" in error["message"], error
    assert_unchanged(before, shop.server.db_snapshot())
    assert shop.order_row(order["id"])["status"] == "picking"


def test_the_workflow_says_which_steps_need_photos(shop: Shop) -> None:
    resp = shop.call("warehouse", "GET", "/api/workflows")
    assert resp.status_code == 200, resp.text
    moves = {
        (w["name"], t["to"], tuple(t["from"])): (t["photos"], t["photos_required"])
        for w in resp.json()["workflows"]
        for t in w["transitions"]
    }
    assert moves[("retail", "packed", ("picking",))] == (True, True)
    assert moves[("retail", "delivered", ("out_for_delivery",))] == (True, False)
    assert moves[("oem", "sewing", ("qc",))] == (True, True)
    assert moves[("oem", "packing", ("qc",))] == (True, True)
    assert moves[("retail", "confirmed", ("placed",))] == (False, False)
    order = shop.order_at("retail", "picking")
    allowed = shop.get_order(order["id"], "warehouse")["allowed"]["transitions"]
    assert [(m["to"], m["photos_required"]) for m in allowed] == [("packed", True)]


def _bad_photos(shop: Shop, order: Json) -> list[tuple[str, object, int]]:
    """(what, photos, status) of photo lists the warehouse may not give for `order`."""
    other = shop.order_at("retail", "confirmed")
    mine = shop.photo(order, "warehouse")
    with shop.server.http(shop.token("warehouse")) as http:
        text = raw_upload(http, order["conv"], b"not a picture at all\n", "note.txt", "text/plain")
        document = raw_upload(http, order["conv"], pdf(), "qc.pdf", "application/pdf")
        half = started_upload(http, order["conv"], jpeg(), 10, "half.jpg")
    return [
        ("someone else's", [shop.photo(order, "customer_service")], 403),
        ("unknown", ["up_nosuchupload0000000"], 404),
        ("a text file", [text], 400),
        ("a PDF", [{"id": document}], 400),
        ("unfinished", [half], 409),
        ("for another order", [shop.photo(other, "warehouse")], 400),
        ("too many", [mine] * 21, 400),
        ("not an id", [{"blob": "b_photo", "name": "step.jpg"}], 400),
        ("an empty id", [""], 400),
        ("not a list", mine, 400),
        ("a good one beside a bad one", [mine, "up_nosuchupload0000000"], 404),
    ]


def test_bad_photos_are_refused_and_change_nothing(shop: Shop) -> None:
    order = shop.order_at("retail", "picking")
    cases = _bad_photos(shop, order)
    settle_previews(shop.server)
    before, uploads = shop.server.db_snapshot(), _uploads(shop)
    for what, photos, status in cases:
        resp = shop.move(order["id"], "packed", "warehouse", photos=photos)
        expect_error(resp, status)
        assert resp.status_code == status, f"{what}: {resp.text}"
    assert_unchanged(before, shop.server.db_snapshot())
    assert _uploads(shop) == uploads
    # The good photo was left unsent by every refusal, and still goes with the step.
    good = next(p for what, p, _ in cases if what == "a good one beside a bad one")
    assert isinstance(good, list)
    resp = shop.move(order["id"], "packed", "warehouse", photos=good[:1])
    assert resp.status_code == 200, resp.text
    # Once sent it is the step's: a report cannot carry it again.
    body = {"kind": "defect_found", "description": "dented corner", "photos": good[:1]}
    again = shop.call("warehouse", "POST", f"/api/orders/{order['id']}/issues", body)
    assert expect_error(again, 409)["reason"] == "messaging.upload_was_already_sent"


def test_a_defects_photos_are_attachments_of_its_report(shop: Shop) -> None:
    order = shop.order_at("retail", "packed", language="en")
    customer = shop.customer(order)
    photo = shop.photo(order, "warehouse")
    body = {"kind": "defect_found", "description": "a torn seam", "photos": [{"id": photo}]}
    resp = shop.call("warehouse", "POST", f"/api/orders/{order['id']}/issues", body)
    assert resp.status_code == 201, resp.text
    assert resp.json()["detail"]["photos"] == [photo]
    messages = shop.call(customer, "GET", f"/api/conversations/{order['conv']}/messages?limit=200")
    (report,) = [
        m
        for m in messages.json()["messages"]
        if (m.get("meta") or {}).get("event") == "defect_found"
    ]
    assert [(a["id"], a["caption"]) for a in report["attachments"]] == [(photo, "a torn seam")]
    assert _fetch(shop, customer, photo) == 200
    assert photo in _library(shop, order, customer, "image")
