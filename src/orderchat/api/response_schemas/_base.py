"""What every response model shares: no undeclared keys, and keys the server may leave out.

A body model lists every key the server writes. `extra="forbid"` makes the
schema say `additionalProperties: false`, so a key the server starts sending
without the model knowing fails the fuzzer's schema check; the few objects
whose keys genuinely vary say so where they are declared.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    """A JSON object with exactly the declared keys."""

    model_config = ConfigDict(extra="forbid")


def _without_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omitted() -> Any:
    """A key the server leaves out (rather than sending null) when it has no value.

    Not required, and not nullable: the schema states the key's type only.
    """
    return Field(default=None, json_schema_extra=_without_default)


# Text in each language a workflow or digest carries ({"zh-CN": …, "en": …}).
# The languages come from the workflow files, so the keys are not fixed here.
Texts = dict[str, str]
