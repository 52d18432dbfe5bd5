"""zoom accounts keep the scopes Zoom granted (an account-level install's end with :admin)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("zoom_accounts") as batch:
        batch.add_column(sa.Column("scopes", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("zoom_accounts") as batch:
        batch.drop_column("scopes")
