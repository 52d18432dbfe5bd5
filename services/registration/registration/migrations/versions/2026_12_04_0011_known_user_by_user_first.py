"""known users' index by user id leads with the user id

The lookup by e-mail (``company_id`` and ``email``, the primary key) ran on the index by
``(company_id, user_id)`` in a database without planner statistics (a new one, or a table
grown faster than autovacuum analyses it, as in a first sign-up storm): both indexes lead with
the company, and the planner took the other, scanning every known user of the company for
each new e-mail. Leading with the user id leaves it no such choice; lookups by user ids within
a company still use it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_known_user_user", table_name="known_user")
    op.create_index("ix_known_user_user", "known_user", ["user_id", "company_id"])


def downgrade() -> None:
    op.drop_index("ix_known_user_user", table_name="known_user")
    op.create_index("ix_known_user_user", "known_user", ["company_id", "user_id"])
