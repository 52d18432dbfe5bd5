"""whose secret verified a stored webhook (the meetings it may act on)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("zoom_webhook_events") as batch:
        batch.add_column(sa.Column("signed_by", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("zoom_webhook_events") as batch:
        batch.drop_column("signed_by")
