"""Which Dramatiq messages this worker process holds, so that the ones it lost track of
in a Redis outage go back to their queues as soon as Redis is back.

Dramatiq moves each message a consumer fetches into the worker's ack set
(`{ns}:__acks__.{broker_id}.{queue}`) and takes it out when the message is acked. When
the consumer's Redis connection breaks, Dramatiq's consumer thread starts a new consumer
and carries on, but some messages of the ack set are no longer anywhere in the process:

- a delay queue's consumer drops the delayed messages it was holding until their time
  (a step's scheduled retry, most often);
- a fetch whose reply was lost moved messages into the ack set that never arrived.

Their worker still heartbeats, so Dramatiq's maintenance never gives them back: they
waited for the worker to die, or for the stuck-order re-driver. Here every consumer notes
the messages it hands out and forgets them once acked, nacked or requeued; a consumer
started again gives back, in one script, every message of its ack set that the process
does not hold.
"""

from __future__ import annotations

import threading

import redis

# KEYS: the ack set, the queue, its messages hash. ARGV: the ids the process holds.
# Requeues the others (if still stored, as Dramatiq's own requeue does); returns how many.
_GIVE_BACK = """
local acks, queue, messages = KEYS[1], KEYS[2], KEYS[3]
local held = {}
for i = 1, #ARGV do held[ARGV[i]] = true end
local moved = 0
for _, id in ipairs(redis.call('smembers', acks)) do
  if not held[id] then
    redis.call('srem', acks, id)
    if redis.call('hexists', messages, id) == 1 then
      redis.call('rpush', queue, id)
      moved = moved + 1
    end
  end
end
return moved
"""


class HeldMessages:
    """The Redis ids of the messages this process's consumers handed out, per queue."""

    def __init__(self) -> None:
        self._held: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def took(self, queue_name: str, redis_id: str) -> None:
        with self._lock:
            self._held.setdefault(queue_name, set()).add(redis_id)

    def done(self, queue_name: str, redis_id: str) -> None:
        with self._lock:
            self._held.get(queue_name, set()).discard(redis_id)

    def give_back_lost(self, client: redis.Redis, namespace: str, broker_id: str, queue_name: str) -> int:
        """Requeue the messages of this worker's ack set for the queue that it does not hold.

        Called as a queue's consumer starts again. A delay queue's consumer thread has
        dropped (or requeued) everything it held by then, so none of its messages is held.
        """
        with self._lock:
            held = self._held.setdefault(queue_name, set())
            if queue_name.endswith(".DQ"):
                held.clear()
            snapshot = list(held)
        queue = f"{namespace}:{queue_name}"
        script = client.register_script(_GIVE_BACK)
        keys = [f"{namespace}:__acks__.{broker_id}.{queue_name}", queue, f"{queue}.msgs"]
        return int(script(keys=keys, args=snapshot))
