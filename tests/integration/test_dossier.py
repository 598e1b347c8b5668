"""An order's dossier and the proof of the hash chain, against a real server.

One order is made with everything a dossier shows (messages both ways, a
picture, a staff-only note, an edit, a payment, a confirmation decided, an
exception settled, a call) and exported once per reader; each test then
checks or tampers with its own copy of the ZIP. The database-side proofs
(`orderchat verify`, `/api/admin/verify`) run on both stores; the rest is
about the ZIP and runs on SQLite alone. Another order comes from a visitor's
consult (docs/consults.md), whose history its dossier carries: that one is
read from the store and runs on both.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import re
import subprocess
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from PIL import Image

from tests import media_samples
from tests.media_support import raw_upload, send_media, wait_preview
from tests.order_support import SKU, Customer, Shop, expect_error
from tests.support import Peer, ServerProcess, run_cli

Json = dict[str, Any]
_refs = itertools.count(1)

STAFF_SAYS = "样品已经寄出，请查收"
STAFF_EDITED = "样品已经寄出，顺丰单号稍后发您"
CUSTOMER_SAYS = "收到了，颜色很正"
PICTURE_SAYS = "第二轮样品的照片"
LAST_SAYS = "好的，我们开始大货生产"
# Blue, the colour of media_samples.png(): found on the rendered page, the picture is there.
PICTURE_RGB = (0, 120, 255)


@pytest.fixture(scope="module")
def shop(order_shop: Shop) -> Shop:
    return order_shop


@dataclass
class Case:
    order: Json
    customer: Customer
    note: str  # the staff-only note's text: never in the customer's dossier
    staff_zip: bytes
    customer_zip: bytes


def _ref(name: str) -> str:
    return f"{name}-{next(_refs)}-{uuid.uuid4().hex[:6]}"


async def _converse(shop: Shop, order: Json, customer: Customer, note: str, media: str) -> None:
    """Messages both ways, a picture, a staff-only note, an edit, and a call."""
    conv = order["conv"]
    sales = await Peer.open(shop.server, shop.staff["sales"].token)
    buyer = await Peer.open(shop.server, customer.token)
    try:
        sent = await sales.send_text(conv, STAFF_SAYS, _ref("s"))
        assert sent["op"] == "ack", sent
        ack = await buyer.send_text(conv, CUSTOMER_SAYS, _ref("c"))
        assert ack["op"] == "ack", ack
        ack = await sales.send_text(conv, note, _ref("n"), internal=True)
        assert ack["op"] == "ack", ack
        ref = _ref("p")
        await sales.send(
            {
                "op": "send",
                "ref": ref,
                "conv": conv,
                "kind": "image",
                "text": PICTURE_SAYS,
                "attachments": [{"id": media}],
            }
        )
        assert (await sales.recv_ack(ref))["op"] == "ack"
        ref = _ref("e")
        await sales.send(
            {"op": "edit", "ref": ref, "conv": conv, "seq": sent["seq"], "text": STAFF_EDITED}
        )
        assert (await sales.recv_ack(ref))["op"] == "ack"
        await sales.send({"op": "call_invite", "ref": _ref("i"), "conv": conv, "media": "audio"})
        started = await sales.recv_op("call")
        await sales.send({"op": "call_hangup", "ref": _ref("h"), "call": started["call"]})
        await sales.recv_op("call")
        ack = await buyer.send_text(conv, LAST_SAYS, _ref("l"))
        assert ack["op"] == "ack", ack
    finally:
        await sales.close()
        await buyer.close()


def _business(shop: Shop, order: Json, customer: Customer) -> None:
    """A confirmation the customer decides, a payment, an exception raised and settled."""
    item = shop.add_confirmation(order["id"])
    shop.approve_confirmation(item, decider=customer)
    shop.record_payment(order["id"])
    raised = shop.call(
        "admin",
        "POST",
        f"/api/orders/{order['id']}/issues",
        {"kind": "defect_found", "description": "缝线开裂"},
    )
    assert raised.status_code == 201, raised.text
    settled = shop.call(
        "admin",
        "POST",
        f"/api/orders/{order['id']}/issues/{raised.json()['id']}/settle",
        {"outcome": "exchange", "note": "换一只新的"},
    )
    assert settled.status_code == 200, settled.text


def _download(shop: Shop, who: str | Customer, order: Json) -> bytes:
    resp = shop.call(who, "GET", f"/api/orders/{order['id']}/dossier")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/zip"
    assert resp.headers["content-disposition"].endswith(f'dossier-{order["number"]}.zip"')
    return resp.content


@pytest.fixture(scope="module")
def case(shop: Shop) -> Case:
    order = shop.create_order("oem")
    customer = shop.customer(order)
    with shop.server.http(shop.staff["sales"].token) as http:
        media = raw_upload(
            http, order["conv"], media_samples.png(160, 120), "样品.png", "image/png"
        )
    assert (
        wait_preview(shop.server, shop.staff["sales"].token, media)["preview"]["status"] == "ready"
    )
    note = f"仅员工：此客户可能转售 {uuid.uuid4().hex}"
    asyncio.run(_converse(shop, order, customer, note, media))
    _business(shop, order, customer)
    return Case(
        order, customer, note, _download(shop, "sales", order), _download(shop, customer, order)
    )


def _verify(server: ServerProcess | None, *args: str) -> subprocess.CompletedProcess[str]:
    extra = ("--data-dir", str(server.data_dir), *server.database_args) if server else ()
    return run_cli("verify", *args, *extra, "--lang", "en", check=False)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _rewritten(data: bytes, change: Callable[[dict[str, bytes]], None]) -> bytes:
    """The same ZIP with its entries changed by `change` (a dict of name -> bytes)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    change(entries)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in entries.items():
            archive.writestr(name, body)
    return out.getvalue()


def _document(entries: dict[str, bytes]) -> Json:
    found: Json = orjson.loads(entries["dossier.json"])
    return found


def _seq_of(document: Json, text: str) -> int:
    return int(next(m["seq"] for m in document["messages"] if m["fields"]["text"] == text))


# --- the ZIP, checked offline -------------------------------------------------------------


@pytest.mark.sqlite_only
def test_an_exported_dossier_verifies_offline(case: Case, tmp_path: Path) -> None:
    done = _verify(None, str(_write(tmp_path / "d.zip", case.staff_zip)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("the dossier holds:"), done.stdout
    with zipfile.ZipFile(io.BytesIO(case.staff_zip)) as archive:
        names = archive.namelist()
        manifest = orjson.loads(archive.read("manifest.json"))
    assert names[:2] == ["dossier.pdf", "dossier.json"] and names[-1] == "manifest.json"
    assert [f["path"] for f in manifest["files"]] == names[:-1]
    kinds = {(e["link"], e["withheld"]) for e in manifest["chain"]}
    assert ("edit", False) in kinds and manifest["withheld"] == 0


def _flip_a_file_byte(entries: dict[str, bytes]) -> None:
    name = next(n for n in entries if n.startswith("files/"))
    body = bytearray(entries[name])
    body[len(body) // 2] ^= 0x01
    entries[name] = bytes(body)


def _edit_a_text(entries: dict[str, bytes]) -> None:
    document = _document(entries)
    message = next(m for m in document["messages"] if m["fields"]["text"] == CUSTOMER_SAYS)
    message["fields"]["text"] = "没收到"
    entries["dossier.json"] = orjson.dumps(document)


def _swap_two(entries: dict[str, bytes]) -> None:
    document = _document(entries)
    messages = document["messages"]
    first = next(i for i, m in enumerate(messages) if m["fields"]["text"] == CUSTOMER_SAYS)
    messages[first], messages[first + 1] = messages[first + 1], messages[first]
    entries["dossier.json"] = orjson.dumps(document)


def _remove_one(entries: dict[str, bytes]) -> None:
    document = _document(entries)
    document["messages"] = [m for m in document["messages"] if m["fields"]["text"] != LAST_SAYS]
    entries["dossier.json"] = orjson.dumps(document)


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_flip_a_file_byte, "files/"),
        (_edit_a_text, "message seq {customer}: its content does not give its hash (changed)"),
        (_swap_two, "message seq {after} stands where seq {customer} belongs"),
        (_remove_one, "message seq {last} is in the chain but not in dossier.json (removed)"),
    ],
    ids=["file-byte", "text-edited", "swapped", "removed"],
)
def test_a_tampered_dossier_fails_naming_what_changed(
    case: Case, tmp_path: Path, change: Callable[[dict[str, bytes]], None], named: str
) -> None:
    with zipfile.ZipFile(io.BytesIO(case.staff_zip)) as archive:
        document = orjson.loads(archive.read("dossier.json"))
    customer = _seq_of(document, CUSTOMER_SAYS)
    seqs = [m["seq"] for m in document["messages"]]
    expected = named.format(
        customer=customer,
        after=seqs[seqs.index(customer) + 1],
        last=_seq_of(document, LAST_SAYS),
    )
    done = _verify(None, str(_write(tmp_path / "t.zip", _rewritten(case.staff_zip, change))))
    assert done.returncode == 1, done.stdout + done.stderr
    assert expected in done.stdout, done.stdout
    if change is _flip_a_file_byte:
        path = next(f["path"] for f in document["files"])
        assert f"{path} does not match its SHA-256 in the manifest (changed)" in done.stdout
        assert f"{path} is not the file message seq" in done.stdout


@pytest.mark.sqlite_only
def test_what_is_not_a_dossier_is_refused_with_exit_status_2(tmp_path: Path) -> None:
    done = _verify(None, str(_write(tmp_path / "n.zip", b"not a zip")))
    assert done.returncode == 2 and "is not a readable ZIP file" in done.stderr


# --- the PDF ------------------------------------------------------------------------------


def _pdf_text(pdf: bytes, tmp_path: Path, page: int | None = None) -> str:
    path = _write(tmp_path / "dossier.pdf", pdf)
    pages = () if page is None else ("-f", str(page), "-l", str(page))
    done = subprocess.run(
        ["pdftotext", "-layout", *pages, str(path), "-"], capture_output=True, check=True
    )
    return done.stdout.decode()


def _pdf_of(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read("dossier.pdf")


@pytest.mark.sqlite_only
def test_the_pdf_reads_the_conversation_in_order_with_its_picture(
    case: Case, tmp_path: Path
) -> None:
    pdf = _pdf_of(case.staff_zip)
    text = _pdf_text(pdf, tmp_path)
    said = [STAFF_SAYS, STAFF_EDITED, CUSTOMER_SAYS, case.note, PICTURE_SAYS, LAST_SAYS]
    places = [text.find(s) for s in said]
    assert all(p >= 0 for p in places) and places == sorted(places), (places, text[:3000])
    head = orjson.loads(zipfile.ZipFile(io.BytesIO(case.staff_zip)).read("manifest.json"))["head"]
    pages = text.count("\f")
    assert text.count(f"chain head {head}") + text.count(f"链条终点 {head}") >= pages
    assert "缝线开裂" in text and "换一只新的" in text  # the exception and how it was settled
    with_picture = next(n for n in range(1, pages + 1) if "样品.png" in _pdf_text(pdf, tmp_path, n))
    out = tmp_path / "page"
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            "40",
            "-png",
            "-f",
            str(with_picture),
            "-l",
            str(with_picture),
            str(tmp_path / "dossier.pdf"),
            str(out),
        ],
        check=True,
    )
    (rendered,) = tmp_path.glob("page*.png")
    with Image.open(rendered) as image:
        raw = image.convert("RGB").tobytes()
    pixels = (raw[i : i + 3] for i in range(0, len(raw), 3))
    blue = sum(
        1 for p in pixels if all(abs(a - b) < 40 for a, b in zip(p, PICTURE_RGB, strict=True))
    )
    assert blue > 200, f"no picture on page {with_picture}: {blue} blue pixels"


# --- who gets what ------------------------------------------------------------------------


@pytest.mark.sqlite_only
def test_a_customers_dossier_holds_nothing_staff_only(
    shop: Shop, case: Case, tmp_path: Path
) -> None:
    note = case.note.encode()
    assert note in b"".join(_entries(case.staff_zip).values())  # the staff's does
    entries = _entries(case.customer_zip)
    assert note not in case.customer_zip
    for name, body in entries.items():
        assert note not in body, name
    assert case.note not in _pdf_text(entries["dossier.pdf"], tmp_path)
    manifest = orjson.loads(entries["manifest.json"])
    internal = shop.server.db_rows(
        "SELECT count(*) FROM messages WHERE conv_id = ? AND internal = ?", case.order["conv"], True
    )[0][0]
    assert internal >= 1 and manifest["withheld"] == internal
    assert sum(e["withheld"] for e in manifest["chain"]) == internal
    assert orjson.loads(entries["dossier.json"])["issues"] == []
    done = _verify(None, str(_write(tmp_path / "c.zip", case.customer_zip)))
    assert done.returncode == 0, done.stdout
    assert f"({internal} of them withheld)" in done.stdout
    # Both exports are on the admin audit log: who took the order's history, and what.
    resp = shop.call("admin", "GET", f"/api/admin/audit?target={case.order['id']}")
    exports = [e for e in resp.json()["entries"] if e["action"] == "order.exported"]
    by_customer = [e for e in exports if e["actor"] == case.customer.id]
    assert by_customer and by_customer[0]["details"]["withheld"] == internal, exports
    assert any(e["actor"] != case.customer.id for e in exports), exports


def _entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.mark.sqlite_only
def test_the_dossier_is_for_the_orders_people_only(shop: Shop, case: Case) -> None:
    other = shop.customer(shop.create_order("retail"))
    path = f"/api/orders/{case.order['id']}/dossier"
    expect_error(shop.call(other, "GET", path), 404, "not_found")
    expect_error(shop.call(None, "GET", path), 401, "unauthorized")
    expect_error(shop.call("admin", "GET", "/api/orders/o_nothing/dossier"), 404, "not_found")


@pytest.mark.sqlite_only
def test_the_dossier_names_the_key_that_signs_the_daily_anchors(shop: Shop, case: Case) -> None:
    made = shop.call("admin", "POST", "/api/admin/anchors")
    assert made.status_code == 201, made.text
    key = shop.call("admin", "GET", "/api/admin/anchors").json()
    entries = _entries(_download(shop, "admin", case.order))
    manifest = orjson.loads(entries["manifest.json"])
    assert manifest["anchor_key"] == {"public_key": key["public_key"], "key_id": key["key_id"]}
    assert orjson.loads(entries["dossier.json"])["anchor_key"] == manifest["anchor_key"]


@pytest.mark.sqlite_only
def test_orderchat_export_writes_what_the_route_gives(
    shop: Shop, case: Case, tmp_path: Path
) -> None:
    server = shop.server
    out = tmp_path / "cli.zip"
    done = run_cli(
        "export",
        "--order",
        case.order["number"],
        "--out",
        str(out),
        "--customer",
        "--data-dir",
        str(server.data_dir),
        "--lang",
        "en",
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {out}:"), done.stdout
    assert case.note.encode() not in b"".join(_entries(out.read_bytes()).values())
    assert _verify(None, str(out)).returncode == 0
    missing = run_cli(
        "export",
        "--order",
        "NO-SUCH",
        "--out",
        str(tmp_path / "x.zip"),
        "--data-dir",
        str(server.data_dir),
        "--lang",
        "en",
        check=False,
    )
    assert missing.returncode == 2 and "no order numbered NO-SUCH" in missing.stderr


# --- the database's chains ---------------------------------------------------------------------


def _chat(server: ServerProcess, owner: Any, lines: int) -> str:
    conv = server.conversation(owner, "channel", [], title=f"chain {uuid.uuid4().hex[:6]}")

    async def send() -> None:
        peer = await Peer.open(server, owner.token)
        try:
            for i in range(lines):
                ack = await peer.send_text(conv["id"], f"第 {i + 1} 行", _ref("line"))
                assert ack["op"] == "ack", ack
        finally:
            await peer.close()

    asyncio.run(send())
    return str(conv["id"])


def test_a_row_changed_in_the_database_is_found_by_verify_and_the_admin_route(
    shop: Shop,
) -> None:
    server = shop.server
    conv = _chat(server, shop.staff["sales"], 4)
    done = _verify(server)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("all ") and done.stdout.rstrip().endswith("hold")
    fine = shop.call("admin", "GET", f"/api/admin/verify?conv={conv}").json()
    assert fine["holds"] and fine["links"] == 4 and fine["head"] == fine["stored_head"]
    assert fine["broken"] is None

    (original,) = server.db_rows("SELECT text FROM messages WHERE conv_id = ? AND seq = 3", conv)
    server.db_execute("UPDATE messages SET text = ? WHERE conv_id = ? AND seq = 3", "改了", conv)
    try:
        done = _verify(server)
        assert done.returncode == 1, done.stdout
        assert f"conversation {conv} (" in done.stdout
        assert "message seq 3: its content does not give its hash (changed)" in done.stdout
        broken = shop.call("admin", "GET", f"/api/admin/verify?conv={conv}").json()
        assert not broken["holds"] and broken["links"] == 2
        assert {k: broken["broken"][k] for k in ("link", "seq", "version", "reason")} == {
            "link": "message",
            "seq": 3,
            "version": 0,
            "reason": "changed",
        }
    finally:
        server.db_execute(
            "UPDATE messages SET text = ? WHERE conv_id = ? AND seq = 3", original[0], conv
        )
    assert _verify(server).returncode == 0


@pytest.mark.sqlite_only
def test_the_admin_route_is_for_admins_and_known_conversations(shop: Shop, case: Case) -> None:
    conv = case.order["conv"]
    expect_error(shop.call("sales", "GET", f"/api/admin/verify?conv={conv}"), 403, "forbidden")
    expect_error(shop.call(case.customer, "GET", f"/api/admin/verify?conv={conv}"), 403)
    expect_error(shop.call(None, "GET", f"/api/admin/verify?conv={conv}"), 401)
    expect_error(shop.call("admin", "GET", "/api/admin/verify?conv=c_nothing"), 404, "not_found")
    expect_error(shop.call("admin", "GET", "/api/admin/verify"), 400, "bad_request")
    answer = shop.call("admin", "GET", f"/api/admin/verify?conv={conv}").json()
    assert answer["holds"] and answer["links"] >= answer["last_seq"] + 1  # the edit is a link


# --- the consult an order came from ----------------------------------------------------------

CONSULT_ASKS = "这款帐篷防水吗？去西藏徒步用得上吗"
CONSULT_ANSWERS = "防水，涂层三千毫米，高原上也没问题"
CONSULT_PICTURE_SAYS = "我想要这个颜色"
CONSULT_AGREES = "好的，那我订两顶"
ORDER_SAYS = "订单已确认，明天发货"


@dataclass
class Consulted:
    order: Json
    consult: str  # the consult's id: its conversation's
    visitor: Customer  # the visitor, now the order's customer, with their own session
    notes: tuple[str, str]  # a transfer note and a staff-only message: staff's eyes only
    staff_zip: bytes
    customer_zip: bytes


async def _consult_talk(shop: Shop, consult: str, visitor: str, picture: str, note: str) -> None:
    """A staff answer, a picture and a yes from the visitor, a staff-only message."""
    staff = await Peer.open(shop.server, shop.staff["customer_service"].token)
    guest = await Peer.open(shop.server, visitor, "phone")
    try:
        ack = await staff.send_text(consult, CONSULT_ANSWERS, _ref("ca"))
        assert ack["op"] == "ack", ack
        ref = _ref("cp")
        ack = await send_media(guest, consult, "image", [picture], ref, CONSULT_PICTURE_SAYS)
        assert ack["op"] == "ack", ack
        ack = await guest.send_text(consult, CONSULT_AGREES, _ref("cy"))
        assert ack["op"] == "ack", ack
        ack = await staff.send_text(consult, note, _ref("cn"), internal=True)
        assert ack["op"] == "ack", ack
    finally:
        await staff.close()
        await guest.close()


async def _order_talk(shop: Shop, conv: str) -> None:
    staff = await Peer.open(shop.server, shop.staff["customer_service"].token)
    try:
        ack = await staff.send_text(conv, ORDER_SAYS, _ref("os"))
        assert ack["op"] == "ack", ack
    finally:
        await staff.close()


def _start_consult(shop: Shop) -> tuple[str, str, str]:
    """A visitor's consult from the widget, asking in Chinese: (consult, visitor, token)."""
    started = shop.call(
        None,
        "POST",
        "/api/consults/start",
        {
            "name": "王先生",
            "text": CONSULT_ASKS,
            "source": "widget",
            "page_url": "https://shop.example/tents/tnt-2p",
            "sku": SKU,
        },
    )
    assert started.status_code == 201, started.text
    answer = started.json()
    return str(answer["consult"]["id"]), str(answer["user"]["id"]), str(answer["token"])


@pytest.fixture(scope="module")
def consulted(shop: Shop) -> Consulted:
    consult, visitor, token = _start_consult(shop)
    with shop.server.http(token) as http:
        picture = raw_upload(http, consult, media_samples.png(64, 48), "帐篷.png", "image/png")
    assert wait_preview(shop.server, token, picture)["preview"]["status"] == "ready"
    note = f"仅员工：先别报折扣 {uuid.uuid4().hex}"
    asyncio.run(_consult_talk(shop, consult, token, picture, note))
    transfer_note = f"仅员工：转给销售跟进 {uuid.uuid4().hex}"
    moved = shop.call(
        "admin",
        "POST",
        f"/api/consults/{consult}/transfer",
        {"to_user": shop.staff["sales"].id, "note": transfer_note},
    )
    assert moved.status_code == 200, moved.text
    body = shop.order_body()
    del body["customer"]
    made = shop.call("customer_service", "POST", f"/api/consults/{consult}/order", body)
    assert made.status_code == 201, made.text
    order = made.json()
    assert order["customer"] == visitor
    asyncio.run(_order_talk(shop, order["conv"]))
    customer = Customer(visitor, token, order["id"])
    return Consulted(
        order,
        consult,
        customer,
        (note, transfer_note),
        _download(shop, "sales", order),
        _download(shop, customer, order),
    )


def _squeezed(pdf: bytes, tmp_path: Path) -> str:
    """The PDF's text without any white space, so a line the page wrapped reads whole."""
    return re.sub(r"\s+", "", _pdf_text(pdf, tmp_path))


def test_the_dossier_tells_what_was_said_in_the_consult_before_the_order(
    consulted: Consulted, tmp_path: Path
) -> None:
    entries = _entries(consulted.staff_zip)
    document, manifest = _document(entries), orjson.loads(entries["manifest.json"])
    (consult,) = document["consults"]
    assert consult["id"] == consulted.consult and consult["source"] == "widget"
    assert consult["sku"] == SKU and consult["page_url"].endswith("/tnt-2p")
    said = [m["fields"]["text"] for m in consult["messages"]]
    assert said.index(CONSULT_ASKS) < said.index(CONSULT_ANSWERS) < said.index(CONSULT_AGREES)
    assert consulted.notes[0] in said  # staff see their own notes
    (listed,) = manifest["consults"]
    assert listed["conv"] == consulted.consult and listed["head"] == consult["conversation"]["head"]
    assert [e["seq"] for e in listed["chain"]] == [m["seq"] for m in consult["messages"]]
    # The visitor's picture is packed like the order's files, in the consult's folder.
    (picture,) = consult["files"]
    assert picture["path"].startswith(f"files/{consulted.consult}/")
    assert picture["path"] in {f["path"] for f in manifest["files"]}
    assert entries[picture["path"]] == media_samples.png(64, 48)
    text = _squeezed(entries["dossier.pdf"], tmp_path)
    places = [
        text.find(s)
        for s in ("下单前的咨询", CONSULT_ASKS, CONSULT_ANSWERS, CONSULT_AGREES, ORDER_SAYS)
    ]
    assert all(p >= 0 for p in places) and places == sorted(places), (places, text[:3000])
    assert f"原文件：{picture['path']}".replace(" ", "") in text
    done = _verify(None, str(_write(tmp_path / "s.zip", consulted.staff_zip)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"consult {consulted.consult} before the order: {len(listed['chain'])} links" in (
        done.stdout
    )


def test_a_customers_dossier_withholds_the_consults_staff_only_notes_and_counts_them(
    shop: Shop, consulted: Consulted, tmp_path: Path
) -> None:
    staff = b"".join(_entries(consulted.staff_zip).values())
    entries = _entries(consulted.customer_zip)
    for note in consulted.notes:
        assert note.encode() in staff  # the staff's dossier has it
        assert note.encode() not in consulted.customer_zip
        for name, body in entries.items():
            assert note.encode() not in body, name
    internal = shop.server.db_rows(
        "SELECT count(*) FROM messages WHERE conv_id = ? AND internal = ?", consulted.consult, True
    )[0][0]
    assert internal >= 2  # the transfer's note and the staff-only message at least
    (listed,) = orjson.loads(entries["manifest.json"])["consults"]
    assert listed["withheld"] == internal == sum(e["withheld"] for e in listed["chain"])
    (consult,) = _document(entries)["consults"]
    assert consult["conversation"]["withheld"] == internal
    assert CONSULT_ASKS in [m["fields"]["text"] for m in consult["messages"]]
    links = len(listed["chain"])
    text = _squeezed(entries["dossier.pdf"], tmp_path)
    assert f"下单前的咨询{consulted.consult}：共{links}个链节，其中{internal}个未附内容" in text
    assert not any(note.replace(" ", "") in text for note in consulted.notes)
    done = _verify(None, str(_write(tmp_path / "c.zip", consulted.customer_zip)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        f"consult {consulted.consult} before the order: {links} links ({internal} of them withheld)"
        in done.stdout
    )


def _consult_text_edited(entries: dict[str, bytes]) -> None:
    document = _document(entries)
    (consult,) = document["consults"]
    asked = next(m for m in consult["messages"] if m["fields"]["text"] == CONSULT_ASKS)
    asked["fields"]["text"] = "这款帐篷不防水吧？"
    entries["dossier.json"] = orjson.dumps(document)


def _consult_message_removed(entries: dict[str, bytes]) -> None:
    document = _document(entries)
    (consult,) = document["consults"]
    consult["messages"] = [m for m in consult["messages"] if m["fields"]["text"] != CONSULT_AGREES]
    entries["dossier.json"] = orjson.dumps(document)


def _consult_swapped(entries: dict[str, bytes]) -> None:
    document = _document(entries)
    (consult,) = document["consults"]
    messages = consult["messages"]
    asked = next(i for i, m in enumerate(messages) if m["fields"]["text"] == CONSULT_ASKS)
    messages[asked], messages[asked + 1] = messages[asked + 1], messages[asked]
    entries["dossier.json"] = orjson.dumps(document)


def _consult_file_byte(entries: dict[str, bytes]) -> None:
    (consult,) = _document(entries)["consults"]
    name = consult["files"][0]["path"]
    body = bytearray(entries[name])
    body[len(body) // 2] ^= 0x01
    entries[name] = bytes(body)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_consult_text_edited, "message seq {asks}: its content does not give its hash (changed)"),
        (_consult_message_removed, "message seq {agrees} is in the chain but not in dossier.json"),
        (_consult_swapped, "message seq {after} stands where seq {asks} belongs in dossier.json"),
        (_consult_file_byte, "{path} is not the file message seq {picture} sent"),
    ],
    ids=["text-edited", "removed", "swapped", "file-byte"],
)
@pytest.mark.parametrize("reader", ["staff", "customer"])
def test_a_tampered_consult_fails_verify_naming_the_consult(
    consulted: Consulted,
    tmp_path: Path,
    reader: str,
    change: Callable[[dict[str, bytes]], None],
    named: str,
) -> None:
    data = consulted.staff_zip if reader == "staff" else consulted.customer_zip
    (consult,) = _document(_entries(data))["consults"]
    seqs = {m["fields"]["text"]: m["seq"] for m in consult["messages"]}
    order = [m["seq"] for m in consult["messages"]]
    expected = named.format(
        asks=seqs[CONSULT_ASKS],
        after=order[order.index(seqs[CONSULT_ASKS]) + 1],
        agrees=seqs[CONSULT_AGREES],
        picture=seqs[CONSULT_PICTURE_SAYS],
        path=consult["files"][0]["path"],
    )
    done = _verify(None, str(_write(tmp_path / "t.zip", _rewritten(data, change))))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"consult {consulted.consult}: {expected}" in done.stdout, done.stdout


@pytest.mark.sqlite_only
def test_orderchat_export_names_the_consults_it_wrote(
    shop: Shop, consulted: Consulted, tmp_path: Path
) -> None:
    out = tmp_path / "consulted.zip"
    done = run_cli(
        "export",
        "--order",
        consulted.order["number"],
        "--out",
        str(out),
        "--customer",
        "--data-dir",
        str(shop.server.data_dir),
        "--lang",
        "en",
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"\n  consult {consulted.consult} before the order: " in done.stdout, done.stdout
    assert not any(n.encode() in out.read_bytes() for n in consulted.notes)
    assert _verify(None, str(out)).returncode == 0
