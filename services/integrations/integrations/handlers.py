"""Messages integrations consumes: each becomes a delivery to every endpoint of its company
subscribed to its event type (``delivery.events``), queued in the message's inbox transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from integrations.delivery import queue
from integrations.delivery.events import DESCRIBERS
from te_shared.contracts import Message
from te_shared.inbox import Consumers
from te_shared.topology import CONSUMES, INTEGRATIONS

consumers = Consumers(INTEGRATIONS)


async def queue_deliveries(session: AsyncSession, message: Message) -> None:
    await queue.enqueue(session, message)


for _message in CONSUMES[INTEGRATIONS]:
    if _message not in DESCRIBERS:  # pragma: no cover - a wiring error, caught at import
        raise RuntimeError(f"no webhook for {_message.__name__}")
    consumers.handler(_message)(queue_deliveries)
