"""The workflows this server runs: the built-in ones, plus a shop's own TOML files.

A shop drops `NAME.toml` into `DATA_DIR/workflows/`; a file that does not
parse stops the server at start-up with the reason, rather than failing later
in the middle of an order.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

from orderchat.core.errors import BadRequest, NotFound
from orderchat.core.texts import say
from orderchat.core.workflows import Workflow, parse_workflow

logger = logging.getLogger(__name__)

BUILT_IN = ("retail", "oem")


class Workflows:
    def __init__(self, workflows: dict[str, Workflow]) -> None:
        self._by_name = workflows

    @classmethod
    def load(cls, custom_dir: Path | None = None) -> Workflows:
        found: dict[str, Workflow] = {}
        package = resources.files("orderchat.workflows")
        for name in BUILT_IN:
            found[name] = parse_workflow(package.joinpath(f"{name}.toml").read_text("utf-8"))
        if custom_dir is not None and custom_dir.is_dir():
            for path in sorted(custom_dir.glob("*.toml")):
                try:
                    workflow = parse_workflow(path.read_text("utf-8"))
                except BadRequest as exc:
                    raise SystemExit(f"workflow {path}: {exc.message}") from exc
                found[workflow.name] = workflow
                logger.info("loaded workflow %s from %s", workflow.name, path)
        return cls(found)

    def get(self, name: str) -> Workflow:
        try:
            return self._by_name[name]
        except KeyError:
            raise NotFound(
                say("workflows.no_workflow_known", name=name, known=sorted(self._by_name))
            ) from None

    def all(self) -> list[Workflow]:
        return list(self._by_name.values())
