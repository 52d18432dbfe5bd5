"""``ZoomAccountChanged``: how catalog learns the company's Zoom accounts (R-DAY-9, R-ZOOM-2).

Every connection, role change, removal and loss or recovery of a connection's tokens is
announced through the outbox, in the transaction of the change. No personal data: the Zoom
user's e-mail stays in the bridge."""

from __future__ import annotations

import threading
import time

from sqlalchemy.ext.asyncio import AsyncSession

from te_shared.contracts import ZoomAccountChanged, ZoomAccountRole
from te_shared.outbox import add_message
from zoom_bridge.models import OutboxRecord, ZoomAccount

_version_lock = threading.Lock()
_last_version = 0


def change_version() -> int:
    """An account change's ``version``: microseconds since the epoch, taken when the change is
    written. Changes to one account are human-paced, so the clock orders them; within this
    process two changes never share a value."""
    global _last_version
    with _version_lock:
        _last_version = max(time.time_ns() // 1000, _last_version + 1)
        return _last_version


def announce(session: AsyncSession, account: ZoomAccount, *, connected: bool = True) -> None:
    """Write ``ZoomAccountChanged`` for ``account`` into the outbox (the caller's transaction)."""
    add_message(
        session,
        OutboxRecord,
        ZoomAccountChanged(
            company_id=account.company_id,
            account_id=account.id,
            role=ZoomAccountRole(account.role),
            connected=connected,
            needs_reconnect=bool(account.needs_reconnect) and connected,
            version=change_version(),
        ),
    )
