"""Every endpoint and dependency of every service is ``async``.

FastAPI runs a plain ``def`` endpoint or dependency in its thread pool: a hand-off to a worker
thread and back on every request. One such dependency (the runtime, a one-line attribute read)
cost the sign-up storm about a tenth of its time in the profile; this keeps it from returning.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from catalog.app import create_app as create_catalog
from catalog.settings import CatalogSettings
from integrations.app import create_app as create_integrations
from integrations.settings import IntegrationsSettings
from registration.app import create_app as create_registration
from registration.settings import RegistrationSettings
from te_testing.infra import DatabaseFactory, RabbitNamespace, settings_for
from tests.security.test_auth_matrix import api_routes
from zoom_bridge.app import create_app as create_bridge
from zoom_bridge.settings import ZoomBridgeSettings
from zoom_sim.app import create_app as create_sim

SERVICES: dict[str, tuple[Callable[..., FastAPI], type[Any]]] = {
    "catalog": (create_catalog, CatalogSettings),
    "registration": (create_registration, RegistrationSettings),
    "zoom-bridge": (create_bridge, ZoomBridgeSettings),
    "integrations": (create_integrations, IntegrationsSettings),
}


def is_async(call: Any) -> bool:
    """What FastAPI awaits in the event loop: a coroutine or async generator function, or an
    object whose ``__call__`` is one (``HTTPBearer``)."""
    for candidate in (call, getattr(call, "__call__", None)):  # noqa: B004
        if inspect.iscoroutinefunction(candidate) or inspect.isasyncgenfunction(candidate):
            return True
    return False


def thread_hops(dependant: Dependant, route: str) -> list[str]:
    found = []
    if dependant.call is not None and not is_async(dependant.call):
        found.append(f"{route}: {getattr(dependant.call, '__qualname__', dependant.call)}")
    for sub in dependant.dependencies:
        found += thread_hops(sub, route)
    return found


def hops_in(app: FastAPI) -> list[str]:
    found: list[str] = []
    for path, route in api_routes(app.routes):
        name = f"{sorted(route.methods or ())} {path}"
        found += thread_hops(route.dependant, name)
    return sorted(set(found))


@pytest.mark.parametrize("service", list(SERVICES))
async def test_no_endpoint_or_dependency_runs_in_the_thread_pool(
    service: str, databases: DatabaseFactory, rabbit: RabbitNamespace
) -> None:
    factory, settings_cls = SERVICES[service]
    app = factory(settings_for(settings_cls, await databases.create("hops"), rabbit))
    assert hops_in(app) == [], f"{service}: run in FastAPI's thread pool"


def test_the_simulator_runs_nothing_in_the_thread_pool() -> None:
    """The simulator's state is not guarded for threads: nothing of it may run in one."""
    assert hops_in(create_sim()) == []


def plain() -> int:
    """A dependency FastAPI hands to its thread pool (module level: the annotations below are
    strings, resolved in the module's namespace)."""
    return 1


def test_the_check_sees_a_plain_function() -> None:
    app = FastAPI()

    @app.get("/x")
    async def x(value: Annotated[int, Depends(plain)]) -> int:
        return value

    assert [r for r in app.routes if isinstance(r, APIRoute)]
    assert hops_in(app) == ["['GET'] /x: plain"]
