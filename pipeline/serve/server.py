"""Running the MDC service: checks, the listening socket, uvicorn (`serve`).

Before anything listens, `serve` refuses what the service must not run with (one line,
exit code 2): a non-loopback address without a token, an unreadable keyring or site
registry, a database it cannot open, a port it cannot bind. Then it binds the socket
itself (port 0: the OS picks a free one) and listens, prints one line with the address on
stdout (``MDC service listening on http://HOST:PORT ...``: scripts and tests read the port
from it; a client that connects at once waits in the backlog until the app has started)
and hands the socket to uvicorn.

Shutdown: on SIGTERM or SIGINT uvicorn stops accepting connections and waits up to
`GRACEFUL_S` for the requests in progress (those waiting for a commit get their answer);
then the app's lifespan ends: the writer thread takes the jobs still queued, commits and
closes the store (`pipeline.serve.writer.Writer.stop`); the exit code is 0.

Several workers (``--workers N``): uvicorn's supervisor starts N processes sharing the
socket, each with its own writer thread on the same database (SQLite serialises their
commits; a writer waits up to `pipeline.store.schema.BUSY_TIMEOUT_S` for the lock, and
an upload whose group could not commit is answered 503). Their metrics, replay windows
(`pipeline.fetch.auth`) and forecast books are per process; the batch analysis needs a
single worker (`pipeline.serve.config.ServeConfig.check`).

Only the standard library, the pipeline's own modules and uvicorn are imported here.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

import uvicorn
from uvicorn.supervisors import Multiprocess

from pipeline.fetch.auth import Keyring
from pipeline.serve.app import create_app
from pipeline.serve.config import CONFIG_ENV, ConfigError, ServeConfig, load_sites
from pipeline.store.store import Store

__all__ = ["GRACEFUL_S", "serve"]

#: How long a stopping service waits for requests in progress, s.
GRACEFUL_S = 30.0

EXIT_USAGE = 2
#: Pending connections the socket queues (uvicorn's default).
_BACKLOG = 2048


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only then (a
    # small answer written in two parts would otherwise wait for a delayed ACK, ~40 ms)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(_BACKLOG)  # connections wait in the backlog until the app has started
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _check(config: ServeConfig) -> None:
    """Everything `serve` refuses before listening (module docstring).

    Raises:
        ValueError: the message names what is wrong.
    """
    config.check()
    Keyring.load(config.keyring_path)
    if config.sites_path is not None:
        load_sites(config.sites_path)
    try:
        Store(config.db_path).close()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--db {config.db_path}: {exc}") from None
    except Exception as exc:  # sqlite3.Error: not a database, read-only folder, locked
        raise ConfigError(f"--db {config.db_path}: {type(exc).__name__}: {exc}") from None


def serve(config: ServeConfig) -> int:
    """Run the service until SIGTERM or SIGINT; the exit code (0 after a clean stop, 2 for
    a setting it refuses, with one line on stderr)."""
    try:
        _check(config)
        sock = _bind(config.host, config.port)
    except (ValueError, OSError) as exc:
        print(f"python -m pipeline serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(
        f"MDC service listening on http://{shown}:{port} (ack {config.ack}, db "
        f"{config.db_path}, {config.workers} worker{'s' if config.workers > 1 else ''})",
        flush=True,
    )
    common = {
        "log_level": "warning",
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": GRACEFUL_S,
    }
    if config.workers > 1:
        os.environ[CONFIG_ENV] = json.dumps(config.to_json())
        uv_config = uvicorn.Config(
            "pipeline.serve.app:app_from_environment",
            factory=True,
            workers=config.workers,
            **common,  # type: ignore[arg-type]
        )
        Multiprocess(uv_config, sockets=[sock]).run()
        return 0
    server = uvicorn.Server(uvicorn.Config(create_app(config), **common))  # type: ignore[arg-type]
    # uvicorn handles SIGTERM and SIGINT while it serves (the graceful stop), then raises
    # the signal again for the handler in place before it: this one, so that a clean stop
    # exits with 0 rather than die of the signal
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda signum, frame: None)
    server.run(sockets=[sock])
    return 0 if server.started else 1
