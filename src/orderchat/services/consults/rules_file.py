"""The consult rules a server runs: the shop's `consults.toml` beside its workflows,
else the built-in one (docs/consults.md §2)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from orderchat.core.consults import ConsultRules, parse_rules
from orderchat.core.errors import BadRequest

CONSULT_RULES_FILE = "consults.toml"


def rules_path(custom_dir: Path | None) -> tuple[str, str]:
    """Where the rules come from and whose they are: ("shop" | "built_in")."""
    if custom_dir is not None and (custom_dir / CONSULT_RULES_FILE).is_file():
        return str((custom_dir / CONSULT_RULES_FILE).resolve()), "shop"
    return str(resources.files("orderchat.workflows").joinpath(CONSULT_RULES_FILE)), "built_in"


def read_rules_text(custom_dir: Path | None) -> str:
    if custom_dir is not None and (custom_dir / CONSULT_RULES_FILE).is_file():
        return (custom_dir / CONSULT_RULES_FILE).read_text("utf-8")
    package = resources.files("orderchat.workflows")
    return package.joinpath(CONSULT_RULES_FILE).read_text("utf-8")


def load_rules(custom_dir: Path | None) -> ConsultRules:
    """The rules to run; a shop file that does not parse stops the start, saying why."""
    path, _ = rules_path(custom_dir)
    try:
        return parse_rules(read_rules_text(custom_dir))
    except BadRequest as exc:
        raise SystemExit(f"consult rules {path}: {exc.message}") from exc
