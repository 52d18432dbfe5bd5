"""Conditional edits (RFC 9110, section 13): two admins editing one event at once.

A resource's entity tag is its ``version`` (``"3"``), sent as ``ETag`` with what the admin reads
and edits. A ``PATCH`` or ``DELETE`` that carries ``If-Match`` goes ahead only while the resource
is still at one of the versions it names (``*``: any); otherwise it is refused with 412 and
changes nothing, so the second admin learns of the first one's change instead of overwriting it
unseen. Without ``If-Match`` an edit goes ahead as before (last write wins).

A read whose answer is costly to make and rarely changes (a calendar feed, fetched every hour by
calendar apps) carries a weak ``ETag`` of what it is made from; a ``GET`` with ``If-None-Match``
naming it is answered ``304 Not Modified`` without making it again (:func:`not_modified`).

A ``201`` says where the new resource is read (``Location``, RFC 9110 section 10.2.2) and, for
a versioned one, its ``ETag``: the admin panel edits what it has just made without reading it
again first.
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Header, Response

from te_shared.errors import ProblemError


class PreconditionFailed(ProblemError):
    status = 412
    code = "version_mismatch"


#: the ``If-Match`` request header as an endpoint takes it (documented in OpenAPI)
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=500,
        description='The resource\'s `ETag` (its `version` in quotes, e.g. `"3"`) as the client '
        "last read it: the edit goes ahead only while the resource is still at that version, "
        "else 412 `version_mismatch` and nothing changes.",
    ),
]


def etag(version: int) -> str:
    """The entity tag of a resource at ``version``."""
    return f'"{version}"'


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=Versioned)


def tagged(response: Response, resource: V) -> V:
    """``resource``, its ``ETag`` set on ``response``."""
    response.headers["ETag"] = etag(resource.version)
    return resource


def check_if_match(if_match: str | None, version: int) -> None:
    """Refuse (412) an edit whose ``If-Match`` names none of the resource's current version.
    Weak tags (``W/"3"``) compare as strong ones: a version is the whole resource."""
    if if_match is None or _names(if_match, etag(version)):
        return
    raise PreconditionFailed(
        f"The resource changed since it was read: it is at version {version} now. Read it "
        "again and repeat the edit if it still applies.",
        extra={"version": version},
    )


#: the ``If-None-Match`` request header as an endpoint takes it (documented in OpenAPI)
IfNoneMatch = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        max_length=2000,
        description="The `ETag`(s) of the representation(s) the client holds: when one is "
        "still current, 304 Not Modified without a body.",
    ),
]


def not_modified(if_none_match: str | None, tag: str) -> bool:
    """Whether a ``GET`` with ``If-None-Match`` holds the current representation, tagged
    ``tag`` (RFC 9110 section 13.1.2: weak comparison; ``*`` matches any)."""
    return if_none_match is not None and _names(if_none_match, tag)


def _names(header: str, tag: str) -> bool:
    """Whether a conditional header's list of entity tags (or ``*``) names ``tag``, weak and
    strong alike."""
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or tag.removeprefix("W/") in tags


def located(response: Response, path: str) -> None:
    """A ``201``'s ``Location``: the path the new resource is read at."""
    response.headers["Location"] = path


def created(response: Response, resource: V, path: str) -> V:
    """A new versioned ``resource``: its ``Location`` and ``ETag`` set on ``response``."""
    located(response, path)
    return tagged(response, resource)


def created_headers(*, versioned: bool = True) -> dict[int | str, dict[str, Any]]:
    """The ``201`` headers as ``responses=`` documents them in OpenAPI."""
    headers: dict[str, Any] = {
        "Location": {
            "description": "The path the new resource is read at.",
            "schema": {"type": "string"},
        }
    }
    if versioned:
        headers["ETag"] = {
            "description": "The new resource's version, for `If-Match`.",
            "schema": {"type": "string"},
        }
    return {201: {"headers": headers}}
