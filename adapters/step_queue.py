"""The `StepQueue` port on Dramatiq's Redis broker, sent from asyncio.

Dramatiq's own `send` is synchronous redis-py: from an event loop it either blocks the
loop or costs a thread hop per message. This sender writes the very message Dramatiq's
`send` writes (its `Message`, in its key layout: the message in `{ns}:{queue}.msgs` and
its id pushed on `{ns}:{queue}`, as its dispatch script does) with one small script of
its own on the process's async client, so any process can
hand a step to the workers without a broker object. The script also publishes on the
queue's wake-up channel (adapters/redis_layout.py) when the queue was empty, which is
when a consumer may be waiting on it (workers never wait while their queue holds
messages; adapters/dramatiq_broker.py): a message is picked up at once, idle workers
poll rarely, and a busy queue costs no publish.

The actor names are the steps (`route`, …), with `_priority` for the sniper lane on its
own queue; workers/actors.py declares the same names. A step can carry the order's state
as its sender last saw it (`state`): the step then decides on it without reading the
stream, and a stale one only loses its append race (domain/services/execution.py).
tests/integration/test_step_queue.py shows a real Dramatiq worker consuming what this sends.
"""

from __future__ import annotations

import time
import uuid

import msgspec
import redis.asyncio as aioredis
from dramatiq import Message
from redis.exceptions import RedisError

from adapters.redis_layout import PRIORITY_QUEUE, QUEUE, RedisLayout
from domain.errors import QueueUnavailable
from domain.events import Step
from domain.order import OrderState

# KEYS: the queue's messages hash, the queue's list. ARGV: the message id, the message,
# the wake-up channel.
_ENQUEUE = """
redis.call("hset", KEYS[1], ARGV[1], ARGV[2])
if redis.call("rpush", KEYS[2], ARGV[1]) == 1 then
    redis.call("publish", ARGV[3], "")
end
return 1
"""

_state_encoder = msgspec.json.Encoder(decimal_format="string")


def actor_name(step: Step, priority: bool) -> str:
    return f"{step}_priority" if priority else step


def queue_name(priority: bool) -> str:
    return PRIORITY_QUEUE if priority else QUEUE


def encode_state(state: OrderState) -> str:
    return _state_encoder.encode(state).decode()


class DramatiqStepQueue:
    def __init__(self, client: aioredis.Redis, layout: RedisLayout) -> None:
        self.client = client
        self.layout = layout
        self._script = client.register_script(_ENQUEUE)

    async def send(
        self,
        step: Step,
        order_id: str,
        *,
        priority: bool = False,
        delay_ms: int | None = None,
        state: OrderState | None = None,
    ) -> None:
        queue = queue_name(priority)
        message = Message(
            queue_name=queue,
            actor_name=actor_name(step, priority),
            args=(order_id,),
            kwargs={"state": encode_state(state)} if state is not None else {},
            options={"redis_message_id": str(uuid.uuid4())},
        )
        if delay_ms is not None:
            queue = f"{queue}.DQ"
            message = message.copy(queue_name=queue, options={"eta": int(time.time() * 1000) + delay_ms})
        namespace = self.layout.dramatiq_namespace
        message_id = message.options["redis_message_id"]
        try:
            await self._script(
                keys=[f"{namespace}:{queue}.msgs", f"{namespace}:{queue}"],
                args=[message_id, message.encode(), self.layout.queue_wakeup(queue)],
            )
        except RedisError as exc:
            raise QueueUnavailable(f"cannot queue {step} for {order_id}: {exc}") from exc
