"""What real admins and users do, across the real processes (issue "Real admins, real people"):
sessions deleted under people, imports of people the service never saw, names that collide
across locales, join links for seat holders only, rules at their edges."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest

from te_testing.api import ok
from te_testing.clock import days_from_now, iso
from te_testing.polling import eventually
from te_testing.system import System, active_event, create_day, online_day, zoom_company, zoom_day

pytestmark = pytest.mark.e2e


async def real_event(
    system: System, company: str, names: list[str], **session: Any
) -> tuple[str, dict[str, str]]:
    """An active dated event with one session per name (each with an online day), known to
    registration; returns the event id and the session ids by name."""
    event = await active_event(
        system,
        company,
        title="Real",
        dated=True,
        sessions=[
            {
                "name": name,
                "registration_end": iso(days_from_now(3)),
                **session,
                "days": [online_day(days_from_now(5 + n, 9), days_from_now(5 + n, 10))],
            }
            for n, name in enumerate(names)
        ],
    )
    return event.id, event.sessions


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
        event_id, ids = await real_event(
            system,
            company,
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


async def import_csv(reg: httpx.AsyncClient, event_id: str, text: str) -> httpx.Response:
    return await reg.post(
        f"/v1/events/{event_id}/enrollments/import",
        files={"file": ("people.csv", text.encode(), "text/csv")},
    )


async def listed(reg: httpx.AsyncClient, event_id: str) -> list[dict[str, Any]]:
    page = await ok(await reg.get(f"/v1/events/{event_id}/enrollments"))
    return list(page["items"])


async def test_r_enr_5_an_hr_export_of_people_never_seen_is_imported_and_bound_on_sign_in(
    system: System,
) -> None:
    """R-ENR-4, R-ENR-5 ruling: rows naming people by an e-mail nobody has signed in with are
    enrolled for that e-mail (approved, seat taken); re-importing changes nothing; the first
    token of the company carrying the e-mail (any case) binds the enrollment to its user in
    that very request (their tabs, access, the admin's list shows their id); two first
    requests at once bind it once; the same person named by id afterwards is unchanged."""
    company = "real-hr"
    admin = system.admin(company)
    event_id, ids = await real_event(
        system, company, ["Daytime", "Evening"], limit_enabled=True, participant_limit=5
    )
    async with system.client(system.registration, admin) as reg:
        export = "email,session\nNew.Person@Corp.io,Daytime\nsecond@corp.io,evening\n"
        first = await import_csv(reg, event_id, export)
        assert first.status_code == 200, first.text
        assert first.json() == {"imported": 2, "unchanged": 0}
        items = await listed(reg, event_id)
        assert {(e["email"], e["user_id"], e["status"]) for e in items} == {
            ("new.person@corp.io", None, "approved"),
            ("second@corp.io", None, "approved"),
        }
        seats = await ok(await reg.get(f"/v1/sessions/{ids['Daytime']}/seats"))
        assert seats["taken"] == 1
        again = await ok(await import_csv(reg, event_id, export))
        assert again == {"imported": 0, "unchanged": 2}

        # the person signs in for the first time: their token's e-mail (another case) binds it
        token = system.token(role="user", company=company, user="np-1", email="NEW.person@corp.IO")
        async with system.client(system.registration, token) as person:
            tab = await ok(await person.get("/v1/me/events", params={"tab": "participating"}))
            assert [e["id"] for e in tab["items"]] == [event_id]
            assert tab["items"][0]["enrollment"]["status"] == "approved"
            mine = await ok(await person.get(f"/v1/me/events/{event_id}"))
            assert [s["id"] for s in mine["sessions"]] == [ids["Daytime"]]
        bound = next(e for e in await listed(reg, event_id) if e["email"] == "new.person@corp.io")
        assert bound["user_id"] == "np-1"
        assert "bound to user np-1" in bound["history"][-1]["reason"]
        # the same person named by id, or by e-mail again: nothing changes
        assert await ok(await import_csv(reg, event_id, export)) == {"imported": 0, "unchanged": 2}
        by_id = await ok(await import_csv(reg, event_id, "user_id,session\nnp-1,Daytime\n"))
        assert by_id == {"imported": 0, "unchanged": 1}

        # two first requests at once bind it once
        token2 = system.token(role="user", company=company, user="sc-2", email="second@corp.io")
        async with system.client(system.registration, token2) as second:
            answers = await asyncio.gather(
                second.get("/v1/me/events", params={"tab": "participating"}),
                second.get(f"/v1/me/events/{event_id}"),
            )
        assert [a.status_code for a in answers] == [200, 200]
        twice = next(e for e in await listed(reg, event_id) if e["email"] == "second@corp.io")
        assert twice["user_id"] == "sc-2"
        assert sum("bound to user" in (h["reason"] or "") for h in twice["history"]) == 1

        # another company's token with the same e-mail binds nothing here
        stranger = system.token(role="user", company="real-other", user="x", email="third@corp.io")
        await ok(await import_csv(reg, event_id, "email,session\nthird@corp.io,Evening\n"))
        async with system.client(system.registration, stranger) as other:
            await ok(await other.get("/v1/me/events", params={"tab": "participating"}))
        third = next(e for e in await listed(reg, event_id) if e["email"] == "third@corp.io")
        assert third["user_id"] is None


async def test_r_enr_4_admin_enrolls_by_email_alone_then_cancels_and_moves_the_person(
    system: System,
) -> None:
    company = "real-by-email"
    admin = system.admin(company)
    event_id, ids = await real_event(system, company, ["Daytime", "Evening"])
    async with system.client(system.registration, admin) as reg:
        url = f"/v1/events/{event_id}/enrollments"
        made = await ok(
            await reg.post(url, json={"email": "Solo@Corp.io", "session_id": ids["Daytime"]}), 201
        )
        assert made["user_id"] is None
        same = await reg.post(url, json={"email": "solo@corp.io", "session_id": ids["Daytime"]})
        assert (same.status_code, same.json()["id"]) == (200, made["id"])  # nothing changed
        moved = await reg.post(url, json={"email": "solo@corp.io", "session_id": ids["Evening"]})
        assert moved.status_code == 409  # like anyone: one session per event
        assert moved.json()["code"] == "already_enrolled"
        neither = await reg.post(url, json={"session_id": ids["Daytime"]})
        assert neither.status_code == 422
        cancelled = await ok(
            await reg.patch(f"/v1/enrollments/{made['id']}", json={"status": "cancelled"})
        )
        assert cancelled["status"] == "cancelled"
        again = await ok(
            await reg.post(url, json={"email": "solo@corp.io", "session_id": ids["Evening"]}), 201
        )
        assert again["session_id"] == ids["Evening"]


async def test_r_enr_5_a_session_name_shared_across_locales_is_a_row_error(
    system: System,
) -> None:
    """R-SES-3 allows one session's name in one locale to be another's in another locale; an
    import row naming it is an error naming both candidates, never a silent pick."""
    company = "real-locales"
    admin = system.admin(company)
    async with (
        system.client(system.catalog, admin) as cat,
        system.client(system.registration, admin) as reg,
    ):
        await ok(await cat.put("/v1/company/settings", json={"locales": ["en", "de"]}))
        event_id, ids = await real_event(system, company, ["First", "Second"])
        await ok(
            await cat.patch(
                f"/v1/sessions/{ids['First']}", json={"name": {"en": "Morning", "de": "Früh"}}
            )
        )
        await ok(
            await cat.patch(
                f"/v1/sessions/{ids['Second']}", json={"name": {"en": "Evening", "de": "MORNING"}}
            )
        )
        await eventually(
            lambda: reg.get(f"/v1/me/events/{event_id}"),
            lambda r: {s["name"]["en"] for s in r.json()["sessions"]} == {"Morning", "Evening"},
            what="both renamed sessions in registration",
        )
        refused = await import_csv(reg, event_id, "email,session\nx@corp.io,  morning \n")
        (error,) = refused.json()["errors"]
        assert (error["row"], error["column"]) == (2, "session")
        assert ids["First"] in error["reason"]
        assert ids["Second"] in error["reason"]
        assert await listed(reg, event_id) == []
        fine = await ok(await import_csv(reg, event_id, "email,session\nx@corp.io,früh\n"))
        assert fine == {"imported": 1, "unchanged": 0}


async def test_r_enr_5_a_person_imported_by_email_who_never_signs_in_still_attends(
    system: System,
) -> None:
    """R-ENR-11, R-ZOOM-5: the bridge matches a Zoom participant by the e-mail an unbound
    enrollment was made for; registration keeps the attendance under that e-mail and moves the
    enrollment to participated; when the person signs in at last, it is theirs."""
    company = "real-zoom-mail"
    admin = system.admin(company)
    async with (
        system.client(system.catalog, admin) as cat,
        system.client(system.registration, admin) as reg,
        system.client(system.bridge, admin) as bridge,
        system.client(system.sim) as sim,
    ):
        account_id = await zoom_company(system, company)
        event_id, ids = await real_event(system, company, ["Online"])
        start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=6)
        day = await create_day(
            cat, ids["Online"], zoom_day(start, start + dt.timedelta(hours=1), account_id)
        )
        await ok(await import_csv(reg, event_id, "email,session\nGhost@Corp.io,Online\n"))
        meeting = await eventually(
            lambda: bridge.get(f"/v1/days/{day['id']}/meeting"),
            lambda r: r.status_code == 200 and r.json()["status"] == "created",
            what="the day's meeting",
        )
        zoom_id = meeting.json()["zoom_meeting_id"]

        async def joined() -> dict[str, Any]:
            answer = await ok(
                await sim.post(f"/_sim/meetings/{zoom_id}/join", json={"email": "ghost@corp.io"})
            )
            return dict(answer)

        # the enrollment reaches the bridge through the broker; join once it has
        await eventually(
            lambda: listed(reg, event_id),
            lambda items: len(items) == 1,
            what="the import listed",
        )
        attended = await eventually(
            lambda: _join_then_list(joined, reg, event_id),
            lambda items: items[0]["status"] == "participated",
            what="attendance matched by e-mail (R-ENR-11)",
        )
        assert attended[0]["user_id"] is None
        assert attended[0]["attendance"][0]["joined"] is True
        token = system.token(role="user", company=company, user="ghost-1", email="ghost@corp.io")
        async with system.client(system.registration, token) as ghost:
            tab = await ok(await ghost.get("/v1/me/events", params={"tab": "participating"}))
            assert tab["items"][0]["enrollment"]["status"] == "participated"
        (mine,) = await listed(reg, event_id)
        assert mine["user_id"] == "ghost-1"
        assert mine["attendance"][0]["joined"] is True  # moved with the binding


async def _join_then_list(join: Any, reg: httpx.AsyncClient, event_id: str) -> list[dict[str, Any]]:
    items = await listed(reg, event_id)
    if items and items[0]["status"] != "participated":
        await join()
        await asyncio.sleep(0.5)
        items = await listed(reg, event_id)
    return items
