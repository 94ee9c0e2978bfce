"""Presence over every node on one Redis: a hash of session counts per node, a cluster total per agent, and a
heartbeat per node, so the sessions of a node killed without a word stop counting after `ttl_s`.

Keys (hash-tagged, one slot): `{presence}:nodes` (sorted set: node -> deadline, ms of Redis's clock),
`{presence}:total` (agent -> sessions over every node) and `{presence}:node:<id>` (agent -> this node's).
Every change is one Lua script, so the total moves atomically with the node's count: exactly one script
returns 1 for an agent coming online, 0 for one going offline. The heartbeat script also sweeps nodes past
their deadline: it subtracts their counts and returns the agents left with none (only one node's sweep
removes a dead node, so each is reported offline once). A node that finds itself swept (a pause longer than
the TTL, or a Redis restarted empty) writes its own counts back.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.events.presence import Changed
from gateway.redis_pool import answers, masked, pooled

log = structlog.get_logger("gateway.presence")

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: nodes, total, this node's hash. ARGV: agent, delta (+1/-1), ttl ms, node id.
_CHANGE = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
local d = tonumber(ARGV[2])
local mine = redis.call('HINCRBY', KEYS[3], ARGV[1], d)
if mine <= 0 then
  redis.call('HDEL', KEYS[3], ARGV[1])
  d = d - mine
end
local total = redis.call('HINCRBY', KEYS[2], ARGV[1], d)
if total <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  total = 0
end
return total
"""
)

# KEYS: nodes, total. ARGV: node id, ttl ms, prefix of the node hashes. Returns {known (0/1), gone agents}.
_BEAT = (
    _NOW
    + """
local known = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local gone = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  local h = ARGV[3] .. node
  local kv = redis.call('HGETALL', h)
  for i = 1, #kv, 2 do
    local total = redis.call('HINCRBY', KEYS[2], kv[i], -tonumber(kv[i + 1]))
    if total <= 0 then
      redis.call('HDEL', KEYS[2], kv[i])
      table.insert(gone, kv[i])
    end
  end
  redis.call('DEL', h)
  redis.call('ZREM', KEYS[1], node)
end
if known then return {1, gone} end
return {0, gone}
"""
)

# KEYS: total, this node's hash. ARGV: agent, count, agent, count, ... (this node's counts now).
# Returns the agents whose total went from 0 to more (online again).
_RESTORE = """
local back = {}
for i = 1, #ARGV, 2 do
  local prev = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
  local want = tonumber(ARGV[i + 1])
  local total = redis.call('HINCRBY', KEYS[1], ARGV[i], want - prev)
  if want > 0 then redis.call('HSET', KEYS[2], ARGV[i], want) else redis.call('HDEL', KEYS[2], ARGV[i]) end
  if total <= 0 then redis.call('HDEL', KEYS[1], ARGV[i]) end
  if prev == 0 and want > 0 and total == want then table.insert(back, ARGV[i]) end
end
return back
"""


class RedisPresence:
    """Presence counted in Redis for every node sharing it (see the module's description)."""

    def __init__(self, *, url: str, ttl_s: float = 15.0, prefix: str = "gateway:", node: str | None = None) -> None:
        self._redis: Redis = pooled(url)
        self._url = url
        self.node = node or uuid.uuid4().hex
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._period = ttl_s / 3
        base = f"{prefix}{{presence}}"
        self._nodes, self._total = f"{base}:nodes", f"{base}:total"
        self._node_prefix = f"{base}:node:"
        self._mine = self._node_prefix + self.node
        self._change = self._redis.register_script(_CHANGE)
        self._beat = self._redis.register_script(_BEAT)
        self._restore = self._redis.register_script(_RESTORE)
        self._local: dict[str, int] = {}  # this node's counts: what Redis must hold for us
        self._dirty = False  # a change Redis missed (unreachable): the next beat writes our counts back
        self._lock = asyncio.Lock()  # one script of ours at a time, so a restore never races a change
        self._task: asyncio.Task[None] | None = None
        self._changed: Changed = lambda agents, online: None

    async def start(self, changed: Changed) -> None:
        """Register this node (a first beat) and beat every third of the TTL (ConnectionError, naming the URL,
        when Redis cannot be reached now: a node does not start without it)."""
        self._changed = changed
        try:
            await self.beat()
        except (RedisError, OSError) as exc:
            raise ConnectionError(f"presence at {masked(self._url)}: cannot reach Redis: {exc}") from exc
        self._task = asyncio.create_task(self._run(), name="presence-heartbeat")

    async def close(self) -> None:
        """Stop beating and take this node's sessions out of the counts (agents left with none are told to
        `changed` as offline: a graceful stop says what a kill leaves to the sweep)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        gone: list[str] = []
        try:
            async with self._lock:
                for agent, n in list(self._local.items()):
                    keys = [self._nodes, self._total, self._mine]
                    if int(await self._change(keys=keys, args=[agent, -n, self._ttl_ms, self.node])) == 0:
                        gone.append(agent)
                self._local.clear()
                await self._redis.zrem(self._nodes, self.node)
        except Exception as exc:
            log.warning("presence_unavailable", error=str(exc))  # the others' sweep takes us out after the TTL
        if gone:
            self._changed(gone, False)
        await self._redis.aclose()

    async def opened(self, agent: str) -> int | None:
        """+1 here and in the total."""
        self._local[agent] = self._local.get(agent, 0) + 1
        return await self._apply(agent, 1)

    async def closed(self, agent: str) -> int | None:
        """-1 here and in the total."""
        left = self._local.get(agent, 0) - 1
        if left > 0:
            self._local[agent] = left
        else:
            self._local.pop(agent, None)
        return await self._apply(agent, -1)

    async def ping(self) -> bool:
        """True when this client's Redis answers (for /readyz)."""
        return await answers(self._redis)

    async def count(self, agent: str) -> int:
        """HGET of the total."""
        value = await self._redis.hget(self._total, agent)
        return int(value) if value is not None else 0

    async def counts(self) -> dict[str, int]:
        """HGETALL of the total."""
        raw: dict[Any, Any] = await self._redis.hgetall(self._total)
        return {_text(k): int(v) for k, v in raw.items() if int(v) > 0}

    async def beat(self) -> None:
        """One heartbeat: renew this node, sweep the dead ones, and write our counts back if Redis lost them;
        `changed` is told the agents gone offline with a dead node, and those online again by our restore."""
        async with self._lock:
            known, gone = await self._beat(
                keys=[self._nodes, self._total], args=[self.node, self._ttl_ms, self._node_prefix]
            )
            back: list[str] = []
            if not known or self._dirty:
                args = [x for agent, n in self._local.items() for x in (agent, n)]
                back = (
                    [_text(a) for a in await self._restore(keys=[self._total, self._mine], args=args)] if args else []
                )
                self._dirty = False
        if gone:
            self._changed([_text(a) for a in gone], False)
        if back:
            self._changed(back, True)

    async def _apply(self, agent: str, delta: int) -> int | None:
        try:
            async with self._lock:
                total = await self._change(
                    keys=[self._nodes, self._total, self._mine], args=[agent, delta, self._ttl_ms, self.node]
                )
            return int(total)
        except Exception as exc:
            # Redis unreachable: this change waits in _local for the next successful beat.
            self._dirty = True
            log.warning("presence_unavailable", agent=agent, error=str(exc))
            return None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._period)
            try:
                await self.beat()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._dirty = True
                log.warning("presence_heartbeat_failed", error=str(exc))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
