"""Run the Zoom simulator: ``python -m zoom_sim`` or ``te-zoom-sim``."""

from __future__ import annotations

import logging

import uvicorn

from zoom_sim.app import create_app
from zoom_sim.settings import Settings


def main() -> None:
    settings = Settings()
    level = settings.log_level.upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # httpx would log every outgoing request URL at INFO; keep it to warnings.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # uvicorn's access log prints query strings (OAuth codes, tokens); the app logs paths itself.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_level=settings.log_level.lower(),
    )


if __name__ == "__main__":
    main()
