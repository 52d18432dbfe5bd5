"""Security matrix over every endpoint of the four services (R-ERR-1): no token and bad tokens
get 401, the user role on admin endpoints gets 403, and none of them ever returns data.

Endpoints are discovered from each app's routes, so a new endpoint is covered automatically. The
ones that take no bearer token (health, metrics, docs, Zoom's webhook and OAuth redirect) are an
explicit allow-list: any other route without ``current_principal`` fails the matrix. Another
company's ids are proven against the real processes in ``test_cross_company.py``.
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
from starlette.routing import BaseRoute, Mount

from catalog.app import create_app as create_catalog
from catalog.settings import CatalogSettings
from integrations.app import create_app as create_integrations
from integrations.settings import IntegrationsSettings
from registration.app import create_app as create_registration
from registration.settings import RegistrationSettings
from te_shared.auth import admin_principal, current_principal
from te_testing.infra import DatabaseFactory, RabbitNamespace, running_app, settings_for
from zoom_bridge.app import create_app as create_bridge
from zoom_bridge.settings import ZoomBridgeSettings

FACTORIES: dict[str, tuple[Callable[..., FastAPI], type[Any]]] = {
    "catalog": (create_catalog, CatalogSettings),
    "registration": (create_registration, RegistrationSettings),
    "zoom-bridge": (create_bridge, ZoomBridgeSettings),
    "integrations": (create_integrations, IntegrationsSettings),
}


#: Routes that take no bearer token, per service: (method, path). Everything else needs one.
DOCS = {
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("GET", "/asyncapi.json"),
}
OPERATIONS = {("GET", "/health/live"), ("GET", "/health/ready"), ("GET", "/metrics")}
PUBLIC: dict[str, set[tuple[str, str]]] = {
    "catalog": DOCS | OPERATIONS,
    "registration": DOCS
    | OPERATIONS
    | {("GET", "/v1/calendar/{token}.ics")},  # a calendar app's feed: its token is the credential
    "zoom-bridge": DOCS
    | OPERATIONS
    | {
        ("POST", "/v1/zoom/webhooks"),  # Zoom signs it (R-ZOOM-4)
        ("GET", "/v1/zoom/oauth/callback"),  # Zoom's redirect; the state ties it to the admin
    },
    "integrations": DOCS | OPERATIONS,
}


def _calls(dependant: Dependant) -> set[Any]:
    found = {dependant.call}
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def all_routes(routes: list[BaseRoute], prefix: str = "") -> list[tuple[str, BaseRoute]]:
    """Every route with its full path, through included routers (FastAPI keeps them nested)
    and mounts; a mount with no routes of its own (static files, a sub-app) is returned as is."""
    found: list[tuple[str, BaseRoute]] = []
    for route in routes:
        if hasattr(route, "original_router"):  # FastAPI's _IncludedRouter, not public
            included: Any = route
            inner_prefix = prefix + (included.include_context.prefix or "")
            found += all_routes(included.original_router.routes, inner_prefix)
        elif isinstance(route, Mount) and route.routes:
            found += all_routes(list(route.routes), prefix + route.path)
        else:
            found.append((prefix + getattr(route, "path", ""), route))
    return found


def api_routes(routes: list[Any], prefix: str = "") -> list[tuple[str, APIRoute]]:
    return [(p, r) for p, r in all_routes(routes, prefix) if isinstance(r, APIRoute)]


def methods_of(route: BaseRoute) -> list[str]:
    return sorted(set(getattr(route, "methods", None) or {"*"}) - {"HEAD", "OPTIONS"})


def unauthenticated(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route that does not depend on ``current_principal``."""
    found: set[tuple[str, str]] = set()
    for full_path, route in all_routes(app.routes):
        if isinstance(route, APIRoute) and current_principal in _calls(route.dependant):
            continue
        found |= {(method, full_path) for method in methods_of(route)}
    return found


def protected_routes(app: FastAPI) -> list[tuple[str, str, bool]]:
    """(method, path with ids filled in, admin only) for every bearer-protected route."""
    routes = []
    for full_path, route in api_routes(app.routes):
        calls = _calls(route.dependant)
        if current_principal not in calls:
            continue  # allow-listed, or refused by test_only_allow_listed_routes_take_no_token
        path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), full_path)
        for method in methods_of(route):
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


def signed_without(*names: str, **overrides: Any) -> str:
    """A token with a valid signature, audience and expiry whose identity claims are wrong."""
    body = {k: v for k, v in claims(**overrides).items() if k not in names}
    return jwt.encode(body, "dev-secret", algorithm="HS256")


BAD_TOKENS = {
    "none": None,
    "garbage": "abc.def.ghi",
    "expired": jwt.encode(claims(exp=int(time.time()) - 600), "dev-secret", algorithm="HS256"),
    "wrong-key": jwt.encode(claims(), "not-the-secret", algorithm="HS256"),
    "alg-none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}.",
    "wrong-audience": jwt.encode(claims(aud="other"), "dev-secret", algorithm="HS256"),
    # a valid signature does not make a principal: company, subject and role are all required
    "no-company": signed_without("company_id"),
    "empty-company": signed_without(company_id=""),
    "numeric-company": signed_without(company_id=42),
    "no-sub": signed_without("sub"),
    "empty-sub": signed_without(sub=""),
    "no-role": signed_without("role"),
    "bogus-role": signed_without(role="superadmin"),
    "role-case": signed_without(role="Admin"),
}


@pytest.fixture(scope="module", params=list(FACTORIES))
async def service(
    request: pytest.FixtureRequest, databases: DatabaseFactory, rabbit: RabbitNamespace
) -> AsyncIterator[tuple[str, FastAPI, httpx.AsyncClient]]:
    factory, settings_cls = FACTORIES[request.param]
    app = factory(settings_for(settings_cls, await databases.create("sec"), rabbit))
    async with running_app(app) as client:
        yield request.param, app, client


def assert_refused(response: httpx.Response, status: int, what: str) -> None:
    assert response.status_code == status, f"{what}: {response.status_code} {response.text[:200]}"
    assert response.headers["content-type"].startswith("application/problem+json"), what
    body = response.json()
    assert set(body) <= {"type", "title", "status", "detail", "instance", "code", "errors"}, what


async def test_every_protected_endpoint_refuses_missing_and_bad_tokens(
    service: tuple[str, FastAPI, httpx.AsyncClient],
) -> None:
    _, app, client = service
    routes = protected_routes(app)
    assert routes, "no protected routes found"
    for method, path, _ in routes:
        for name, token in BAD_TOKENS.items():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = await client.request(method, path, headers=headers, json={})
            assert_refused(response, 401, f"{method} {path} with {name} token")


async def test_user_role_gets_403_on_every_admin_endpoint(
    service: tuple[str, FastAPI, httpx.AsyncClient], token: Callable[..., str]
) -> None:
    _, app, client = service
    user = {"Authorization": f"Bearer {token(role='user', company='acme')}"}
    admin_routes = [(m, p) for m, p, admin in protected_routes(app) if admin]
    for method, path in admin_routes:
        response = await client.request(method, path, headers=user, json={})
        assert_refused(response, 403, f"{method} {path} as user")


async def test_only_allow_listed_routes_take_no_token(
    service: tuple[str, FastAPI, httpx.AsyncClient],
) -> None:
    """A route without ``current_principal`` is a hole unless it is meant to be public."""
    name, app, client = service
    open_routes = unauthenticated(app)
    unexpected = open_routes - PUBLIC[name]
    assert not unexpected, f"{name}: routes without a bearer token: {sorted(unexpected)}"
    stale = PUBLIC[name] - open_routes
    assert not stale, f"{name}: allow-listed routes that no longer exist: {sorted(stale)}"
    for method, path in sorted(OPERATIONS | (DOCS - {("GET", "/docs/oauth2-redirect")})):
        response = await client.request(method, path)
        assert response.status_code == 200, f"{name} {method} {path}: {response.status_code}"


async def test_unknown_ids_answer_404(
    service: tuple[str, FastAPI, httpx.AsyncClient], token: Callable[..., str]
) -> None:
    """Ids that exist nowhere are 404 on reads (another company's real ids: test_cross_company)."""
    _, app, client = service
    admin = {"Authorization": f"Bearer {token(role='admin', company='nobody-here')}"}
    reads = [(m, p) for m, p, _ in protected_routes(app) if m == "GET" and p.count("-") >= 4]
    assert reads
    for _, path in reads:
        response = await client.get(path, headers=admin)
        assert_refused(response, 404, f"GET {path}")
