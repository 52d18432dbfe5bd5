"""an Idempotency-Key's kept answer keeps its headers too (an ETag...), so a replay carries them

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from te_shared.migrations import add_idempotency_headers, drop_idempotency_headers

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_idempotency_headers()


def downgrade() -> None:
    drop_idempotency_headers()
