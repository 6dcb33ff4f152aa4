from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.conftest import delete_prefix
from tests.e2e.engine import Engine

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def start_engine(database_url: str, redis_url: str) -> Iterator[Callable[..., Engine]]:
    """Starts engines with given settings; stops them and deletes their keys at module end."""
    engines: list[Engine] = []

    def start(database: str | None = None, **env: str) -> Engine:
        engine = Engine(database or database_url, redis_url, **env).start()
        engines.append(engine)
        return engine

    yield start
    for engine in engines:
        engine.stop()
        delete_prefix(redis_url, engine.prefix)
        engine.log_path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def engine(start_engine: Callable[..., Engine]) -> Engine:
    return start_engine()
