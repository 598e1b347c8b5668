"""The `search` workload's part 3: one order's dossier, exported with 5,000 messages and
200 pictures in its conversation.

Against a running server, as a shop would get there: the admin puts a SKU in
the catalogue and stocks it, a salesperson opens the order (`POST
/api/orders`), uploads the pictures into its conversation with tus (small
PNGs, each different, so that none is stored as a duplicate of another) and
waits until the server has made every preview, then sends the messages over
the WebSocket, a picture every 25th, and waits for every ack. Then, timed:

- `GET /api/orders/{id}/dossier`, until the ZIP's last byte has arrived; the
  ZIP must open and hold the PDF, the JSON with every message, every picture
  and the manifest;
- `orderchat export --order NUMBER --out FILE`, the operator's command on the
  server's machine, run as a process beside the running server.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

from bench._report import Progress
from bench._seed import SeededUser
from orderchat.core.model import MessageKind
from orderchat.protocol.codec import encode_client_frame
from orderchat.protocol.frames import Hello, PostMessage

ROUTE = "/api/orders/{order_id}/dossier"
ORDER_NUMBER = "PO-2026-999"
SKU = "TNT-2P"
WINDOW = 64  # sends in flight on the connection
PREVIEW_TIMEOUT_S = 300.0
SEND_TIMEOUT_S = 600.0
CLI_TIMEOUT_S = 600.0
TUS = {"Tus-Resumable": "1.0.0"}


class ExportError(RuntimeError):
    """The order could not be set up, or its dossier is not what it should be."""


@dataclass
class Exported:
    """What part 3 measured."""

    messages: int
    pictures: int
    setup_s: float = 0.0
    http_s: float = 0.0
    http_bytes: int = 0
    cli_s: float | None = None
    cli_bytes: int = 0
    zip_entries: dict[str, int] = field(default_factory=dict)
    dossier_messages: int = 0

    def summary(self) -> dict[str, Any]:
        return dict(self.__dict__)


def route_exists(http: httpx.Client) -> bool:
    """Whether this server has the dossier route (its OpenAPI document names it)."""
    resp = http.get("/openapi.json")
    return resp.status_code == 200 and ROUTE in resp.json().get("paths", {})


def export_order(
    base_url: str,
    ws_url: str,
    data_dir: Path,
    staff: SeededUser,
    admin: SeededUser,
    messages: int,
    pictures: int,
    work: Path,
    progress: Progress,
) -> Exported:
    """Set the order up, then time its export over HTTP and with `orderchat export`."""
    result = Exported(messages, pictures)
    started = time.perf_counter()
    with _client(base_url, admin.token) as http:
        progress.set_note("export: the catalogue")
        _stock(http)
    with _client(base_url, staff.token) as http:
        progress.set_note("export: the order")
        order = _created(http.post("/api/orders", json=_order_body()), "POST /api/orders")
        media = []
        for number in range(pictures):
            progress.set_note(f"export: picture {number + 1}/{pictures}")
            media.append(_upload(http, order["conv"], number))
        progress.set_note("export: previews")
        _wait_previews(http, media)
    progress.set_note(f"export: sending {messages:,} messages")
    asyncio.run(_send(ws_url, staff.token, order["conv"], messages, media))
    result.setup_s = time.perf_counter() - started

    progress.set_note("export: GET dossier")
    target = work / "dossier-http.zip"
    with _client(base_url, staff.token, timeout=CLI_TIMEOUT_S) as http:
        clock = time.perf_counter()
        with (
            http.stream("GET", ROUTE.format(order_id=order["id"])) as resp,
            target.open("wb") as out,
        ):
            if resp.status_code != 200:
                resp.read()
                raise ExportError(f"GET dossier: {resp.status_code} {resp.text[:300]}")
            for chunk in resp.iter_bytes(1 << 20):
                out.write(chunk)
        result.http_s = time.perf_counter() - clock
    result.http_bytes = target.stat().st_size
    result.zip_entries, result.dossier_messages = _check_zip(target, messages, pictures)

    progress.set_note("export: orderchat export")
    cli_target = work / "dossier-cli.zip"
    command = [sys.executable, "-m", "orderchat", "export", "--order", ORDER_NUMBER]
    command += ["--out", str(cli_target), "--data-dir", str(data_dir), "--lang", "en"]
    clock = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise ExportError(f"orderchat export: exit {done.returncode}: {done.stderr[-500:]}")
    result.cli_s = time.perf_counter() - clock
    result.cli_bytes = cli_target.stat().st_size
    _check_zip(cli_target, messages, pictures)
    return result


def _client(base_url: str, token: str, timeout: float = 60) -> httpx.Client:
    return httpx.Client(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
        trust_env=False,
    )


def _created(resp: httpx.Response, what: str) -> dict[str, Any]:
    if resp.status_code not in (200, 201):
        raise ExportError(f"{what}: {resp.status_code} {resp.text[:300]}")
    found: dict[str, Any] = resp.json()
    return found


def _stock(http: httpx.Client) -> None:
    body = {
        "sku": SKU,
        "name_zh": "双人帐篷",
        "name_en": "Two-person tent",
        "category": "tents",
        "unit_price_cents": 39900,
        "low_stock_threshold": 0,
    }
    resp = http.post("/api/skus", json=body)
    if resp.status_code not in (201, 409):
        raise ExportError(f"POST /api/skus: {resp.status_code} {resp.text[:300]}")
    movement = {
        "sku": SKU,
        "kind": "adjustment",
        "to_location": "main",
        "quantity": 10_000,
        "reason": "bench stock count",
    }
    _created(http.post("/api/stock/movements", json=movement), "POST /api/stock/movements")


def _order_body() -> dict[str, Any]:
    return {
        "number": ORDER_NUMBER,
        "workflow": "oem",
        "items": [{"sku": SKU, "name": "双人帐篷", "quantity": 300, "unit_price_cents": 39900}],
        "address": {
            "name": "Lin Mei",
            "phone": "13800000000",
            "country": "CN",
            "region": "Zhejiang",
            "city": "Hangzhou",
            "district": "Xihu",
            "line1": "1 Wensan Road",
            "postcode": "310000",
        },
        "currency": "CNY",
        "customer": {
            "name": "Outdoor Brand Co.",
            "phone": "13900000000",
            "segment": "brand",
            "language": "zh-CN",
        },
    }


def picture(number: int) -> bytes:
    """A small PNG of its own: no two pictures have the same bytes."""
    from tests import media_samples

    return media_samples.png(160 + number % 40, 120 + number // 40)


def _upload(http: httpx.Client, conv: str, number: int) -> str:
    """One picture with tus in one PATCH; its media id."""
    data = picture(number)
    meta = {"conv": conv, "filename": f"样品照片-{number + 1:03d}.png", "filetype": "image/png"}
    encoded = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in meta.items())
    resp = http.post(
        "/api/uploads",
        headers={**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": encoded},
    )
    media_id = str(_created(resp, "POST /api/uploads")["id"])
    resp = http.patch(
        f"/api/uploads/{media_id}",
        content=data,
        headers={
            **TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": "0",
        },
    )
    if resp.status_code != 204:
        raise ExportError(f"PATCH upload {number}: {resp.status_code} {resp.text[:300]}")
    return media_id


def _wait_previews(http: httpx.Client, media: list[str]) -> None:
    """Until no picture's preview is pending any more (the server makes them in the background)."""
    deadline = time.monotonic() + PREVIEW_TIMEOUT_S
    pending = list(media)
    while pending:
        resp = http.get(f"/api/media/{pending[0]}/info")
        if resp.status_code != 200:
            raise ExportError(f"media info: {resp.status_code} {resp.text[:300]}")
        if resp.json()["preview"]["status"] != "pending":
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise ExportError(f"{len(pending)} previews still pending after {PREVIEW_TIMEOUT_S} s")
        time.sleep(0.1)


def _frames(conv: str, messages: int, media: list[str]) -> list[tuple[str, bytes]]:
    """The messages to send: text, and the pictures spread evenly (every 25th for 5,000
    messages and 200 pictures), one each."""
    step = messages / max(len(media), 1)
    at = {int((n + 1) * step) - 1: file for n, file in enumerate(media)}
    frames: list[tuple[str, bytes]] = []
    for number in range(messages):
        ref = f"dossier-{number:06d}"
        file = at.get(number)
        if file is not None:
            caption = f"第 {number} 条：样品照片"
            post = PostMessage(ref, conv, MessageKind.IMAGE, caption, (file,), (), None)
        else:
            text = f"第 {number} 条：{ORDER_NUMBER} 帐篷面料和拉链已确认，{SKU} 防水测试通过"
            post = PostMessage(ref, conv, MessageKind.TEXT, text, (), (), None)
        frames.append((ref, encode_client_frame(post)))
    return frames


async def _send(ws_url: str, token: str, conv: str, messages: int, media: list[str]) -> None:
    frames = _frames(conv, messages, media)
    async with asyncio.timeout(SEND_TIMEOUT_S):
        ws = await connect(ws_url, max_size=None, compression=None, ping_interval=None, proxy=None)
        try:
            await ws.send(encode_client_frame(Hello(token, "search-bench", None)), text=True)
            welcome = orjson.loads(await ws.recv())
            if welcome.get("op") != "welcome":
                raise ExportError(f"expected welcome, got {str(welcome)[:200]}")
            await _send_window(ws, frames)
        finally:
            await ws.close()


async def _send_window(ws: ClientConnection, frames: list[tuple[str, bytes]]) -> None:
    """Every frame, at most WINDOW unanswered; each must be acked."""
    free = asyncio.Semaphore(WINDOW)
    waiting: set[str] = set()
    failures: list[str] = []

    async def read() -> None:
        while True:
            frame = orjson.loads(await ws.recv())
            ref, op = frame.get("ref"), frame.get("op")
            if op not in ("ack", "error") or ref not in waiting:
                continue  # the sender's own copy of the message carries its ref too
            if op != "ack":
                failures.append(str(frame)[:300])
            waiting.discard(ref)
            free.release()

    reader = asyncio.create_task(read())
    try:
        for ref, frame in frames:
            await free.acquire()
            if reader.done():
                reader.result()
            waiting.add(ref)
            await ws.send(frame, text=True)
        for _ in range(WINDOW):
            await free.acquire()
    finally:
        reader.cancel()
    if failures:
        raise ExportError(f"{len(failures)} sends refused: {failures[:3]}")


def _check_zip(path: Path, messages: int, pictures: int) -> tuple[dict[str, int], int]:
    """The ZIP opens and holds the PDF, the JSON with every message, each picture, a manifest."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        document = orjson.loads(archive.read("dossier.json"))
        bad = archive.testzip()
    if bad is not None:
        raise ExportError(f"{path.name}: entry {bad} is damaged")
    entries = {
        "pdf": sum(n.endswith(".pdf") for n in names),
        "files": sum(n.startswith("files/") for n in names),
        "manifest": int("manifest.json" in names),
        "all": len(names),
    }
    held = document.get("messages", [])
    if not isinstance(held, list) or len(held) < messages:
        count = len(held) if isinstance(held, list) else "no"
        raise ExportError(f"{path.name}: {count} messages in dossier.json, expected {messages}+")
    if entries["files"] < pictures or not entries["manifest"] or not entries["pdf"]:
        raise ExportError(f"{path.name}: entries {entries}, expected {pictures} files")
    return entries, len(held)
