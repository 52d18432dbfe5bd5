"""an Idempotency-Key's kept answer keeps its headers too (an ETag...), so a replay carries them

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from te_shared.migrations import add_idempotency_headers, drop_idempotency_headers

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_idempotency_headers()


def downgrade() -> None:
    drop_idempotency_headers()
