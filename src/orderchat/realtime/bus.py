"""The fan-out bus: how committed events reach the hub of every server process.

`MemoryBus` serves a single process: publishing hands the items straight to the
local hub, synchronously and in order, so delivery order is commit order.
A Redis implementation for several processes plugs in behind the same
`Publisher` protocol.
"""

from __future__ import annotations

from collections.abc import Sequence

from orderchat.realtime.hub import Hub
from orderchat.services.ports import Publication


class MemoryBus:
    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def publish(self, items: Sequence[Publication]) -> None:
        self._hub.dispatch(items)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
