"""Zoom webhook signing, payload builders, and delivery to the bridge.

Zoom signs each notification with the app's secret token:
``x-zm-signature: v0=<hex HMAC-SHA256(secret, "v0:{x-zm-request-timestamp}:{raw body}")>``.

Delivery follows Zoom's documented behaviour (developers.zoom.us/blog/webhook-delays): the
endpoint must answer 200 or 204 within three seconds; otherwise Zoom retries three times, 5
minutes after the first attempt, 20 minutes after the first retry and 60 minutes after the
second. A retry re-sends the stored request as it was (same body, same
``x-zm-request-timestamp``, same signature): the simulator assumes the worst, that Zoom does not
re-sign. Deliveries run in the background, each on its own, so their order is not guaranteed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta
from typing import Any

import httpx

from zoom_sim.state import (
    BreakoutStay,
    Delivery,
    DeliveryAttempt,
    Instance,
    Meeting,
    ParticipantSession,
    Recording,
    RecordingFile,
    Registrant,
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


def _meeting_object(meeting: Meeting, instance: Instance) -> dict[str, Any]:
    """The ``object`` of ``meeting.*`` events: ``id`` as a string, ``uuid`` of the instance."""
    return {
        "id": str(meeting.id),
        "uuid": instance.uuid,
        "host_id": meeting.host_id,
        "topic": meeting.topic,
        "type": meeting.type,
        "start_time": fmt_time(instance.started_at),
        "timezone": meeting.timezone,
        "duration": meeting.duration,
    }


def _participant(s: ParticipantSession, when: str, at: datetime) -> dict[str, Any]:
    """A participant as ``meeting.participant_*`` events carry it: ``email`` and ``id`` are
    empty strings for someone not signed in (a guest)."""
    participant: dict[str, Any] = {
        "user_id": s.user_id,
        "user_name": s.name,
        "id": s.zoom_user_id,
        "participant_uuid": s.participant_uuid,
        when: fmt_time(at),
        "email": s.email,
        "registrant_id": s.registrant_id,
        "customer_key": "",
        "phone_number": "",
    }
    if s.zoom_user_id:
        participant["participant_user_id"] = s.zoom_user_id
    return participant


def _participant_event(
    event: str,
    account_id: str,
    meeting: Meeting,
    s: ParticipantSession,
    participant: dict[str, Any],
) -> dict[str, Any]:
    instance = meeting.instance(s.instance_uuid)
    assert instance is not None
    obj = {**_meeting_object(meeting, instance), "participant": participant}
    return event_body(event, {"account_id": account_id, "object": obj})


def participant_joined(account_id: str, meeting: Meeting, s: ParticipantSession) -> dict[str, Any]:
    return _participant_event(
        "meeting.participant_joined",
        account_id,
        meeting,
        s,
        _participant(s, "join_time", s.join_time),
    )


def participant_left(account_id: str, meeting: Meeting, s: ParticipantSession) -> dict[str, Any]:
    assert s.leave_time is not None
    participant = _participant(s, "leave_time", s.leave_time)
    participant["leave_reason"] = s.leave_reason
    return _participant_event("meeting.participant_left", account_id, meeting, s, participant)


def _breakout_event(
    event: str, account_id: str, meeting: Meeting, b: BreakoutStay, participant: dict[str, Any]
) -> dict[str, Any]:
    """``meeting.participant_*_breakout_room``: the meeting's object (``uuid``: the instance)
    with ``breakout_room_uuid``; the participant has the room's ``user_id`` and, as
    ``parent_user_id``, their main-room one (as in Zoom's ``MeetingParticipant*BreakoutRoom``
    event types)."""
    instance = meeting.instance(b.parent.instance_uuid)
    assert instance is not None
    participant = {**participant, "user_id": b.user_id, "parent_user_id": b.parent.user_id}
    obj = {
        **_meeting_object(meeting, instance),
        "breakout_room_uuid": b.room_uuid,
        "participant": participant,
    }
    return event_body(event, {"account_id": account_id, "object": obj})


def participant_joined_breakout_room(
    account_id: str, meeting: Meeting, b: BreakoutStay
) -> dict[str, Any]:
    participant = _participant(b.parent, "join_time", b.join_time)
    return _breakout_event(
        "meeting.participant_joined_breakout_room", account_id, meeting, b, participant
    )


def participant_left_breakout_room(
    account_id: str, meeting: Meeting, b: BreakoutStay
) -> dict[str, Any]:
    assert b.leave_time is not None
    participant = _participant(b.parent, "leave_time", b.leave_time)
    participant["leave_reason"] = b.leave_reason
    return _breakout_event(
        "meeting.participant_left_breakout_room", account_id, meeting, b, participant
    )


def participant_joined_waiting_room(
    account_id: str, meeting: Meeting, s: ParticipantSession
) -> dict[str, Any]:
    """``meeting.participant_joined_waiting_room``: the time is ``date_time``, not join_time."""
    return _participant_event(
        "meeting.participant_joined_waiting_room",
        account_id,
        meeting,
        s,
        _participant(s, "date_time", s.join_time),
    )


def participant_left_waiting_room(
    account_id: str, meeting: Meeting, s: ParticipantSession
) -> dict[str, Any]:
    assert s.leave_time is not None
    return _participant_event(
        "meeting.participant_left_waiting_room",
        account_id,
        meeting,
        s,
        _participant(s, "date_time", s.leave_time),
    )


def participant_admitted(
    account_id: str, meeting: Meeting, s: ParticipantSession
) -> dict[str, Any]:
    """``meeting.participant_admitted`` (``date_time``: when the host let them in)."""
    participant = _participant(s, "date_time", s.join_time)
    participant.pop("phone_number", None)
    participant.pop("participant_user_id", None)
    return _participant_event("meeting.participant_admitted", account_id, meeting, s, participant)


def meeting_ended(account_id: str, meeting: Meeting, instance: Instance) -> dict[str, Any]:
    assert instance.ended_at is not None
    obj = {**_meeting_object(meeting, instance), "end_time": fmt_time(instance.ended_at)}
    return event_body("meeting.ended", {"account_id": account_id, "object": obj})


def meeting_deleted(account_id: str, meeting: Meeting, operator: User) -> dict[str, Any]:
    """``meeting.deleted``: the meeting went to Zoom's trash (by the API or in Zoom's web
    portal). ``object.id`` is a **number** here, as in ``MeetingDeletedEvent``; ``uuid`` is the
    meeting's latest instance (or the next one when it was never held); ``operator`` is whoever
    deleted it (the connected user's e-mail for an API call)."""
    return _moved("meeting.deleted", account_id, meeting, operator)


def meeting_recovered(account_id: str, meeting: Meeting, operator: User) -> dict[str, Any]:
    """``meeting.recovered``: the host took the meeting back out of Zoom's trash (in Zoom's web
    portal). Shaped as ``MeetingRecoveredEvent``, as :func:`meeting_deleted` is."""
    return _moved("meeting.recovered", account_id, meeting, operator)


def meeting_permanently_deleted(
    account_id: str, meeting: Meeting, operator: User
) -> dict[str, Any]:
    """``meeting.permanently_deleted``: the meeting left Zoom's trash for good (its host's
    "Delete permanently" in Recently Deleted, or Zoom after 7 days). Shaped as
    ``MeetingPermanentlyDeletedEvent``, as :func:`meeting_deleted` is."""
    return _moved("meeting.permanently_deleted", account_id, meeting, operator)


def _moved(event: str, account_id: str, meeting: Meeting, operator: User) -> dict[str, Any]:
    instance = meeting.latest
    payload = {
        "account_id": account_id,
        "operator": operator.email,
        "operator_id": operator.id,
        "object": _scheduled_object(meeting, meeting.uuid if instance is None else instance.uuid),
    }
    return event_body(event, payload)


def _scheduled_object(meeting: Meeting, uuid: str) -> dict[str, Any]:
    """The meeting as the ``meeting.deleted`` and ``meeting.registration_*`` events show it:
    ``id`` a **number**, its schedule (``start_time`` when it has one)."""
    obj: dict[str, Any] = {
        "uuid": uuid,
        "id": meeting.id,
        "host_id": meeting.host_id,
        "topic": meeting.topic,
        "type": meeting.type,
        "duration": meeting.duration,
        "timezone": meeting.timezone,
    }
    if meeting.start_time is not None:
        obj["start_time"] = fmt_time(meeting.start_time)
    return obj


def meeting_updated(
    account_id: str,
    meeting: Meeting,
    operator: User,
    changed: dict[str, Any],
    old: dict[str, Any],
) -> dict[str, Any]:
    """``meeting.updated``: ``object`` holds the meeting's id (a **number**) and the fields the
    update changed, ``old_object`` the same fields as they were (``MeetingUpdatedEvent``);
    ``time_stamp`` in milliseconds; ``operator`` is whoever updated it (the connected user for
    an API call, the app's own included)."""
    payload = {
        "account_id": account_id,
        "operator": operator.email,
        "operator_id": operator.id,
        "object": {"id": meeting.id, "uuid": meeting.uuid, **changed},
        "old_object": {"id": meeting.id, "uuid": meeting.uuid, **old},
        "time_stamp": int(time.time() * 1000),
    }
    return event_body("meeting.updated", payload)


#: what ends a registration at Zoom, by the webhook that says so
REGISTRATION_ENDED = {
    "cancelled": "meeting.registration_cancelled",
    "denied": "meeting.registration_denied",
}


def registration_ended(
    account_id: str,
    meeting: Meeting,
    registrant: Registrant,
    status: str,
    operator: User | None,
) -> dict[str, Any]:
    """``meeting.registration_cancelled`` or ``_denied`` (``MeetingRegistrationCancelledEvent``):
    ``object`` is the meeting (``id`` a **number**) with the ``registrant`` (``id``, names,
    ``email``). ``operator`` is whoever did it: the host (or the app's connected user, for an
    API call), or the registrant, who cancels with the link in Zoom's confirmation e-mail and
    then has no ``operator_id``."""
    obj = _scheduled_object(meeting, meeting.uuid)
    obj["registrant"] = {
        "id": registrant.id,
        "first_name": registrant.first_name,
        "last_name": registrant.last_name,
        "email": registrant.email,
    }
    payload: dict[str, Any] = {"account_id": account_id, "object": obj}
    if operator is None:
        payload["operator"] = registrant.email
    else:
        payload |= {"operator": operator.email, "operator_id": operator.id}
    return event_body(REGISTRATION_ENDED[status], payload)


def recording_object(
    meeting: Meeting,
    host: User,
    recording: Recording,
    host_url: str,
    files: list[RecordingFile] | None = None,
) -> dict[str, Any]:
    """Zoom's recording object (``recording.completed``'s ``object``, and GET
    /meetings/{id}/recordings): ``id`` is the meeting number, ``uuid`` the instance's; the
    links are on ``host_url`` (the ``recording_host`` setting). ``files``: those it lists
    (a trash or a recovery names the files it moved); by default those not in the trash."""
    chosen = files if files is not None else [f for f in recording.files if f.status == "completed"]
    listed = [
        {
            "id": f.id,
            "meeting_id": recording.meeting_uuid,
            "recording_start": fmt_time(f.recording_start),
            "recording_end": fmt_time(f.recording_end),
            "file_type": f.file_type,
            "file_extension": f.file_extension,
            "file_size": f.file_size,
            "play_url": f"{host_url}/rec/play/{f.token}",
            "download_url": f"{host_url}/rec/download/{f.token}",
            "status": f.status,
            "recording_type": f.recording_type,
        }
        for f in chosen
    ]
    return {
        "uuid": recording.meeting_uuid,
        "id": meeting.id,
        "account_id": host.account_id,
        "host_id": meeting.host_id,
        "host_email": host.email,
        "topic": meeting.topic,
        "type": meeting.type,
        "start_time": fmt_time(recording.start),
        "timezone": meeting.timezone,
        "duration": max(1, round((recording.end - recording.start).total_seconds() / 60)),
        "total_size": sum(f.file_size for f in chosen),
        "recording_count": len(listed),
        "share_url": f"{host_url}/rec/share/{recording.share_id}",
        "recording_files": listed,
        "password": recording.password,
        "recording_play_passcode": recording.play_passcode,
    }


def recording_completed(
    meeting: Meeting, host: User, recording: Recording, host_url: str
) -> dict[str, Any]:
    obj = recording_object(meeting, host, recording, host_url)
    return event_body(
        "recording.completed",
        {"account_id": host.account_id, "object": obj},
        download_token=recording.download_token,
    )


#: what a host (or the account's retention policy) does to a cloud recording, by the webhook
#: that notifies it
RECORDING_CHANGES = {
    "trash": "recording.trashed",
    "recover": "recording.recovered",
    "delete": "recording.deleted",
}


def recording_changed(
    action: str,
    meeting: Meeting,
    host: User,
    recording: Recording,
    host_url: str,
    files: list[RecordingFile],
) -> dict[str, Any]:
    """``recording.trashed``, ``recording.recovered`` or ``recording.deleted``
    (``RecordingTrashedEvent`` ...): the recording object listing the files it moved, the host
    as ``operator``."""
    obj = recording_object(meeting, host, recording, host_url, files)
    payload = {
        "account_id": host.account_id,
        "operator": host.email,
        "operator_id": host.id,
        "object": obj,
    }
    return event_body(RECORDING_CHANGES[action], payload)


BULK_RECORDING_CHANGES = {
    "trash": "recording.batch_trashed",
    "recover": "recording.batch_recovered",
    "delete": "recording.batch_deleted",
}


def recordings_changed_in_bulk(
    action: str, host: User, moved: list[tuple[Recording, list[RecordingFile]]]
) -> dict[str, Any]:
    """``recording.batch_trashed``, ``.batch_recovered`` or ``.batch_deleted``
    (``RecordingBatchTrashedEvent`` ...): the host moved several meetings' recordings at once.
    They name meeting instances (and file ids), never a meeting id nor a link: ``trashed``
    lists ``meeting_uuids``, the others ``meetings`` of ``{meeting_uuid,
    recording_file_ids}``."""
    payload: dict[str, Any] = {
        "account_id": host.account_id,
        "operator": host.email,
        "operator_id": host.id,
    }
    if action == "trash":
        payload["operation"] = "trash_recordings"
        payload["object"] = {"meeting_uuids": [recording.meeting_uuid for recording, _ in moved]}
    else:
        payload["object"] = {
            "meetings": [
                {
                    "meeting_uuid": recording.meeting_uuid,
                    "recording_file_ids": [f.id for f in files],
                }
                for recording, files in moved
            ]
        }
    return event_body(BULK_RECORDING_CHANGES[action], payload)


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


#: Zoom's retry schedule for a failed delivery: 5 minutes after the first attempt, 20 minutes
#: after the first retry, 60 minutes after the second (then it gives up).
RETRY_DELAYS_S = (5 * 60, 20 * 60, 60 * 60)

#: Notifications that are not retried: a URL validation is a check, not an event.
NOT_RETRIED = frozenset({"endpoint.url_validation"})


class WebhookSender:
    """Signs and POSTs notifications to the webhook URL in the background, as Zoom does.

    - An answer must come within ``timeout_s`` (Zoom's three seconds); a slower answer, a
      non-2xx status or a connection error is a failed attempt.
    - A failed delivery is retried after 5, 20 and 60 minutes (times ``retry_scale``), with
      the very same body, ``x-zm-request-timestamp`` and ``x-zm-signature`` (not re-signed).
    - Each delivery runs in its own task: a retry, or a delivery held back with ``delay_s``,
      arrives after notifications about later events.
    """

    def __init__(
        self,
        state: SimState,
        client: httpx.AsyncClient,
        timeout_s: float,
        retry_scale: float = 1.0,
    ) -> None:
        self._state = state
        self._client = client
        self._timeout = timeout_s
        self._retry_scale = retry_scale
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: dict[int, Delivery] = {}

    def retry_delays(self) -> list[float]:
        return [d * self._retry_scale for d in RETRY_DELAYS_S]

    async def send(
        self,
        body: dict[str, Any],
        *,
        timestamp_offset_s: int = 0,
        bad_signature: bool = False,
        secret: str | None = None,
        delay_s: float = 0.0,
    ) -> Delivery:
        """Start a delivery; wait for its first attempt unless it is held back (``delay_s``).

        Signed with ``secret``, or else with the secret token of the app the notification is
        for: the Server-to-Server app of ``payload.account_id`` when it has one, else the
        OAuth app's."""
        delivery = self.start(
            body,
            timestamp_offset_s=timestamp_offset_s,
            bad_signature=bad_signature,
            secret=secret,
            delay_s=delay_s,
        )
        if delay_s <= 0:
            await delivery.first_attempt_done.wait()
        return delivery

    def start(
        self,
        body: dict[str, Any],
        *,
        timestamp_offset_s: int = 0,
        bad_signature: bool = False,
        secret: str | None = None,
        delay_s: float = 0.0,
    ) -> Delivery:
        """Record the delivery (so ``GET /_sim/webhooks`` lists it in event order) and run it
        in the background; returns at once."""
        state = self._state
        event = str(body.get("event", ""))
        payload = body.get("payload")
        account_id = payload.get("account_id") if isinstance(payload, dict) else None
        if secret is None:
            secret = state.webhook_secret_for(str(account_id) if account_id else None)
        state.delivery_seq += 1
        delivery = Delivery(
            id=state.delivery_seq,
            event=event,
            body=body,
            raw=encode_body(body),
            at=state.now(),
            retry=event not in NOT_RETRIED,
        )
        state.deliveries.append(delivery)
        task = asyncio.create_task(
            self._run(delivery, secret, timestamp_offset_s, bad_signature, max(0.0, delay_s))
        )
        self._tasks.add(task)
        self._running[delivery.id] = delivery
        task.add_done_callback(lambda t: self._done(t, delivery))
        return delivery

    def _done(self, task: asyncio.Task[None], delivery: Delivery) -> None:
        self._tasks.discard(task)
        self._running.pop(delivery.id, None)
        delivery.first_attempt_done.set()
        if not task.cancelled() and task.exception() is not None:
            delivery.state = "failed"
            logger.error("webhook #%d broke: %r", delivery.id, task.exception())

    async def cancel_all(self) -> None:
        """Stop every delivery still under way (on reset and on shutdown)."""
        tasks = list(self._tasks)
        for delivery in list(self._running.values()):
            delivery.state = "cancelled"
            delivery.next_attempt_at = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(
        self,
        delivery: Delivery,
        secret: str,
        timestamp_offset_s: int,
        bad_signature: bool,
        delay_s: float,
    ) -> None:
        state = self._state
        if delay_s:
            delivery.next_attempt_at = state.now() + timedelta(seconds=delay_s)
            await asyncio.sleep(delay_s)
        # signed once, when first sent: retries carry the original timestamp and signature
        delivery.timestamp = str(int(time.time()) + timestamp_offset_s)
        delivery.signature = sign(secret, delivery.timestamp, delivery.raw)
        if bad_signature:
            delivery.signature = "v0=" + "0" * 64
        delivery.next_attempt_at = None
        ok = await self._attempt(delivery)
        delivery.first_attempt_done.set()
        waits = self.retry_delays() if delivery.retry else []
        for wait in waits:
            if ok:
                break
            delivery.state = "retrying"
            delivery.next_attempt_at = state.now() + timedelta(seconds=wait)
            await asyncio.sleep(wait)
            delivery.next_attempt_at = None
            ok = await self._attempt(delivery)
        delivery.state = "delivered" if ok else "failed"

    async def _attempt(self, delivery: Delivery) -> bool:
        state = self._state
        delivery.state = "sending"
        url = state.webhook_url  # the endpoint configured now (Zoom retries to the app's URL)
        if not delivery.url:
            delivery.url = url
        status: int | None = None
        error: str | None = None
        response_body: Any = None
        started = time.perf_counter()
        if not url:
            error = "no webhook URL configured"
        else:
            try:
                async with asyncio.timeout(self._timeout):
                    response = await self._client.post(
                        url,
                        content=delivery.raw,
                        headers={
                            "content-type": "application/json; charset=utf-8",
                            "user-agent": "Zoom Marketplace/1.0a",
                            "x-zm-request-timestamp": delivery.timestamp,
                            "x-zm-signature": delivery.signature,
                            "x-zm-trackingid": f"v=2.0;clid=sim;rid={delivery.id}",
                        },
                        timeout=self._timeout,
                    )
                status = response.status_code
                try:
                    response_body = response.json()
                except ValueError:
                    response_body = response.text[:1000]
            except TimeoutError:
                error = f"no answer within {self._timeout:g} s (Zoom's deadline)"
            except httpx.TimeoutException as exc:
                error = f"no answer within {self._timeout:g} s (Zoom's deadline): {exc}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        attempt = DeliveryAttempt(
            number=len(delivery.attempts) + 1,
            at=state.now(),
            url=url,
            status=status,
            error=error,
            response=response_body,
            elapsed_ms=int((time.perf_counter() - started) * 1000),
        )
        delivery.attempts.append(attempt)
        logger.info(
            "webhook %s #%d attempt %d -> %s",
            delivery.event,
            delivery.id,
            attempt.number,
            status if status is not None else error,
        )
        return attempt.ok
