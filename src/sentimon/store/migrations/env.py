"""Alembic's entry point: migrations run on the connection `sentimon.store.engine.upgrade`
passes in (inside its transaction), never on a URL of their own."""

from __future__ import annotations

from alembic import context

from sentimon.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `sentimon db upgrade`, not the alembic command")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
