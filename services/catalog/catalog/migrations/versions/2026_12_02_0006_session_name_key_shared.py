"""session name keys recomputed with te_shared.rules.name_key (white space folded, NFKC), the
one function catalog (R-SES-3) and registration's import lookup share

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from te_shared.rules import name_key

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

names = sa.table(
    "session_names",
    sa.column("session_id", sa.Uuid()),
    sa.column("locale", sa.String()),
    sa.column("event_id", sa.Uuid()),
    sa.column("name", sa.String()),
    sa.column("name_key", sa.Text()),
)


def upgrade() -> None:
    """Each name's key is recomputed. Two names of one event and locale that the new key makes
    equal ("Evening  run" and "Evening run") cannot both take it (the unique index): the first
    (by session id) does, the other keeps its old key, so nothing fails and nothing is renamed;
    the admin sees both and may rename one."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            names.c.session_id, names.c.locale, names.c.event_id, names.c.name, names.c.name_key
        ).order_by(names.c.event_id, names.c.locale, names.c.session_id)
    ).all()
    taken = {(r.event_id, r.locale, r.name_key) for r in rows}
    for row in rows:
        new = name_key(row.name)
        if new == row.name_key or (row.event_id, row.locale, new) in taken:
            continue
        taken.discard((row.event_id, row.locale, row.name_key))
        taken.add((row.event_id, row.locale, new))
        bind.execute(
            names.update()
            .where(names.c.session_id == row.session_id, names.c.locale == row.locale)
            .values(name_key=new)
        )


def downgrade() -> None:
    """The old keys (trimmed, case-folded) where they do not collide."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            names.c.session_id, names.c.locale, names.c.event_id, names.c.name, names.c.name_key
        ).order_by(names.c.event_id, names.c.locale, names.c.session_id)
    ).all()
    taken = {(r.event_id, r.locale, r.name_key) for r in rows}
    for row in rows:
        old = row.name.strip().casefold()
        if old == row.name_key or (row.event_id, row.locale, old) in taken:
            continue
        taken.discard((row.event_id, row.locale, row.name_key))
        taken.add((row.event_id, row.locale, old))
        bind.execute(
            names.update()
            .where(names.c.session_id == row.session_id, names.c.locale == row.locale)
            .values(name_key=old)
        )
