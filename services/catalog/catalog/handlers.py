"""Messages catalog consumes (meeting state and recordings from the zoom bridge)."""

from __future__ import annotations

from te_shared.inbox import Consumers
from te_shared.topology import CATALOG

consumers = Consumers(CATALOG)
