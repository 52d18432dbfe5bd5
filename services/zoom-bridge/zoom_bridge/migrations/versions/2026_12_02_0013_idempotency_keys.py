"""Idempotency-Key records (te_shared.idempotency): safe retries of writes

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from te_shared.migrations import create_idempotency_table

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_idempotency_table()


def downgrade() -> None:
    from alembic import op

    op.drop_table("idempotency_keys")
