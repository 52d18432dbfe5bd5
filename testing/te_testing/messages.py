"""Contract messages as the services publish them, for tests that feed a consumer directly or
through RabbitMQ: each builder fills what a test does not care about (fresh ids, a day three
days ahead, an hour long) and takes the rest as keywords; :class:`Versions` counts each
aggregate's versions as its owner would; :func:`publish` sends messages as an outbox relay does,
:func:`handle` applies them as a consumer does, :func:`outbox` reads what an app published.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from fastapi import FastAPI
from faststream.rabbit import RabbitBroker
from sqlalchemy import select

from te_shared import contracts as c
from te_shared.db import unit_of_work
from te_shared.inbox import Consumers
from te_shared.outbox import OutboxRecordMixin
from te_testing.infra import RabbitNamespace

#: the start a day gets when a test names none: ahead, so that no rule treats it as past
DAYS_AHEAD = 3


class Versions:
    """Each aggregate's versions counted up from 1, as the service that owns it numbers them
    (consumers keep the newest)."""

    def __init__(self) -> None:
        self._last: dict[uuid.UUID, int] = {}

    def next(self, key: uuid.UUID) -> int:
        self._last[key] = self._last.get(key, 0) + 1
        return self._last[key]


def event_changed(
    *,
    company: str = "acme",
    event_id: uuid.UUID | None = None,
    version: int = 1,
    title: dict[str, str] | str | None = None,
    state: c.EventState = c.EventState.ACTIVE,
    dated: bool = True,
    requires_approval: bool = False,
) -> c.EventChanged:
    """Catalog's ``EventChanged``: by default an active dated event anyone may join."""
    return c.EventChanged(
        company_id=company,
        event_id=event_id or uuid.uuid4(),
        version=version,
        title=title or {"en": "Training"},
        state=state,
        dated=dated,
        requires_approval=requires_approval,
    )


def session_data(
    *,
    company: str = "acme",
    event_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    version: int = 1,
    name: dict[str, str] | None = None,
    timezone: str = "Europe/Moscow",
    registration_end: dt.datetime | str | None,
    limit: int | None = None,
    waitlist: bool = False,
    cls: type[c.SessionData] = c.SessionCreated,
) -> c.SessionData:
    """Catalog's ``SessionCreated`` (or ``cls``); a limit of ``limit`` seats when given
    (``registration_end`` may be ISO 8601 text, as it travels)."""
    session_id = session_id or uuid.uuid4()
    return cls.model_validate(
        {
            "company_id": company,
            "session_id": session_id,
            "event_id": event_id or uuid.uuid4(),
            "version": version,
            "name": name or {"en": f"S-{session_id.hex[:6]}"},
            "timezone": timezone,
            "registration_end": registration_end,
            "limit_enabled": limit is not None,
            "participant_limit": limit,
            "waitlist_enabled": waitlist,
        }
    )


def day_data(
    *,
    company: str = "acme",
    event_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    day_id: uuid.UUID | None = None,
    version: int = 1,
    start: dt.datetime | None = None,
    length: dt.timedelta = dt.timedelta(hours=1),
    timezone: str = "Europe/Moscow",
    topic: str = "Training",
    zoom: c.ZoomDaySettings | None = None,
    address: str | None = None,
    url: str | None = None,
    cls: type[c.DayData] = c.DayScheduled,
    **extra: Any,
) -> c.DayData:
    """Catalog's ``DayScheduled`` (or ``cls``): a zoom day with ``zoom``, else an online day;
    ``start`` defaults to three days ahead, the day lasts ``length``."""
    start = start or dt.datetime.now(dt.UTC) + dt.timedelta(days=DAYS_AHEAD)
    return cls(
        company_id=company,
        day_id=day_id or uuid.uuid4(),
        session_id=session_id or uuid.uuid4(),
        event_id=event_id or uuid.uuid4(),
        version=version,
        format=c.DayFormat.ZOOM if zoom else c.DayFormat.ONLINE,
        start=start,
        end=start + length,
        timezone=timezone,
        topic=topic,
        zoom=zoom,
        address=address,
        url=url,
        **extra,
    )


def day_cancelled(day: c.DayData, version: int) -> c.DayCancelled:
    """Catalog's ``DayCancelled`` for ``day`` (deleted), at ``version``."""
    return c.DayCancelled(
        company_id=day.company_id,
        day_id=day.day_id,
        session_id=day.session_id,
        event_id=day.event_id,
        version=version,
        format=day.format,
    )


def enrollment_changed(
    *,
    company: str = "acme",
    event_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    enrollment_id: uuid.UUID | None = None,
    user_id: str | None = "u1",
    email: str | None = "u1@acme.io",
    status: c.EnrollmentStatus = c.EnrollmentStatus.APPROVED,
    previous: c.EnrollmentStatus | None = None,
    version: int = 1,
    **extra: Any,
) -> c.EnrollmentChanged:
    """Registration's ``EnrollmentChanged``: by default ``u1`` approved in a new session."""
    return c.EnrollmentChanged(
        company_id=company,
        enrollment_id=enrollment_id or uuid.uuid4(),
        event_id=event_id or uuid.uuid4(),
        session_id=session_id or uuid.uuid4(),
        user_id=user_id,
        email=email,
        status=status,
        previous_status=previous,
        version=version,
        **extra,
    )


def enrollment_in(
    day: c.DayData,
    user_id: str | None,
    email: str | None,
    status: c.EnrollmentStatus = c.EnrollmentStatus.APPROVED,
    *,
    session_id: uuid.UUID | None = None,
    **fields: Any,
) -> c.EnrollmentChanged:
    """Registration's ``EnrollmentChanged`` for ``user_id`` (known by ``email``) in ``day``'s
    session (or ``session_id``): how the bridge learns whose attendance a meeting's joins
    are."""
    return enrollment_changed(
        company=day.company_id,
        event_id=day.event_id,
        session_id=session_id or day.session_id,
        user_id=user_id,
        email=email,
        status=status,
        **fields,
    )


def company_settings_changed(
    *,
    company: str = "acme",
    version: int = 1,
    timezone: str = "UTC",
    locales: list[str] | None = None,
    zoom_enabled: bool = False,
    training_module_enabled: bool = True,
) -> c.CompanySettingsChanged:
    """Catalog's ``CompanySettingsChanged``: by default English, UTC, no Zoom."""
    return c.CompanySettingsChanged(
        company_id=company,
        version=version,
        timezone=timezone,
        locales=locales or ["en"],
        zoom_enabled=zoom_enabled,
        training_module_enabled=training_module_enabled,
    )


def zoom_account_changed(
    *,
    company: str = "acme",
    account_id: uuid.UUID | None = None,
    role: c.ZoomAccountRole | str = c.ZoomAccountRole.ADMINISTRATOR,
    connected: bool = True,
    needs_reconnect: bool = False,
    version: int = 1,
) -> c.ZoomAccountChanged:
    """The bridge's ``ZoomAccountChanged``: an account of ``company`` connected (or not)."""
    return c.ZoomAccountChanged(
        company_id=company,
        account_id=account_id or uuid.uuid4(),
        role=c.ZoomAccountRole(role),
        connected=connected,
        needs_reconnect=needs_reconnect,
        version=version,
    )


async def handle(app: FastAPI, consumers: Consumers, *messages: c.Message) -> None:
    """Run ``consumers``' handlers on ``messages`` in ``app``'s database as the broker would,
    one transaction per message (without the inbox: a duplicate is applied again)."""
    factory = app.state.runtime.session_factory()
    for message in messages:
        async with unit_of_work(factory) as session:
            await consumers.handlers[type(message)](session, message)


async def outbox(
    app: FastAPI, model: type[OutboxRecordMixin], routing_key: str
) -> list[dict[str, Any]]:
    """The payloads ``app`` put in its outbox (table ``model``) under ``routing_key``, oldest
    first, sent or not."""
    async with unit_of_work(app.state.runtime.session_factory()) as session:
        rows = await session.scalars(
            select(model).where(model.routing_key == routing_key).order_by(model.id)
        )
        return [dict(r.payload) for r in rows]


async def publish(
    ns: RabbitNamespace, *messages: c.Message, broker: RabbitBroker | None = None
) -> None:
    """Publish ``messages`` to ``ns``'s exchange as an outbox relay does (persistent, JSON,
    under their routing keys, the message id as the AMQP one); on ``broker`` when given, else
    on a connection of its own."""
    own = broker is None
    broker = broker or RabbitBroker(ns.amqp_url)
    if own:
        await broker.connect()
    try:
        for message in messages:
            await broker.publish(
                message.model_dump(mode="json"),
                exchange=ns.topology.exchange,
                routing_key=message.routing_key,
                persist=True,
                message_id=str(message.message_id),
                content_type="application/json",
            )
    finally:
        if own:
            await broker.stop()
