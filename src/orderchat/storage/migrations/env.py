"""Alembic environment: migrations run on the connection the server hands in."""

from __future__ import annotations

from alembic import context

from orderchat.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("migrations run through orderchat.storage.engine.Database.migrate")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
context.run_migrations()
