"""Which connections Zoom's ``app_deauthorized`` removes (R-ZOOM-1, F1): a pure rule."""

from __future__ import annotations

import uuid

from zoom_bridge.accounts.rules import Connection, account_level, removed_by_notice

ADMIN_SCOPES = "meeting:read:admin meeting:write:admin user:read:admin report:read:admin"
USER_SCOPES = "meeting:read meeting:write user:read"


def oauth(user: str, scopes: str | None) -> Connection:
    return Connection(uuid.uuid4(), "oauth", user, scopes)


def test_r_zoom_1_account_level_scopes_end_with_admin() -> None:
    assert account_level(ADMIN_SCOPES)
    assert account_level("meeting:read meeting:write:admin")
    assert not account_level(USER_SCOPES)
    assert not account_level(None)  # unknown (connected before scopes were kept): user-level
    assert not account_level("")


def test_r_zoom_1_the_named_users_connection_is_removed_whatever_its_scopes() -> None:
    for scopes in (ADMIN_SCOPES, USER_SCOPES, None):
        assert removed_by_notice(oauth("U1", scopes), "U1", oauth=True)


def test_r_zoom_1_another_admin_removing_an_account_level_app_removes_the_connection() -> None:
    assert removed_by_notice(oauth("U1", ADMIN_SCOPES), "ADMIN2", oauth=True)
    # a user-level grant is that user's own: another user's notice leaves it
    assert not removed_by_notice(oauth("U1", USER_SCOPES), "ADMIN2", oauth=True)
    assert not removed_by_notice(oauth("U1", None), "ADMIN2", oauth=True)


def test_f1_each_secret_covers_only_its_own_connections() -> None:
    # a Server-to-Server secret never removes an OAuth connection, whoever it names
    assert not removed_by_notice(oauth("U1", ADMIN_SCOPES), "U1", oauth=False)
    s2s = Connection(uuid.uuid4(), "s2s", "OWNER", ADMIN_SCOPES)
    other = Connection(uuid.uuid4(), "s2s", "OWNER", ADMIN_SCOPES)
    # the OAuth app's secret never removes a Server-to-Server connection
    assert not removed_by_notice(s2s, "OWNER", oauth=True)
    # an S2S app's own secret removes its own connections, whoever is named
    assert removed_by_notice(s2s, "ANYONE", oauth=False, connections={s2s.id})
    assert not removed_by_notice(other, "ANYONE", oauth=False, connections={s2s.id})
