"""The `redis` queue backend (`QUEUE_BACKEND=redis`): ready and held jobs in Redis.

Under QUEUE_PREFIX (`P` below), in keys of Redis's own types:

- `P:queue:ready:<queue>`: a list of the queue's ready jobs, as JSON, oldest first;
- `P:queue:held:<worker id>`: a hash of the jobs a worker holds, by job id, each with
  its attempt counted, its worker and the time it was taken;
- `P:queue:holders`, `P:queue:queues`: the workers holding jobs, the queues known;
- `P:queue:uuids`: the jobs in Redis by uuid and attempt, so that a job published
  twice (the auth database's outbox relayed it again after a crash) is taken once.

Each step is one Lua script, so Redis runs it alone: a worker's round acknowledges
the jobs it finished and takes as many as it has room for, counting their attempt
(`TAKE`); nothing is ever in neither place, so a worker that dies loses nothing. Its
jobs go back to their queue when its heartbeat in the auth database goes stale
(`GIVE_BACK`, from `recover`), their attempt kept counted.
"""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import redis.asyncio as redis

from app.core.config import Settings
from app.core.db.base import AuthSession
from app.core.db.registry import Database
from app.core.db.types import utc_now
from app.essentials.queue.backend import ReservedJob, RunningJob
from app.essentials.queue.broker import Body, BrokerBackend

_PUBLISH = """
local p = ARGV[1]
local published = 0
for i = 2, #ARGV do
  local job = cjson.decode(ARGV[i])
  local key = job.uuid .. ':' .. job.attempts
  if redis.call('HSETNX', p .. ':uuids', key, 1) == 1 then
    job.id = redis.call('INCR', p .. ':seq')
    job.dedup = key
    redis.call('SADD', p .. ':queues', job.queue)
    redis.call('RPUSH', p .. ':ready:' .. job.queue, cjson.encode(job))
    published = published + 1
  end
end
return published
"""

# ARGV: prefix, worker id, now, limit, number of finished ids, the ids, the queues.
_TAKE = """
local p, worker, now, limit = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local finished = tonumber(ARGV[5])
local held = p .. ':held:' .. worker
for i = 6, 5 + finished do
  local body = redis.call('HGET', held, ARGV[i])
  if body then
    redis.call('HDEL', p .. ':uuids', cjson.decode(body).dedup)
    redis.call('HDEL', held, ARGV[i])
  end
end
local taken = {}
for i = 6 + finished, #ARGV do
  if #taken >= limit then break end
  local ready = redis.call('LPOP', p .. ':ready:' .. ARGV[i], limit - #taken)
  if ready then
    for _, body in ipairs(ready) do
      local job = cjson.decode(body)
      job.attempts = job.attempts + 1
      job.worker = tonumber(worker)
      job.reserved_at = now
      local encoded = cjson.encode(job)
      redis.call('HSET', held, job.id, encoded)
      taken[#taken + 1] = encoded
    end
  end
end
if #taken > 0 then
  redis.call('SADD', p .. ':holders', worker)
elseif redis.call('EXISTS', held) == 0 then
  redis.call('SREM', p .. ':holders', worker)
end
return taken
"""

# ARGV: prefix, worker id, refund (1 or 0), the ids (none: all the worker holds).
_GIVE_BACK = """
local p, worker, refund = ARGV[1], ARGV[2], ARGV[3] == '1'
local held = p .. ':held:' .. worker
local ids = {}
if #ARGV > 3 then
  for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('HKEYS', held)
end
local given = 0
for _, id in ipairs(ids) do
  local body = redis.call('HGET', held, id)
  if body then
    local job = cjson.decode(body)
    if refund then job.attempts = job.attempts - 1 end
    job.worker = nil
    job.reserved_at = nil
    redis.call('LPUSH', p .. ':ready:' .. job.queue, cjson.encode(job))
    redis.call('HDEL', held, id)
    given = given + 1
  end
end
if redis.call('EXISTS', held) == 0 then redis.call('SREM', p .. ':holders', worker) end
return given
"""

_RESERVED = ("id", "uuid", "name", "queue", "payload", "attempts", "max_attempts", "backoff")


def _reserved(body: str) -> ReservedJob:
    job: dict[str, Any] = json.loads(body)
    return ReservedJob(
        **{name: job[name] for name in _RESERVED},
        timeout=job.get("timeout"),
        batch_id=job.get("batch_id"),
    )


class RedisBackend(BrokerBackend):
    def __init__(self, auth: Database[AuthSession], settings: Settings) -> None:
        super().__init__(auth, settings)
        self.keys = f"{self.prefix}:queue"
        # A deadline on every call: a server gone quiet fails the call, not the worker.
        self.redis = redis.Redis.from_url(
            self.url, decode_responses=True, socket_timeout=15, socket_connect_timeout=5
        )
        self._publish_script = self.redis.register_script(_PUBLISH)
        self._take_script = self.redis.register_script(_TAKE)
        self._give_back_script = self.redis.register_script(_GIVE_BACK)

    async def close(self) -> None:
        await self.redis.aclose()

    async def _publish(self, bodies: Sequence[Body]) -> None:
        for start in range(0, len(bodies), 1000):
            chunk = [json.dumps(body) for body in bodies[start : start + 1000]]
            await self._publish_script(args=[self.keys, *chunk])

    async def _take(
        self, worker_id: int, queues: Sequence[str], limit: int, finished: Sequence[ReservedJob]
    ) -> list[ReservedJob]:
        arguments: list[str | int] = [
            self.keys,
            worker_id,
            utc_now().isoformat(),
            limit,
            len(finished),
        ]
        arguments += [job.id for job in finished]
        taken = await self._take_script(args=[*arguments, *queues])
        return [_reserved(body) for body in taken]

    async def _holds(self, worker_id: int, job: ReservedJob) -> bool:
        return bool(await self.redis.hexists(f"{self.keys}:held:{worker_id}", str(job.id)))

    async def _give_back(self, worker_id: int, jobs: Sequence[ReservedJob]) -> None:
        await self._give_back_script(args=[self.keys, worker_id, 1, *(job.id for job in jobs)])

    async def _drop_worker(self, worker_id: int) -> None:
        await self._give_back_script(args=[self.keys, worker_id, 0])

    async def _recover(self, dead: Sequence[int]) -> int:
        # The holders first, the registered workers then: a worker registers before it
        # holds anything, so a holder missing from the registry is gone for good.
        holders = await self._members("holders")
        registered = {str(worker_id) for worker_id in await self._registered()}
        recovered = 0
        for holder in holders - registered:
            recovered += int(await self._give_back_script(args=[self.keys, holder, 0]))
        return recovered

    async def _ready(self, queues: set[str]) -> dict[str, int]:
        known = sorted(queues | await self._members("queues"))
        async with self.redis.pipeline(transaction=False) as pipe:
            for queue in known:
                pipe.llen(f"{self.keys}:ready:{queue}")
            lengths = await pipe.execute()
        return dict(zip(known, (int(length) for length in lengths), strict=True))

    async def _members(self, key: str) -> set[str]:
        # Strings: the client decodes responses.
        return cast(set[str], await self.redis.smembers(f"{self.keys}:{key}"))

    async def _running(self) -> list[RunningJob]:
        running: list[RunningJob] = []
        for holder in await self._members("holders"):
            for body in await self.redis.hvals(f"{self.keys}:held:{holder}"):
                job = json.loads(body)
                running.append(
                    RunningJob(
                        id=job["id"],
                        uuid=job["uuid"],
                        name=job["name"],
                        queue=job["queue"],
                        attempts=job["attempts"],
                        max_attempts=job["max_attempts"],
                        reserved_at=datetime.fromisoformat(job["reserved_at"]),
                        worker_id=job["worker"],
                    )
                )
        return running
