"""R-ERR-1: every error is RFC 9457 problem details, with the right status and no internals."""

from __future__ import annotations

import json
import uuid
from http import HTTPStatus

import httpx
import pytest
from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field
from starlette.requests import Request

from te_shared.errors import (
    Conflict,
    EverySoOften,
    FieldError,
    Problem,
    ProblemError,
    Unauthorized,
    Unprocessable,
    document_problems,
    field_error,
    install_error_handlers,
    path_of,
    problem_responses,
)
from te_shared.middleware import BodySizeLimitMiddleware, CorrelationIdMiddleware


class Body(BaseModel):
    name: str = Field(min_length=1)
    size: int


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=1024)
    app.add_middleware(CorrelationIdMiddleware)

    @app.post("/things")
    async def create(body: Body) -> dict[str, str]:
        return {"name": body.name}

    @app.post("/conflict")
    async def conflict() -> None:
        raise Conflict("Already there.", code="duplicate", extra={"existing_id": "abc"})

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    return app


def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_validation_error_names_fields() -> None:
    async with client() as c:
        response = await c.post("/things", json={"name": "", "size": "big"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 422
    assert {e["field"] for e in body["errors"]} == {"body.name", "body.size"}


async def test_malformed_json_is_422_not_500() -> None:
    async with client() as c:
        response = await c.post(
            "/things", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert response.status_code == 422
    assert response.json()["errors"]


async def test_domain_error_carries_code_and_extra() -> None:
    async with client() as c:
        response = await c.post("/conflict")
    assert response.status_code == 409
    assert response.json()["code"] == "duplicate"
    assert response.json()["existing_id"] == "abc"


async def test_unknown_route_and_method_are_problems() -> None:
    async with client() as c:
        missing = await c.get("/nowhere")
        wrong_method = await c.delete("/things")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["status"] == 405


async def test_unexpected_error_is_500_without_internals() -> None:
    async with client() as c:
        response = await c.get("/boom", headers={"X-Correlation-ID": "req-42"})
    assert response.status_code == 500
    text = response.text
    assert "hunter2" not in text
    assert "RuntimeError" not in text
    assert "req-42" in response.json()["detail"]


async def test_oversized_body_is_413() -> None:
    async with client() as c:
        response = await c.post(
            "/things", content=b"x" * 5000, headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_correlation_id_is_echoed_or_generated() -> None:
    async with client() as c:
        echoed = await c.post(
            "/things", json={"name": "a", "size": 1}, headers={"X-Correlation-ID": "abc-1"}
        )
        generated = await c.post(
            "/things",
            json={"name": "a", "size": 1},
            headers={"X-Correlation-ID": "bad id with spaces"},
        )
    assert echoed.headers["x-correlation-id"] == "abc-1"
    assert generated.headers["x-correlation-id"] != "bad id with spaces"


async def test_database_outage_is_503_with_retry_after() -> None:
    from sqlalchemy.exc import OperationalError

    app = make_app()

    @app.get("/db-down")
    async def db_down() -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        response = await c.get("/db-down")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.json()["code"] == "database_unavailable"
    assert "SELECT" not in response.text


async def test_a_405_allows_every_method_of_the_path() -> None:
    """Starlette's own 405 names only the methods of the first route whose path matched."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/items/{item_id}")
    async def read(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.patch("/items/{item_id}")
    async def change(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.post("/items/import")
    async def import_items() -> dict[str, int]:
        return {}

    async def call(method: str, path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.request(method, path)

    wrong = await call("DELETE", "/items/1")
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET, PATCH")
    # a path of its own wins over a template that would take it (and refuse "import" as an id)
    shadowed = await call("PATCH", "/items/import")
    assert (shadowed.status_code, shadowed.headers["allow"]) == (405, "POST")
    assert (await call("PATCH", "/items/x")).status_code == 422


def test_the_openapi_states_every_problem_as_problem_details() -> None:
    app = make_app()

    @app.get("/plain/{thing_id}", responses=problem_responses(404))
    async def plain(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    document = document_problems(app.openapi())
    create = document["paths"]["/things"]["post"]["responses"]
    assert set(create) == {"200", "400", "413", "422"}
    plain_get = document["paths"]["/plain/{thing_id}"]["get"]["responses"]
    assert set(plain_get) == {"200", "404", "422"}
    for responses in (create, plain_get):
        for status, response in responses.items():
            if status != "200":
                assert list(response["content"]) == ["application/problem+json"], status
    assert "HTTPValidationError" not in document["components"]["schemas"]


@pytest.mark.parametrize(
    "error",
    [
        Conflict("Already there.", code="duplicate", extra={"existing_id": uuid.UUID(int=7)}),
        Conflict(),
        Unauthorized("No token.", code="missing_token"),
        field_error("body.name", "Too long.", code="string_too_long"),
        Unprocessable("Bad.", errors=[FieldError(field="body.size", message="Not a number.")]),
    ],
    ids=["extra", "bare", "titled-by-status", "field-code", "field-without-code"],
)
@pytest.mark.parametrize("instance", ["/v1/things", None])
def test_a_problem_body_is_the_documented_model(error: ProblemError, instance: str | None) -> None:
    """The body, built directly, is the ``Problem`` model's dump (unset fields left out, in its
    order) followed by the error's extra fields as JSON."""
    body = error.to_problem(instance)
    documented = Problem(
        type=f"urn:problem:{error.code}",
        title=HTTPStatus(error.status).phrase,
        status=error.status,
        detail=error.detail,
        instance=instance,
        code=error.code,
        errors=error.errors,
    ).model_dump(exclude_none=True)
    assert body == documented | jsonable_encoder(error.extra)
    assert list(body)[: len(documented)] == list(documented)
    assert json.loads(json.dumps(body)) == body


def test_an_overload_warning_is_written_once_a_second_with_its_count() -> None:
    """``database_busy`` in a storm: a line a second saying how many, not a line a request."""
    now = [100.0]
    every = EverySoOften(every=1.0, clock=lambda: now[0])
    assert every.happened() == 1  # the first is written at once
    assert [every.happened() for _ in range(3)] == [None, None, None]
    now[0] = 100.9
    assert every.happened() is None
    now[0] = 101.0
    assert every.happened() == 5  # the four held back and this one
    now[0] = 105.0
    assert every.happened() == 1  # quiet meanwhile: written at once again


@pytest.mark.parametrize(
    "path",
    ["/v1/sessions/abc/enrollments", "/a b/ü", "/odd?/path#frag", "/back\\slash", "/%3F"],
)
def test_a_problems_instance_is_the_request_urls_path(path: str) -> None:
    """The handler of ProblemError names the path without building the request's URL; it is
    the same ``instance`` as ``request.url.path``, escapes included."""
    scope = {
        "type": "http",
        "path": path,
        "query_string": b"x=1",
        "headers": [(b"host", b"example.test:8080")],
        "scheme": "http",
        "server": ("example.test", 8080),
    }
    assert path_of(scope) == Request(scope).url.path
