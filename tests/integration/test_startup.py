"""What a server does once at start, seen from inside its process."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from orderchat.api.app import create_app
from orderchat.settings import Settings

pytestmark = pytest.mark.timeout(60)


async def test_startup_objects_are_left_out_of_garbage_collection(tmp_path: Path) -> None:
    """Full collections walked every module and class, stalling the loop under load."""
    gc.unfreeze()
    app = create_app(Settings(data_dir=tmp_path))
    try:
        async with app.router.lifespan_context(app):
            frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()
    assert frozen > 10_000
