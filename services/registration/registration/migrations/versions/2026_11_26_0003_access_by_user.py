"""access by user: an index for the user's views

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_access_user", "access", ["company_id", "user_id", "event_id"])


def downgrade() -> None:
    op.drop_index("ix_access_user", table_name="access")
