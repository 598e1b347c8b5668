"""The migrations form one line, numbered in order, so a database's revision says
whether it is at the head without Alembic being imported (storage/engine.py)."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from orderchat.storage.engine import _MIGRATIONS, newest_revision


def test_each_migration_revises_the_one_numbered_just_before_it() -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    assert scripts.get_heads() == [newest_revision()]
    line = list(scripts.walk_revisions())  # head first
    numbers = [script.revision for script in line]
    assert numbers == sorted(numbers, reverse=True)
    for script, older in zip(line, [*line[1:], None], strict=True):
        assert script.down_revision == (older.revision if older else None), script.revision
        assert Path(script.path).name.startswith(f"{script.revision}_"), script.path
