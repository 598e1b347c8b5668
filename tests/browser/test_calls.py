"""Voice and video calls between browsers (docs/calls.md): Chromium's fake camera and
microphone on each side, the server carrying only the signalling.

Each test calls between people no other test of this module calls, so a call left
over by a failed test never makes the next one busy. One server serves the module,
started with a short ring so that an unanswered call is missed within seconds; the
relay-only test has a server of its own, beside a real coturn.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bench._turn import turn_server
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.helpers import (
    Pages,
    ShopApi,
    conv_item,
    message,
    open_conv,
    send_text,
    sign_in,
    unique,
    watched_pages,
)
from tests.support import ServerProcess

pytestmark = pytest.mark.browser

RING_TIMEOUT_S = 8
# Long enough for a call to set up on a busy two-core machine; a passing run waits less.
MEDIA_TIMEOUT_MS = 30_000

# Every RTCPeerConnection the page makes, kept for the test to read its stats.
PC_PROBE = """
(() => {
  const Native = window.RTCPeerConnection;
  if (!Native) return;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      window.__pcs.push(this);
    }
  };
})();
"""

# What the page's open peer connections have received so far.
INBOUND = """async () => {
  const out = { bytes: 0, audioEnergy: 0, audioLevel: 0, peers: 0 };
  for (const pc of window.__pcs || []) {
    if (pc.connectionState === "closed") continue;
    out.peers += 1;
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type !== "inbound-rtp") return;
      out.bytes += s.bytesReceived || 0;
      if (s.kind === "audio") {
        out.audioEnergy += s.totalAudioEnergy || 0;
        out.audioLevel = Math.max(out.audioLevel, s.audioLevel || 0);
      }
    });
  }
  return out;
}"""

# The far end's picture in a tile: its size and how far it has played.
REMOTE_VIDEO = """(user) => {
  const v = document.querySelector(`.call-tile[data-remote][data-user="${user}"] video`);
  if (!v) return null;
  return { width: v.videoWidth, height: v.videoHeight, time: v.currentTime, paused: v.paused };
}"""

# The size this page's own camera sends at.
OWN_CAMERA = """() => {
  const v = document.querySelector(".call-tile[data-self] video");
  const track = v && v.srcObject && v.srcObject.getVideoTracks()[0];
  if (!track) return null;
  const s = track.getSettings();
  return { width: s.width, height: s.height };
}"""

# The original of an uploaded picture, decoded: its width and height.
PICTURE_SIZE = """async (id) => {
  const resp = await fetch(`/api/media/${encodeURIComponent(id)}`, { credentials: "same-origin" });
  if (!resp.ok) return { status: resp.status };
  const bitmap = await createImageBitmap(await resp.blob());
  return { width: bitmap.width, height: bitmap.height, type: resp.headers.get("content-type") };
}"""

DURATION = re.compile(r"^\d{2}:\d{2}$")


@pytest.fixture(scope="module")
def call_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("web-calls"),
        ("--demo", "--rate-limits", "off", "--call-ring-timeout-s", str(RING_TIMEOUT_S)),
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def call_shop(call_server: ServerProcess) -> ShopApi:
    return ShopApi(call_server)


def strict_pages(browser: Browser, server: ServerProcess) -> Iterator[Pages]:
    """Pages on `server`; a console error or a policy violation on any of them fails
    the test, as an uncaught error does."""
    for pages in watched_pages(browser, server):
        yield pages
        errors = [e for watch in pages.watches.values() for e in watch.console_errors]
        violations = [v for page in pages.watches for v in pages.watch(page).csp_violations(page)]
        assert not errors, "console errors:\n" + "\n".join(errors)
        assert not violations, "policy violations:\n" + "\n".join(violations)


@pytest.fixture
def call_pages(browser: Browser, call_server: ServerProcess) -> Iterator[Pages]:
    yield from strict_pages(browser, call_server)


def device(pages: Pages) -> Page:
    """A browser of its own, allowed the (fake) camera and microphone."""
    ctx = pages.context()
    ctx.grant_permissions(["microphone", "camera"], origin=pages.base_url)
    ctx.add_init_script(PC_PROBE)
    return pages.tab(ctx)


def staff_in(pages: Pages, username: str, conv: str) -> Page:
    page = device(pages)
    sign_in(page, username)
    open_conv(page, conv)
    return page


def call_button(page: Page, media: str) -> Locator:
    return page.get_by_test_id("conv-view").locator(f'[data-action="call-{media}"]')


def incoming(page: Page) -> Locator:
    return page.locator(".call-incoming")


def view(page: Page) -> Locator:
    return page.locator(".call-view")


def remote_tile(page: Page, user: str) -> Locator:
    return page.locator(f'.call-view .call-tile[data-remote][data-user="{user}"]')


def records(page: Page) -> Locator:
    return page.get_by_test_id("timeline").locator('[data-testid="call-record"]')


def remote_video_is(page: Page, user: str, condition: str) -> None:
    """Wait until the far end's picture in `user`'s tile meets `condition` (a JS
    expression over `r`, the tile's reading), within the media timeout."""
    page.wait_for_function(
        f"(user) => {{ const r = ({REMOTE_VIDEO})(user); return Boolean(r && ({condition})); }}",
        arg=user,
        timeout=MEDIA_TIMEOUT_MS,
        polling=200,
    )


def wait_remote_video_plays(page: Page, user: str) -> dict[str, Any]:
    """The far end's picture decodes and moves on; its last reading."""
    expect(remote_tile(page, user)).to_be_visible()
    remote_video_is(page, user, "r.width > 0 && r.time > 0")
    first: dict[str, Any] = page.evaluate(REMOTE_VIDEO, user)
    remote_video_is(page, user, f"r.time > {first['time']} + 0.5")
    last: dict[str, Any] = page.evaluate(REMOTE_VIDEO, user)
    assert not last["paused"], last
    return last


def wait_media_flows(page: Page) -> None:
    """getStats: inbound bytes grow, and the far end's voice is heard (its energy is not zero).

    The page may be between two peer connections when asked (a connection that
    dropped on a busy machine rejoins with a new one), so it is given the time a
    call has to set up to have one open.
    """
    page.wait_for_function(
        f"({INBOUND})().then((now) => now.peers >= 1)", timeout=MEDIA_TIMEOUT_MS, polling=250
    )
    before = page.evaluate(INBOUND)
    page.wait_for_function(
        f"({INBOUND})().then((now) => now.bytes > {before['bytes']} && now.audioEnergy > 0)",
        timeout=MEDIA_TIMEOUT_MS,
        polling=250,
    )


def start_call(caller: Page, media: str) -> None:
    call_button(caller, media).click()
    expect(view(caller)).to_be_visible()
    expect(view(caller)).to_have_attribute("data-media", media)


def answer(page: Page) -> None:
    ring = incoming(page)
    expect(ring).to_be_visible()
    ring.locator('[data-action="accept"]').click()
    expect(ring).to_have_count(0)
    expect(view(page)).to_be_visible()


def hang_up(page: Page) -> None:
    view(page).locator('[data-action="hangup"]').click()
    expect(view(page)).to_have_count(0)


def ringing_in_view(page: Page, user: str) -> Locator:
    """`user` shown as being rung in the call view (while others talk)."""
    return view(page).locator(f'[data-testid="call-ringing-person"][data-user="{user}"]')


def call_notes(page: Page) -> Locator:
    """The timeline's call records, as the message elements that hold them."""
    return page.get_by_test_id("timeline").locator('[data-testid="msg"][data-kind="call"]')


# --- two people ----------------------------------------------------------------------


def test_a_video_call_plays_both_ways_a_snapshot_is_sent_and_hanging_up_records_it(
    call_pages: Pages, call_shop: ShopApi
) -> None:
    conv = call_shop.direct("amy", "sam")
    amy_id, sam_id = call_shop.user_id("amy"), call_shop.user_id("sam")
    amy = staff_in(call_pages, "amy", conv)
    sam = staff_in(call_pages, "sam", conv)

    start_call(amy, "video")
    expect(view(amy).get_by_test_id("call-status")).to_contain_text(call_shop.display_name("sam"))
    ring = incoming(sam)
    expect(ring).to_be_visible()
    expect(ring).to_contain_text(call_shop.display_name("amy"))
    expect(ring).to_have_attribute("data-media", "video")
    answer(sam)

    # Each sees the other's moving picture, hears them, and the bytes keep coming.
    wait_remote_video_plays(amy, sam_id)
    wait_remote_video_plays(sam, amy_id)
    for page in (amy, sam):
        wait_media_flows(page)
    # The connection and its quality show on the far end's tile.
    for page, other in ((amy, sam_id), (sam, amy_id)):
        tile = remote_tile(page, other)
        expect(tile).to_have_attribute("data-conn", "connected", timeout=MEDIA_TIMEOUT_MS)
        quality = tile.locator(".call-quality")
        expect(quality).to_have_attribute(
            "data-quality", re.compile("^(good|fair|poor)$"), timeout=MEDIA_TIMEOUT_MS
        )
        expect(quality).to_have_attribute("title", re.compile(r"\d+ ?(毫秒|ms)"))
        assert int(tile.get_attribute("data-bytes-in") or 0) > 0

    # Muting shows on the other side.
    view(sam).locator('[data-action="mute"]').click()
    expect(remote_tile(amy, sam_id)).to_have_attribute("data-audio", "off")
    view(sam).locator('[data-action="mute"]').click()
    expect(remote_tile(amy, sam_id)).to_have_attribute("data-audio", "on")

    # A snapshot of Sam's picture, taken by Amy, reaches Sam at his camera's full size.
    camera = sam.evaluate(OWN_CAMERA)
    assert camera and camera["width"] > 0, camera
    remote_video_is(
        amy, sam_id, f"r.width === {camera['width']} && r.height === {camera['height']}"
    )
    view(amy).locator('[data-action="snapshot"]').click()
    picture = (
        sam.get_by_test_id("timeline")
        .locator(f'[data-testid="msg"][data-kind="image"][data-sender="{amy_id}"]')
        .get_by_test_id("msg-image")
    )
    expect(picture).to_have_count(1, timeout=MEDIA_TIMEOUT_MS)
    media_id = picture.get_attribute("data-media")
    size = sam.evaluate(PICTURE_SIZE, media_id)
    assert (size.get("width"), size.get("height")) == (camera["width"], camera["height"]), size
    # The call went on meanwhile.
    expect(view(amy)).to_be_visible()
    expect(view(sam)).to_be_visible()

    amy.wait_for_timeout(1200)  # a call of a couple of seconds: its duration is not 00:00
    hang_up(amy)
    expect(view(sam)).to_have_count(0)
    for page in (amy, sam):
        record = records(page)
        expect(record).to_have_count(1)
        expect(record).to_have_attribute("data-outcome", "answered")
        expect(record).to_have_attribute("data-media", "video")
        duration = record.get_by_test_id("call-duration")
        expect(duration).to_have_attribute("data-duration", DURATION)
        assert (duration.get_attribute("data-duration") or "") >= "00:02"
        assert int(record.get_attribute("data-duration-ms") or 0) >= 2000
        joined = record.get_by_test_id("call-joined")
        expect(joined).to_contain_text(call_shop.display_name("amy"))
        expect(joined).to_contain_text(call_shop.display_name("sam"))


def test_a_declined_call_and_an_unanswered_one_are_recorded(
    call_pages: Pages, call_shop: ShopApi
) -> None:
    conv = call_shop.direct("pat", "fay")
    pat = staff_in(call_pages, "pat", conv)
    fay = staff_in(call_pages, "fay", conv)

    start_call(pat, "audio")
    ring = incoming(fay)
    expect(ring).to_be_visible()
    expect(ring).to_have_attribute("data-media", "audio")
    ring.locator('[data-action="decline"]').click()
    expect(ring).to_have_count(0)
    expect(view(pat)).to_have_count(0)
    expect(pat.get_by_test_id("toast").filter(has_text="对方拒绝了通话")).to_be_visible()
    for page in (pat, fay):
        expect(records(page)).to_have_count(1)
        expect(records(page).first).to_have_attribute("data-outcome", "declined")
        expect(records(page).first.get_by_test_id("call-duration")).to_have_count(0)

    # Nobody answers: the ring stops by itself and the call is missed.
    start_call(pat, "video")
    expect(incoming(fay)).to_be_visible()
    timeout = (RING_TIMEOUT_S + 12) * 1000
    expect(incoming(fay)).to_have_count(0, timeout=timeout)
    expect(view(pat)).to_have_count(0, timeout=timeout)
    for page in (pat, fay):
        expect(records(page)).to_have_count(2)
        missed = records(page).nth(1)
        expect(missed).to_have_attribute("data-outcome", "missed")
        expect(missed).to_have_attribute("data-media", "video")
        expect(missed.get_by_test_id("call-missed")).to_contain_text(call_shop.display_name("fay"))
        # The list words the record in the reader's language too.
        expect(conv_item(page, conv)).to_contain_text("[通话] 视频通话 · 未接听")


def test_answering_on_one_device_stops_the_ringing_on_the_other(
    call_pages: Pages, call_shop: ShopApi
) -> None:
    conv = call_shop.direct("leo", "quinn")
    leo_id, quinn_id = call_shop.user_id("leo"), call_shop.user_id("quinn")
    leo = staff_in(call_pages, "leo", conv)
    phone = staff_in(call_pages, "quinn", conv)
    desk = staff_in(call_pages, "quinn", conv)

    start_call(leo, "audio")
    expect(incoming(phone)).to_be_visible()
    expect(incoming(desk)).to_be_visible()
    answer(desk)
    expect(incoming(phone)).to_have_count(0)
    expect(view(phone)).to_have_count(0)
    # A voice call: the far end is heard, and its tile shows no picture.
    wait_media_flows(desk)
    expect(remote_tile(desk, leo_id)).to_have_attribute(
        "data-conn", "connected", timeout=MEDIA_TIMEOUT_MS
    )
    expect(remote_tile(leo, quinn_id)).to_have_attribute("data-video", "off")

    # Quinn is in a call: someone else calling her is told she is busy at once.
    other_conv = call_shop.direct("fay", "quinn")
    fay = staff_in(call_pages, "fay", other_conv)
    call_button(fay, "audio").click()
    expect(view(fay)).to_have_count(0)
    expect(fay.get_by_test_id("toast").filter(has_text="对方正在通话中")).to_be_visible()
    expect(records(fay)).to_have_count(1)
    expect(records(fay)).to_have_attribute("data-outcome", "busy")
    expect(incoming(desk)).to_have_count(0)
    expect(view(desk)).to_be_visible()

    # The camera turned on in a voice call: a new offer, and the picture reaches Leo.
    view(desk).locator('[data-action="camera"]').click()
    wait_remote_video_plays(leo, quinn_id)
    expect(remote_tile(leo, quinn_id)).to_have_attribute("data-video", "on")
    # Sharing the screen replaces the picture and says so.
    view(desk).locator('[data-action="screen"]').click()
    expect(remote_tile(leo, quinn_id)).to_have_attribute("data-screen", "on")
    view(desk).locator('[data-action="screen"]').click()
    expect(remote_tile(leo, quinn_id)).to_have_attribute("data-screen", "off")
    view(desk).locator('[data-action="camera"]').click()
    expect(remote_tile(leo, quinn_id)).to_have_attribute("data-video", "off")

    hang_up(desk)
    expect(view(leo)).to_have_count(0)
    for page in (leo, phone, desk):
        expect(records(page)).to_have_count(1)
        expect(records(page)).to_have_attribute("data-outcome", "answered")


def test_three_people_each_see_the_two_others(call_pages: Pages, call_shop: ShopApi) -> None:
    conv = call_shop.channel("boss", "三方通话 three-way", ["lily", "pete"])
    names = ("boss", "lily", "pete")
    ids = {name: call_shop.user_id(name) for name in names}
    pages = {name: staff_in(call_pages, name, conv) for name in names}

    start_call(pages["boss"], "video")
    answer(pages["lily"])
    answer(pages["pete"])
    for name, page in pages.items():
        expect(page.locator(".call-view .call-tile[data-remote]")).to_have_count(2)
        for other in names:
            if other != name:
                wait_remote_video_plays(page, ids[other])

    hang_up(pages["pete"])
    # Two are still talking; the one who left is gone from their views.
    for name in ("boss", "lily"):
        expect(pages[name].locator(".call-view .call-tile[data-remote]")).to_have_count(1)
    hang_up(pages["lily"])
    expect(view(pages["boss"])).to_have_count(0)
    for page in pages.values():
        expect(records(page)).to_have_count(1)
        record = records(page)
        expect(record).to_have_attribute("data-outcome", "answered")
        for name in names:
            expect(record.get_by_test_id("call-joined")).to_contain_text(
                call_shop.display_name(name)
            )


def test_a_third_person_is_added_to_a_running_call(call_pages: Pages, call_shop: ShopApi) -> None:
    conv = call_shop.channel("pete", "加人通话 add people", ["quinn"])
    names = ("pete", "quinn", "wes")
    ids = {name: call_shop.user_id(name) for name in names}
    pete = staff_in(call_pages, "pete", conv)
    quinn = staff_in(call_pages, "quinn", conv)
    # Not in the conversation yet: signed in, the call rings him wherever he is.
    wes = device(call_pages)
    sign_in(wes, "wes")

    start_call(pete, "video")
    answer(quinn)
    wait_remote_video_plays(pete, ids["quinn"])
    add = view(quinn).locator('[data-action="add"]')
    expect(add).to_be_visible()

    # Everyone in the conversation is in the call: nobody to add.
    view(pete).locator('[data-action="add"]').click()
    dialog = pete.get_by_test_id("call-add-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("call-add-person")).to_have_count(0)
    expect(dialog.get_by_test_id("dialog-submit")).to_be_disabled()
    dialog.get_by_test_id("dialog-cancel").click()
    expect(dialog).to_have_count(0)

    # Wes joins the conversation meanwhile: he is offered, with his name.
    members = f"/api/conversations/{conv}/members"
    call_shop.call("pete", "POST", members, {"members": [ids["wes"]]})
    view(pete).locator('[data-action="add"]').click()
    person = dialog.get_by_test_id("call-add-person")
    expect(person).to_have_count(1)
    expect(person).to_have_attribute("data-user", ids["wes"])
    expect(person).to_contain_text(call_shop.display_name("wes"))
    person.click()
    expect(person.locator("input")).to_be_checked()
    # Taken out again before the ring: the server's refusal shows in the dialog.
    call_shop.call("pete", "DELETE", f"{members}/{ids['wes']}")
    dialog.get_by_test_id("dialog-submit").click()
    refusal = dialog.get_by_test_id("dialog-error")
    expect(refusal).to_be_visible()
    expect(refusal).to_contain_text("未能邀请")
    expect(refusal).to_contain_text(
        "只能呼叫本会话的成员"
    )  # the server's reason, in the page's language
    expect(incoming(wes)).to_have_count(0)
    # Back in the conversation: the ring goes out, and the dialog closes.
    call_shop.call("pete", "POST", members, {"members": [ids["wes"]]})
    dialog.get_by_test_id("dialog-submit").click()
    expect(dialog).to_have_count(0)

    # Both in the call see him being rung; he accepts, and all three see the two others.
    ring = incoming(wes)
    expect(ring).to_be_visible()
    expect(ring).to_contain_text(call_shop.display_name("pete"))
    for page in (pete, quinn):
        expect(ringing_in_view(page, ids["wes"])).to_be_visible()
        expect(ringing_in_view(page, ids["wes"])).to_contain_text(call_shop.display_name("wes"))
    answer(wes)
    pages = {"pete": pete, "quinn": quinn, "wes": wes}
    for name, page in pages.items():
        expect(view(page).get_by_test_id("call-ringing")).to_be_hidden()
        expect(page.locator(".call-view .call-tile[data-remote]")).to_have_count(2)
        for other in names:
            if other != name:
                wait_remote_video_plays(page, ids[other])

    # Someone who left may be rung back in: offered again, marked as having left.
    hang_up(quinn)
    expect(pete.locator(".call-view .call-tile[data-remote]")).to_have_count(1)
    view(pete).locator('[data-action="add"]').click()
    expect(person).to_have_count(1)
    expect(person).to_have_attribute("data-user", ids["quinn"])
    expect(person).to_have_attribute("data-was", "left")
    dialog.get_by_test_id("dialog-cancel").click()
    expect(dialog).to_have_count(0)
    hang_up(wes)
    expect(view(pete)).to_have_count(0)
    record = records(pete)
    expect(record).to_have_count(1)
    expect(record).to_have_attribute("data-outcome", "answered")
    for name in names:
        expect(record.get_by_test_id("call-joined")).to_contain_text(call_shop.display_name(name))


# --- the customer's page --------------------------------------------------------------


def test_a_customer_calls_the_shop_from_the_order_page(
    call_pages: Pages, call_shop: ShopApi
) -> None:
    order = call_shop.retail_order("amy", customer="通话测试客户")
    link = call_shop.invite(order["id"], by="amy")
    customer = device(call_pages)
    customer.goto(link)
    expect(customer.get_by_test_id("customer-page")).to_be_visible()
    expect(customer.get_by_test_id("connection")).to_have_attribute("data-state", "online")
    amy = device(call_pages)
    sign_in(amy, "amy")
    open_conv(amy, order["conv"])

    customer.locator('.c-header [data-action="call-audio"]').click()
    expect(view(customer)).to_be_visible()
    answer(amy)
    wait_media_flows(amy)
    wait_media_flows(customer)
    amy.wait_for_timeout(1000)
    hang_up(customer)
    expect(view(amy)).to_have_count(0)
    for page in (customer, amy):
        record = records(page)
        expect(record).to_have_count(1)
        expect(record).to_have_attribute("data-outcome", "answered")
        expect(record).to_have_attribute("data-media", "audio")
        expect(record.get_by_test_id("call-duration")).to_have_attribute("data-duration", DURATION)


def test_a_staff_only_call_from_an_order_rings_no_customer(
    call_pages: Pages, call_shop: ShopApi
) -> None:
    order = call_shop.retail_order("amy", customer="仅员工通话客户")
    link = call_shop.invite(order["id"], by="amy")
    customer = device(call_pages)
    customer.goto(link)
    expect(customer.get_by_test_id("customer-page")).to_be_visible()
    expect(customer.get_by_test_id("connection")).to_have_attribute("data-state", "online")
    amy = staff_in(call_pages, "amy", order["conv"])
    lily = staff_in(call_pages, "lily", order["conv"])

    # The customer's buttons just call the shop; the staff's ask whom to call.
    customer_call = customer.locator('.c-header [data-action="call-audio"]')
    expect(customer_call).to_be_visible()
    expect(customer_call).not_to_have_attribute("aria-haspopup", "menu")
    button = call_button(amy, "audio")
    expect(button).to_have_attribute("aria-haspopup", "menu")
    button.click()
    menu = amy.get_by_test_id("call-audience-menu")
    expect(menu).to_be_visible()
    expect(menu.get_by_role("menuitem")).to_have_count(2)
    expect(menu.get_by_test_id("call-audience-everyone")).to_be_focused()
    amy.keyboard.press("Escape")
    expect(menu).to_have_count(0)
    expect(button).to_be_focused()
    button.click()
    menu.get_by_test_id("call-audience-staff").click()
    expect(menu).to_have_count(0)
    expect(view(amy)).to_be_visible()
    expect(view(amy)).to_have_attribute("data-internal", "true")
    expect(view(amy).get_by_test_id("call-internal")).to_be_visible()

    # Staff ring, and are told it is staff only; the customer's page stays quiet.
    ring = incoming(lily)
    expect(ring).to_be_visible()
    expect(ring).to_have_attribute("data-internal", "true")
    expect(ring.get_by_test_id("call-internal")).to_be_visible()
    expect(incoming(customer)).to_have_count(0)
    hang_up(amy)  # before anyone answered: cancelled
    expect(incoming(lily)).to_have_count(0)

    # The record is a staff-only note for the staff.
    for page in (amy, lily):
        expect(records(page)).to_have_count(1)
        expect(records(page)).to_have_attribute("data-outcome", "cancelled")
        note = call_notes(page)
        expect(note).to_have_class(re.compile(r"\bmsg-internal\b"))
        expect(note.locator(".badge-internal")).to_be_visible()
    # A message sent after the call reaches the customer; the record before it never did.
    after = unique("通话之后")
    send_text(amy, after)
    expect(message(customer, after)).to_have_count(1)
    expect(records(customer)).to_have_count(0)
    expect(incoming(customer)).to_have_count(0)
    expect(view(customer)).to_have_count(0)


# --- devices --------------------------------------------------------------------------

NO_DEVICES = """
(() => {
  const refuse = (name) => () => Promise.reject(new DOMException("test: " + name, name));
  navigator.mediaDevices.getUserMedia = refuse(window.__refuse || "NotFoundError");
})();
"""


@pytest.mark.parametrize(
    ("error", "reason"), [("NotFoundError", "micMissing"), ("NotAllowedError", "micDenied")]
)
def test_a_missing_or_refused_microphone_is_explained(
    call_pages: Pages, call_shop: ShopApi, error: str, reason: str
) -> None:
    conv = call_shop.direct("amy", "pete")
    ctx = call_pages.context()
    ctx.add_init_script(f"window.__refuse = {error!r};")
    ctx.add_init_script(NO_DEVICES)
    page = call_pages.tab(ctx)
    sign_in(page, "amy")
    open_conv(page, conv)
    call_button(page, "audio").click()
    message = page.get_by_test_id("call-error")
    expect(message).to_be_visible()
    expect(page.locator(f'dialog.call-error-dialog[data-reason="{reason}"]')).to_have_count(1)
    expect(message).to_contain_text("麦克风")
    expect(view(page)).to_have_count(0)
    page.get_by_test_id("dialog-cancel").click()
    # Nothing rang anywhere: no call was started, so no record either.
    expect(records(page)).to_have_count(0)


# --- coming back ------------------------------------------------------------------------

# The ICE username fragment of every open peer connection's local description.
UFRAGS = """() => (window.__pcs || [])
  .filter((pc) => pc.connectionState !== "closed" && pc.localDescription)
  .map((pc) => (pc.localDescription.sdp.match(/a=ice-ufrag:(\\S+)/) || [])[1] || "")"""


def test_a_dropped_connection_rejoins_the_call_and_restarts_ice(
    call_pages: Pages, call_shop: ShopApi
) -> None:
    conv = call_shop.direct("wes", "pat")
    wes_id, pat_id = call_shop.user_id("wes"), call_shop.user_id("pat")
    wes = staff_in(call_pages, "wes", conv)
    pat = staff_in(call_pages, "pat", conv)
    start_call(wes, "video")
    answer(pat)
    wait_remote_video_plays(wes, pat_id)
    wait_remote_video_plays(pat, wes_id)
    before = wes.evaluate(UFRAGS)
    assert len(before) == 1 and before[0], before

    wes.context.set_offline(True)
    expect(wes.get_by_test_id("connection")).not_to_have_attribute("data-state", "online")
    expect(view(wes).get_by_test_id("call-status")).not_to_be_empty()
    wes.context.set_offline(False)
    expect(wes.get_by_test_id("connection")).to_have_attribute("data-state", "online")

    # Back in the call from the new connection, with fresh ICE credentials.
    wes.wait_for_function(
        f"() => ({UFRAGS})().some((u) => u && u !== {before[0]!r})",
        timeout=MEDIA_TIMEOUT_MS,
        polling=200,
    )
    expect(view(wes).get_by_test_id("call-status")).to_be_empty()
    expect(remote_tile(pat, wes_id)).to_have_attribute(
        "data-conn", "connected", timeout=MEDIA_TIMEOUT_MS
    )
    wait_remote_video_plays(pat, wes_id)
    wait_remote_video_plays(wes, pat_id)
    wait_media_flows(wes)
    hang_up(pat)
    expect(view(wes)).to_have_count(0)
    for page in (wes, pat):
        expect(records(page)).to_have_count(1)
        expect(records(page)).to_have_attribute("data-outcome", "answered")


def test_a_reloaded_page_is_offered_to_rejoin_the_call(
    call_pages: Pages, call_shop: ShopApi
) -> None:
    conv = call_shop.direct("sam", "leo")
    sam_id, leo_id = call_shop.user_id("sam"), call_shop.user_id("leo")
    sam = staff_in(call_pages, "sam", conv)
    leo = staff_in(call_pages, "leo", conv)
    start_call(sam, "video")
    answer(leo)
    wait_remote_video_plays(sam, leo_id)

    leo.reload()
    prompt = leo.locator(".call-rejoin")
    expect(prompt).to_be_visible()
    expect(remote_tile(sam, leo_id)).to_have_attribute("data-conn", "away")
    prompt.locator('[data-action="rejoin"]').click()
    expect(prompt).to_have_count(0)
    expect(view(leo)).to_be_visible()
    wait_remote_video_plays(leo, sam_id)
    wait_remote_video_plays(sam, leo_id)
    hang_up(sam)
    expect(view(leo)).to_have_count(0)


# --- relay only, through a real coturn ---------------------------------------------------

TURN_SECRET = "browser-relay-secret"

# Each open peer connection: the ICE policy it was made with, and the types of the
# candidates its selected pair uses.
SELECTED_PATHS = """async () => {
  const out = [];
  for (const pc of window.__pcs || []) {
    if (pc.connectionState === "closed") continue;
    const report = await pc.getStats();
    const byId = new Map();
    let pairId = null;
    report.forEach((s) => {
      byId.set(s.id, s);
      if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    });
    const pair = pairId ? byId.get(pairId) : null;
    const local = pair ? byId.get(pair.localCandidateId) : null;
    const remote = pair ? byId.get(pair.remoteCandidateId) : null;
    const sdp = (pc.localDescription && pc.localDescription.sdp) || "";
    out.push({
      policy: pc.getConfiguration().iceTransportPolicy,
      pair: pair ? pair.state : null,
      local: local ? local.candidateType : null,
      remote: remote ? remote.candidateType : null,
      candidates: sdp.split(/\\r?\\n/).filter((l) => l.startsWith("a=candidate:")),
    });
  }
  return out;
}"""


@pytest.fixture
def relay_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server that hands out credentials for a coturn on loopback and allows only
    relayed media (`--call-relay-only`)."""
    with turn_server(tmp_path / "turn", TURN_SECRET) as turn:
        proc = ServerProcess(
            tmp_path / "server",
            ("--demo", "--rate-limits", "off", "--turn-url", turn.url, "--call-relay-only"),
            env={"ORDERCHAT_TURN_SECRET": TURN_SECRET},
        )
        proc.start()
        try:
            yield proc
        finally:
            proc.stop()


@pytest.fixture
def relay_pages(browser: Browser, relay_server: ServerProcess) -> Iterator[Pages]:
    yield from strict_pages(browser, relay_server)


def test_a_relay_only_call_goes_through_turn(
    relay_pages: Pages, relay_server: ServerProcess
) -> None:
    shop = ShopApi(relay_server)
    conv = shop.direct("amy", "sam")
    amy_id, sam_id = shop.user_id("amy"), shop.user_id("sam")
    amy = staff_in(relay_pages, "amy", conv)
    sam = staff_in(relay_pages, "sam", conv)

    start_call(amy, "video")
    answer(sam)
    wait_remote_video_plays(amy, sam_id)
    wait_remote_video_plays(sam, amy_id)
    for page in (amy, sam):
        wait_media_flows(page)
        paths: list[dict[str, Any]] = page.evaluate(SELECTED_PATHS)
        assert len(paths) == 1, paths
        path = paths[0]
        # The page made its connection with the policy the server's answer gave …
        assert path["policy"] == "relay", path
        # … offered only relayed addresses, and talks through coturn.
        assert path["candidates"], path
        assert all(" typ relay " in c for c in path["candidates"]), path
        assert (path["pair"], path["local"], path["remote"]) == ("succeeded", "relay", "relay"), (
            path
        )

    hang_up(amy)
    expect(view(sam)).to_have_count(0)
