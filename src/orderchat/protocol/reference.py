"""The frame reference of docs/protocol.md, rendered from the frame classes themselves.

`scripts/protocol_docs.py` writes it between two marker lines of the document,
and a unit test fails when the document's copy differs, so the docs cannot
drift from the definitions.
"""

from __future__ import annotations

import dataclasses
import inspect

from orderchat.protocol import events
from orderchat.protocol.events import OP_OF, ServerOp
from orderchat.protocol.frames import CLIENT_OP_OF
from orderchat.protocol.server_codec import DURABLE_OPS

BEGIN_MARK = "<!-- frame reference: generated from src/orderchat/protocol; do not edit -->"
END_MARK = "<!-- end of frame reference -->"

# How a value class is spelt on the wire where it appears inside a frame.
_NESTED = ("User", "Message", "Conversation")


def _summary(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    return " ".join(doc.split("\n\n")[0].split())


def _field_rows(cls: type, skip: str = "") -> list[str]:
    rows = []
    for field in dataclasses.fields(cls):
        if field.name == skip:
            continue
        has_default = field.default is not dataclasses.MISSING
        presence = f"optional, default `{field.default!r}`" if has_default else "required"
        spelt = str(field.type).replace("|", "\\|")  # a bare | would end the table cell
        rows.append(f"| `{field.name}` | `{spelt}` | {presence} |")
    return rows


def _section(op: str, cls: type, durable: bool = False) -> list[str]:
    title = f"#### `{op}` — {cls.__name__}" + (" (durable)" if durable else "")
    lines = [title, "", _summary(cls), ""]
    # A durable event's cursor is written once for all of them, below.
    rows = _field_rows(cls, skip="cursor" if durable else "")
    if cls.__name__ == "MessageReceived":
        rows = ["| *every field of a Message* | | flattened into the frame |"]
    if durable:
        rows.append("| `cursor` | `str` | required: the stream position after this event |")
    if rows:
        lines += ["| field | type | presence |", "|---|---|---|", *rows, ""]
    else:
        lines += ["No fields besides `op`.", ""]
    return lines


def render() -> str:
    """The reference section, marker lines included."""
    lines = [BEGIN_MARK, "", "### Client frames", ""]
    lines += ["What each client field accepts, and its default when left out, is in §7.", ""]
    for client_cls, client_op in CLIENT_OP_OF.items():
        lines += _section(client_op.value, client_cls)
    lines += ["### Server frames", ""]
    for server_cls, server_op in OP_OF.items():
        lines += _section(server_op.value, server_cls, durable=server_op in DURABLE_OPS)
    lines += ["### Values inside frames", ""]
    for name in _NESTED:
        value_cls = getattr(events, name)
        lines += [f"#### {name}", "", _summary(value_cls), ""]
        lines += ["| field | type | presence |", "|---|---|---|", *_field_rows(value_cls), ""]
    durable = ", ".join(f"`{op.value}`" for op in ServerOp if op in DURABLE_OPS)
    lines += [f"Durable ops: {durable}.", "", END_MARK]
    return "\n".join(lines)


def replace_in(document: str) -> str:
    """`document` with its reference section replaced by a fresh rendering.

    Raises:
        ValueError: the document lacks the marker lines.
    """
    start = document.index(BEGIN_MARK)
    end = document.index(END_MARK) + len(END_MARK)
    return document[:start] + render() + document[end:]
