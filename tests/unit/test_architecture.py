"""The import graph is the architecture: inner layers never reach outwards."""

from __future__ import annotations

import ast
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
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_forbidden(package: str) -> None:
    offenders = []
    for path in sorted((SRC / package).rglob("*.py")):
        for name in _imports(path):
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[package]):
                offenders.append(f"{path.relative_to(SRC)} imports {name}")
    assert not offenders


def test_sql_lives_in_storage_only() -> None:
    outside = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if "storage" not in p.parts and "sqlalchemy" in {n.split(".")[0] for n in _imports(p)}
    ]
    assert not outside
