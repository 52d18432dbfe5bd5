"""Security matrix over every endpoint of the three services (R-ERR-1): no token and bad tokens
get 401, the user role on admin endpoints gets 403, and none of them ever returns data.

Endpoints are discovered from each app's routes, so a new endpoint is covered automatically; the
ones that take no bearer token (health, docs, Zoom's webhook and OAuth redirect) are listed.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from catalog.app import create_app as create_catalog
from catalog.settings import CatalogSettings
from registration.app import create_app as create_registration
from registration.settings import RegistrationSettings
from te_shared.auth import admin_principal, current_principal
from te_shared.testing import DatabaseFactory, RabbitNamespace, running_app, settings_for
from zoom_bridge.app import create_app as create_bridge
from zoom_bridge.settings import ZoomBridgeSettings

FACTORIES: dict[str, tuple[Callable[..., FastAPI], type[Any]]] = {
    "catalog": (create_catalog, CatalogSettings),
    "registration": (create_registration, RegistrationSettings),
    "zoom-bridge": (create_bridge, ZoomBridgeSettings),
}


def _calls(dependant: Dependant) -> set[Any]:
    found = {dependant.call}
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def api_routes(routes: list[Any], prefix: str = "") -> list[tuple[str, APIRoute]]:
    """Every APIRoute with its full path, through included routers (FastAPI keeps them nested)."""
    found: list[tuple[str, APIRoute]] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append((prefix + route.path, route))
        elif hasattr(route, "original_router"):
            inner_prefix = prefix + (route.include_context.prefix or "")
            found += api_routes(route.original_router.routes, inner_prefix)
    return found


def protected_routes(app: FastAPI) -> list[tuple[str, str, bool]]:
    """(method, path with ids filled in, admin only) for every bearer-protected route."""
    routes = []
    for full_path, route in api_routes(app.routes):
        calls = _calls(route.dependant)
        if current_principal not in calls:
            continue
        path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), full_path)
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            routes.append((method, path, admin_principal in calls))
    return routes


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    base = {
        "sub": "u1",
        "company_id": "acme",
        "role": "admin",
        "aud": "training-events",
        "exp": int(time.time()) + 600,
    }
    return base | overrides


BAD_TOKENS = {
    "none": None,
    "garbage": "abc.def.ghi",
    "expired": jwt.encode(claims(exp=int(time.time()) - 600), "dev-secret", algorithm="HS256"),
    "wrong-key": jwt.encode(claims(), "not-the-secret", algorithm="HS256"),
    "alg-none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}.",
    "wrong-audience": jwt.encode(claims(aud="other"), "dev-secret", algorithm="HS256"),
}


@pytest.fixture(scope="module", params=list(FACTORIES))
async def service(
    request: pytest.FixtureRequest, databases: DatabaseFactory, rabbit: RabbitNamespace
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    factory, settings_cls = FACTORIES[request.param]
    app = factory(settings_for(settings_cls, await databases.create("sec"), rabbit))
    async with running_app(app) as client:
        yield app, client


def assert_refused(response: httpx.Response, status: int, what: str) -> None:
    assert response.status_code == status, f"{what}: {response.status_code} {response.text[:200]}"
    assert response.headers["content-type"].startswith("application/problem+json"), what
    body = response.json()
    assert set(body) <= {"type", "title", "status", "detail", "instance", "code", "errors"}, what


async def test_every_protected_endpoint_refuses_missing_and_bad_tokens(
    service: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = service
    routes = protected_routes(app)
    assert routes, "no protected routes found"
    for method, path, _ in routes:
        for name, token in BAD_TOKENS.items():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = await client.request(method, path, headers=headers, json={})
            assert_refused(response, 401, f"{method} {path} with {name} token")


async def test_user_role_gets_403_on_every_admin_endpoint(
    service: tuple[FastAPI, httpx.AsyncClient], token: Callable[..., str]
) -> None:
    app, client = service
    user = {"Authorization": f"Bearer {token(role='user', company='acme')}"}
    admin_routes = [(m, p) for m, p, admin in protected_routes(app) if admin]
    for method, path in admin_routes:
        response = await client.request(method, path, headers=user, json={})
        assert_refused(response, 403, f"{method} {path} as user")


async def test_unknown_ids_answer_404_not_500(
    service: tuple[FastAPI, httpx.AsyncClient], token: Callable[..., str]
) -> None:
    """Ids that do not exist in the caller's company (or belong to another) are 404, never data."""
    app, client = service
    admin = {"Authorization": f"Bearer {token(role='admin', company='nobody-here')}"}
    for method, path, _ in protected_routes(app):
        if method != "GET" or path.count("-") < 4:  # only reads of a specific resource
            continue
        response = await client.get(path, headers=admin)
        assert response.status_code in (404, 422), f"GET {path}: {response.status_code}"
