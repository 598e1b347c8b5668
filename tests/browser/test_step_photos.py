"""A step marked "with photos" in the browser: the warehouse cannot mark a parcel
packed without a photo, and the photo it takes shows in that step's message on the
customer's page, served to the customer like any picture they may see."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import FilePayload, expect

from tests.browser.helpers import Pages, ShopApi, open_conv, sign_in, unique
from tests.media_samples import jpeg

pytestmark = pytest.mark.browser

PACKED_TEXT = "您的包裹已打包完成"


def test_a_packing_photo_reaches_the_customer_in_the_steps_message(
    pages: Pages, shop: ShopApi
) -> None:
    order = shop.retail_order("amy", customer="拍照测试客户")
    path = f"/api/orders/{order['id']}/status"
    shop.call("amy", "POST", path, {"to": "confirmed"})
    shop.call("wes", "POST", path, {"to": "picking"})
    link = shop.invite(order["id"], by="amy")

    customer = pages.page()
    customer.goto(link)
    expect(customer.get_by_test_id("order-status")).to_have_attribute("data-status", "picking")

    wes = pages.page()
    sign_in(wes, "wes")
    open_conv(wes, order["conv"])
    panel = wes.get_by_test_id("order-panel")
    status = panel.get_by_test_id("order-status")
    expect(status).to_have_attribute("data-status", "picking")
    panel.locator('[data-testid="action-transition"][data-to="packed"]').click()
    dialog = wes.get_by_test_id("dialog")
    picker = dialog.locator('input[type="file"][name="photos"]')
    expect(picker).to_be_visible()
    expect(picker).to_have_attribute("accept", "image/*")

    # Without a photo the dialog says what is missing and the order stays where it was.
    dialog.get_by_test_id("dialog-submit").click()
    expect(dialog.get_by_test_id("dialog-error")).to_be_visible()
    expect(dialog).to_be_visible()
    expect(status).to_have_attribute("data-status", "picking")

    note = unique("两箱 two boxes")
    photo: FilePayload = {"name": "parcel.jpg", "mimeType": "image/jpeg", "buffer": jpeg(160, 120)}
    picker.set_input_files(files=[photo])
    dialog.locator('textarea[name="note"]').fill(note)
    dialog.get_by_test_id("dialog-submit").click()
    expect(dialog).to_be_hidden()
    expect(status).to_have_attribute("data-status", "packed")

    step = customer.get_by_test_id("timeline").get_by_test_id("msg").filter(has_text=PACKED_TEXT)
    expect(step).to_have_count(1)
    expect(step).to_contain_text(note)
    image = step.get_by_test_id("event-photos").get_by_test_id("msg-image")
    expect(image).to_have_count(1)
    media = image.get_attribute("data-media")
    assert media and re.fullmatch(r"[A-Za-z0-9_-]+", media), media
    # The customer's browser loaded the picture: the server let them have it. Waited
    # for: the picture switches to its preview when that is ready, and loads again.
    customer.wait_for_function(
        "media => { const i = document.querySelector("
        '`[data-testid=timeline] img[data-testid=msg-image][data-media="${media}"]`);'
        " return !!i && i.complete && i.naturalWidth > 0; }",
        arg=media,
        polling=100,
    )
    # Staff see the same photo in that step's message in their own timeline.
    staff_step = wes.get_by_test_id("timeline").get_by_test_id("msg").filter(has_text=note)
    expect(staff_step.locator(f'[data-media="{media}"]')).to_have_count(1)
