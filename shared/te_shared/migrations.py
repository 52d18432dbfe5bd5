"""Alembic helpers shared by every service's ``migrations/env.py`` and first revision."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from te_shared.db import UTCDateTime


def run_env(target_metadata: MetaData) -> None:
    """Body of a service's ``env.py``: online migrations over the async engine."""
    config = context.config
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("no database URL for migrations")

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
            await connection.commit()
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(run_async())


def create_idempotency_table() -> None:
    """The ``idempotency_keys`` table (see :mod:`te_shared.idempotency`)."""
    op.create_table(
        "idempotency_keys",
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("caller", sa.String(200), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("content_type", sa.String(200), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("locked_until", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("company_id", "caller", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(op.f("ix_idempotency_keys_expires_at"), "idempotency_keys", ["expires_at"])


def add_idempotency_headers() -> None:
    """``idempotency_keys.headers``: the kept answer's headers (an ``ETag``...), replayed too."""
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("headers", sa.Text(), nullable=True))


def drop_idempotency_headers() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("headers")


def create_messaging_tables() -> None:
    """The ``outbox`` and ``inbox`` tables (see :mod:`te_shared.outbox`, :mod:`te_shared.inbox`)."""
    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("routing_key", sa.String(200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("available_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbox_message_id")),
    )
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["available_at", "id"],
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    )
    op.create_table(
        "inbox",
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("consumer", sa.String(200), nullable=False),
        sa.Column("processed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", "consumer", name=op.f("pk_inbox")),
    )
