"""The HTTP call of one attempt.

Connections go through :class:`GuardedBackend`: the host is resolved and every address checked
(:mod:`integrations.delivery.targets`) when the connection is made, and the connection goes to
an address that was checked, so a name that resolves elsewhere between a check and a connect
(DNS rebinding) reaches nothing internal. TLS still verifies the certificate against the URL's
host name. Redirects are never followed (a 3xx is a failed attempt), no proxy from the
environment is used, the whole attempt is bounded by ``timeout``, and at most
``excerpt_bytes`` of the answer are read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
from httpcore._backends.auto import AutoBackend

from integrations.delivery.targets import (
    Resolver,
    TargetPolicy,
    TargetRefused,
    check_addresses,
    parse_url,
    resolve,
    system_resolver,
)
from te_shared.retry_after import parse_retry_after

USER_AGENT = "training-events-webhooks/1.0"
_REFUSED = "target refused: "


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the policy allows, resolved at connection time."""

    def __init__(self, policy: TargetPolicy, resolver: Resolver = system_resolver) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = AutoBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = check_addresses(
                await resolve(host, port, self._resolver, timeout or 5.0), self._policy
            )
        except TargetRefused as exc:
            raise httpcore.ConnectError(_REFUSED + exc.reason) from exc
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError(_REFUSED + "unix sockets are not targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over :class:`GuardedBackend` (httpx takes no network backend, so the
    connection pool is replaced by one that has it)."""

    def __init__(
        self, policy: TargetPolicy, resolver: Resolver = system_resolver, **kwargs: Any
    ) -> None:
        super().__init__(trust_env=False, **kwargs)
        old: httpcore.AsyncConnectionPool = self._pool
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=old._ssl_context,
            max_connections=old._max_connections,
            max_keepalive_connections=old._max_keepalive_connections,
            keepalive_expiry=old._keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=GuardedBackend(policy, resolver),
        )


def make_client(
    policy: TargetPolicy, resolver: Resolver = system_resolver, max_connections: int = 100
) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=20)
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, resolver, limits=limits),
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": USER_AGENT, "accept-encoding": "identity"},
    )


#: answers whose Retry-After says when to come back (RFC 6585's 429, RFC 9110's 503)
RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class Answer:
    """What one attempt got."""

    status_code: int | None
    duration_ms: int
    error: str | None
    excerpt: str | None
    #: seconds the receiver asked to wait (``Retry-After`` with a 429 or 503), if it did
    retry_after: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


def clean_excerpt(raw: bytes, limit: int) -> str | None:
    """At most ``limit`` bytes of an answer as text a database can store (no NUL)."""
    if not raw or limit <= 0:
        return None
    text = raw[:limit].decode("utf-8", errors="replace")
    return text.replace("\x00", "\ufffd")


def describe_error(exc: BaseException) -> str:
    text = str(exc)
    if _REFUSED in text:
        return text[text.index(_REFUSED) :][:300]
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {text[:200]}" if text else "connection failed"
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


async def send(
    client: httpx.AsyncClient,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    policy: TargetPolicy,
    timeout: float,
    excerpt_bytes: int,
) -> Answer:
    """POST ``body`` to ``url``: never raises (a failure is an :class:`Answer` with an error)."""
    started = time.monotonic()
    status: int | None = None
    raw = b""
    error: str | None = None
    retry_after: float | None = None
    try:
        parse_url(url, policy)  # the scheme rule may have changed since the registration
        async with asyncio.timeout(timeout):
            request = client.build_request(
                "POST", url, headers=dict(headers), content=body, timeout=timeout
            )
            response = await client.send(request, stream=True)
            try:
                status = response.status_code
                if status in RETRY_AFTER_STATUSES:
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                async for chunk in response.aiter_raw():
                    raw += chunk
                    if len(raw) >= excerpt_bytes:
                        break
            finally:
                await response.aclose()
    except TargetRefused as exc:
        error = _REFUSED + exc.reason
    except Exception as exc:  # any failure of the receiver or the network is an attempt's
        error = describe_error(exc)
    if status is not None:
        # the receiver answered: its status is the outcome (a body cut short does not matter)
        error = "redirect not followed" if 300 <= status < 400 else None
    duration_ms = int((time.monotonic() - started) * 1000)
    return Answer(status, duration_ms, error, clean_excerpt(raw, excerpt_bytes), retry_after)
