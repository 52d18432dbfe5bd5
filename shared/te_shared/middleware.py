"""ASGI middleware: correlation ids, a request body size limit (pure ASGI, streaming-safe) and
the refusal of NUL characters in JSON bodies."""

from __future__ import annotations

import json
import re
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from te_shared.errors import PROBLEM_JSON
from te_shared.logging import correlation_id_var

CORRELATION_HEADER = "x-correlation-id"
_VALID_CID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class CorrelationIdMiddleware:
    """Takes ``X-Correlation-ID`` from the request (or makes one) and echoes it on the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(CORRELATION_HEADER.encode(), b"").decode("latin-1")
        cid = incoming if _VALID_CID.match(incoming) else str(uuid.uuid4())
        token = correlation_id_var.set(cid)
        scope.setdefault("state", {})["correlation_id"] = cid  # for the outermost 500 handler
        structlog.contextvars.bind_contextvars(correlation_id=cid)

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((CORRELATION_HEADER.encode(), cid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_header)
        finally:
            structlog.contextvars.unbind_contextvars("correlation_id", "company_id")
            correlation_id_var.reset(token)


#: A JSON escape for NUL (a backslash, then u0000) not itself escaped: a cheap first look.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _is_json(scope: Scope) -> bool:
    header: bytes = dict(scope["headers"]).get(b"content-type", b"")
    content_type = header.split(b";")[0].strip().lower()
    return content_type == b"application/json" or content_type.endswith(b"+json")


def nul_paths(value: object, path: str = "body", limit: int = 20) -> list[str]:
    """Dotted paths (``body.user_ids.1``, as validation errors name fields) of the strings in a
    parsed JSON document that hold NUL, in keys or values."""
    found: list[str] = []

    def walk(node: object, where: str) -> None:
        if len(found) >= limit:
            return
        if isinstance(node, str):
            if "\x00" in node:
                found.append(where)
        elif isinstance(node, dict):
            for key, item in node.items():
                if "\x00" in key:
                    found.append(where)
                walk(item, f"{where}.{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{where}.{index}")

    walk(value, path)
    return found


class JsonNulMiddleware:
    """Answers 422 for a JSON body holding a NUL character in any string, naming the fields: no
    database stores NUL in text (PostgreSQL refuses it), so it must not get past request
    parsing. Sits inside :class:`BodySizeLimitMiddleware`, which bounds what is buffered here.
    A raw NUL byte is not valid JSON, so the app's own parsing refuses that one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        fields: list[str] = []
        if _JSON_NUL.search(body):
            try:
                fields = nul_paths(json.loads(body))
            except (ValueError, RecursionError):
                fields = []  # not JSON (or absurdly deep): the app answers that itself
        if fields:
            message_text = "NUL (\\u0000) is not allowed in text."
            await _send_problem(
                send,
                422,
                {
                    "type": "urn:problem:validation_error",
                    "title": "Unprocessable Content",
                    "status": 422,
                    "detail": "The request is not valid.",
                    "instance": scope.get("path"),
                    "code": "validation_error",
                    "errors": [
                        {"field": field, "message": message_text, "code": "nul_character"}
                        for field in fields
                    ],
                },
            )
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body}], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _send_problem(send: Send, status: int, problem: dict[str, object]) -> None:
    body = json.dumps(problem).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """Answers 413 (problem details) for bodies above ``max_bytes``, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(scope, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        await _send_problem(
            send,
            413,
            {
                "type": "urn:problem:payload_too_large",
                "title": "Content Too Large",
                "status": 413,
                "detail": f"The request body is larger than {self.max_bytes} bytes.",
                "instance": scope.get("path"),
                "code": "payload_too_large",
            },
        )
