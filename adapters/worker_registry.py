"""Which worker process holds which Dramatiq messages, so a dead one's come back at once.

Dramatiq moves a message it hands to a worker into that worker's ack set
(`{ns}:__acks__.{broker_id}.{queue}`) and gives it back to the queue only once the
worker's heartbeat is older than WORKER_HEARTBEAT_TIMEOUT_MS (a minute by default): a
killed worker's orders stood still that long, holding their execution slots. Here each
worker registers its broker id with its host, pid and start time in the hash
`{p}:dramatiq:workers` (adapters/redis_layout.py), and a worker that boots first
reclaims the messages of every registered worker of its host whose process is gone:
they are back in their queues (and their consumers woken) before the new worker takes
its first message. A worker
on another host is left to the heartbeat timeout: its process cannot be checked from here.
Reclaiming is idempotent and atomic per dead worker (one Lua script), so several workers
booting together do it once.
"""

from __future__ import annotations

import json
import logging
import socket

import psutil
import redis

from adapters.redis_layout import QUEUES, RedisLayout

log = logging.getLogger("orderengine.worker")

# KEYS: the namespace's heartbeats zset, the registry hash. ARGV: the dead broker id, then
# the queue names. Requeues what the dead worker held (messages still stored), as
# Dramatiq's own maintenance does, forgets the worker, and returns how many came back.
_RECLAIM = """
local heartbeats, registry = KEYS[1], KEYS[2]
local namespace, dead = ARGV[1], ARGV[2]
local moved = 0
for i = 3, #ARGV do
  local queue = ARGV[i]
  local acks = namespace .. ':__acks__.' .. dead .. '.' .. queue
  local messages = namespace .. ':' .. queue .. '.msgs'
  for _, id in ipairs(redis.call('smembers', acks)) do
    if redis.call('hexists', messages, id) == 1 then
      redis.call('rpush', namespace .. ':' .. queue, id)
      moved = moved + 1
    end
  end
  redis.call('del', acks)
end
redis.call('zrem', heartbeats, dead)
redis.call('hdel', registry, dead)
return moved
"""


def _identity() -> dict[str, object]:
    me = psutil.Process()
    return {"host": socket.gethostname(), "pid": me.pid, "started": me.create_time()}


def register(client: redis.Redis, layout: RedisLayout, broker_id: str) -> None:
    client.hset(layout.worker_registry(), broker_id, json.dumps(_identity()))


def unregister(client: redis.Redis, layout: RedisLayout, broker_id: str) -> None:
    client.hdel(layout.worker_registry(), broker_id)


def _is_gone(entry: dict[str, object]) -> bool:
    """A process of this host that no longer runs (a reused pid is another process)."""
    try:
        process = psutil.Process(int(str(entry["pid"])))
        return bool(
            process.status() == psutil.STATUS_ZOMBIE
            or abs(process.create_time() - float(str(entry["started"]))) > 1.0
        )
    except psutil.NoSuchProcess:
        return True
    except (psutil.AccessDenied, KeyError, ValueError):
        return False


def reclaim_dead_workers(client: redis.Redis, layout: RedisLayout, *, own_broker_id: str) -> int:
    """Requeue the messages held by dead workers of this host; how many came back."""
    host = socket.gethostname()
    registry = layout.worker_registry()
    namespace = layout.dramatiq_namespace
    queues = [q for name in QUEUES for q in (name, f"{name}.DQ")]
    script = client.register_script(_RECLAIM)
    moved = 0
    for broker_id, raw in client.hgetall(registry).items():
        broker_id = broker_id.decode() if isinstance(broker_id, bytes) else str(broker_id)
        if broker_id == own_broker_id:
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if entry.get("host") != host or not _is_gone(entry):
            continue
        count = int(
            script(keys=[f"{namespace}:__heartbeats__", registry], args=[namespace, broker_id, *queues])
        )
        moved += count
        log.warning(
            "reclaimed the messages of a dead worker",
            extra={"deadWorkerPid": entry.get("pid"), "messages": count},
        )
    if moved:
        for name in QUEUES:  # wake idle consumers of every worker, not only this one's
            client.publish(layout.queue_wakeup(name), "")
    return moved
