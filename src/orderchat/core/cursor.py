"""Resume cursors: opaque to clients, a stream position to the server.

Every durable event gets a position in one stream, assigned in the transaction
that stores it; positions become visible in increasing order because the
counter row is locked until commit. A cursor names the position *after* the
last event a client processed::

    events:   [41] [42] [43] [44]
                         ^ cursor "v1.42": the client has 42, wants 43 onward

Parsing needs no I/O. The version prefix lets the format change later without
mistaking an old cursor for a new one.
"""

from __future__ import annotations

from orderchat.core.errors import CursorExpired
from orderchat.core.texts import say

_PREFIX = "v1."


def encode_cursor(position: int) -> str:
    return f"{_PREFIX}{position}"


def decode_cursor(cursor: str) -> int:
    """Return the stream position a cursor names.

    Raises:
        CursorExpired: the cursor is not one this server could have issued; the
            client must reload and start again with no cursor.
    """
    if not cursor.startswith(_PREFIX):
        raise CursorExpired(say("cursor.unknown_cursor_format_reload_reconnect"))
    digits = cursor[len(_PREFIX) :]
    if not digits.isdigit() or len(digits) > 18:
        raise CursorExpired(say("cursor.malformed_cursor_reload_reconnect_without"))
    return int(digits)
