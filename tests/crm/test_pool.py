"""Each process holds at most DATABASE_POOL_SIZE connections, so N of them can be sized to fit
the server's max_connections."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg_pool import PoolTimeout

from config.settings import get_settings
from crm import db


@pytest.fixture
def pool_of_three(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_POOL_SIZE", "3")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


async def test_a_busy_process_opens_no_more_connections_than_its_pool_size(
        pool_of_three: None, database_url: str) -> None:
    pool = await db._open_pool(database_url)
    try:
        connections = [await pool.getconn() for _ in range(3)]
        # A fourth query waits for one of the three rather than opening a connection.
        with pytest.raises(PoolTimeout):
            await pool.getconn(timeout=0.2)
        await pool.putconn(connections.pop())
        connections.append(await pool.getconn(timeout=0.2))
        for connection in connections:
            await pool.putconn(connection)
    finally:
        await pool.close()
