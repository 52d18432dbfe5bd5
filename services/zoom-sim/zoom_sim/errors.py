"""Zoom-shaped errors: REST API errors (`{code, message}`) and OAuth errors (`{reason, error}`)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response


class ZoomAPIError(Exception):
    """An error answered by the REST API as Zoom does: ``{"code": int, "message": str}``."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


class OAuthError(Exception):
    """An error answered by /oauth/* as Zoom does: ``{"reason": str, "error": str}``."""

    def __init__(self, status: int, error: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason


def meeting_not_found(ref: object) -> ZoomAPIError:
    return ZoomAPIError(404, 3001, f"Meeting does not exist: {ref}.")


def invalid_token(expired: bool = False) -> ZoomAPIError:
    message = "Access token is expired." if expired else "Invalid access token."
    return ZoomAPIError(401, 124, message)


def validation_failed(errors: list[dict[str, str]]) -> ZoomAPIError:
    return ZoomAPIError(400, 300, "Validation Failed.", errors=errors)


DAILY_LIMIT_MESSAGE = (
    "You have exceeded the daily rate limit of API requests permitted for this account. You "
    "may resume these requests at the time in Retry-After."
)
QPS_MESSAGE = "You have reached the maximum per-second rate limit for this API. Try again later."


def meeting_daily_limit_message(limit: int) -> str:
    """Zoom's answer when a user's meeting creates or updates for the day are used up
    (devforum.zoom.us/t/18928)."""
    return (
        f"You have exceeded the daily rate limit ({limit}) of Meeting Create/Update API requests "
        "permitted for this particular user. You may resume these requests at GMT 00:00:00."
    )


def zoom_message(code: int, *, account_id: str = "", ref: str = "") -> str | None:
    """Zoom's message for an error ``code`` the simulator knows, else None."""
    messages = {
        124: "Invalid access token.",
        200: f"Only available for Paid or ZMP account: {account_id}.",
        300: "Validation Failed.",
        3001: f"Meeting does not exist: {ref}.",
        4711: "Invalid access token, does not contain scopes:[report:read:admin].",
    }
    return messages.get(code)


def fault_body(
    status: int,
    *,
    daily: bool = False,
    zoom_code: int | None = None,
    message: str | None = None,
    account_id: str = "",
    ref: str = "",
) -> dict[str, Any]:
    """Body of an injected fault, shaped like Zoom's error for that status (``daily``: the 429 of
    a daily limit rather than the per-second one), with ``zoom_code`` as its ``code`` when given
    (e.g. 4711, a missing scope, or 200, the free plan's answer)."""
    code = zoom_code if zoom_code is not None else (124 if status == 401 else status)
    if message is None:
        if code == 429:
            message = DAILY_LIMIT_MESSAGE if daily else QPS_MESSAGE
        else:
            message = zoom_message(code, account_id=account_id, ref=ref)
    if message is None:
        try:
            message = HTTPStatus(status).phrase
        except ValueError:
            message = "Error"
    return {"code": code, "message": message}


async def zoom_api_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ZoomAPIError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def oauth_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)
    return JSONResponse(
        {"reason": exc.reason, "error": exc.error},
        status_code=exc.status,
        headers={"Cache-Control": "no-store"},
    )
