"""zoom account replica (read model of the bridge's accounts, R-DAY-9)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "zoom_account_replica",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_zoom_account_replica")),
    )


def downgrade() -> None:
    op.drop_table("zoom_account_replica")
