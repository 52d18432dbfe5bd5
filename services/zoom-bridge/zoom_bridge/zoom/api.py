"""The typed Zoom adapter: the Zoom REST calls the bridge makes, each once, with typed results.

:class:`ZoomApi` wraps :class:`~zoom_bridge.zoom.client.ZoomClient` (tokens, transport and the
error classes the retry policy reads) and turns Zoom's JSON into the shapes below, so nothing
past this module reads Zoom's raw dicts. Paging (``page_size`` and ``next_page_token``) is done
once, in :meth:`ZoomApi._pages`. Errors are the client's (:class:`ZoomRetryable`,
:class:`ZoomFatal` and their kinds); a call never retries by itself: the durable jobs do.

Meetings and registrants are dataclasses made from Zoom's answer; the participants report,
past participants and instances are ``TypedDict`` rows with Zoom's documented fields
(``meetings.d.ts`` of zoom/rivet-javascript: ``ReportsGetMeetingParticipantReportsResponse``,
``MeetingsGetPastMeetingParticipantsResponse``, ``MeetingsListPastMeetingInstancesResponse``),
every one optional as Zoom documents them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, TypedDict, cast
from urllib.parse import quote, urlencode

from zoom_bridge.crypto import TokenCipher
from zoom_bridge.settings import ZoomBridgeSettings
from zoom_bridge.zoom.client import ZoomClient

#: Zoom's largest page for the lists the bridge reads
PAGE_SIZE = 300


class MeetingSettings(TypedDict, total=False):
    """The meeting settings the bridge sets (``MeetingsCreateMeetingRequestBody.settings``)."""

    auto_recording: str  # cloud | local | none
    #: 0 automatic approval of registrants, 1 manual, 2 no registration
    approval_type: int
    #: 1: registrants register once and may attend every occurrence
    registration_type: int


class MeetingBody(TypedDict):
    """A scheduled meeting as the bridge creates or patches it."""

    topic: str
    type: int  # 2: scheduled
    start_time: str
    duration: int
    timezone: str
    agenda: str
    settings: MeetingSettings


@dataclass(frozen=True)
class Meeting:
    """A meeting as Zoom answers a create or a get."""

    id: str
    join_url: str
    start_url: str | None
    agenda: str

    @classmethod
    def from_zoom(cls, data: dict[str, Any]) -> Meeting:
        start_url = data.get("start_url")
        return cls(
            id=str(data["id"]),
            join_url=str(data.get("join_url") or ""),
            start_url=str(start_url) if start_url else None,
            agenda=str(data.get("agenda") or ""),
        )


@dataclass(frozen=True)
class ListedMeeting:
    """A meeting as the list of a user's meetings shows it."""

    id: str
    agenda: str


@dataclass(frozen=True)
class Registration:
    """Zoom's answer to adding a registrant: their id and personal join link."""

    registrant_id: str
    join_url: str


@dataclass(frozen=True)
class Registrant:
    """A registrant as the list of a meeting's registrants shows it."""

    id: str
    email: str
    status: str
    join_url: str


class ReportParticipant(TypedDict, total=False):
    """A row of the participants report (one stay of one participant)."""

    id: str
    user_id: str
    participant_user_id: str
    name: str
    user_email: str
    registrant_id: str
    join_time: str
    leave_time: str
    duration: int
    status: str
    failover: bool
    customer_key: str
    bo_mtg_id: str


class PastParticipant(TypedDict, total=False):
    """A row of an ended instance's participants (``/past_meetings/{id}/participants``)."""

    id: str
    user_id: str
    name: str
    user_email: str
    registrant_id: str
    join_time: str
    leave_time: str
    duration: int
    status: str
    failover: bool
    internal_user: bool


class MeetingInstance(TypedDict, total=False):
    """An ended instance of a meeting."""

    uuid: str
    start_time: str


def meeting_ref(ref: str) -> str:
    """A meeting id or instance UUID as a path segment. Zoom's rule: a UUID that begins with
    ``/`` or contains ``//`` is encoded twice; any other is encoded once (a base64 UUID may hold
    ``/``, ``+`` and ``=``)."""
    if ref.isdigit():
        return ref
    once = quote(ref, safe="")
    return quote(once, safe="") if ref.startswith("/") or "//" in ref else once


class ZoomApi:
    """Zoom's meetings API for one connected account per call (``account_id``: ours)."""

    def __init__(self, client: ZoomClient) -> None:
        self.client = client

    @property
    def settings(self) -> ZoomBridgeSettings:
        return self.client.settings

    @property
    def cipher(self) -> TokenCipher:
        return self.client.cipher

    async def _pages(
        self, account_id: uuid.UUID, path: str, key: str, params: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a paged list (``key`` names the list in each page)."""
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            query = {**(params or {}), "page_size": str(PAGE_SIZE)}
            if token:
                query["next_page_token"] = token
            data = (await self.client.call(account_id, "GET", f"{path}?{urlencode(query)}")).json()
            found = data.get(key) if isinstance(data, dict) else None
            items.extend(i for i in (found or []) if isinstance(i, dict))
            token = str(data.get("next_page_token") or "") if isinstance(data, dict) else ""
            if not token:
                return items

    # ---- meetings ------------------------------------------------------------------------------

    async def create_meeting(self, account_id: uuid.UUID, body: MeetingBody) -> Meeting:
        response = await self.client.call(
            account_id, "POST", "/users/me/meetings", cast(dict[str, Any], body)
        )
        return Meeting.from_zoom(response.json())

    async def update_meeting(
        self, account_id: uuid.UUID, meeting_id: str, body: MeetingBody | dict[str, Any]
    ) -> None:
        """PATCH the meeting with ``body`` (the whole meeting, or a part such as its settings)."""
        await self.client.call(
            account_id, "PATCH", f"/meetings/{meeting_ref(meeting_id)}", cast(dict[str, Any], body)
        )

    async def delete_meeting(self, account_id: uuid.UUID, meeting_id: str) -> None:
        await self.client.call(account_id, "DELETE", f"/meetings/{meeting_ref(meeting_id)}")

    async def get_meeting(
        self, account_id: uuid.UUID, meeting_id: str, *, timeout: float | None = None
    ) -> Meeting:
        """The meeting, with a fresh ``start_url`` (Zoom hands out a new one each time)."""
        response = await self.client.call(
            account_id, "GET", f"/meetings/{meeting_ref(meeting_id)}", timeout=timeout
        )
        return Meeting.from_zoom(response.json())

    async def list_meetings(
        self, account_id: uuid.UUID, *, agenda: str | None = None
    ) -> list[ListedMeeting]:
        """The account user's scheduled meetings (every page), those with ``agenda`` only when
        given."""
        rows = await self._pages(
            account_id, "/users/me/meetings", "meetings", {"type": "scheduled"}
        )
        found = [ListedMeeting(id=str(r["id"]), agenda=str(r.get("agenda") or "")) for r in rows]
        return [m for m in found if agenda is None or m.agenda == agenda]

    # ---- registrants ---------------------------------------------------------------------------

    async def add_registrant(
        self, account_id: uuid.UUID, meeting_id: str, *, email: str, first_name: str
    ) -> Registration:
        """Register ``email`` (Zoom answers the same registration for the same e-mail while it
        is approved or pending); with automatic approval Zoom e-mails them their link."""
        response = await self.client.call(
            account_id,
            "POST",
            f"/meetings/{meeting_ref(meeting_id)}/registrants",
            {"email": email, "first_name": first_name},
        )
        data = response.json()
        return Registration(
            registrant_id=str(data["registrant_id"]), join_url=str(data.get("join_url") or "")
        )

    async def list_registrants(
        self, account_id: uuid.UUID, meeting_id: str, *, status: str = "approved"
    ) -> list[Registrant]:
        rows = await self._pages(
            account_id,
            f"/meetings/{meeting_ref(meeting_id)}/registrants",
            "registrants",
            {"status": status},
        )
        return [
            Registrant(
                id=str(r.get("id") or ""),
                email=str(r.get("email") or ""),
                status=str(r.get("status") or status),
                join_url=str(r.get("join_url") or ""),
            )
            for r in rows
        ]

    async def remove_registrant(
        self, account_id: uuid.UUID, meeting_id: str, registrant_id: str
    ) -> None:
        """Delete a registrant: their link no longer admits them."""
        await self.client.call(
            account_id,
            "DELETE",
            f"/meetings/{meeting_ref(meeting_id)}/registrants/{quote(registrant_id, safe='')}",
        )

    async def cancel_registrants(
        self, account_id: uuid.UUID, meeting_id: str, registrant_ids: list[str]
    ) -> None:
        """Cancel registrants (at most 30 a call, Zoom's limit) by id."""
        for start in range(0, len(registrant_ids), 30):
            chunk = registrant_ids[start : start + 30]
            await self.client.call(
                account_id,
                "PUT",
                f"/meetings/{meeting_ref(meeting_id)}/registrants/status",
                {"action": "cancel", "registrants": [{"id": i} for i in chunk]},
            )

    # ---- after the meeting ---------------------------------------------------------------------

    async def participants_report(
        self, account_id: uuid.UUID, meeting: str, *, include_registrant_id: bool = False
    ) -> list[ReportParticipant]:
        """The participants report (every page) of a meeting id (its latest instance) or of one
        instance's UUID. Zoom answers 404 while it has no report yet."""
        params = {"include_fields": "registrant_id"} if include_registrant_id else {}
        rows = await self._pages(
            account_id,
            f"/report/meetings/{meeting_ref(meeting)}/participants",
            "participants",
            params,
        )
        return [cast(ReportParticipant, r) for r in rows]

    async def past_meeting_participants(
        self, account_id: uuid.UUID, meeting: str
    ) -> list[PastParticipant]:
        """The participants (every page) of an ended instance (a meeting id: the latest)."""
        rows = await self._pages(
            account_id, f"/past_meetings/{meeting_ref(meeting)}/participants", "participants"
        )
        return [cast(PastParticipant, r) for r in rows]

    async def past_meeting_instances(
        self, account_id: uuid.UUID, meeting_id: str
    ) -> list[MeetingInstance]:
        """The meeting's ended instances (not paged by Zoom)."""
        response = await self.client.call(
            account_id, "GET", f"/past_meetings/{meeting_ref(meeting_id)}/instances"
        )
        data = response.json()
        found = data.get("meetings") if isinstance(data, dict) else None
        return [cast(MeetingInstance, m) for m in (found or []) if isinstance(m, dict)]
