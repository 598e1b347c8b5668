"""Which waiting deliveries merge, and how a batch's messages join into one row."""

from __future__ import annotations

from typing import Any

from orderchat.core.notify import Channel, Occasion, merge_key
from orderchat.services.notify.planner import _merged


def test_chat_merges_per_person_conversation_channel_and_reason() -> None:
    key = merge_key("u1", "c1", Channel.PUSH, Occasion.DIRECT.value, 0)
    assert key == "u1:c1:push:direct"
    assert merge_key("u1", "c1", Channel.EMAIL, Occasion.DIRECT.value, 0) != key
    assert merge_key("u1", "c1", Channel.PUSH, Occasion.MENTION.value, 0) != key
    assert merge_key("u2", "c1", Channel.PUSH, Occasion.DIRECT.value, 0) != key


def test_what_is_told_on_its_own_never_merges() -> None:
    for occasion in (
        Occasion.URGENT,
        Occasion.ORDER_STATUS,
        Occasion.CONFIRMATION,
        Occasion.EXCEPTION,
        Occasion.PAYMENT,
    ):
        assert merge_key("u1", "c1", Channel.PUSH, occasion.value, 0) is None
    assert merge_key("u1", "c1", Channel.PUSH, Occasion.DIRECT.value, 1) is None  # a reminder
    assert merge_key("", "c1", Channel.WEBHOOK, Occasion.DIRECT.value, 0) is None


def _row(pos: int, seq: int, key: str | None) -> dict[str, Any]:
    return {
        "event_pos": pos,
        "seq": seq,
        "message_id": f"m{seq}",
        "merge_key": key,
        "merged": 1,
        "first_seq": None,
    }


def test_a_batch_keeps_one_row_per_key_moved_on_to_its_latest_message() -> None:
    rows = [_row(10, 1, "k"), _row(11, 1, None), _row(12, 2, "k"), _row(13, 3, "k")]
    kept, merges = _merged(rows)
    assert [r["merge_key"] for r in kept] == ["k", None]
    joined = kept[0]
    assert (joined["seq"], joined["message_id"], joined["event_pos"]) == (3, "m3", 13)
    assert (joined["first_seq"], joined["merged"]) == (1, 3)
    (merge,) = merges
    # A waiting row merges only messages after its own: an event planned again does nothing.
    assert (merge.key, merge.first_pos, merge.pos, merge.seq, merge.count) == ("k", 10, 13, 3, 3)


def test_rows_that_do_not_merge_pass_through_untouched() -> None:
    rows = [_row(1, 1, None), _row(2, 2, None)]
    kept, merges = _merged(rows)
    assert kept == rows and merges == []
