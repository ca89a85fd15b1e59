"""The PostgreSQL connection pool, opened on first use from `DATABASE_URL`.

Connections run in the shop's time zone, so timestamps the database renders (JSON built
in SQL) already carry the offset the agent speaks in.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from config.settings import get_settings
from crm import embedded
from crm.errors import DatabaseUnavailable

_pool: AsyncConnectionPool | None = None
_lock = asyncio.Lock()
# How long the pool keeps retrying a lost connection with growing pauses before it gives up and
# connects again on the next demand: so a database back from an outage is used within seconds,
# not after a pause grown over the whole outage.
RECONNECT_SECONDS = 5.0


async def database_url() -> str:
    """The configured URL, or the embedded server's (started on first use)."""
    configured = get_settings().database_url
    return configured or await asyncio.to_thread(embedded.postgres_url)


async def pool() -> AsyncConnectionPool:
    global _pool
    if _pool is None:
        async with _lock:
            if _pool is None:
                _pool = await _open_pool(await database_url())
    return _pool


async def _open_pool(url: str) -> AsyncConnectionPool:
    new = AsyncConnectionPool(
        url,
        min_size=2,
        max_size=get_settings().database_pool_size,
        timeout=3.0,
        reconnect_timeout=RECONNECT_SECONDS,
        # An idle connection is checked before use: one left over from before a database restart
        # is replaced, not handed to a write that would then fail.
        check=AsyncConnectionPool.check_connection,
        kwargs={
            "options": f"-c TimeZone={get_settings().shop_timezone}",
            "row_factory": dict_row,
            "connect_timeout": 3,
        },
        open=False,
        name="crm",
    )
    try:
        await new.open(wait=True, timeout=3.0)
    except PoolTimeout as exc:
        await new.close()
        raise DatabaseUnavailable(f"cannot reach the database at {_redacted(url)}") from exc
    return new


@asynccontextmanager
async def connection() -> AsyncIterator[psycopg.AsyncConnection]:
    """A pooled connection inside a transaction; an unreachable database is a typed error."""
    pool_ = await pool()
    try:
        async with pool_.connection() as conn:
            yield conn
    except psycopg.errors.TransactionRollback:
        raise  # a deadlock or serialization failure: the caller may retry, the database is fine
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise DatabaseUnavailable(str(exc).splitlines()[0] if str(exc) else "database error") from exc


@asynccontextmanager
async def within(conn: psycopg.AsyncConnection | None) -> AsyncIterator[psycopg.AsyncConnection]:
    """`conn` when the caller already holds one (to write in its transaction), else `connection()`."""
    if conn is not None:
        yield conn
    else:
        async with connection() as own:
            yield own


async def close() -> None:
    global _pool
    if _pool is not None:
        await _pool.close()
        _pool = None


def _redacted(url: str) -> str:
    head, _, tail = url.rpartition("@")
    return f"postgresql://***@{tail}" if head else url
