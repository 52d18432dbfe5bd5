"""Connecting Zoom accounts: OAuth authorization code (signed single-use state) and S2S.

Every connection, role change and removal is announced as ``ZoomAccountChanged`` through the
outbox (:mod:`zoom_bridge.accounts.events`), in the transaction of the change, so catalog knows
the company's accounts and their roles (R-DAY-9, R-ZOOM-2) without asking the bridge.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from cryptography.fernet import InvalidToken
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from te_shared.contracts import ZoomAccountRole
from te_shared.db import utcnow
from te_shared.errors import BadRequest, NotFound, field_error
from te_shared.logging import get_logger
from te_shared.text import CONTROL_RANGES, text_problem
from zoom_bridge.accounts import rules
from zoom_bridge.accounts.events import announce, change_version
from zoom_bridge.meetings import jobs
from zoom_bridge.models import OAuthState, ZoomAccount
from zoom_bridge.settings import ZoomBridgeSettings
from zoom_bridge.webhooks.secrets import mark_changed
from zoom_bridge.zoom.client import ZoomClient, ZoomError

log = get_logger(__name__)

__all__ = ["announce", "change_version"]

STATE_TTL = dt.timedelta(minutes=10)


#: ``return_to`` as the OpenAPI document states it (:func:`check_return_to` is the rule): a path
#: (not ``//`` nor ``/\``, which browsers read as another host) or an http(s) URL, without
#: control characters or surrounding spaces. Which origins a URL may name is a setting.
RETURN_TO_PATTERN = (
    r"^(?:/(?![/\\])|[Hh][Tt][Tt][Pp][Ss]?://)"
    rf"(?:[^\s{CONTROL_RANGES}](?:[^{CONTROL_RANGES}]*[^\s{CONTROL_RANGES}])?)?$"
)


def check_return_to(settings: ZoomBridgeSettings, return_to: str) -> str:
    r"""A path of the admin panel, or a URL on one of ``ZOOM_RETURN_ORIGINS``; no control
    characters (the value is sealed in the state and ends up in a redirect). A path may not
    begin ``//`` nor ``/\``: browsers read both as the start of another host's URL (an open
    redirect)."""
    if text_problem(return_to, max_length=2000) is not None or return_to != return_to.strip():
        raise field_error("return_to", "must be a path or an allowed admin-panel URL")
    parts = urlsplit(return_to)
    if not parts.scheme and not parts.netloc and return_to.startswith("/"):
        if return_to.startswith(("//", "/\\")):
            raise field_error("return_to", "must be a path or an allowed admin-panel URL")
        return return_to
    web = parts.scheme in ("http", "https")  # urlsplit gives the scheme in lower case
    if web and f"{parts.scheme}://{parts.netloc}" in settings.zoom_return_origins:
        return return_to
    raise field_error(
        "return_to",
        "must be a path, or a URL on an admin-panel origin of ZOOM_RETURN_ORIGINS",
        code="return_origin_not_allowed" if web else None,
    )


#: the cookie that binds an authorization to the browser that started it (F4): its name ends
#: with a key of the flow, so two flows in two tabs do not overwrite each other's
BROWSER_COOKIE_PREFIX = "zoom_oauth_"


@dataclass(frozen=True)
class BrowserBinding:
    """The cookie ``GET /v1/zoom/oauth/authorize`` sets: the callback connects an account only
    when the browser that comes back carries it (an authorize link sent to someone else's
    browser connects nothing)."""

    key: str
    value: str
    path: str
    secure: bool
    max_age: int = int(STATE_TTL.total_seconds())

    @property
    def name(self) -> str:
        return BROWSER_COOKIE_PREFIX + self.key


def browser_binding(settings: ZoomBridgeSettings) -> BrowserBinding:
    """A new flow's cookie: sent back only to the callback's path, and only over https when
    the callback is https (a local run's is http)."""
    return BrowserBinding(
        key=secrets.token_hex(8),
        value=secrets.token_urlsafe(32),
        path=urlsplit(settings.zoom_redirect_url).path or "/",
        secure=settings.zoom_redirect_url.lower().startswith("https://"),
    )


@dataclass(frozen=True)
class Authorization:
    url: str
    binding: BrowserBinding


@dataclass(frozen=True)
class CallbackOutcome:
    """Where the callback sends the browser, and the binding cookie to clear."""

    location: str
    cookie_name: str | None
    cookie_path: str


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def authorize_url(
    session: AsyncSession,
    zoom: ZoomClient,
    *,
    company_id: str,
    admin_user_id: str,
    role: ZoomAccountRole,
    return_to: str,
) -> Authorization:
    settings = zoom.settings
    return_to = check_return_to(settings, return_to)
    nonce = secrets.token_urlsafe(24)
    binding = browser_binding(settings)
    session.add(
        OAuthState(
            nonce=nonce, company_id=company_id, admin_user_id=admin_user_id, created_at=utcnow()
        )
    )
    payload = {
        "n": nonce,
        "c": company_id,
        "a": admin_user_id,
        "r": role.value,
        "t": return_to,
        "k": binding.key,
        "b": _digest(binding.value),
    }
    state = zoom.cipher.encrypt(json.dumps(payload))  # authenticated encryption = signed
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.zoom_client_id,
            "redirect_uri": settings.zoom_redirect_url,
            "state": state,
        }
    )
    base = settings.zoom_authorize_base_url or settings.zoom_oauth_base_url
    return Authorization(url=f"{base.rstrip('/')}/oauth/authorize?{query}", binding=binding)


async def _take_state(session: AsyncSession, zoom: ZoomClient, state: str) -> dict[str, Any]:
    """Check the state (signature, age, single use) and use it up."""
    try:
        raw = zoom.cipher.decrypt_fresh(state, int(STATE_TTL.total_seconds()))
        payload: dict[str, Any] = json.loads(raw)
    except (InvalidToken, ValueError) as exc:
        raise BadRequest(
            "The authorization state is invalid or expired.", code="bad_state"
        ) from exc
    pending = await session.get(OAuthState, payload["n"])
    if (
        pending is None
        or pending.company_id != payload["c"]
        or pending.admin_user_id != payload["a"]
    ):
        raise BadRequest("The authorization state was already used.", code="bad_state")
    await session.delete(pending)
    return payload


def _same_browser(payload: dict[str, Any], cookies: Mapping[str, str]) -> bool:
    """True when the browser came back with the cookie its authorization set."""
    key, expected = payload.get("k"), payload.get("b")
    if not isinstance(key, str) or not isinstance(expected, str):
        return False
    carried = cookies.get(BROWSER_COOKIE_PREFIX + key)
    return carried is not None and hmac.compare_digest(_digest(carried), expected)


def _outcome(zoom: ZoomClient, payload: dict[str, Any], location: str) -> CallbackOutcome:
    key = payload.get("k")
    return CallbackOutcome(
        location=location,
        cookie_name=BROWSER_COOKIE_PREFIX + key if isinstance(key, str) else None,
        cookie_path=urlsplit(zoom.settings.zoom_redirect_url).path or "/",
    )


_ERROR_CODE = re.compile(r"[a-z_]{1,64}")


def with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


async def callback(
    session: AsyncSession,
    zoom: ZoomClient,
    *,
    state: str,
    code: str | None,
    error: str | None,
    cookies: Mapping[str, str],
) -> CallbackOutcome:
    """Zoom's redirect back. The state is checked (signature, age, single use) and used up
    first; then the browser must be the one that started the flow (its cookie), else nothing
    is connected and the admin goes back with ``zoom_error=state_mismatch``. Without a code
    (``error=access_denied`` when the admin declined), back to ``return_to`` with
    ``zoom_error`` saying why; with one, the code is exchanged and the connection stored."""
    payload = await _take_state(session, zoom, state)
    return_to = str(payload["t"])
    if not _same_browser(payload, cookies):
        log.warning("zoom_oauth_state_mismatch", company_id=str(payload["c"]))
        return _outcome(zoom, payload, with_query(return_to, {"zoom_error": "state_mismatch"}))
    if code is None:
        reason = error if error and _ERROR_CODE.fullmatch(error) else "authorization_failed"
        log.info("zoom_oauth_declined", company_id=str(payload["c"]), error=reason)
        return _outcome(zoom, payload, with_query(return_to, {"zoom_error": reason}))
    await _connect(session, zoom, payload, code)
    return _outcome(zoom, payload, return_to)


async def _connect(
    session: AsyncSession, zoom: ZoomClient, payload: dict[str, Any], code: str
) -> None:
    """Exchange the code and store the connection (announced to catalog)."""
    try:
        tokens = await zoom.token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": zoom.settings.zoom_redirect_url,
            }
        )
        me = await zoom.get_me(str(tokens["access_token"]))
    except ZoomError as exc:
        log.warning("zoom_oauth_exchange_failed", status=exc.status)
        raise BadRequest("Zoom refused the authorization.", code="zoom_oauth_failed") from exc
    company_id = str(payload["c"])
    account = (
        await session.execute(
            select(ZoomAccount)
            .where(ZoomAccount.company_id == company_id, ZoomAccount.zoom_user_id == str(me["id"]))
            .with_for_update()
        )
    ).scalar_one_or_none()
    if account is None:
        account = ZoomAccount(
            id=uuid.uuid4(), company_id=company_id, connected_at=utcnow(), needs_reconnect=False
        )
        session.add(account)
    healed = bool(account.needs_reconnect)
    account.kind = "oauth"
    account.role = str(payload["r"])
    account.zoom_user_id = str(me["id"])
    account.zoom_account_id = str(me.get("account_id", ""))
    account.zoom_user_email = str(me.get("email", ""))
    account.needs_reconnect = False
    zoom.store_tokens(account, tokens)
    announce(session, account)
    # the same Zoom user again: its failed days (e.g. while its tokens were dead) try again,
    # and its meetings' registrants are seen to (R-ZOOM-3)
    rearmed = await jobs.rearm_failed(session, account.id)
    await jobs.arm_registrants(session, await jobs.registrant_days(session, account_id=account.id))
    log.info(
        "zoom_account_connected",
        account_id=str(account.id),
        company_id=company_id,
        healed=healed,
        rearmed=rearmed,
    )


async def connect_s2s(
    session: AsyncSession, zoom: ZoomClient, company_id: str, body: Any
) -> ZoomAccount:
    try:
        tokens = await zoom.token_request(
            {"grant_type": "account_credentials", "account_id": body.zoom_account_id},
            body.client_id,
            body.client_secret,
        )
        me = await zoom.get_me(str(tokens["access_token"]))
    except ZoomError as exc:
        raise field_error("client_secret", "Zoom refused these credentials") from exc
    account = ZoomAccount(
        id=uuid.uuid4(),
        company_id=company_id,
        kind="s2s",
        role=body.role.value,
        zoom_user_id=str(me["id"]),
        zoom_account_id=body.zoom_account_id,
        zoom_user_email=str(me.get("email", "")),
        s2s_client_id=body.client_id,
        s2s_client_secret_enc=zoom.cipher.encrypt(body.client_secret),
        webhook_secret_enc=(
            zoom.cipher.encrypt(body.webhook_secret_token) if body.webhook_secret_token else None
        ),
        refresh_token_enc=None,
        needs_reconnect=False,
        connected_at=utcnow(),
    )
    zoom.store_tokens(account, tokens)
    session.add(account)
    mark_changed(session)
    await session.flush()
    announce(session, account)
    return account


async def list_accounts(session: AsyncSession, company_id: str) -> list[ZoomAccount]:
    stmt = (
        select(ZoomAccount)
        .where(ZoomAccount.company_id == company_id)
        .order_by(ZoomAccount.connected_at)
    )
    return list((await session.execute(stmt)).scalars())


async def get_account(session: AsyncSession, company_id: str, account_id: uuid.UUID) -> ZoomAccount:
    account = await session.get(ZoomAccount, account_id)
    if account is None or account.company_id != company_id:
        raise NotFound("No such Zoom account.")
    return account


async def set_role(
    session: AsyncSession, company_id: str, account_id: uuid.UUID, role: ZoomAccountRole
) -> ZoomAccount:
    """R-ZOOM-2: the admin says which role the account has. Announced even when unchanged, so
    a PATCH re-announces an account (e.g. one connected before catalog followed accounts)."""
    account = (
        await session.execute(
            select(ZoomAccount)
            .where(ZoomAccount.id == account_id, ZoomAccount.company_id == company_id)
            .with_for_update()  # concurrent PATCHes commit in the order of their versions
        )
    ).scalar_one_or_none()
    if account is None:
        raise NotFound("No such Zoom account.")
    account.role = role.value
    announce(session, account)
    # R-ZOOM-3: registrants come (administrator) or go (participant) with the role
    await jobs.arm_registrants(session, await jobs.registrant_days(session, account_id=account.id))
    return account


async def set_webhook_secret(
    session: AsyncSession, zoom: ZoomClient, company_id: str, account_id: uuid.UUID, secret: str
) -> ZoomAccount:
    """R-ZOOM-4: a Server-to-Server connection's new webhook secret token (its app's, after it
    was regenerated at Zoom), stored encrypted; the account's webhooks verify with it from now
    on. OAuth connections have none of their own (ZOOM_WEBHOOK_SECRET verifies theirs)."""
    account = await get_account(session, company_id, account_id)
    if account.kind != "s2s":
        raise field_error(
            "body.webhook_secret_token",
            "Only a Server-to-Server connection has a webhook secret token of its own.",
            code="not_server_to_server",
        )
    account.webhook_secret_enc = zoom.cipher.encrypt(secret)
    mark_changed(session)
    log.info("zoom_webhook_secret_replaced", account_id=str(account.id), company_id=company_id)
    return account


async def remove(session: AsyncSession, accounts: list[ZoomAccount]) -> int:
    """Forget the connections (and their tokens), announcing each as no longer connected."""
    mark_changed(session)
    for account in accounts:
        announce(session, account, connected=False)
    if accounts:
        await session.execute(
            delete(ZoomAccount).where(ZoomAccount.id.in_([a.id for a in accounts]))
        )
    return len(accounts)


async def deauthorize(
    session: AsyncSession,
    zoom_user_id: str,
    zoom_account_id: str,
    *,
    oauth: bool,
    connections: Collection[uuid.UUID] = (),
) -> int:
    """Zoom's deauthorization notice for ``zoom_account_id``: forget the connections (and their
    tokens) it ends, among those its signer covers (:func:`rules.removed_by_notice`): with the
    OAuth app's secret, the OAuth connections of the Zoom user it names, and all of the
    account's account-level ones (any admin may have removed the app); with a Server-to-Server
    app's own secret, that app's connections. Nothing else, whoever it names."""
    if not oauth and not connections:
        return 0
    stmt = (
        select(ZoomAccount)
        .where(ZoomAccount.zoom_account_id == zoom_account_id)
        .order_by(ZoomAccount.connected_at)
        .with_for_update()
    )
    found = [
        account
        for account in (await session.execute(stmt)).scalars()
        if rules.removed_by_notice(
            rules.Connection(account.id, account.kind, account.zoom_user_id, account.scopes),
            zoom_user_id,
            oauth=oauth,
            connections=connections,
        )
    ]
    return await remove(session, found)
