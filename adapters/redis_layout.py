"""Every key the engine keeps in Redis, and the codec of the stream entries.

All keys live under one prefix (`REDIS_PREFIX`, default `oe`) so that deployments and
test runs can share a server. Nothing else in the code spells a key; docs/architecture.md
shows the same table.

| key | type | written by | holds |
| --- | --- | --- | --- |
| `{p}:order:{orderId}` | stream | relay | the order's events; entry id `{version}-0`; expires when done |
| `{p}:orders` | stream | relay | every event; entry id `{position}-0`; trimmed to about STREAM_MAXLEN |
| `{p}:limiter:inflight` | sorted set | worker | order id → lease expiry (ms) |
| `{p}:limiter:starts` | sorted set | worker | execution starts in the last minute |
| `{p}:ratelimit:orders:{userId}` | string | API | the user's next allowed submission (GCRA) |
| `{p}:heartbeat:scheduler` | string | scheduler | last heartbeat (expires) |
| `{p}:heartbeat:worker:{pid}` | string | worker | last heartbeat of each worker process (expires) |
| `{p}:redriven:{orderId}:{version}` | string | scheduler | re-driven in this state (10 × STUCK_AFTER_S) |
| `{p}:mockchain:swaps:{orderId}` | set | mock DEX | signatures executed for the order (1 day) |
| `{p}:market:usd` | hash | scheduler, API | the mock market's USD price per token |
| `{p}:market:launched` | set | API, scheduler | tokens launched since start |
| `{p}:dramatiq:*` | lists, hashes | Dramatiq | queues `orders`, `orders_priority`, `.DQ` delay queues |
| `{p}:dramatiq:wake:{queue}` | pub/sub channel | every sender | wakes idle consumers of a queue at once |
| `{p}:dramatiq:workers` | hash | worker | broker id → host, pid, start time of each running worker |
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from domain.events import decode_event, encode_event
from domain.order import status_of
from domain.ports import EventMetadata, RecordedEvent

# The Dramatiq queues: ordinary orders, and sniper orders in a lane ahead of them.
QUEUE = "orders"
PRIORITY_QUEUE = "orders_priority"
QUEUES = (QUEUE, PRIORITY_QUEUE)


class RedisLayout:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def order_stream(self, order_id: str) -> str:
        return f"{self.prefix}:order:{order_id}"

    @property
    def all_orders(self) -> str:
        return f"{self.prefix}:orders"

    @property
    def limiter_inflight(self) -> str:
        return f"{self.prefix}:limiter:inflight"

    @property
    def limiter_starts(self) -> str:
        return f"{self.prefix}:limiter:starts"

    def rate_limit(self, name: str, user_id: str) -> str:
        return f"{self.prefix}:ratelimit:{name}:{user_id}"

    @property
    def scheduler_heartbeat(self) -> str:
        return f"{self.prefix}:heartbeat:scheduler"

    def worker_heartbeat(self, pid: int) -> str:
        return f"{self.prefix}:heartbeat:worker:{pid}"

    @property
    def worker_heartbeats(self) -> str:
        """A SCAN pattern matching every worker's heartbeat."""
        return f"{self.prefix}:heartbeat:worker:*"

    def redriven(self, order_id: str, version: int) -> str:
        return f"{self.prefix}:redriven:{order_id}:{version}"

    def mockchain_swaps(self, order_id: str) -> str:
        return f"{self.prefix}:mockchain:swaps:{order_id}"

    @property
    def market_prices(self) -> str:
        return f"{self.prefix}:market:usd"

    @property
    def market_launched(self) -> str:
        return f"{self.prefix}:market:launched"

    @property
    def dramatiq_namespace(self) -> str:
        return f"{self.prefix}:dramatiq"

    def queue(self, queue_name: str) -> str:
        """Dramatiq's list of message ids ready on a queue (its own layout)."""
        return f"{self.dramatiq_namespace}:{queue_name}"

    def worker_registry(self) -> str:
        """Which Dramatiq broker id each running worker process has (adapters/worker_registry.py)."""
        return f"{self.dramatiq_namespace}:workers"

    def queue_wakeup(self, queue_name: str) -> str:
        """The channel a sender publishes on so that idle consumers fetch at once."""
        return f"{self.dramatiq_namespace}:wake:{queue_name.removesuffix('.DQ')}"


# -- stream entries: written by the relay, read by every API's shared reader ----------

_metadata_decoder = msgspec.json.Decoder(EventMetadata)
_encoder = msgspec.json.Encoder()


def encode_entry(recorded: RecordedEvent, user_id: str) -> dict[str, str]:
    """The fields of the event's entry in `{p}:order:{id}` and `{p}:orders`. They carry the
    order's user so the API's one reader can feed the user streams too."""
    return {
        "position": str(recorded.position),
        "version": str(recorded.version),
        "order_id": recorded.stream_id,
        "user_id": user_id,
        "type": recorded.type,
        "status": status_of(recorded.event) or "",
        "event": encode_event(recorded.event).decode(),
        "metadata": _encoder.encode(recorded.metadata).decode(),
        "recorded_at": recorded.recorded_at.isoformat(),
    }


def decode_entry(fields: dict[str, str]) -> RecordedEvent:
    """The recorded event an entry carries (the inverse of `encode_entry`)."""
    return RecordedEvent(
        position=int(fields["position"]),
        stream_id=fields["order_id"],
        version=int(fields["version"]),
        type=fields["type"],
        event=decode_event(fields["event"]),
        metadata=_metadata_decoder.decode(fields["metadata"]),
        recorded_at=datetime.fromisoformat(fields["recorded_at"]),
    )
