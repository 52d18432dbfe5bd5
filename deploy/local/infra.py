"""Where the tests find RabbitMQ and PostgreSQL: the one place that decides it.

``make test`` runs this first (``python deploy/local/infra.py``): it stops at once, with one
message saying what to start, when the tests would have neither. The root ``conftest.py`` asks
:func:`local_test_urls` too, so a bare ``pytest`` finds the same servers.

In order, for each of the two:

1. ``TEST_AMQP_URL`` / ``TEST_POSTGRES_URL`` (or ``AMQP_URL`` / ``POSTGRES_URL``) when set;
2. the server on its default local port, as ``make run`` finds the broker:
   ``amqp://guest:guest@127.0.0.1:5672/`` and ``postgresql://postgres@127.0.0.1:5432/postgres``
   (guest/guest and trust authentication, as a fresh local install has them);
3. a container started by testcontainers, when a Docker engine answers.

``TE_PROBE_AMQP`` / ``TE_PROBE_POSTGRES`` (``host:port``) move the probed addresses (the tests of
this script point them at closed ports).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass

LOCAL_AMQP_URL = "amqp://guest:guest@{host}:{port}/"
LOCAL_POSTGRES_URL = "postgresql://postgres@{host}:{port}/postgres"


@dataclass(frozen=True)
class Server:
    """One of the two servers the tests need."""

    name: str
    variables: tuple[str, ...]  # the environment naming it, first wins
    probe_variable: str
    default_address: tuple[str, int]
    local_url: str
    how_to_start: str
    compose_service: str

    def address(self, env: Mapping[str, str]) -> tuple[str, int]:
        given = env.get(self.probe_variable)
        if not given:
            return self.default_address
        host, _, port = given.rpartition(":")
        return host or "127.0.0.1", int(port)

    def given(self, env: Mapping[str, str]) -> str | None:
        return next((env[v] for v in self.variables if env.get(v)), None)


RABBITMQ = Server(
    "RabbitMQ",
    ("TEST_AMQP_URL", "AMQP_URL"),
    "TE_PROBE_AMQP",
    ("127.0.0.1", 5672),
    LOCAL_AMQP_URL,
    "rabbitmq-server -detached",
    "rabbitmq",
)
POSTGRES = Server(
    "PostgreSQL",
    ("TEST_POSTGRES_URL", "POSTGRES_URL"),
    "TE_PROBE_POSTGRES",
    ("127.0.0.1", 5432),
    LOCAL_POSTGRES_URL,
    'pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start',
    "postgres",
)
SERVERS = (RABBITMQ, POSTGRES)


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    """Something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout):
            return True
    except OSError:
        return False


def docker_available() -> bool:
    """A Docker engine answers (testcontainers can start the servers)."""
    try:
        import docker  # testcontainers' own client; absent outside the dev environment
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no engine, no socket, no permission: the same to us
        return False


def local_test_urls(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``TEST_*`` variables to add to ``env`` (``os.environ`` by default): the local server
    for each one not named already and answering on its port. Nothing for the others (they are
    named, or testcontainers starts them, or nothing can: see :func:`missing`)."""
    env = os.environ if env is None else env
    found: dict[str, str] = {}
    for server in SERVERS:
        if server.given(env) is None:
            host, port = server.address(env)
            if reachable(host, port):
                found[server.variables[0]] = server.local_url.format(host=host, port=port)
    return found


def missing(env: Mapping[str, str] | None = None) -> list[Server]:
    """The servers the tests would not have: neither named, nor answering locally, and no
    Docker engine to start them in."""
    env = os.environ if env is None else env
    found = local_test_urls(env)
    absent = [s for s in SERVERS if s.given(env) is None and s.variables[0] not in found]
    if absent and docker_available():
        return []
    return absent


def message(absent: list[Server], env: Mapping[str, str] | None = None) -> str:
    """What to start (one message for both)."""
    env = os.environ if env is None else env
    names = " and ".join(s.name for s in absent)
    where = ", ".join(f"{s.name} on {':'.join(map(str, s.address(env)))}" for s in absent)
    lines = [
        f"The tests need {names}: nothing answers ({where}) and no Docker engine runs.",
        f"Start {'them' if len(absent) > 1 else 'it'} on this machine:",
        *(f"  {s.how_to_start}" for s in absent),
        "or in Docker:",
        "  docker compose up -d " + " ".join(s.compose_service for s in absent),
        "or name running servers: " + ", ".join(f"{s.variables[0]}=<url>" for s in absent),
        "(`make test-unit` needs neither.)",
    ]
    return "\n".join(lines)


def main() -> int:
    absent = missing()
    if absent:
        print(message(absent), file=sys.stderr)
        return 2
    for name, url in local_test_urls().items():
        print(f"{name}={url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
