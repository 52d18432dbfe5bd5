"""Command line shared by every service: ``python -m <service> [serve|migrate]`` and ``token``."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from fastapi import FastAPI

from te_shared.auth import make_token
from te_shared.db import run_migrations
from te_shared.settings import ServiceSettings


def rabbit_reachable(amqp_url: str, timeout: float = 3.0) -> bool:
    parts = urlsplit(amqp_url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), timeout):
            return True
    except OSError:
        return False


RABBIT_HELP = (
    "RabbitMQ is not reachable at {where}. Start one with `rabbitmq-server -detached` "
    "(or `docker compose up -d rabbitmq`), or point AMQP_URL at a running broker."
)


def service_main(
    settings_factory: Callable[[], ServiceSettings],
    app_factory: Callable[[ServiceSettings], FastAPI],
    migrations: Path,
    argv: list[str] | None = None,
) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    settings = settings_factory()
    if args.command == "migrate":
        run_migrations(settings.database_url, migrations)
        print(f"{settings.service_name}: migrations applied")  # noqa: T201
        return
    amqp = settings.amqp_url.get_secret_value()
    if not rabbit_reachable(amqp):
        parts = urlsplit(amqp)
        print(RABBIT_HELP.format(where=f"{parts.hostname}:{parts.port or 5672}"), file=sys.stderr)  # noqa: T201
        raise SystemExit(2)
    if settings.workers > 1:
        # Several processes: migrate once here, then each worker starts without migrating.
        if settings.run_migrations:
            run_migrations(settings.database_url, migrations)
        os.environ["RUN_MIGRATIONS"] = "false"
        uvicorn.run(
            f"{app_factory.__module__}:{app_factory.__name__}",
            factory=True,
            workers=settings.workers,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=int(settings.graceful_timeout),
        )
        return
    app = app_factory(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.graceful_timeout),
    )
    uvicorn.Server(config).run()  # on uvloop where installed (uvicorn[standard])


def token_main(argv: list[str] | None = None) -> None:
    """Print a development token: ``python -m te_shared.cli --company acme --role admin``."""
    parser = argparse.ArgumentParser(description="Print a dev JWT (HS256, JWT_SECRET).")
    parser.add_argument("--company", default="acme")
    parser.add_argument("--user", default="u1")
    parser.add_argument("--role", default="admin", choices=["admin", "user"])
    parser.add_argument("--email", default=None)
    parser.add_argument("--ttl", type=int, default=12 * 3600)
    args = parser.parse_args(argv)
    settings = ServiceSettings()
    print(  # noqa: T201
        make_token(
            secret=settings.jwt_secret.get_secret_value(),
            audience=settings.jwt_audience,
            company_id=args.company,
            user_id=args.user,
            role=args.role,
            email=args.email,
            ttl_seconds=args.ttl,
        )
    )


if __name__ == "__main__":
    token_main()
