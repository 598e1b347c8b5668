"""How long to wait before reconnecting.

Exponential, so a server that is down is not hammered; capped, so a client
comes back soon after the server does; jittered, so that a thousand clients
dropped by one restart do not all return in the same instant.
"""

from __future__ import annotations

import random


def backoff_delay_s(
    attempt: int, initial_s: float, cap_s: float, rng: random.Random | None = None
) -> float:
    """The wait before reconnect attempt `attempt` (0 for the first after a drop).

    "Equal jitter": half of the exponential step is fixed and half random, so
    the wait never collapses to zero yet clients spread out.
    """
    step = min(cap_s, initial_s * 2.0 ** min(attempt, 32))
    return step / 2 + (rng or random).uniform(0, step / 2)
