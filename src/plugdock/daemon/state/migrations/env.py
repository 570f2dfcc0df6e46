"""Alembic environment: the connection is handed over by ``plugdock.daemon.state.db.migrate``."""

from alembic import context

from plugdock.daemon.state.models import Base

connection = context.config.attributes.get("connection")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
