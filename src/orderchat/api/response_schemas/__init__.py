"""Pydantic models of every success body the HTTP API answers, and which operation answers which.

The route functions build their bodies as plain dicts (`api/routes/`,
`services/*_fields`, `protocol/server_codec.py`); these models describe those
dicts for `/openapi.json` only and never touch a request. They are split by
area (`people`, `chat`, `orders`, `commerce`); `table.SUCCESSES` maps each
operation and status to its model.
"""

from __future__ import annotations

from orderchat.api.response_schemas.table import BINARY, CSV, NO_BODY, SUCCESSES, NoBody, models

__all__ = ["BINARY", "CSV", "NO_BODY", "SUCCESSES", "NoBody", "models"]
