"""Idempotency-Key records (te_shared.idempotency): safe retries of writes

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from te_shared.migrations import create_idempotency_table

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_idempotency_table()


def downgrade() -> None:
    from alembic import op

    op.drop_table("idempotency_keys")
