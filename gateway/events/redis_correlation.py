"""RedisCorrelationRegistry: the referenceId registry shared by every node (`correlation.backend: redis`).

Keys (one hash tag, so the scripts' keys share a Redis Cluster slot): `<prefix>{corr}:e:<member>` holds
one entry as JSON, where `<member>` is `["user","referenceId"]` (JSON, so no separator can be forged);
`<prefix>{corr}:index` is a sorted set of the members scored by their entry's creation time.

Every operation is one Lua script, so it is atomic across nodes:
- `begin`: drop the expired entries (score older than now - ttl_s), then `SET key entry NX PX ttl`: the one
  request that sets it gets NEW; any other, on any node, reads the entry already there (DUPLICATE or
  CONFLICT by operation and fingerprint). Past `max_entries` the oldest are dropped (ZPOPMIN).
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
from dataclasses import replace
from typing import Any, Final

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.events.correlation import Correlation, Started, State

_EXPIRE: Final = """
local index = KEYS[1]
local prefix = ARGV[1]
local limit = tonumber(ARGV[2])
local old = redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. ARGV[2])
for _, member in ipairs(old) do
  redis.call('DEL', prefix .. member)
end
if #old > 0 then redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. ARGV[2]) end
"""

# KEYS: index, entry. ARGV: prefix, limit, entry json, px, max_entries, member, created.
_BEGIN: Final = (
    _EXPIRE
    + """
local existing = redis.call('GET', KEYS[2])
if existing then return existing end
redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[7], ARGV[6])
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[5])
if extra > 0 then
  local dropped = redis.call('ZPOPMIN', KEYS[1], extra)
  for i = 1, #dropped, 2 do redis.call('DEL', prefix .. dropped[i]) end
end
return false
"""
)

# KEYS: index, entry. ARGV: prefix, limit, member.
_GET: Final = (
    _EXPIRE
    + """
local found = redis.call('GET', KEYS[2])
if not found then redis.call('ZREM', KEYS[1], ARGV[3]) end
return found
"""
)

# KEYS: index. ARGV: prefix, limit.
_COUNT: Final = _EXPIRE + "\nreturn redis.call('ZCARD', KEYS[1])\n"

# KEYS: index, entry. ARGV: expected json, new json (empty: delete), member, px.
_SWAP: Final = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
end
return 1
"""

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
    """A CorrelationRegistry in Redis, bounded in size and time like the memory one."""

    def __init__(
        self,
        *,
        url: str,
        max_entries: int,
        ttl_s: float,
        prefix: str = "gateway:",
        clock: Callable[[], float] = time.time,
        pending_lease_s: float = PENDING_LEASE_S,
    ) -> None:
        self._redis: Redis = Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=5.0)
        self._max = max_entries
        self._ttl = ttl_s
        self._pending_px = max(1, int(min(ttl_s, pending_lease_s) * 1000))
        self._clock = clock
        self._prefix = f"{prefix}{{corr}}:e:"
        self._index = f"{prefix}{{corr}}:index"
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
            keys=[self._index, self._prefix + member],
            args=[self._prefix, repr(now - self._ttl), _dump(entry), self._pending_px, self._max, member, repr(now)],
        )
        if found is None:
            return Started.NEW, entry
        existing = _load(found)
        if existing.operation == operation and existing.fingerprint == fingerprint:
            return Started.DUPLICATE, existing
        return Started.CONFLICT, existing

    async def complete(self, entry: Correlation, status: int, result: Any, notification: Any = None) -> Correlation:
        """Store the outcome in the entry (if it is still this operation's); other nodes' waiters see it."""
        done = replace(
            entry,
            state=State.DONE,
            status=status,
            result_json=orjson.dumps(result),
            notification_json=orjson.dumps(notification),
        )
        member = self._member(entry.user, entry.reference_id)
        px = max(1, int((entry.created + self._ttl - self._clock()) * 1000))
        await self._swap(keys=[self._index, self._prefix + member], args=[_dump(entry), _dump(done), member, px])
        return done

    async def abandon(self, entry: Correlation) -> None:
        """Forget the entry (if it is still this operation's): waiters get None and run it themselves."""
        member = self._member(entry.user, entry.reference_id)
        await self._swap(keys=[self._index, self._prefix + member], args=[_dump(entry), "", member, 0])

    async def get(self, user: str, reference_id: str) -> Correlation | None:
        """The entry, if kept and not expired."""
        member = self._member(user, reference_id)
        found = await self._get(
            keys=[self._index, self._prefix + member], args=[self._prefix, repr(self._clock() - self._ttl), member]
        )
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
        kept = await self._count(keys=[self._index], args=[self._prefix, repr(self._clock() - self._ttl)])
        return int(kept)

    async def ping(self) -> bool:
        """True when Redis answers (for /readyz)."""
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        """Close the connections."""
        await self._redis.aclose()

    def _member(self, user: str, reference_id: str) -> str:
        return orjson.dumps([user, reference_id]).decode()
