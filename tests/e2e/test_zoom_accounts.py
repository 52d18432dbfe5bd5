"""R-DAY-9, R-ZOOM-2 across the real processes: the bridge's ``ZoomAccountChanged`` (through its
outbox and RabbitMQ) is what catalog knows a company's Zoom accounts and their roles by.

A system of its own: the days it creates get meetings in the simulator, which other tests of the
shared system count."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from te_testing.clock import days_from_now, iso
from te_testing.polling import eventually
from te_testing.system import System, create_event, zoom_day

pytestmark = pytest.mark.e2e

ZOOM_USER = "accounts-e2e@zoom.test"


async def test_r_day_9_connect_role_change_and_deauthorization_reach_catalog(
    fresh_system: System,
) -> None:
    system = fresh_system
    company = "accounts-e2e"
    admin = system.admin(company)
    async with (
        system.client(system.catalog, admin) as cat,
        system.client(system.bridge, admin) as bridge,
        system.client(system.sim) as sim,
        httpx.AsyncClient() as browser,
    ):
        settings = {"timezone": "UTC", "locales": ["en"], "zoom_enabled": True}
        assert (await cat.put("/v1/company/settings", json=settings)).status_code == 200
        event = await create_event(
            system,
            company,
            title="Accounts",
            dated=True,
            sessions=[{"name": "Run", "registration_end": iso(days_from_now(1, 9))}],
        )

        slots = iter(range(3, 300))  # every attempt on a day of its own (R-DAY-6)

        async def post_day() -> httpx.Response:
            n = next(slots)
            return await cat.post(
                f"/v1/sessions/{event.session_id}/days",
                json=zoom_day(days_from_now(n, 9), days_from_now(n, 11), account_id),
            )

        def code(r: httpx.Response) -> Any:
            return r.status_code, (r.json().get("errors") or [{}])[0].get("code")

        # connected through OAuth (the simulator approves) as an administrator account
        start = await browser.get(  # the admin's browser: the flow is bound to its cookie
            f"{system.bridge.url}/v1/zoom/oauth/authorize",
            params={"role": "administrator", "return_to": "/admin"},
            headers=bridge.headers,
        )
        at_zoom = await browser.get(start.headers["location"] + f"&sim_user={ZOOM_USER}")
        assert (await browser.get(at_zoom.headers["location"])).status_code == 302
        accounts = (await bridge.get("/v1/zoom/accounts")).json()
        account_id = next(a["id"] for a in accounts if a["zoom_user_email"] == ZOOM_USER)
        first = await eventually(
            post_day, lambda r: r.status_code == 201, what="the account in catalog"
        )
        assert first.json()["zoom"]["account_role"] == "administrator"
        assert first.json()["warnings"] == []

        # the admin says it is a participant account: new days get R-ZOOM-2's warnings
        patched = await bridge.patch(
            f"/v1/zoom/accounts/{account_id}", json={"role": "participant"}
        )
        assert patched.status_code == 200
        second = await eventually(
            post_day,
            lambda r: r.status_code == 201 and r.json()["zoom"]["account_role"] == "participant",
            what="the role change in catalog",
        )
        assert any("40 minutes" in w for w in second.json()["warnings"])
        old = (await cat.get(f"/v1/days/{first.json()['id']}")).json()
        assert old["zoom"]["account_role"] == "administrator"  # existing days are not rewritten

        # Zoom says the app was deauthorized: catalog refuses the account from then on
        users = (await sim.get("/_sim/users")).json()
        zoom_user = next(u for u in users if u["email"] == ZOOM_USER)
        assert (await sim.post("/_sim/deauthorize", json={"user_id": zoom_user["id"]})).json()[
            "webhook_status"
        ] == 200
        refused = await eventually(
            post_day,
            lambda r: code(r) != (201, None),
            what="the deauthorization in catalog",
        )
        assert code(refused) == (422, "zoom_account_disconnected"), refused.text
