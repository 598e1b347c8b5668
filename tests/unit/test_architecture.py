"""The import graph is the architecture: inner layers never reach outwards.

Also the sizes that keep code readable: no module over `MAX_MODULE_LINES`, no
function over `MAX_FUNCTION_LINES` (`end_lineno - lineno` of its `def`)
unless it says why. The reason is a comment containing `long because:`
followed by the reason, either inside the function or in the comment lines
directly above its `def` (or its decorators)::

    # long because: a migration is one straight list of DDL steps.
    def upgrade() -> None:
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "orderchat"

IO_LIBRARIES = {
    "asyncio",
    "sqlalchemy",
    "alembic",
    "starlette",
    "fastapi",
    "uvicorn",
    "redis",
    "aiosqlite",
    "asyncpg",
    "httpx",
    "websockets",
    "socket",
}
FORBIDDEN = {
    "core": IO_LIBRARIES
    | {
        "orderchat.protocol",
        "orderchat.media",
        "orderchat.storage",
        "orderchat.services",
        "orderchat.realtime",
        "orderchat.api",
        "orderchat.client",
    },
    "protocol": IO_LIBRARIES
    | {
        "orderchat.media",
        "orderchat.storage",
        "orderchat.services",
        "orderchat.realtime",
        "orderchat.api",
        "orderchat.client",
    },
    "storage": {
        "starlette",
        "fastapi",
        "orderchat.services",
        "orderchat.realtime",
        "orderchat.api",
        "orderchat.client",
    },
    "services": {
        "starlette",
        "fastapi",
        "sqlalchemy",
        "orderchat.realtime",
        "orderchat.api",
        "orderchat.client",
    },
    "realtime": {"orderchat.api", "orderchat.storage", "sqlalchemy"},
    # Files on disk and child processes: no database, no web framework, no use cases.
    "media": {
        "sqlalchemy",
        "starlette",
        "fastapi",
        "orderchat.storage",
        "orderchat.services",
        "orderchat.realtime",
        "orderchat.api",
        "orderchat.client",
    },
    "client": {
        "orderchat.storage",
        "orderchat.services",
        "orderchat.realtime",
        "orderchat.api",
        "orderchat.media",
        "sqlalchemy",
        "starlette",
        "fastapi",
        "uvicorn",
    },
    # The channels' edges: given what to send, they speak to SMTP servers, push
    # services and webhooks; the queue that decides when lives in services/notify/.
    "notify": {
        "sqlalchemy",
        "starlette",
        "fastapi",
        "orderchat.storage",
        "orderchat.services",
        "orderchat.realtime",
        "orderchat.api",
        "orderchat.client",
    },
    # Routes call the use cases and get core values back: never a row, never SQL.
    "api": {"sqlalchemy", "orderchat.storage"},
    # Seeded through the use cases like any other caller; it serves nothing itself.
    "demo": {
        "sqlalchemy",
        "starlette",
        "fastapi",
        "uvicorn",
        "orderchat.realtime",
        "orderchat.api",
        "orderchat.client",
    },
}
# These hold data, not code.
UNRULED = {"web", "workflows"}
# The start-up wiring builds the database the services are given, so it alone
# may name it; these are the imports each wiring module may make despite its rule.
WIRING = {
    "api/app.py": {"orderchat.storage.engine"},
    "api/runtime.py": {"orderchat.storage.engine"},
    "api/wiring.py": {"orderchat.storage.engine"},
}
# Only the start-up wiring may import the demo: nothing else depends on it.
DEMO_IMPORTERS = ("api/", "cli.py")

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60
LONG_REASON = "long because:"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _is_under(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def _packages() -> list[str]:
    """Every package under src/orderchat, subpackages included, as `services/chat`."""
    return sorted(
        init.parent.relative_to(SRC).as_posix()
        for init in SRC.rglob("__init__.py")
        if init.parent != SRC
    )


def _rules(package: str) -> set[str] | None:
    """The imports a package may not make: its own, or those of its top-level package."""
    return FORBIDDEN.get(package.split("/")[0])


def test_every_package_has_import_rules() -> None:
    """A new package says where it sits: a rule of its own, or UNRULED."""
    top = {package.split("/")[0] for package in _packages()}
    assert top - set(FORBIDDEN) - UNRULED == set()


@pytest.mark.parametrize("package", [p for p in _packages() if _rules(p) is not None])
def test_package_imports_nothing_forbidden(package: str) -> None:
    forbidden = _rules(package)
    assert forbidden is not None
    offenders = []
    for path in sorted((SRC / package).glob("*.py")):
        allowed = WIRING.get(path.relative_to(SRC).as_posix(), set())
        for name in _imports(path) - allowed:
            if any(_is_under(name, bad) for bad in forbidden):
                offenders.append(f"{path.relative_to(SRC)} imports {name}")
    assert not offenders


def test_only_the_wiring_imports_the_demo() -> None:
    offenders = [
        f"{relative} imports {name}"
        for path in sorted(SRC.rglob("*.py"))
        if not (relative := path.relative_to(SRC).as_posix()).startswith(("demo/", *DEMO_IMPORTERS))
        for name in _imports(path)
        if _is_under(name, "orderchat.demo")
    ]
    assert not offenders


def test_sql_lives_in_storage_only() -> None:
    outside = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if "storage" not in p.parts and "sqlalchemy" in {n.split(".")[0] for n in _imports(p)}
    ]
    assert not outside


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(SRC.rglob("*.py")):
        yield path.relative_to(SRC).as_posix(), path


def _line_count(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_no_module_is_over_the_size_limit() -> None:
    oversized = {
        f"{name}: {lines} lines"
        for name, path in _modules()
        if (lines := _line_count(path)) > MAX_MODULE_LINES
    }
    assert not oversized, f"split these by concept (limit {MAX_MODULE_LINES} lines)"


def _comments(source: str) -> dict[int, str]:
    """The comments of a module by line number."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {tok.start[0]: tok.string for tok in tokens if tok.type == tokenize.COMMENT}


def _has_reason(node: ast.FunctionDef | ast.AsyncFunctionDef, comments: dict[int, str]) -> bool:
    """A `long because:` comment with a reason, inside the function or just above it."""
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    near = [line for line in comments if first <= line <= (node.end_lineno or first)]
    above = first - 1
    while above in comments:
        near.append(above)
        above -= 1
    for line in near:
        _, marker, reason = comments[line].partition(LONG_REASON)
        if marker and reason.strip():
            return True
    return False


def test_no_function_is_long_without_a_reason() -> None:
    unexplained = []
    for name, path in _modules():
        source = path.read_text()
        comments = _comments(source)
        for node in ast.walk(ast.parse(source, name)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno
            if length > MAX_FUNCTION_LINES and not _has_reason(node, comments):
                unexplained.append(f"{name}:{node.lineno} {node.name} ({length} lines)")
    assert not unexplained, f"split these, or say why with a '# {LONG_REASON} ...' comment"


def test_a_reason_counts_inside_or_directly_above_and_must_say_something() -> None:
    source = (
        "# long because: one straight list of steps.\n"
        "@decorated\n"
        "def above(): pass\n"
        "def inside():\n"
        "    # long because: a table, read top to bottom.\n"
        "    pass\n"
        "# long because: a reason for the function below this one.\n"
        "\n"
        "def separated(): pass\n"
        "def empty():  # long because:\n"
        "    pass\n"
    )
    comments = _comments(source)
    found = {
        node.name: _has_reason(node, comments)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef)
    }
    assert found == {"above": True, "inside": True, "separated": False, "empty": False}
