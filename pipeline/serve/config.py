"""What one MDC service runs with (`ServeConfig`), read from the command line of
``python -m pipeline serve``, and the checks made before anything listens.

Only the standard library and the pipeline's own modules are imported here (DESIGN §2).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.fetch.limits import Limits
from pipeline.store.sites import SiteMeta

__all__ = [
    "ACK_MODES",
    "CONFIG_ENV",
    "ConfigError",
    "ServeConfig",
    "is_loopback",
    "load_sites",
    "parse_interval_s",
]

#: What an answer to an upload means (see `pipeline.serve`): ``commit``: the readings are
#: committed to the database; ``receipt``: they are checked and written in the open
#: transaction, committed within ``commit_wait_s``.
ACK_MODES = ("receipt", "commit")

#: The environment variable that hands a multi-worker service's settings (JSON) to its
#: worker processes.
CONFIG_ENV = "IMDC_SERVE_CONFIG"

_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h|d)\s*$")
_UNIT_S = {"ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


class ConfigError(ValueError):
    """A setting the service cannot start with; the message names it and what was expected."""


def parse_interval_s(text: str, name: str) -> float | None:
    """``"1h"`` -> 3600.0, ``"off"`` (or ``"0"``) -> None: a duration in the scenario
    files' spelling (``ms``, ``s``, ``min``, ``h``, ``d``).

    Raises:
        ConfigError: anything else, naming the option `name`.
    """
    if text.strip().lower() in ("off", "0"):
        return None
    match = _INTERVAL.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise ConfigError(f"{name} {text!r}: expected a duration such as 30s, 5min, 1h, or off")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def is_loopback(host: str) -> bool:
    """Whether binding to `host` only accepts connections from this machine: ``localhost``
    or a loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


@dataclass(frozen=True)
class ServeConfig:
    """Settings of one service process.

    Attributes:
        db_path: the store (created if missing).
        keyring_path: the meters' keys (`pipeline.fetch.auth.Keyring.load`: JSON or TOML
            table ``keys`` of meter id -> hex key).
        host, port: where to listen (port 0: one the OS picks, printed at start).
        ack: one of `ACK_MODES`.
        analyze_every_s: wall-clock period of the batch analysis, s; None: only on
            request (``POST /v1/analyze``).
        token: bearer token required by the dashboard and the API (None: none; only
            allowed on a loopback address).
        sites_path: a JSON site registry (``{"sites": [SiteMeta fields...]}``) registered
            at start, or None.
        commit_every: accepted uploads per transaction at most (the group commit).
        commit_wait_s: with ``receipt`` acks, the longest an acknowledged upload waits for
            its commit, s.
        queue_uploads, queue_bytes: the ingest queue's bounds, uploads and bytes of bodies;
            beyond either an upload is refused with 503 and ``Retry-After``.
        limits: bounds on one upload's document (`pipeline.fetch.limits.Limits`).
        workers: uvicorn worker processes (several: see `pipeline.serve.server`).
        read_connections: read-only store connections of the dashboard and the API.
    """

    db_path: Path
    keyring_path: Path
    host: str = "127.0.0.1"
    port: int = 8080
    ack: str = "commit"
    analyze_every_s: float | None = 3600.0
    token: str | None = None
    sites_path: Path | None = None
    commit_every: int = 256
    commit_wait_s: float = 0.2
    queue_uploads: int = 4096
    queue_bytes: int = 64_000_000
    limits: Limits = field(default_factory=Limits)
    workers: int = 1
    read_connections: int = 2

    def check(self) -> None:
        """Refuse settings the service must not run with.

        Raises:
            ConfigError: a non-loopback address without a token (DESIGN §9), an unknown
                ack mode, a bad number, or several workers with the batch analysis on (it
                tracks new readings in its own process).
        """
        if not is_loopback(self.host) and not self.token:
            raise ConfigError(
                f"--host {self.host} is not a loopback address: the service refuses to listen "
                "there without --token (the dashboard and the API would be open to anyone)"
            )
        if self.ack not in ACK_MODES:
            raise ConfigError(f"--ack {self.ack!r}: expected one of {', '.join(ACK_MODES)}")
        if self.token is not None and len(self.token) < 16:
            raise ConfigError("--token: use at least 16 characters (e.g. 32 random hex digits)")
        for name, value in (
            ("--commit-every", self.commit_every),
            ("--workers", self.workers),
            ("--queue-uploads", self.queue_uploads),
            ("--queue-bytes", self.queue_bytes),
            ("--read-connections", self.read_connections),
        ):
            if value < 1:
                raise ConfigError(f"{name} {value}: expected an integer >= 1")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port {self.port}: expected 0..65535")
        if self.workers > 1 and self.analyze_every_s is not None:
            raise ConfigError(
                "--workers > 1 needs --analyze-every off: the batch analysis tracks the "
                "readings its own process stored, so only a single-worker service runs it"
            )

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON (handed to worker processes)."""
        return {
            "db_path": str(self.db_path),
            "keyring_path": str(self.keyring_path),
            "host": self.host,
            "port": self.port,
            "ack": self.ack,
            "analyze_every_s": self.analyze_every_s,
            "token": self.token,
            "sites_path": None if self.sites_path is None else str(self.sites_path),
            "commit_every": self.commit_every,
            "commit_wait_s": self.commit_wait_s,
            "queue_uploads": self.queue_uploads,
            "queue_bytes": self.queue_bytes,
            "limits": {
                "max_size_bytes": self.limits.max_size_bytes,
                "max_depth": self.limits.max_depth,
                "max_elements": self.limits.max_elements,
            },
            "workers": self.workers,
            "read_connections": self.read_connections,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServeConfig:
        values = dict(data)
        values["db_path"] = Path(values["db_path"])
        values["keyring_path"] = Path(values["keyring_path"])
        if values.get("sites_path") is not None:
            values["sites_path"] = Path(values["sites_path"])
        values["limits"] = Limits(**values["limits"])
        return cls(**values)


def load_sites(path: Path) -> list[SiteMeta]:
    """A site registry file: JSON ``{"sites": [{...}, ...]}``, each entry the fields of
    `pipeline.store.sites.SiteMeta`.

    Raises:
        ConfigError: unreadable file or a bad entry, naming the file and the entry.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--sites {path}: {exc}") from None
    entries = document.get("sites") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"--sites {path}: expected a JSON object with a list 'sites'")
    sites = []
    for i, entry in enumerate(entries):
        try:
            if not isinstance(entry, dict):
                raise TypeError("not an object")
            sites.append(SiteMeta(**entry))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"--sites {path}: entry {i}: {exc}") from None
    return sites
