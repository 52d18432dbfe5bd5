"""Pure rules of Zoom webhooks (R-ZOOM-4, R-ZOOM-7): signatures, who signed, what a body may
look like before it is parsed, and which recording links may be stored. No I/O, no clock read
(time is passed in)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from te_shared.errors import BadRequest, Unauthorized

#: Zoom's payloads nest a few levels (payload → object → participant → …); anything deeper
#: than this is not Zoom's and is refused before ``json.loads`` could recurse into it.
MAX_JSON_DEPTH = 32

#: Zoom's own hosts (and their subdomains) that recording links may point at: zoom.us and its
#: regional web hosts (us02web.zoom.us), zoom.com, and Zoom for Government's zoomgov.com.
ZOOM_HOSTS = ("zoom.us", "zoom.com", "zoomgov.com")

#: ``"account_id": "<id>"``: the first one in a raw body, only a hint of which Server-to-Server
#: secrets to try (the signature decides; a wrong hint just fails to verify).
_ACCOUNT_HINT = re.compile(rb'"account_id"\s*:\s*"([A-Za-z0-9_\-.]{1,100})"')
_EVENT_HINT = re.compile(rb'"event"\s*:\s*"([A-Za-z0-9_.]{1,100})"')


@dataclass(frozen=True)
class Signer:
    """Whose secret token verified a webhook, and so which meetings it may act on.

    ``app``: the OAuth app's secret (ZOOM_WEBHOOK_SECRET), which covers the OAuth
    connections. ``account_ids``: the Server-to-Server connections whose own secret token
    matched; each covers only its own meetings. A webhook never acts beyond its signer."""

    app: bool = False
    account_ids: frozenset[uuid.UUID] = frozenset()

    def as_json(self) -> dict[str, Any]:
        return {"app": self.app, "accounts": sorted(str(a) for a in self.account_ids)}

    @classmethod
    def from_json(cls, value: Any) -> Signer:
        """A stored signer; a row stored before signers were kept (``None``) counts as the
        app's, the narrower and safer reading (OAuth connections only)."""
        if not isinstance(value, Mapping):
            return cls(app=True)
        accounts = value.get("accounts") or []
        return cls(
            app=bool(value.get("app")),
            account_ids=frozenset(uuid.UUID(str(a)) for a in accounts),
        )


@dataclass(frozen=True)
class Candidate:
    """A secret token that may have signed a webhook: the app's (``account_id`` None) or a
    Server-to-Server connection's."""

    secret: str
    account_id: uuid.UUID | None = None


def expected_signature(secret: str, timestamp: str, raw: bytes) -> str:
    message = b"v0:" + timestamp.encode() + b":" + raw
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def account_hint(raw: bytes) -> str | None:
    """The Zoom account a raw body names, read without parsing it (the body is not trusted
    yet): it only narrows which Server-to-Server secrets are tried."""
    found = _ACCOUNT_HINT.search(raw)
    return found.group(1).decode() if found else None


def event_hint(raw: bytes) -> str | None:
    """The event a raw body claims (unverified: only for a metrics label bounded to known
    names)."""
    found = _EVENT_HINT.search(raw)
    return found.group(1).decode() if found else None


def verify(
    candidates: Sequence[Candidate],
    raw: bytes,
    timestamp: str | None,
    signature: str | None,
    *,
    now: float,
    max_age: int,
    max_future: int = 300,
) -> Signer:
    """Check the timestamp window and the signature over the raw bytes against every
    candidate (constant-time compares, all of them); the signer is every candidate that
    matched. :class:`Unauthorized` when none did, or the timestamp is missing, older than
    ``max_age`` seconds (a Zoom retry keeps its first timestamp: the window must cover Zoom's
    retry schedule) or more than ``max_future`` seconds ahead."""
    if not timestamp or not signature:
        raise Unauthorized("Missing Zoom signature headers.", code="bad_signature")
    try:
        ts = int(timestamp)
    except ValueError as exc:
        raise Unauthorized("Bad Zoom timestamp.", code="bad_signature") from exc
    if ts > 10**11:  # milliseconds
        ts //= 1000
    if now - ts > max_age or ts - now > max_future:
        raise Unauthorized("Stale Zoom timestamp.", code="stale_timestamp")
    app = False
    accounts: set[uuid.UUID] = set()
    for candidate in candidates:
        expected = expected_signature(candidate.secret, timestamp, raw)
        if hmac.compare_digest(expected.encode(), signature.encode()):
            if candidate.account_id is None:
                app = True
            else:
                accounts.add(candidate.account_id)
    if not app and not accounts:
        raise Unauthorized("Bad Zoom signature.", code="bad_signature")
    return Signer(app=app, account_ids=frozenset(accounts))


def json_depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in ``raw`` (brackets inside strings do not count),
    found without parsing, so a body nested thousands deep never reaches the parser."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def parse_body(raw: bytes) -> dict[str, Any]:
    """A verified body as Zoom sends it: a JSON object whose ``payload`` (when present) is an
    object. :class:`BadRequest` for anything else, including nesting past
    :data:`MAX_JSON_DEPTH`."""
    # a body cannot nest deeper than it has opening brackets: counting them (in C) settles
    # most bodies (a participant's join has four) without the byte-by-byte scan
    brackets = raw.count(b"{") + raw.count(b"[")
    if brackets > MAX_JSON_DEPTH and json_depth(raw) > MAX_JSON_DEPTH:
        raise BadRequest(f"The body nests deeper than {MAX_JSON_DEPTH} levels.", code="bad_json")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BadRequest("The body is not JSON.", code="bad_json") from exc
    if not isinstance(body, dict):
        raise BadRequest("The body is not a JSON object.", code="bad_json")
    if not isinstance(body.get("event", ""), str):
        raise BadRequest("The body's event is not a string.", code="bad_json")
    payload = body.get("payload")
    if payload is not None and not isinstance(payload, dict):
        raise BadRequest("The body's payload is not a JSON object.", code="bad_json")
    return body


def is_zoom_link(url: object, *, hosts: Iterable[str], origins: Iterable[str] = ()) -> bool:
    """R-ZOOM-7: a recording link is kept only when it is an ``https`` link on one of Zoom's
    hosts (``hosts``, subdomains included), or on one of ``origins`` exactly (the simulator
    that stands in for Zoom in a local run). Anything else (``javascript:``, another site,
    credentials in the URL) is never stored or shown."""
    if not isinstance(url, str) or not url or len(url) > 2000:
        return False
    if any(ch.isspace() or ord(ch) < 0x20 or ch in "\"'<>\\`" for ch in url):
        return False
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if not host or parts.username is not None or parts.password is not None:
        return False
    origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
    if origin in {o.rstrip("/").lower() for o in origins}:
        return True
    if parts.scheme.lower() != "https" or port not in (None, 443):
        return False
    return any(host == h or host.endswith("." + h) for h in hosts)


def play_link(url: str, passcode: str | None) -> str:
    """R-ZOOM-7: a recording's play link that plays without asking for the passcode: Zoom's
    ``recording_play_passcode`` appended as ``pwd`` (Zoom: splice it into ``play_url`` with
    ``?pwd=``), unless the link already carries a ``pwd``. The rest of the link is kept as it
    is."""
    if not passcode:
        return url
    parts = urlsplit(url)
    if any(name == "pwd" for name, _ in parse_qsl(parts.query, keep_blank_values=True)):
        return url
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=query + urlencode({"pwd": passcode})))


def notified_after(at: int, last: int | None) -> bool:
    """Whether a notification Zoom sent at ``at`` (its ``event_ts``) is newer than the last of
    its kind applied (``last``): Zoom delivers in no order and retries a failed delivery for
    hours, so an older one (a deletion retried after the recovery that undid it) changes
    nothing."""
    return last is None or at > last


#: recording webhooks by what they do to the files they list
RECORDING_CAME = frozenset({"recording.completed", "recording.recovered"})
RECORDING_WENT = frozenset({"recording.trashed", "recording.deleted"})
TRASHED, RECOVERED = "recording.trashed", "recording.recovered"
#: Zoom's bulk notifications (a host selects several meetings' recordings in Zoom's web portal
#: and trashes, recovers or deletes them at once): each stands, for every meeting instance it
#: names, for the single event it is named after. They name instances and file ids only, no
#: links: a file recovered so is attached again as it was when it was trashed
BATCHED = {
    "recording.batch_trashed": "recording.trashed",
    "recording.batch_recovered": "recording.recovered",
    "recording.batch_deleted": "recording.deleted",
}


#: notifications of a change whose payload carries no time of its own, ordered by Zoom's
#: ``event_ts``: two with the same payload are two changes (a file trashed, recovered and
#: trashed again; a meeting deleted, recovered and deleted again), and only one with the same
#: ``event_ts`` too is a re-delivery (a retry re-sends the request as it was)
TIMELESS_CHANGES = frozenset(
    {
        "meeting.deleted",
        "meeting.recovered",
        "meeting.permanently_deleted",
        *RECORDING_CAME,
        *RECORDING_WENT,
        *BATCHED,
    }
)


def bulk_recordings(event: str, obj: Mapping[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    """The meeting instances a bulk recording notification (:data:`BATCHED`) names, each with
    the file ids it lists (none: the instance's whole recording), in order, each once:
    ``recording.batch_trashed`` lists ``meeting_uuids``; ``.batch_recovered`` and
    ``.batch_deleted`` list ``meetings`` of ``{meeting_uuid, recording_file_ids}``. What is not
    a text of at most 200 characters is passed over."""

    def text(value: object) -> str | None:
        return value if isinstance(value, str) and 0 < len(value) <= 200 else None

    found: dict[str, tuple[str, ...]] = {}
    if event == "recording.batch_trashed":
        uuids = obj.get("meeting_uuids")
        for value in uuids if isinstance(uuids, list) else []:
            if (uuid := text(value)) is not None:
                found.setdefault(uuid, ())
        return list(found.items())
    meetings = obj.get("meetings")
    for item in meetings if isinstance(meetings, list) else []:
        if not isinstance(item, Mapping) or (uuid := text(item.get("meeting_uuid"))) is None:
            continue
        ids = item.get("recording_file_ids")
        named = [i for i in (ids if isinstance(ids, list) else []) if text(i) is not None]
        found[uuid] = tuple(dict.fromkeys([*found.get(uuid, ()), *named]))
    return list(found.items())


@dataclass(frozen=True)
class Recordings:
    """A day's stored recording files (each a dict with ``id``, its ``at``: the ``event_ts`` of
    the notification that brought it, and ``instance``: the recorded instance's uuid), the
    files that went (file id -> ``event_ts``), the files in Zoom's trash as they were shown
    (file id -> the file), so that a recovery naming only their ids brings them back, and the
    files recovered by id while not shown here (file id -> ``event_ts``), so that the trash
    or deletion that recovery undid, delivered after it, takes nothing, and the recorded
    instances whose whole recording went (instance uuid -> ``event_ts``), so that a file of
    theirs notified before that, delivered after it, does not come back."""

    files: tuple[dict[str, Any], ...]
    gone: Mapping[str, int]
    trashed: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    came: Mapping[str, int] = field(default_factory=dict)
    instances_gone: Mapping[str, int] = field(default_factory=dict)


def recordings_after(
    now: Recordings,
    event: str,
    at: int,
    listed: Sequence[dict[str, Any]],
    instance: str | None,
) -> Recordings | None:
    """R-ZOOM-7: the day's recordings after a recording webhook of ``event`` sent at ``at``
    (Zoom's ``event_ts``), or None for another event.

    Files that came (``recording.completed``, ``.recovered``; ``listed`` as they are to be
    stored) are added, unless one went at a later time: Zoom retries a notification for hours,
    and a late ``recording.completed`` must not bring back a file trashed since. A file listed
    by its ``id`` alone (a bulk recovery) comes back as it was when it was trashed; one still
    shown here (its trash not delivered yet) is kept, as having come back at that time; one
    never shown is remembered as come back (nothing says where it plays until its
    ``recording.completed`` arrives). Files that went (``recording.trashed``, ``.deleted``;
    ``listed`` names them by ``id``, or, when it lists none, every file of the recorded
    ``instance``) are removed unless they came back later, and remembered as gone; a trashed
    one is kept as it was shown until it is deleted. A whole instance that went is remembered
    as such: its files in the trash go again at that time, and a file of it that comes in a
    notification sent before (a late completion or recovery) stays gone."""
    files = {str(f["id"]): f for f in now.files}
    gone = dict(now.gone)
    trashed = dict(now.trashed)
    came = dict(now.came)
    instances_gone = dict(now.instances_gone)

    def went_at(key: str, of_instance: str | None) -> int:
        return max(gone.get(key, -1), instances_gone.get(of_instance or "", -1))

    def came_at(key: str) -> int:
        """When the file last came: shown since then, or recovered by id before it was."""
        return max(int((files.get(key) or {}).get("at") or -1), came.get(key, -1))

    if event in RECORDING_CAME:
        if event == RECOVERED and not listed:  # a bulk recovery of an instance's recording
            of_instance = [
                k
                for k, f in [*trashed.items(), *files.items()]
                if f.get("instance") in (None, instance)
            ]
            listed = [{"id": k} for k in dict.fromkeys(of_instance)]
        for item in listed:
            key = str(item["id"])
            kept = files.get(key)
            shown = item if "play_url" in item else trashed.get(key) or kept
            went = went_at(key, (shown or {}).get("instance") or instance)
            if came_at(key) >= went:
                went = -1  # it came back since it last went
            if went > at:  # it went after this notification was sent
                if shown is not None and kept is None:
                    gone[key] = went
                    trashed.setdefault(key, shown)  # as shown, for a recovery by id to come
                continue
            gone.pop(key, None)
            if shown is None:  # recovered by id, never shown here
                came[key] = max(at, came.get(key, at))
                continue
            at_latest = max(at, came.pop(key, at))
            trashed.pop(key, None)
            if kept is None or int(kept.get("at") or 0) < at_latest:
                files[key] = {**(kept or shown), "at": at_latest}
    elif event in RECORDING_WENT:
        named = [str(item["id"]) for item in listed if item.get("id")]
        if not named:  # the whole recording of an instance, its files in the trash too
            named = [key for key, f in files.items() if f.get("instance") in (None, instance)]
            named += [k for k, f in trashed.items() if f.get("instance") in (None, instance)]
            if instance is not None:
                instances_gone[instance] = max(at, instances_gone.get(instance, at))
        for key in named:
            if came_at(key) > at:
                continue  # it came back after this notification was sent
            kept = files.get(key)
            came.pop(key, None)
            files.pop(key, None)
            gone[key] = max(at, gone.get(key, at))
            if event == TRASHED and kept is not None:
                trashed[key] = kept
            elif event != TRASHED:
                trashed.pop(key, None)
    else:
        return None
    return Recordings(tuple(files.values()), gone, trashed, came, instances_gone)


def files_changed(before: Recordings, after: Recordings) -> bool:
    """Whether the files shown changed (not only what is remembered as gone)."""
    return [f["id"] for f in before.files] != [f["id"] for f in after.files]
