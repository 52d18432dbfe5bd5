"""R-DAY-9, R-ZOOM-2: every connection, role change and removal of a Zoom account writes a
``ZoomAccountChanged`` outbox row (so catalog learns the company's accounts and roles)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from te_shared import contracts as c

if TYPE_CHECKING:
    from conftest import Env

KEY = c.ZoomAccountChanged.routing_key


async def announced(env: Env, account_id: str) -> list[dict[str, Any]]:
    return [p for p in await env.outbox(KEY) if p["account_id"] == account_id]


def now_us() -> int:
    return time.time_ns() // 1000


async def test_r_day_9_oauth_connect_patch_and_deauthorization_write_the_outbox_row(
    env: Env,
) -> None:
    before = now_us()
    account_id = await env.connect("administrator", sim_user="announce@zoom.test")
    rows = await announced(env, account_id)
    assert len(rows) == 1
    connected = rows[0]
    assert (connected["company_id"], connected["role"], connected["connected"]) == (
        "acme",
        "administrator",
        True,
    )
    assert before <= connected["version"] <= now_us()  # microseconds since the epoch
    assert "announce@zoom.test" not in json.dumps(rows)  # no personal data
    assert "email" not in connected
    c.ZoomAccountChanged.model_validate(connected)

    async with env.client() as bridge:
        r = await bridge.patch(
            f"/v1/zoom/accounts/{account_id}", json={"role": "participant"}, headers=env.admin()
        )
        assert r.status_code == 200
        other = await bridge.patch(
            f"/v1/zoom/accounts/{account_id}",
            json={"role": "administrator"},
            headers=env.admin(company="globex"),
        )
        assert other.status_code == 404
    rows = await announced(env, account_id)
    assert len(rows) == 2  # another company's PATCH announced nothing
    assert (rows[1]["role"], rows[1]["connected"]) == ("participant", True)
    assert rows[1]["version"] > rows[0]["version"]

    async with env.sim() as sim:
        users = (await sim.get("/_sim/users")).json()
        zoom_user = next(u for u in users if u["email"] == "announce@zoom.test")
        r = await sim.post("/_sim/deauthorize", json={"user_id": zoom_user["id"]})
        assert r.json()["webhook_status"] == 200

    async def removed() -> list[dict[str, Any]]:
        rows = await announced(env, account_id)
        return rows if len(rows) == 3 else []

    rows = await env.wait(removed)
    assert (rows[2]["connected"], rows[2]["role"], rows[2]["company_id"]) == (
        False,
        "participant",
        "acme",
    )
    assert rows[2]["version"] > rows[1]["version"]


async def test_r_day_9_reconnecting_the_same_zoom_user_announces_the_new_role(env: Env) -> None:
    first = await env.connect("administrator", sim_user="twice@zoom.test")
    again = await env.connect("participant", sim_user="twice@zoom.test")
    assert again == first  # the same connection, updated
    rows = await announced(env, first)
    assert [(r["role"], r["connected"]) for r in rows] == [
        ("administrator", True),
        ("participant", True),
    ]
    assert rows[1]["version"] > rows[0]["version"]


async def test_r_day_9_server_to_server_connect_writes_the_outbox_row(env: Env) -> None:
    async with env.client() as bridge:
        r = await bridge.post(
            "/v1/zoom/accounts/server-to-server",
            json={
                "zoom_account_id": "zoomSimAccount00000001",
                "client_id": "dev-client-id",
                "client_secret": "dev-client-secret",
                "role": "participant",
            },
            headers=env.admin(company="s2s-co"),
        )
        assert r.status_code == 201, r.text
        refused = await bridge.post(
            "/v1/zoom/accounts/server-to-server",
            json={
                "zoom_account_id": "zoomSimAccount00000001",
                "client_id": "dev-client-id",
                "client_secret": "wrong",
                "role": "administrator",
            },
            headers=env.admin(company="s2s-co"),
        )
        assert refused.status_code == 422
    rows = [p for p in await env.outbox(KEY) if p["company_id"] == "s2s-co"]
    assert [(p["account_id"], p["role"], p["connected"]) for p in rows] == [
        (r.json()["id"], "participant", True)
    ]  # the refused connection announced nothing
