"""The seed's journeys across the real processes (catalog → RabbitMQ → registration)."""

from __future__ import annotations

import pytest

from te_testing.api import ok
from te_testing.clock import days_from_now, iso
from te_testing.polling import eventually
from te_testing.system import System, active_event, offline_day
from te_testing.xlsx import written_xlsx

pytestmark = pytest.mark.e2e

R_DAY_8 = (
    "The last day of the session has already arrived. If the user has already set the session "
    'status to "Participated", then after activating the event, they will switch back to the '
    '"Approved" status and see it in the "Participating" tab.'
)


async def test_seed_example_1_user_sees_both_sessions_then_only_the_one_signed_up_for(
    system: System,
) -> None:
    company = "journey-one"
    admin = system.admin(company)
    async with (
        system.client(system.catalog, admin) as cat,
        system.client(system.registration, admin) as reg,
    ):
        event = await ok(
            await cat.post(
                "/v1/events",
                json={"title": "Negotiation skills", "dated": True, "requires_approval": False},
            ),
            201,
        )
        assert event["state"] == "hidden"
        sessions = {}
        for name in ("Daytime", "Evening"):
            sessions[name] = await ok(
                await cat.post(
                    f"/v1/events/{event['id']}/sessions",
                    json={"name": name, "registration_end": iso(days_from_now(3))},
                ),
                201,
            )
        daytime, evening = sessions["Daytime"]["id"], sessions["Evening"]["id"]
        await ok(
            await cat.post(
                f"/v1/sessions/{daytime}/days",
                json={
                    "format": "offline",
                    "start": iso(days_from_now(5, 9)),
                    "end": iso(days_from_now(5, 12)),
                    "address": "Room 4, HQ",
                },
            ),
            201,
        )
        await ok(
            await cat.post(
                f"/v1/sessions/{daytime}/days",
                json={
                    "format": "online",
                    "start": iso(days_from_now(6, 9)),
                    "end": iso(days_from_now(6, 12)),
                    "url": "https://meet.example.com/negotiation",
                },
            ),
            201,
        )
        await ok(
            await cat.post(
                f"/v1/sessions/{evening}/days",
                json={
                    "format": "online",
                    "start": iso(days_from_now(5, 18)),
                    "end": iso(days_from_now(5, 20)),
                    "url": "https://meet.example.com/evening",
                },
            ),
            201,
        )
        await ok(
            await reg.put(f"/v1/events/{event['id']}/access", json={"user_ids": ["alice", "bob"]})
        )
        await ok(await cat.patch(f"/v1/events/{event['id']}", json={"state": "active"}))

    async with system.client(system.registration, system.user(company, "alice")) as alice:
        page = await eventually(
            lambda: alice.get("/v1/me/events", params={"tab": "available"}),
            lambda r: (
                r.status_code == 200
                and len(r.json()["items"]) == 1
                and r.json()["items"][0]["state"] == "active"
                and sum(len(s["days"]) for s in r.json()["items"][0]["sessions"]) == 3
            ),
            what="the active event with both sessions and three days",
        )
        seen = page.json()["items"][0]
        assert {s["id"] for s in seen["sessions"]} == {daytime, evening}
        assert seen["enrollment"] is None

        enrollment = await ok(await alice.post(f"/v1/sessions/{evening}/enrollments"), 201)
        assert enrollment["status"] == "approved"

        mine = await ok(await alice.get(f"/v1/me/events/{event['id']}"))
        assert [s["id"] for s in mine["sessions"]] == [evening]  # R-ENR-2
        participating = await ok(await alice.get("/v1/me/events", params={"tab": "participating"}))
        assert [e["id"] for e in participating["items"]] == [event["id"]]
        available = await ok(await alice.get("/v1/me/events", params={"tab": "available"}))
        assert available["items"] == []

    async with system.client(system.registration, system.user(company, "carol")) as carol:
        # no access: the event does not exist for her (R-ENR-1)
        assert (await carol.get(f"/v1/me/events/{event['id']}")).status_code == 404


async def test_seed_example_2_admin_enrolls_users_from_an_xlsx_file(system: System) -> None:
    company = "journey-two"
    admin = system.admin(company)
    event = await active_event(
        system,
        company,
        title="Onboarding",
        dated=True,
        requires_approval=True,
        sessions=[
            {
                "name": name,
                "registration_end": iso(days_from_now(2)),
                "days": [offline_day(days_from_now(day), days_from_now(day, 12), "Main hall")],
            }
            for name, day in (("Group A", 4), ("Group B", 5))
        ],
    )
    async with system.client(system.registration, admin) as reg:
        file = written_xlsx(["user_id", "session"], ["dana", "group a"], ["eli", "Group A"])
        result = await ok(
            await reg.post(
                f"/v1/events/{event.id}/enrollments/import",
                files={
                    "file": (
                        "people.xlsx",
                        file,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    )
                },
            )
        )
        assert result == {"imported": 2, "unchanged": 0}
        again = await ok(
            await reg.post(
                f"/v1/events/{event.id}/enrollments/import",
                files={"file": ("people.xlsx", file, "application/octet-stream")},
            )
        )
        assert again == {"imported": 0, "unchanged": 2}  # re-import changes nothing (R-ENR-5)

    for user in ("dana", "eli"):
        async with system.client(system.registration, system.user(company, user)) as me:
            view = await ok(await me.get(f"/v1/me/events/{event.id}"))
            assert [s["id"] for s in view["sessions"]] == [event.sessions["Group A"]]
            assert view["enrollment"]["status"] == "approved"  # R-ENR-4, despite approval


async def test_ended_session_gets_a_future_day_and_participants_come_back(
    system: System,
) -> None:
    """R-DAY-8 in catalog, R-ENR-9 in registration: once the confirmed future day arrives,
    participated, awaiting_confirmation and (ruling) missed go back to approved and the event is
    in their Participating tab again; denied is unchanged."""
    company = "journey-ended"
    admin = system.admin(company)
    # user -> how the ended session left them (set below by the admin or by the user)
    before = {
        "finn": "participated",
        "gail": "awaiting_confirmation",
        "mona": "missed",
        "dora": "denied",
    }
    back_to_approved = {"finn", "gail", "mona"}
    event = await active_event(
        system,
        company,
        title="Safety briefing",
        dated=True,
        requires_approval=False,
        sessions=[
            {
                "name": "Only run",
                "registration_end": iso(days_from_now(-4)),
                "days": [offline_day(days_from_now(-3), days_from_now(-3, 12), "Yard")],
            }
        ],
    )
    async with (
        system.client(system.catalog, admin) as cat,
        system.client(system.registration, admin) as reg,
    ):
        enrollments: dict[str, str] = {}
        for user in before:
            enrollment = await ok(
                await reg.post(
                    f"/v1/events/{event.id}/enrollments",
                    json={
                        "user_id": user,
                        "email": f"{user}@journey-ended.io",
                        "session_id": event.session_id,
                    },
                ),
                201,
            )
            assert enrollment["status"] == "approved"
            enrollments[user] = enrollment["id"]

        # the past day reaches registration's read model shortly after the session does
        async with system.client(system.registration, system.user(company, "gail")) as gail:
            await eventually(
                lambda: gail.get("/v1/me/events", params={"tab": "completed"}),
                lambda r: [e["id"] for e in r.json()["items"]] == [event.id],
                what="the ended session in the completed tab",
            )
            said = await ok(
                await gail.post(f"/v1/enrollments/{enrollments['gail']}/confirm-participation")
            )
            assert said["status"] == "awaiting_confirmation"
        for user in ("finn", "mona", "dora"):
            changed = await ok(
                await reg.patch(
                    f"/v1/enrollments/{enrollments[user]}", json={"status": before[user]}
                )
            )
            assert changed["status"] == before[user]

        async def statuses() -> dict[str, str]:
            page = await ok(await reg.get(f"/v1/events/{event.id}/enrollments"))
            return {e["user_id"]: e["status"] for e in page["items"]}

        assert await statuses() == before

        future_day = offline_day(days_from_now(7), days_from_now(7, 12), "Yard")
        refused = await cat.post(f"/v1/sessions/{event.session_id}/days", json=future_day)
        assert refused.status_code == 409
        assert refused.json()["detail"] == R_DAY_8
        assert await statuses() == before  # the refused day changed nothing
        await ok(
            await cat.post(
                f"/v1/sessions/{event.session_id}/days",
                params={"confirm": "true"},
                json=future_day,
            ),
            201,
        )

        after = {u: "approved" if u in back_to_approved else s for u, s in before.items()}
        await eventually(statuses, lambda got: got == after, what="R-ENR-9 in registration")
        page = await ok(await reg.get(f"/v1/events/{event.id}/enrollments"))
        for item in page["items"]:
            last = item["history"][-1]
            if item["user_id"] in back_to_approved:  # R-ENR-12: the change is on record
                assert (last["from_status"], last["to_status"]) == (
                    before[item["user_id"]],
                    "approved",
                ), item
            else:
                assert last["to_status"] == "denied", item

    for user in before:
        async with system.client(system.registration, system.user(company, user)) as me:
            view = await ok(await me.get(f"/v1/me/events/{event.id}"))
            assert view["enrollment"]["status"] == after[user], user
            participating = await ok(await me.get("/v1/me/events", params={"tab": "participating"}))
            expected = [event.id] if user in back_to_approved else []
            assert [e["id"] for e in participating["items"]] == expected, user
