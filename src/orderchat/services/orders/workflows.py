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
# Beside the workflows, and not one of them (services/notify/policy.py).
NOTIFY_POLICY_FILE = "notify.toml"
# The consult rules sit there too (services/consults/rules_file.py).
NOT_WORKFLOWS = frozenset({NOTIFY_POLICY_FILE, "consults.toml"})


class Workflows:
    def __init__(
        self, workflows: dict[str, Workflow], sources: dict[str, str] | None = None
    ) -> None:
        self._by_name = workflows
        self._sources = sources or {}

    @classmethod
    def load(cls, custom_dir: Path | None = None) -> Workflows:
        found: dict[str, Workflow] = {}
        sources: dict[str, str] = {}
        package = resources.files("orderchat.workflows")
        for name in BUILT_IN:
            resource = package.joinpath(f"{name}.toml")
            found[name] = parse_workflow(resource.read_text("utf-8"))
            sources[name] = str(resource)
        if custom_dir is not None and custom_dir.is_dir():
            for path in sorted(custom_dir.glob("*.toml")):
                if path.name in NOT_WORKFLOWS:
                    continue  # the notification policy and consult rules live beside them
                try:
                    workflow = parse_workflow(path.read_text("utf-8"))
                except BadRequest as exc:
                    raise SystemExit(f"workflow {path}: {exc.message}") from exc
                found[workflow.name] = workflow
                sources[workflow.name] = str(path.resolve())
                logger.info("loaded workflow %s from %s", workflow.name, path)
        return cls(found, sources)

    def get(self, name: str) -> Workflow:
        try:
            return self._by_name[name]
        except KeyError:
            raise NotFound(
                say("workflows.no_workflow_known", name=name, known=sorted(self._by_name))
            ) from None

    def sources(self) -> dict[str, str]:
        """The file each running workflow was loaded from, by name."""
        return dict(self._sources)

    def all(self) -> list[Workflow]:
        return list(self._by_name.values())
