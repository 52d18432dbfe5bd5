"""Zoom webhook signing, payload builders, and delivery to the bridge.

Zoom signs each notification with the app's secret token:
``x-zm-signature: v0=<hex HMAC-SHA256(secret, "v0:{x-zm-request-timestamp}:{raw body}")>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

import httpx

from zoom_sim.state import (
    Delivery,
    Meeting,
    ParticipantSession,
    Recording,
    SimState,
    User,
    fmt_time,
)

logger = logging.getLogger("zoom_sim.webhooks")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``x-zm-signature`` value Zoom sends for ``body`` at ``timestamp`` (seconds)."""
    message = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def encrypt_plain_token(secret: str, plain_token: str) -> str:
    """The ``encryptedToken`` a bridge must answer to ``endpoint.url_validation``."""
    return hmac.new(secret.encode(), plain_token.encode(), hashlib.sha256).hexdigest()


def encode_body(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def event_body(event: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"event": event, "event_ts": int(time.time() * 1000), "payload": payload, **extra}


def _meeting_object(meeting: Meeting) -> dict[str, Any]:
    return {
        "id": str(meeting.id),
        "uuid": meeting.uuid,
        "host_id": meeting.host_id,
        "topic": meeting.topic,
        "type": meeting.type,
        "start_time": fmt_time(meeting.started_at or meeting.start_time or meeting.created_at),
        "timezone": meeting.timezone,
        "duration": meeting.duration,
    }


def participant_joined(account_id: str, meeting: Meeting, s: ParticipantSession) -> dict[str, Any]:
    participant: dict[str, Any] = {
        "user_id": s.user_id,
        "user_name": s.name,
        "id": s.zoom_user_id,
        "participant_uuid": s.participant_uuid,
        "join_time": fmt_time(s.join_time),
        "email": s.email,
        "registrant_id": "",
        "customer_key": "",
        "phone_number": "",
    }
    if s.zoom_user_id:
        participant["participant_user_id"] = s.zoom_user_id
    obj = {**_meeting_object(meeting), "participant": participant}
    return event_body("meeting.participant_joined", {"account_id": account_id, "object": obj})


def participant_left(account_id: str, meeting: Meeting, s: ParticipantSession) -> dict[str, Any]:
    assert s.leave_time is not None
    participant: dict[str, Any] = {
        "user_id": s.user_id,
        "user_name": s.name,
        "id": s.zoom_user_id,
        "participant_uuid": s.participant_uuid,
        "leave_time": fmt_time(s.leave_time),
        "leave_reason": s.leave_reason,
        "email": s.email,
        "registrant_id": "",
        "customer_key": "",
        "phone_number": "",
    }
    if s.zoom_user_id:
        participant["participant_user_id"] = s.zoom_user_id
    obj = {**_meeting_object(meeting), "participant": participant}
    return event_body("meeting.participant_left", {"account_id": account_id, "object": obj})


def meeting_ended(account_id: str, meeting: Meeting) -> dict[str, Any]:
    assert meeting.ended_at is not None
    obj = {**_meeting_object(meeting), "end_time": fmt_time(meeting.ended_at)}
    return event_body("meeting.ended", {"account_id": account_id, "object": obj})


def recording_object(
    meeting: Meeting, host: User, recording: Recording, public_url: str
) -> dict[str, Any]:
    files = [
        {
            "id": f.id,
            "meeting_id": recording.meeting_uuid,
            "recording_start": fmt_time(f.recording_start),
            "recording_end": fmt_time(f.recording_end),
            "file_type": "MP4",
            "file_extension": "MP4",
            "file_size": f.file_size,
            "play_url": f"{public_url}/rec/play/{f.id}",
            "download_url": f"{public_url}/rec/download/{f.id}",
            "status": "completed",
            "recording_type": "shared_screen_with_speaker_view",
        }
        for f in recording.files
    ]
    return {
        "uuid": meeting.uuid,
        "id": meeting.id,
        "account_id": host.account_id,
        "host_id": meeting.host_id,
        "host_email": host.email,
        "topic": meeting.topic,
        "type": meeting.type,
        "start_time": fmt_time(recording.start),
        "timezone": meeting.timezone,
        "duration": max(1, round((recording.end - recording.start).total_seconds() / 60)),
        "total_size": sum(f.file_size for f in recording.files),
        "recording_count": len(files),
        "share_url": f"{public_url}/rec/share/{recording.share_id}",
        "recording_files": files,
        "password": recording.password,
    }


def recording_completed(
    meeting: Meeting, host: User, recording: Recording, public_url: str
) -> dict[str, Any]:
    obj = recording_object(meeting, host, recording, public_url)
    return event_body(
        "recording.completed",
        {"account_id": host.account_id, "object": obj},
        download_token=recording.download_token,
    )


def url_validation(plain_token: str) -> dict[str, Any]:
    return event_body("endpoint.url_validation", {"plainToken": plain_token})


def app_deauthorized(
    user: User, client_id: str, secret: str, deauthorization_time: str
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "account_id": user.account_id,
        "user_id": user.id,
        "client_id": client_id,
        "deauthorization_time": deauthorization_time,
        "user_data_retention": "false",
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    payload["signature"] = hmac.new(secret.encode(), canonical, hashlib.sha256).hexdigest()
    return event_body("app_deauthorized", payload)


class WebhookSender:
    """Signs and POSTs notifications to the bridge, recording each delivery in the state."""

    def __init__(self, state: SimState, client: httpx.AsyncClient, timeout_s: float) -> None:
        self._state = state
        self._client = client
        self._timeout = timeout_s

    async def send(
        self,
        body: dict[str, Any],
        *,
        timestamp_offset_s: int = 0,
        bad_signature: bool = False,
        secret: str | None = None,
    ) -> Delivery:
        """Sign with ``secret``, or else with the secret token of the app the notification is
        for: the Server-to-Server app of ``payload.account_id`` when it has one, else the
        OAuth app's."""
        state = self._state
        url = state.webhook_url
        event = str(body.get("event", ""))
        raw = encode_body(body)
        timestamp = str(int(time.time()) + timestamp_offset_s)
        payload = body.get("payload")
        account_id = payload.get("account_id") if isinstance(payload, dict) else None
        if secret is None:
            secret = state.webhook_secret_for(str(account_id) if account_id else None)
        signature = sign(secret, timestamp, raw)
        if bad_signature:
            signature = "v0=" + "0" * 64
        status: int | None = None
        error: str | None = None
        response_body: Any = None
        if not url:
            error = "no webhook URL configured"
        else:
            try:
                response = await self._client.post(
                    url,
                    content=raw,
                    headers={
                        "content-type": "application/json; charset=utf-8",
                        "user-agent": "Zoom Marketplace/1.0a",
                        "x-zm-request-timestamp": timestamp,
                        "x-zm-signature": signature,
                        "x-zm-trackingid": f"v=2.0;clid=sim;rid={int(time.time() * 1000)}",
                    },
                    timeout=self._timeout,
                )
                status = response.status_code
                try:
                    response_body = response.json()
                except ValueError:
                    response_body = response.text[:1000]
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        delivery = Delivery(
            event=event,
            url=url,
            status=status,
            error=error,
            response=response_body,
            body=body,
            at=state.now(),
        )
        state.deliveries.append(delivery)
        logger.info("webhook %s -> %s", event, status if status is not None else error)
        return delivery
