"""initial: outbox, inbox, company settings

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

from te_shared.db import UTCDateTime
from te_shared.migrations import create_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables()
    op.create_table(
        "company_settings",
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("locales", sa.JSON(), nullable=False),
        sa.Column("zoom_enabled", sa.Boolean(), nullable=False),
        sa.Column("training_module_enabled", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_company_settings")),
    )


def downgrade() -> None:
    op.drop_table("company_settings")
    op.drop_table("inbox")
    op.drop_table("outbox")
