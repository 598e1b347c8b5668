"""A workflow says which steps need photos, and a request names its photos by upload
id: both parsed here, with no server (core only)."""

from __future__ import annotations

import pytest

from orderchat.core.errors import BadRequest
from orderchat.core.order_requests import (
    MAX_STEP_PHOTOS,
    issue_details,
    parse_photos,
    parse_status_change,
)
from orderchat.core.workflows import parse_workflow

_WORKFLOW = """
name = "studio"
initial = "shot"
[states]
shot = {{}}
done = {{}}
[[transitions]]
from = "shot"
to = "done"
{photos}
"""


@pytest.mark.parametrize(
    ("line", "takes", "needs"),
    [
        ("", False, False),
        ("photos = false", False, False),
        ("photos = true", True, True),
        ('photos = "optional"', True, False),
    ],
)
def test_a_steps_photos_flag_says_whether_it_takes_and_needs_them(
    line: str, takes: bool, needs: bool
) -> None:
    (step,) = parse_workflow(_WORKFLOW.format(photos=line)).transitions
    assert (step.photos, step.photos_required) == (takes, needs)


@pytest.mark.parametrize("value", ['"yes"', "1", '"required"', "[]"])
def test_any_other_photos_value_stops_the_workflow_with_its_place(value: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_workflow(_WORKFLOW.format(photos=f"photos = {value}"))
    assert refused.value.text.key == "workflows.photos_must_true_false_optional"
    assert "transitions[0].photos" in refused.value.message


def test_photos_are_named_by_bare_id_or_by_an_object_with_only_the_id_once() -> None:
    assert parse_photos(["up_1", {"id": "up_2"}]) == ("up_1", "up_2")
    assert parse_photos(["up_1", {"id": "up_1"}, "up_2", "up_1"]) == ("up_1", "up_2")
    change = parse_status_change({"to": "done", "photos": [{"id": "up_3"}]})
    assert change.photos == ("up_3",)
    assert issue_details("defect_found", {"description": "torn", "photos": ["up_4"]}) == {
        "description": "torn",
        "photos": ["up_4"],
    }


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("up_1", "order_requests.photos_must_list_at_most"),
        (["up_1"] * (MAX_STEP_PHOTOS + 1), "order_requests.photos_must_list_at_most"),
        ([{"blob": "b_1", "name": "a.jpg"}], "order_requests.photo_must_upload_id"),
        ([{"id": "up_1", "caption": "x"}], "order_requests.photo_must_upload_id"),
        ([""], "order_requests.photo_must_upload_id"),
        (["x" * 65], "order_requests.photo_must_upload_id"),
        ([7], "order_requests.photo_must_upload_id"),
    ],
)
def test_anything_else_is_a_bad_request_saying_what(raw: object, key: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_photos(raw)
    assert refused.value.text.key == key
