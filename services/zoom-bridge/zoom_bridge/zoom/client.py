"""Zoom's REST API and OAuth token endpoint, with token refresh before expiry and on a 401.

Errors are classified for the retry policy: :class:`ZoomRetryable` (429 with its Retry-After,
5xx, timeouts, connection errors; :class:`ZoomDailyLimit` for Zoom's daily limit) or
:class:`ZoomFatal` (any other 4xx).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import re
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from te_shared.db import is_postgres, read_only, utcnow
from te_shared.logging import get_logger
from te_shared.retry_after import parse_retry_after, parse_retry_at
from zoom_bridge.accounts.events import announce
from zoom_bridge.crypto import TokenCipher
from zoom_bridge.models import ZoomAccount
from zoom_bridge.settings import ZoomBridgeSettings

log = get_logger(__name__)

#: Refresh this long before the access token expires.
REFRESH_MARGIN = dt.timedelta(seconds=60)


class ZoomError(Exception):
    def __init__(self, message: str, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        #: Zoom's own error code from the body (3001: meeting not found, 300: invalid field...)
        self.code = code
        #: the request reached Zoom and its outcome is unknown: Zoom may have done the work
        #: (a timeout after sending, a broken answer, a 5xx). False when Zoom refused it (4xx,
        #: 429) or it was never sent (connection refused, no token).
        self.uncertain = False
        #: besides, Zoom may still be doing it: no answer came from Zoom itself (a timeout, a
        #: lost connection, a gateway's 502 or 504)
        self.in_flight = False


class ZoomRetryable(ZoomError):
    def __init__(
        self,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
        code: int | None = None,
    ) -> None:
        super().__init__(message, status, code)
        self.retry_after = retry_after
        self.min_delay = 0.0


class ZoomDailyLimit(ZoomRetryable):
    """Zoom's daily limit (a 429 with ``X-RateLimit-Type: Daily-limit``, e.g. 100 meeting
    creates per user and UTC day): nothing of the kind is accepted before ``until``, the time
    Zoom names in ``Retry-After`` (the next 00:00 UTC when it names none)."""

    def __init__(self, message: str, until: dt.datetime, code: int | None = None) -> None:
        seconds = max(0.0, (until - utcnow()).total_seconds())
        super().__init__(message, 429, seconds, code)
        self.until = until


class ZoomFatal(ZoomError):
    pass


class ZoomNotFound(ZoomFatal):
    pass


class ZoomNotConnected(ZoomFatal):
    """The account the call needs is no longer connected (deauthorized or removed)."""


#: why nothing can be done through a connection whose refresh token Zoom refused; only the
#: company's admin can mend it, by connecting the same Zoom user again
RECONNECT = "Zoom no longer accepts this connection: reconnect the Zoom account"


class ZoomReconnect(ZoomNotConnected):
    """The connection's refresh token is dead (Zoom answered ``invalid_grant``, e.g. after it
    rotated the token and the answer was lost): the account ``needs_reconnect``."""

    def __init__(self) -> None:
        super().__init__(RECONNECT, 400)


class ZoomInvalidGrant(ZoomFatal):
    """The token endpoint refused the grant (``invalid_grant``): a used or expired code, a
    refresh token Zoom no longer knows."""


def _retry_after(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("retry-after"))


def next_utc_midnight(now: dt.datetime) -> dt.datetime:
    """When Zoom's daily limits reset: 00:00 UTC of the next day."""
    day = now.astimezone(dt.UTC).date() + dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def daily_limit(response: httpx.Response) -> bool:
    """Zoom says which limit a 429 is about in ``X-RateLimit-Type``: ``Daily-limit`` (wait
    for the next UTC day) or ``QPS`` (requests per second: retry soon)."""
    kind = str(response.headers.get("x-ratelimit-type", ""))
    return kind.strip().lower() == "daily-limit"


def classify(response: httpx.Response) -> ZoomError:
    code: int | None = None
    try:
        body = response.json()
        detail = str(body.get("message") or body.get("reason") or body)
        code = body.get("code") if isinstance(body.get("code"), int) else None
    except (ValueError, AttributeError):
        detail = response.text[:200]
    message = f"Zoom answered {response.status_code}: {detail}"
    status = response.status_code
    if status == 429 and daily_limit(response):
        now = utcnow()
        until = parse_retry_at(response.headers.get("retry-after"), now)
        return ZoomDailyLimit(message, until or next_utc_midnight(now), code)
    if status == 429 or status >= 500:
        return ZoomRetryable(message, status, _retry_after(response), code)
    if status == 404:
        return ZoomNotFound(message, 404, code)
    return ZoomFatal(message, status, code)


_ID_SEGMENT = re.compile(r"/[^/]*[0-9=%][^/]*")


def operation_of(path: str) -> str:
    """``/meetings/81234567890`` → ``/meetings/{id}``: a metric label, not one per meeting."""
    return _ID_SEGMENT.sub("/{id}", path.split("?", 1)[0])


def _oauth_error(response: httpx.Response) -> str | None:
    """The OAuth ``error`` of a token endpoint's answer (``{"reason", "error"}``)."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else None


def _failure(exc: httpx.HTTPError) -> str:
    return "timeout" if isinstance(exc, httpx.TimeoutException) else "unreachable"


#: transport errors raised before any byte of the request left: Zoom did nothing
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def _fresh(account: ZoomAccount) -> bool:
    """The account's access token is good for more than :data:`REFRESH_MARGIN`."""
    return (
        account.access_token_enc is not None
        and account.expires_at is not None
        and account.expires_at - REFRESH_MARGIN > utcnow()
    )


#: the accounts a job read with its snapshot, by id (:func:`one_job`, :func:`read_with_job`)
_READ_WITH_JOB: ContextVar[dict[Any, ZoomAccount] | None] = ContextVar(
    "zoom_accounts_read_with_job", default=None
)


@contextlib.contextmanager
def one_job() -> Iterator[None]:
    """The scope of one job: an account read with its snapshot (:func:`read_with_job`) lends
    its access token to the job's Zoom calls, which then need no read of their own (a round
    trip on the path of every new meeting's join link). The token is the one read with the
    snapshot that decided the calls, as fresh as an unlocked read made just before the call;
    one about to expire is still refreshed first, and a refresh during the job replaces it."""
    scope = _READ_WITH_JOB.set({})
    try:
        yield
    finally:
        _READ_WITH_JOB.reset(scope)


def read_with_job(account: ZoomAccount) -> None:
    """``account`` was just read with the running job's snapshot (nothing outside a job)."""
    known = _READ_WITH_JOB.get()
    if known is not None:
        known[account.id] = account


class ZoomClient:
    def __init__(
        self,
        settings: ZoomBridgeSettings,
        sessionmaker: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient | None = None,
        observe: Callable[[str, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.cipher = TokenCipher(settings)
        self.sessionmaker = sessionmaker
        self.http = http or httpx.AsyncClient(timeout=settings.zoom_http_timeout)
        self._observe = observe or (lambda _operation, _status: None)

    async def aclose(self) -> None:
        await self.http.aclose()

    # ---- OAuth -------------------------------------------------------------------------------

    def _basic(self, client_id: str, client_secret: str) -> str:
        raw = f"{client_id}:{client_secret}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    async def token_request(
        self, params: dict[str, str], client_id: str | None = None, secret: str | None = None
    ) -> dict[str, Any]:
        cid = client_id or self.settings.zoom_client_id
        csecret = secret or self.settings.zoom_client_secret.get_secret_value()
        try:
            response = await self.http.post(
                f"{self.settings.zoom_oauth_base_url.rstrip('/')}/oauth/token",
                data=params,
                headers={"Authorization": self._basic(cid, csecret)},
            )
        except httpx.HTTPError as exc:
            self._observe("POST /oauth/token", _failure(exc))
            raise ZoomRetryable(f"Zoom unreachable: {type(exc).__name__}") from exc
        self._observe("POST /oauth/token", str(response.status_code))
        if response.status_code != 200:
            error = classify(response)
            if response.status_code < 500 and _oauth_error(response) == "invalid_grant":
                raise ZoomInvalidGrant(str(error), response.status_code) from error
            raise error
        data: dict[str, Any] = response.json()
        return data

    async def get_me(self, access_token: str) -> dict[str, Any]:
        try:
            response = await self.http.get(
                f"{self.settings.zoom_api_base_url.rstrip('/')}/users/me",
                headers={"Authorization": f"Bearer {access_token}"},
            )
        except httpx.HTTPError as exc:
            self._observe("GET /users/me", _failure(exc))
            raise self._transport_error(exc) from exc
        self._observe("GET /users/me", str(response.status_code))
        if response.status_code != 200:
            raise classify(response)
        data: dict[str, Any] = response.json()
        return data

    def store_tokens(self, account: ZoomAccount, data: dict[str, Any]) -> None:
        """Keep a token answer's tokens (encrypted) and when the access token expires."""
        account.access_token_enc = self.cipher.encrypt(str(data["access_token"]))
        if data.get("refresh_token"):  # rotation: Zoom issues a new refresh token each time
            account.refresh_token_enc = self.cipher.encrypt(str(data["refresh_token"]))
        account.expires_at = utcnow() + dt.timedelta(seconds=int(data.get("expires_in", 3600)))
        if data.get("scope"):  # what Zoom granted (account-level scopes end with ":admin")
            account.scopes = str(data["scope"])[:2000]

    async def _renew(self, account: ZoomAccount) -> None:
        if account.kind == "s2s":
            assert account.s2s_client_secret_enc is not None
            data = await self.token_request(
                {"grant_type": "account_credentials", "account_id": account.zoom_account_id},
                account.s2s_client_id,
                self.cipher.decrypt(account.s2s_client_secret_enc),
            )
        else:
            if account.refresh_token_enc is None:
                raise ZoomReconnect()
            data = await self.token_request(
                {
                    "grant_type": "refresh_token",
                    "refresh_token": self.cipher.decrypt(account.refresh_token_enc),
                }
            )
        self.store_tokens(account, data)
        log.info("zoom_token_refreshed", account_id=str(account.id))

    @staticmethod
    async def _locked(session: AsyncSession, account_id: Any) -> ZoomAccount:
        stmt = select(ZoomAccount).where(ZoomAccount.id == account_id)
        if is_postgres(session):
            stmt = stmt.with_for_update()
        account = (await session.execute(stmt)).scalar_one_or_none()
        if account is None:
            raise ZoomNotConnected("the Zoom account is no longer connected")
        return account

    async def access_token(self, account_id: Any, *, force: bool = False) -> str:
        """A valid access token, refreshed (in its own short transaction, row locked on PG)
        when it expires within a minute or ``force`` (after a 401).

        A refresh token Zoom refuses (``invalid_grant``) will never work again: the account is
        marked ``needs_reconnect`` (:meth:`_refused`), and :class:`ZoomReconnect` is raised,
        now and for every later call, without asking Zoom, until the same Zoom user is
        connected again.

        The common case, a token still fresh, is one unlocked read (one round trip), or none
        in a job whose snapshot read the account (:func:`one_job`); only a refresh takes the
        row's lock."""
        if not force:
            known = (_READ_WITH_JOB.get() or {}).get(account_id)
            if known is not None and not known.needs_reconnect and _fresh(known):
                assert known.access_token_enc is not None
                return self.cipher.decrypt(known.access_token_enc)
            async with read_only(self.sessionmaker) as session:
                account = await session.get(ZoomAccount, account_id)
                if account is None:
                    raise ZoomNotConnected("the Zoom account is no longer connected")
                if account.needs_reconnect:
                    raise ZoomReconnect()
                if _fresh(account):
                    assert account.access_token_enc is not None
                    return self.cipher.decrypt(account.access_token_enc)
        async with self.sessionmaker() as session, session.begin():
            account = await self._locked(session, account_id)
            if account.needs_reconnect:
                raise ZoomReconnect()
            used = account.refresh_token_enc
            refused: ZoomError | None = None
            if force or not _fresh(account):
                try:
                    await self._renew(account)
                except (ZoomInvalidGrant, ZoomReconnect) as exc:
                    if account.kind == "s2s":  # credentials, not a token: not a reconnect
                        raise
                    refused = exc  # nothing was changed: this transaction writes nothing
            if refused is None:
                assert account.access_token_enc is not None
                read_with_job(account)  # a token refreshed during a job is the job's from now
                return self.cipher.decrypt(account.access_token_enc)
        return await self._refused(account_id, used, refused)

    async def _refused(self, account_id: Any, used: str | None, refused: ZoomError) -> str:
        """Zoom refused the refresh token ``used``. If another call replaced it meanwhile (two
        refreshes raced where rows are not locked, as on SQLite), that call's token is good:
        use it. Otherwise the connection needs reconnecting: marked and announced (committed),
        then :class:`ZoomReconnect`."""
        async with self.sessionmaker() as session, session.begin():
            account = await self._locked(session, account_id)
            replaced = account.refresh_token_enc != used and account.access_token_enc is not None
            if replaced and not account.needs_reconnect:
                assert account.access_token_enc is not None
                read_with_job(account)
                return self.cipher.decrypt(account.access_token_enc)
            if not account.needs_reconnect:
                account.needs_reconnect = True
                announce(session, account)
        log.warning("zoom_account_needs_reconnect", account_id=str(account_id))
        raise ZoomReconnect() from refused

    # ---- REST --------------------------------------------------------------------------------

    async def call(
        self,
        account_id: Any,
        method: str,
        path: str,
        json: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> httpx.Response:
        url = f"{self.settings.zoom_api_base_url.rstrip('/')}{path}"
        operation = f"{method.upper()} {operation_of(path)}"
        token = await self.access_token(account_id)
        for attempt in range(2):
            try:
                response = await self.http.request(
                    method,
                    url,
                    json=json,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.HTTPError as exc:
                self._observe(operation, _failure(exc))
                lost = self._transport_error(exc)
                lost.uncertain = lost.in_flight = not isinstance(exc, _NOT_SENT)
                raise lost from exc
            self._observe(operation, str(response.status_code))
            if response.status_code == 401 and attempt == 0:
                token = await self.access_token(account_id, force=True)
                continue
            if response.status_code >= 400:
                error = classify(response)
                error.uncertain = response.status_code >= 500  # it may have done the work
                error.in_flight = response.status_code in (502, 504)  # a gateway gave up
                raise error
            return response
        raise ZoomFatal("Zoom refused the refreshed token", 401)

    def _transport_error(self, exc: httpx.HTTPError) -> ZoomRetryable:
        if isinstance(exc, httpx.TimeoutException):
            error = ZoomRetryable(f"Zoom timed out ({type(exc).__name__})")
            # the request may still land: wait at least one timeout before looking again
            error.min_delay = self.settings.zoom_http_timeout
            return error
        return ZoomRetryable(f"Zoom unreachable ({type(exc).__name__})")
