"""Start the whole system for local development: the four services and the Zoom simulator.

Each runs as its own process (as in production), with its output prefixed by its name. SQLite
files under ./var by default; RabbitMQ on localhost. Ctrl-C (or SIGTERM) stops them all and
exits 0; a service that exits by itself stops the others and the exit status is 1, naming it.
Used by ``make run``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
SERVICES = [
    ("zoom-sim", "zoom_sim", "\033[35m"),
    ("catalog", "catalog", "\033[36m"),
    ("registration", "registration", "\033[32m"),
    ("zoom-bridge", "zoom_bridge", "\033[33m"),
    ("integrations", "integrations", "\033[34m"),
]
#: a local run's webhook receivers are on this machine (a demo server, a tunnel's local end):
#: integrations may deliver to loopback over plain http here, never in production
LOCAL_WEBHOOKS = {
    "WEBHOOK_ALLOW_HTTP": "true",
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS": '["127.0.0.0/8", "::1/128"]',
}
RESET = "\033[0m"


def rabbit_reachable(url: str) -> bool:
    import socket

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), 3):
            return True
    except OSError:
        return False


async def pipe(name: str, color: str, stream: asyncio.StreamReader, width: int) -> None:
    tty = sys.stdout.isatty()
    prefix = f"{color}{name:<{width}}{RESET} | " if tty else f"{name:<{width}} | "
    while line := await stream.readline():
        sys.stdout.write(prefix + line.decode(errors="replace"))
        sys.stdout.flush()


Command = tuple[str, list[str], str]  # (name, argv, colour)


async def supervise(
    commands: list[Command],
    env: dict[str, str],
    *,
    stop: asyncio.Event | None = None,
    grace: float = 30.0,
) -> int:
    """Run ``commands`` side by side until ``stop`` (SIGINT/SIGTERM) or until one exits on its
    own; then stop the others. 0 after a requested stop, 1 when a process ended by itself
    (a crash, which also brought the others down), naming it."""
    stop = stop or asyncio.Event()
    width = max(len(name) for name, _, _ in commands)
    procs: list[tuple[str, asyncio.subprocess.Process]] = []
    tasks = []
    for name, argv, color in commands:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        assert proc.stdout is not None
        procs.append((name, proc))
        tasks.append(asyncio.create_task(pipe(name, color, proc.stdout, width)))

    crashed: list[tuple[str, int]] = []

    async def watch(name: str, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if not stop.is_set():
            crashed.append((name, code))
            print(f"{name} exited with {code}; stopping the others", file=sys.stderr)
            stop.set()

    watchers = [asyncio.create_task(watch(n, p)) for n, p in procs]
    await stop.wait()
    for _, proc in procs:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.gather(*(p.wait() for _, p in procs)), timeout=grace)
    except TimeoutError:
        for name, proc in procs:
            if proc.returncode is None:
                print(f"{name} did not stop in {grace:.0f}s; killing it", file=sys.stderr)
                proc.kill()
                await proc.wait()
    # the rest of their output (bounded: a stray grandchild may hold a pipe open)
    await asyncio.wait([*tasks], timeout=5)
    for task in [*tasks, *watchers]:
        task.cancel()
    if crashed:
        name, code = crashed[0]
        print(f"make run failed: {name} exited with {code}", file=sys.stderr)
        return 1
    return 0


async def main() -> int:
    amqp = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    if not rabbit_reachable(amqp):
        parts = urlsplit(amqp)
        print(
            f"RabbitMQ is not reachable at {parts.hostname}:{parts.port or 5672}.\n"
            "Start one with `rabbitmq-server -detached` (Debian/Ubuntu package rabbitmq-server)\n"
            "or `docker compose up -d rabbitmq`, or set AMQP_URL to a running broker.",
            file=sys.stderr,
        )
        return 2
    (ROOT / "var").mkdir(exist_ok=True)
    env = {"LOG_JSON": os.environ.get("LOG_JSON", "false"), **LOCAL_WEBHOOKS, **os.environ}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    commands = [(name, [sys.executable, "-m", module], color) for name, module, color in SERVICES]
    return await supervise(commands, env, stop=stop)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
