"""The outbox relay: copies the Postgres log into Redis streams.

Redis is fed from the log, never written beside it in the command path, so a
Redis outage delays events and loses none. Layout (also in docs/architecture.md):

- `{prefix}:order:{order_id}`: one stream per order; entry id `{version}-0`.
- `{prefix}:orders`: every order's events; entry id `{position}-0`.

Entry ids are the log's own numbers, so replaying a batch after a crash is
harmless: Redis refuses an id that is not above the stream's last one, and the
relay treats that refusal as "already published".
"""

from __future__ import annotations

from typing import Any

import msgspec
import redis.asyncio as aioredis
from psycopg import AsyncConnection
from redis.exceptions import ResponseError

from domain.events import encode_event
from domain.order import status_of
from domain.ports import RecordedEvent

NAME = "redis_relay"

_encoder = msgspec.json.Encoder()


def order_stream_key(prefix: str, order_id: str) -> str:
    return f"{prefix}:order:{order_id}"


def all_orders_key(prefix: str) -> str:
    return f"{prefix}:orders"


def entry_fields(e: RecordedEvent) -> dict[str, str]:
    return {
        "position": str(e.position),
        "version": str(e.version),
        "order_id": e.stream_id,
        "type": e.type,
        "status": status_of(e.event) or "",
        "event": encode_event(e.event).decode(),
        "metadata": _encoder.encode(e.metadata).decode(),
        "recorded_at": e.recorded_at.isoformat(),
    }


class RedisRelay:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    async def __call__(self, conn: AsyncConnection[Any], events: list[RecordedEvent]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for e in events:
            fields = entry_fields(e)
            pipe.xadd(order_stream_key(self.prefix, e.stream_id), fields, id=f"{e.version}-0")  # type: ignore[arg-type]
            pipe.xadd(all_orders_key(self.prefix), fields, id=f"{e.position}-0")  # type: ignore[arg-type]
        results = await pipe.execute(raise_on_error=False)
        for result in results:
            if isinstance(result, ResponseError) and "equal or smaller" not in str(result):
                raise result
            if isinstance(result, Exception) and not isinstance(result, ResponseError):
                raise result
