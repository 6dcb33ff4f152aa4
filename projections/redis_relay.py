"""The outbox relay: copies the Postgres log into Redis streams.

Redis is fed from the log, never written beside it in the command path, so a
Redis outage delays events and loses none. Layout (adapters/redis_layout.py):

- `{prefix}:order:{order_id}`: one stream per order; entry id `{version}-0`;
  expires `order_stream_ttl_s` after the order's final event.
- `{prefix}:orders`: every order's events; entry id `{position}-0`; trimmed to
  about `stream_maxlen` entries. Entries carry the order's `user_id`, so the
  API's one shared reader can feed per-user streams.

Entry ids are the log's own numbers, so replaying a batch after a crash is
harmless: Redis refuses an id that is not above the stream's last one, and the
relay treats that refusal as "already published". Trimming loses nothing:
subscribers read history from Postgres and only live entries from Redis.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from psycopg import AsyncConnection
from redis.exceptions import ResponseError

from adapters.postgres_event_store import users_of
from adapters.redis_layout import RedisLayout, encode_entry
from domain.events import OrderPending
from domain.order import TERMINAL, status_of
from domain.ports import RecordedEvent

NAME = "redis_relay"
_USER_CACHE_MAX = 100_000


def _already_published(result: object) -> bool:
    return isinstance(result, ResponseError) and "equal or smaller" in str(result)


class RedisRelay:
    def __init__(
        self,
        client: aioredis.Redis,
        layout: RedisLayout,
        *,
        stream_maxlen: int = 100_000,
        order_stream_ttl_s: int = 86_400,
    ) -> None:
        self.client = client
        self.layout = layout
        self.stream_maxlen = stream_maxlen
        self.order_stream_ttl_s = order_stream_ttl_s
        self._user_cache: dict[str, str] = {}

    async def __call__(self, conn: AsyncConnection[Any], events: list[RecordedEvent]) -> None:
        users = await self._users(conn, events)
        pipe = self.client.pipeline(transaction=False)
        for e in events:
            fields = encode_entry(e, users.get(e.stream_id, ""))
            order_key = self.layout.order_stream(e.stream_id)
            pipe.xadd(order_key, fields, id=f"{e.version}-0")  # type: ignore[arg-type]
            if fields["status"] in TERMINAL:
                pipe.expire(order_key, self.order_stream_ttl_s)
            pipe.xadd(
                self.layout.all_orders,
                fields,  # type: ignore[arg-type]
                id=f"{e.position}-0",
                maxlen=self.stream_maxlen,
                approximate=True,
            )
        for result in await pipe.execute(raise_on_error=False):
            if isinstance(result, Exception) and not _already_published(result):
                raise result

    async def _users(self, conn: AsyncConnection[Any], events: list[RecordedEvent]) -> dict[str, str]:
        """Each order's user, so the API's shared reader can route entries to user streams.

        Known from a batch's OrderPending, else from a small cache, else from the
        order's first event in the log (one query per batch).
        """
        for e in events:
            if isinstance(e.event, OrderPending):
                self._user_cache[e.stream_id] = e.event.user_id
        missing = list({e.stream_id for e in events} - self._user_cache.keys())
        if missing:
            found = await users_of(conn, missing)
            self._user_cache.update({stream: found.get(stream, "") for stream in missing})
        users = {e.stream_id: self._user_cache.get(e.stream_id, "") for e in events}
        for e in events:
            if status_of(e.event) in TERMINAL:
                self._user_cache.pop(e.stream_id, None)  # a finished order writes (almost) nothing more
        if len(self._user_cache) > _USER_CACHE_MAX:
            self._user_cache.clear()
        return users
