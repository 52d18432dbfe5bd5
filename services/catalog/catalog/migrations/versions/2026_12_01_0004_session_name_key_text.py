"""session_names.name_key is TEXT: a name's case fold may be longer than the name

180 x "ß" is a valid name whose key (its case fold) has 360 characters; VARCHAR(180) refused it
on PostgreSQL (a 500). A character folds to at most 3, so keys stay well within an index entry.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("session_names") as batch:
        batch.alter_column(
            "name_key", existing_type=sa.String(180), type_=sa.Text(), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("session_names") as batch:
        batch.alter_column(
            "name_key", existing_type=sa.Text(), type_=sa.String(180), existing_nullable=False
        )
