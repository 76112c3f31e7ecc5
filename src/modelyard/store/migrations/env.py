"""Alembic environment: migrations run on the connection (and transaction) we pass in."""

from alembic import context

from modelyard.store._tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
