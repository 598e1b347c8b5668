"""What has already been handed on, so that nothing is handed on twice.

The server promises each durable event once per resume (G4), but a client can
still see one twice: a message recovered over HTTP after `cursor_expired` may
also arrive live, and a server that restarts mid-replay may repeat itself.
The ledger decides, with no I/O:

- a message is new when its `seq` is above the last one handed on for its
  conversation (seqs in a conversation run 1, 2, 3 ... in order, G3);
- a message whose `seq` skips ahead of a known conversation reveals a gap,
  which the client fills over HTTP before handing the message on;
- any other durable event is new when its cursor has not been seen recently.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from orderchat.core.ids import ConversationId

# Cursors are unique per event, and a repeat can only come from the replay of a
# recent stretch, so remembering the last few thousand is enough.
RECENT_CURSORS = 4096


class DeliveryLedger:
    def __init__(self, last_seqs: Mapping[ConversationId, int] | None = None) -> None:
        self._last_seq: dict[ConversationId, int] = dict(last_seqs or {})
        self._recent: deque[str] = deque()
        self._recent_set: set[str] = set()

    def last_seqs(self) -> dict[ConversationId, int]:
        """The highest seq handed on, per conversation seen so far."""
        return dict(self._last_seq)

    def gap_before(self, conv: ConversationId, seq: int) -> int | None:
        """The last seq handed on when `seq` skips some after it, else None.

        Only a conversation with history in the ledger can have a gap: the first
        message seen of a new conversation starts wherever it starts.
        """
        last = self._last_seq.get(conv)
        if last is None or seq <= last + 1:
            return None
        return last

    def admit_message(self, conv: ConversationId, seq: int) -> bool:
        """True (and remembered) when this message has not been handed on yet."""
        if seq <= self._last_seq.get(conv, 0):
            return False
        self._last_seq[conv] = seq
        return True

    def admit_cursor(self, cursor: str) -> bool:
        """True (and remembered) when no event with this cursor was handed on recently."""
        if cursor in self._recent_set:
            return False
        self._recent.append(cursor)
        self._recent_set.add(cursor)
        if len(self._recent) > RECENT_CURSORS:
            self._recent_set.discard(self._recent.popleft())
        return True
