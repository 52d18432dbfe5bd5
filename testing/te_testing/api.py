"""Talking to a service's HTTP API in a test."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def ok(response: httpx.Response, status: int = 200) -> Any:
    """``response`` answered ``status`` (else an ``AssertionError`` naming the request and the
    answer); its JSON body, ``None`` when it has none. Awaitable, so that it reads in a line
    with the request: ``await ok(await client.get(...))``."""
    if response.status_code != status:
        raise AssertionError(
            f"{response.request.method} {response.request.url}: expected {status}, got "
            f"{response.status_code}: {response.text[:500]}"
        )
    return response.json() if response.content else None


def assert_readme_lists_the_api(readme: Path, app: FastAPI) -> None:
    """A service README's endpoint table (rows starting ``| `METHOD /v1/...` ``) names exactly
    the ``/v1`` endpoints the app serves, so the README cannot drift from the OpenAPI."""
    documented = set(
        re.findall(r"^\| `(GET|POST|PUT|PATCH|DELETE) (/v1/[^`]+)`", readme.read_text(), re.M)
    )
    served = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/v1/")
        for method in operations
    }
    assert documented == served, {
        "in the README only": sorted(documented - served),
        "served only": sorted(served - documented),
    }
