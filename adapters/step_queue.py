"""The `StepQueue` port on Dramatiq's Redis broker, sent from asyncio.

Dramatiq's own `send` is synchronous redis-py: from an event loop it either blocks the
loop or costs a thread hop per message. This sender writes the very message Dramatiq's
`send` writes (its `Message`, through its own `dispatch` Lua script, in its key layout)
with the process's async Redis client, so any process can hand a step to the workers
without a broker object. In the same round trip it publishes on the queue's wake-up
channel (adapters/redis_layout.py), which the workers' consumers wait on when idle
(workers/broker.py): a message is picked up at once, and an idle worker polls rarely.

The actor names are the steps (`route`, …), with `_priority` for the sniper lane on its
own queue; workers/actors.py declares the same names. tests/integration/test_step_queue.py
shows a real Dramatiq worker consuming what this sends.
"""

from __future__ import annotations

import time
import uuid

import redis.asyncio as aioredis
from dramatiq import Message
from dramatiq.brokers.redis import DEFAULT_DEAD_MESSAGE_TTL, DEFAULT_HEARTBEAT_TIMEOUT
from dramatiq.brokers.redis import _scripts as dramatiq_scripts
from redis.exceptions import NoScriptError, RedisError

from adapters.redis_layout import PRIORITY_QUEUE, QUEUE, RedisLayout
from domain.errors import QueueUnavailable
from domain.events import Step

# Dramatiq's dispatch script splits long argument lists by this; an enqueue has two.
_MAX_UNPACK = 7999


def actor_name(step: Step, priority: bool) -> str:
    return f"{step}_priority" if priority else step


def queue_name(priority: bool) -> str:
    return PRIORITY_QUEUE if priority else QUEUE


class DramatiqStepQueue:
    def __init__(
        self,
        client: aioredis.Redis,
        layout: RedisLayout,
        *,
        heartbeat_timeout_ms: int = DEFAULT_HEARTBEAT_TIMEOUT,
    ) -> None:
        self.client = client
        self.layout = layout
        self.heartbeat_timeout_ms = heartbeat_timeout_ms
        # Dramatiq records every broker that dispatches as alive in its heartbeats set; a
        # sender holds no messages, so its id only ever expires from there.
        self.broker_id = str(uuid.uuid4())
        self._script = dramatiq_scripts["dispatch"]
        self._sha: str | None = None

    async def send(
        self, step: Step, order_id: str, *, priority: bool = False, delay_ms: int | None = None
    ) -> None:
        queue = queue_name(priority)
        message = Message(
            queue_name=queue,
            actor_name=actor_name(step, priority),
            args=(order_id,),
            kwargs={},
            options={"redis_message_id": str(uuid.uuid4())},
        )
        if delay_ms is not None:
            queue = f"{queue}.DQ"
            message = message.copy(queue_name=queue, options={"eta": int(time.time() * 1000) + delay_ms})
        try:
            await self._enqueue(queue, message)
        except RedisError as exc:
            raise QueueUnavailable(f"cannot queue {step} for {order_id}: {exc}") from exc

    async def _enqueue(self, queue: str, message: Message[object]) -> None:
        args = [
            "enqueue",
            int(time.time() * 1000),
            queue,
            self.broker_id,
            self.heartbeat_timeout_ms,
            DEFAULT_DEAD_MESSAGE_TTL,
            0,  # maintenance is the consumers' business
            _MAX_UNPACK,
            message.options["redis_message_id"],
            message.encode(),
        ]
        for _ in range(2):
            if self._sha is None:
                self._sha = str(await self.client.script_load(self._script))
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    pipe.evalsha(self._sha, 1, self.layout.dramatiq_namespace, *args)
                    pipe.publish(self.layout.queue_wakeup(queue), "")
                    await pipe.execute()
                return
            except NoScriptError:  # Redis restarted (or was flushed) since the script was loaded
                self._sha = None
        raise QueueUnavailable("the broker's dispatch script could not be loaded")
