"""RedisCorrelationRegistry: the referenceId registry shared by every node (`correlation.backend: redis`).

Keys (one hash tag, so the scripts' keys share a Redis Cluster slot): `<prefix>{corr}:e:<member>` holds
one entry as JSON, where `<member>` is `["user","referenceId"]` (JSON, so no separator can be forged);
`<prefix>{corr}:index` is a sorted set of the members scored by their entry's creation time;
`<prefix>{corr}:sizes` (hash) and `<prefix>{corr}:bytes` (counter) keep each entry's estimated size
(`Correlation.size`, as the memory registry counts it) and their total.

Every operation is one Lua script, so it is atomic across nodes:
- `begin`: drop the expired entries (score older than now - ttl_s), then `SET key entry NX PX ttl`: the one
  request that sets it gets NEW; any other, on any node, reads the entry already there (DUPLICATE or
  CONFLICT by operation and fingerprint). Past `max_entries` or `max_bytes` the oldest are dropped
  (ZPOPMIN), after a claim and after a completion (whose answer makes the entry bigger).
- `complete` and `abandon`: replace or delete the entry only if it still is the one `begin` made (compared
  by its JSON), so a late first attempt cannot overwrite a newer claim.
- A pending claim carries a lease (PX of PENDING_LEASE_S): when the node running the operation dies, the
  referenceId is free again after the lease (a retry then runs it, as after a single node's restart) instead
  of answering 409 for ttl_s; a finished entry is kept until created + ttl_s.
- `wait`: polls the entry (5 ms, doubling to 50 ms) until it is done, gone or the time is up; a retry on
  another node thus gets the first attempt's answer within one poll of its completion.

Times come from `clock` (wall-clock seconds by default: all nodes must agree, so keep them NTP-synced);
entries also carry a Redis PX expiry as a backstop when no node runs a script for a while.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Final

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.events.correlation import Correlation, Started, State
from gateway.redis_pool import answers, masked, pooled

# Every script: KEYS = index, entry, sizes (hash member -> bytes), total (bytes of all entries);
# ARGV = prefix, expiry limit, max_entries, max_bytes (-1: none), member, then the script's own.
_COMMON: Final = """
local function forget(member)
  redis.call('DEL', ARGV[1] .. member)
  local size = tonumber(redis.call('HGET', KEYS[3], member) or '0')
  if size ~= 0 then redis.call('DECRBY', KEYS[4], size) end
  redis.call('HDEL', KEYS[3], member)
end
local function expire()
  local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
  for _, member in ipairs(old) do forget(member) end
  if #old > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2]) end
end
local function bound()
  local max_entries, max_bytes = tonumber(ARGV[3]), tonumber(ARGV[4])
  while true do
    local n = redis.call('ZCARD', KEYS[1])
    if n == 0 then return end
    local total = tonumber(redis.call('GET', KEYS[4]) or '0')
    if n <= max_entries and (max_bytes < 0 or total <= max_bytes) then return end
    forget(redis.call('ZPOPMIN', KEYS[1])[1])
  end
end
"""

# ARGV[6..9]: entry json, px (the pending lease), created (the index score), size.
_BEGIN: Final = (
    _COMMON
    + """
expire()
local existing = redis.call('GET', KEYS[2])
if existing then return existing end
forget(ARGV[5])
redis.call('SET', KEYS[2], ARGV[6], 'NX', 'PX', ARGV[7])
redis.call('ZADD', KEYS[1], ARGV[8], ARGV[5])
redis.call('HSET', KEYS[3], ARGV[5], ARGV[9])
redis.call('INCRBY', KEYS[4], ARGV[9])
bound()
return false
"""
)

_GET: Final = (
    _COMMON
    + """
expire()
local found = redis.call('GET', KEYS[2])
if not found then
  forget(ARGV[5])
  redis.call('ZREM', KEYS[1], ARGV[5])
end
return found
"""
)

_COUNT: Final = _COMMON + "\nexpire()\nreturn redis.call('ZCARD', KEYS[1])\n"

# ARGV[6..9]: expected json, new json ('' = delete), px, new size.
_SWAP: Final = (
    _COMMON
    + """
if redis.call('GET', KEYS[2]) ~= ARGV[6] then return 0 end
if ARGV[7] == '' then
  forget(ARGV[5])
  redis.call('ZREM', KEYS[1], ARGV[5])
  return 1
end
redis.call('SET', KEYS[2], ARGV[7], 'PX', ARGV[8])
local old = tonumber(redis.call('HGET', KEYS[3], ARGV[5]) or '0')
redis.call('HSET', KEYS[3], ARGV[5], ARGV[9])
redis.call('INCRBY', KEYS[4], tonumber(ARGV[9]) - old)
bound()
return 1
"""
)

# A pending claim lapses after this long (Redis PX) unless completed: the node running it died. A retry then
# runs the operation again, as after a restart of a single node; finished entries are kept for ttl_s.
PENDING_LEASE_S: Final = 120.0
_FIRST_POLL_S: Final = 0.005
_LAST_POLL_S: Final = 0.05


def _dump(entry: Correlation) -> bytes:
    return orjson.dumps(
        [
            entry.user,
            entry.reference_id,
            entry.operation,
            entry.fingerprint,
            entry.created,
            entry.state.value,
            entry.status,
            entry.result_json.decode(),
            entry.notification_json.decode(),
        ]
    )


def _load(data: bytes) -> Correlation:
    user, reference_id, operation, fingerprint, created, state, status, result, notification = orjson.loads(data)
    return Correlation(
        user,
        reference_id,
        operation,
        fingerprint,
        created=float(created),
        state=State(state),
        status=status,
        result_json=result.encode(),
        notification_json=notification.encode(),
    )


class RedisCorrelationRegistry:
    """A CorrelationRegistry in Redis, bounded in entries, bytes and time like the memory one."""

    def __init__(
        self,
        *,
        url: str,
        max_entries: int,
        ttl_s: float,
        max_bytes: int | None = None,
        prefix: str = "gateway:",
        clock: Callable[[], float] = time.time,
        pending_lease_s: float = PENDING_LEASE_S,
    ) -> None:
        self._redis: Redis = pooled(url)
        self._url = url
        self._max = max_entries
        self._max_bytes = -1 if max_bytes is None else max_bytes
        self._ttl = ttl_s
        self._pending_px = max(1, int(min(ttl_s, pending_lease_s) * 1000))
        self._clock = clock
        self._prefix = f"{prefix}{{corr}}:e:"
        self._keys = [f"{prefix}{{corr}}:index", "", f"{prefix}{{corr}}:sizes", f"{prefix}{{corr}}:bytes"]
        self._begin = self._redis.register_script(_BEGIN)
        self._get = self._redis.register_script(_GET)
        self._count = self._redis.register_script(_COUNT)
        self._swap = self._redis.register_script(_SWAP)

    async def begin(
        self, user: str, reference_id: str, operation: str, fingerprint: str
    ) -> tuple[Started, Correlation]:
        """Claim the referenceId (NEW), or report the entry another request claimed first."""
        now = self._clock()
        entry = Correlation(user, reference_id, operation, fingerprint, created=now)
        member = self._member(user, reference_id)
        found = await self._begin(
            keys=self._keys_of(member),
            args=[*self._args(member), _dump(entry), self._pending_px, repr(now), entry.size()],
        )
        if found is None:
            return Started.NEW, entry
        existing = _load(found)
        return existing.seen_again(operation, fingerprint), existing

    async def complete(self, entry: Correlation, status: int, result: Any, notification: Any = None) -> Correlation:
        """Store the outcome in the entry (if it is still this operation's); other nodes' waiters see it."""
        done = entry.finished(status, result, notification)
        member = self._member(entry.user, entry.reference_id)
        px = max(1, int((entry.created + self._ttl - self._clock()) * 1000))
        await self._swap(
            keys=self._keys_of(member), args=[*self._args(member), _dump(entry), _dump(done), px, done.size()]
        )
        return done

    async def abandon(self, entry: Correlation) -> None:
        """Forget the entry (if it is still this operation's): waiters get None and run it themselves."""
        member = self._member(entry.user, entry.reference_id)
        await self._swap(keys=self._keys_of(member), args=[*self._args(member), _dump(entry), "", 0, 0])

    async def get(self, user: str, reference_id: str) -> Correlation | None:
        """The entry, if kept and not expired."""
        member = self._member(user, reference_id)
        found = await self._get(keys=self._keys_of(member), args=self._args(member))
        return None if found is None else _load(found)

    async def wait(self, entry: Correlation, timeout_s: float) -> Correlation | None:
        """Poll until the entry is finished or forgotten (None), or `timeout_s` passed (None)."""
        deadline = time.monotonic() + timeout_s
        delay = _FIRST_POLL_S
        while True:
            current = await self.get(entry.user, entry.reference_id)
            if current is None or current.created != entry.created:
                return None  # forgotten (abandoned, expired or dropped), perhaps claimed again since
            if current.state is State.DONE:
                return current
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, _LAST_POLL_S)

    async def count(self) -> int:
        """Entries kept (on every node together)."""
        kept = await self._count(keys=self._keys_of(""), args=self._args(""))
        return int(kept)

    async def open(self) -> None:
        """Check that Redis answers: a node does not start without its registry (ConnectionError naming it)."""
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise ConnectionError(f"correlation registry at {masked(self._url)}: cannot reach Redis: {exc}") from exc

    async def ping(self) -> bool:
        """True when Redis answers (for /readyz)."""
        return await answers(self._redis)

    async def close(self) -> None:
        """Close the connections."""
        await self._redis.aclose()

    async def bytes_used(self) -> int:
        """The estimated size of the entries kept by every node together (what `max_bytes` bounds)."""
        return int(await self._redis.get(self._keys[3]) or 0)

    def _member(self, user: str, reference_id: str) -> str:
        return orjson.dumps([user, reference_id]).decode()

    def _keys_of(self, member: str) -> list[str]:
        index, _, sizes, total = self._keys
        return [index, self._prefix + member, sizes, total]

    def _args(self, member: str) -> list[str | int]:
        return [self._prefix, repr(self._clock() - self._ttl), self._max, self._max_bytes, member]
