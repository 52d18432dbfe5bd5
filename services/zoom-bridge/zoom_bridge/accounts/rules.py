"""Pure rules about connections: which ones a deauthorization notice removes. No I/O."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass


def account_level(scopes: str | None) -> bool:
    """An account-level install: Zoom granted scopes at the account's level (``...:admin``,
    e.g. ``meeting:write:admin``, ``report:read:admin``), which only an app an admin installs
    for the whole Zoom account gets. Unknown scopes (a connection made before they were kept)
    count as user-level."""
    return bool(scopes) and any(s.endswith(":admin") for s in (scopes or "").split())


@dataclass(frozen=True)
class Connection:
    """A connection as the deauthorization rule sees it (all of the notice's Zoom account)."""

    id: uuid.UUID
    kind: str  # oauth | s2s
    zoom_user_id: str
    scopes: str | None


def removed_by_notice(
    connection: Connection,
    notice_user_id: str,
    *,
    oauth: bool,
    connections: Collection[uuid.UUID] = (),
) -> bool:
    """Whether Zoom's ``app_deauthorized`` for the connection's Zoom account removes it, given
    whose secret signed the notice (F1: a webhook acts only within its signer).

    - The OAuth app's secret (``oauth``) covers OAuth connections only: the one of the Zoom
      user the notice names, and, when the app was installed for the whole Zoom account
      (account-level scopes), every one of that account, whoever is named: any admin of the
      account may remove such an app, and the notice then names that admin, not the user who
      connected it; removing the app ends every grant of the account.
    - A Server-to-Server app's own secret covers that app's connections (``connections``) of
      the account, whoever is named.
    """
    if connection.kind == "s2s":
        return connection.id in connections
    if not oauth:
        return False
    return connection.zoom_user_id == notice_user_id or account_level(connection.scopes)
