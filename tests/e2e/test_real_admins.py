"""What real admins and users do, across the real processes (issue "Real admins, real people"):
sessions deleted under people, imports of people the service never saw, names that collide
across locales, join links for seat holders only, rules at their edges."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from te_shared.testing import System, eventually

pytestmark = pytest.mark.e2e


def at(days: float, hour: int = 10) -> str:
    base = dt.datetime.now(dt.UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return (base + dt.timedelta(days=days)).isoformat()


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.url}: {response.text}"
    return response.json() if response.content else None


async def known_to_registration(reg: httpx.AsyncClient, session_id: str) -> None:
    await eventually(
        lambda: reg.get(f"/v1/sessions/{session_id}/seats"),
        lambda r: r.status_code == 200,
        what=f"session {session_id} in registration",
    )


async def active_event(
    cat: httpx.AsyncClient, reg: httpx.AsyncClient, names: list[str], **session: Any
) -> tuple[str, dict[str, str]]:
    """An active dated event with one session per name (each with a day), known to
    registration; returns the event id and the session ids by name."""
    event = await ok(await cat.post("/v1/events", json={"title": "Real", "dated": True}), 201)
    ids: dict[str, str] = {}
    for n, name in enumerate(names):
        created = await ok(
            await cat.post(
                f"/v1/events/{event['id']}/sessions",
                json={"name": name, "registration_end": at(3), **session},
            ),
            201,
        )
        ids[name] = created["id"]
        await ok(
            await cat.post(
                f"/v1/sessions/{created['id']}/days",
                json={
                    "format": "online",
                    "start": at(5 + n, 9),
                    "end": at(5 + n, 10),
                    "url": "https://meet.example.com/x",
                },
            ),
            201,
        )
    await ok(await cat.patch(f"/v1/events/{event['id']}", json={"state": "active"}))
    for session_id in ids.values():
        await known_to_registration(reg, session_id)
    return event["id"], ids


async def test_deleting_a_session_ends_its_enrollments_and_frees_the_people(
    system: System,
) -> None:
    """Ruling (registration README): deleting a session ends its live enrollments (cancelled,
    reason "session deleted", history written, seats freed, waitlist cleared); the users see
    the other sessions again and may sign up for one."""
    company = "real-delete"
    admin = system.admin(company)
    async with (
        system.client(system.catalog, admin) as cat,
        system.client(system.registration, admin) as reg,
        system.client(system.registration, system.user(company, "ann")) as ann,
        system.client(system.registration, system.user(company, "bob")) as bob,
    ):
        event_id, ids = await active_event(
            cat,
            reg,
            ["Daytime", "Evening"],
            limit_enabled=True,
            participant_limit=1,
            waitlist_enabled=True,
        )
        await ok(await reg.put(f"/v1/events/{event_id}/access", json={"user_ids": ["ann", "bob"]}))
        daytime, evening = ids["Daytime"], ids["Evening"]
        first = await ok(await ann.post(f"/v1/sessions/{daytime}/enrollments"), 201)
        second = await ok(await bob.post(f"/v1/sessions/{daytime}/enrollments"), 201)
        assert (first["status"], second["status"]) == ("approved", "waitlisted")
        view = await ok(await ann.get(f"/v1/me/events/{event_id}"))
        assert [s["id"] for s in view["sessions"]] == [daytime]  # R-ENR-2: only her own

        await ok(await cat.delete(f"/v1/sessions/{daytime}"), 204)

        listed = await eventually(
            lambda: reg.get(f"/v1/events/{event_id}/enrollments"),
            lambda r: all(e["status"] == "cancelled" for e in r.json()["items"]),
            what="the deleted session's enrollments ended",
        )
        for item in listed.json()["items"]:
            last = item["history"][-1]
            assert (last["to_status"], last["reason"], last["by"]) == (
                "cancelled",
                "session deleted",
                "system",
            )
        for user in (ann, bob):
            view = await ok(await user.get(f"/v1/me/events/{event_id}"))
            assert [s["id"] for s in view["sessions"]] == [evening]
            assert view["enrollment"] is None
        moved = await ok(await bob.post(f"/v1/sessions/{evening}/enrollments"), 201)
        assert moved["status"] == "approved"
        assert (await ann.post(f"/v1/sessions/{daytime}/enrollments")).status_code == 404
