"""Generate ``deploy/rabbitmq/definitions.json`` from ``te_shared.topology``.

The services declare the same topology at start-up (``Topology.declare``); loading these
definitions into the broker beforehand means the exchanges, quorum queues and bindings exist
before any service runs, with the very arguments the services will redeclare them with (a
mismatch would make RabbitMQ refuse the declaration with PRECONDITION_FAILED).

    uv run python deploy/rabbitmq/generate.py            # rewrite definitions.json
    uv run python deploy/rabbitmq/generate.py --check    # exit 1 if the file is out of date

One policy per consuming service carries the same dead-letter exchange, routing key and delivery
limit as the queue arguments, for operators to retune at run time (README.md explains which wins).
Users and permissions are deliberately absent: they hold credentials and are managed
separately (see README.md).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from faststream.rabbit import RabbitExchange, RabbitQueue

from te_shared.topology import CONSUMES, Topology, declared_by

DEFINITIONS = Path(__file__).with_name("definitions.json")
VHOST = "/"


def _exchange(exchange: RabbitExchange) -> dict[str, Any]:
    return {
        "name": exchange.name,
        "vhost": VHOST,
        "type": str(exchange.type.value),
        "durable": bool(exchange.durable),
        "auto_delete": bool(exchange.auto_delete),
        "internal": False,
        "arguments": dict(exchange.arguments or {}),
    }


def _queue(queue: RabbitQueue) -> dict[str, Any]:
    return {
        "name": queue.name,
        "vhost": VHOST,
        "durable": bool(queue.durable),
        "auto_delete": bool(queue.auto_delete),
        "arguments": dict(queue.arguments or {}),
    }


def _binding(source: str, queue: RabbitQueue) -> dict[str, Any]:
    if queue.routing_key is None:
        raise ValueError(f"queue {queue.name} has no routing key to bind with")
    return {
        "source": source,
        "vhost": VHOST,
        "destination": queue.name,
        "destination_type": "queue",
        "routing_key": queue.routing_key,
        "arguments": {},
    }


def _regex(text: str) -> str:
    """``text`` as a literal in a RabbitMQ (PCRE) policy pattern."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", text)


def policy_pattern(topology: Topology, service: str) -> str:
    """Matches ``service``'s consumer queues (``<prefix><service>.<publisher>.<...>``), not its
    dead-letter queue (``<prefix><service>.dead-letter``)."""
    publishers = sorted({m.routing_key.split(".", 1)[0] for ms in CONSUMES.values() for m in ms})
    alternatives = "|".join(_regex(p) for p in publishers)
    return f"^{_regex(topology.queue_prefix + service)}\\.({alternatives})\\."


def _policy(topology: Topology, service: str) -> dict[str, Any]:
    """Dead-lettering and the delivery limit of ``service``'s queues, as a policy operators can
    retune at run time (see README.md for how it combines with the queue arguments)."""
    return {
        "vhost": VHOST,
        "name": f"{topology.queue_prefix}{service}-dead-lettering",
        "pattern": policy_pattern(topology, service),
        "apply-to": "queues",
        "priority": 0,
        "definition": {
            "dead-letter-exchange": topology.dead_letter_exchange.name,
            "dead-letter-routing-key": service,
            "delivery-limit": topology.delivery_limit,
        },
    }


def build_definitions(topology: Topology | None = None) -> dict[str, Any]:
    """The broker definitions for ``topology`` (the production defaults when omitted)."""
    topology = topology or Topology()
    exchange = topology.exchange
    dlx = topology.dead_letter_exchange
    queues: list[dict[str, Any]] = []
    bindings: list[dict[str, Any]] = []
    # the queues every service declares: not an optional service's (integrations declares its
    # own at its first start; its policy is here, waiting for them)
    for service in declared_by(None):
        dead_letter = topology.dead_letter_queue(service)
        queues.append(_queue(dead_letter))
        bindings.append(_binding(dlx.name, dead_letter))
        for message in CONSUMES[service]:
            queue = topology.queue(service, message)
            queues.append(_queue(queue))
            bindings.append(_binding(exchange.name, queue))
    return {
        "vhosts": [{"name": VHOST}],
        "exchanges": [_exchange(exchange), _exchange(dlx)],
        "queues": sorted(queues, key=lambda q: q["name"]),
        "bindings": sorted(bindings, key=lambda b: (b["source"], b["destination"])),
        "policies": [_policy(topology, service) for service in CONSUMES],
        "parameters": [],
    }


def render(topology: Topology | None = None) -> str:
    """``definitions.json`` exactly as written to disk (stable key order, trailing newline)."""
    return json.dumps(build_definitions(topology), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFINITIONS, help="file to write")
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if the file is out of date"
    )
    args = parser.parse_args(argv)
    text = render()
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if args.check:
        if current != text:
            print(f"{args.output} is out of date: run deploy/rabbitmq/generate.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
