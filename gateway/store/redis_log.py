"""The notification log in Redis Streams: one stream per log, fed from the SQL outbox by the stream relay.

Ids are the outbox's: a notification gets its replay id in the transaction of the change it reports
(store/sql_log.py), and the relay copies committed entries into the stream as `<replayId>-0`. The stream's
head hash holds `last` (every id up to it is in the stream: the relay appends only the entry that follows
it, a compare-and-set) and `pruned` (ids up to it are gone). So ids are contiguous and in commit order, as
in the SQL log, and an entry two relays carry is appended once. Keys are hash-tagged by log
(`<prefix>:{<log>}:stream` and `:head`), so one log's keys share a slot; the set of logs (for pruning) is a
key of its own, written outside the scripts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, cast

import orjson
from redis.asyncio import Redis

from gateway.redis_pool import answers, pooled
from gateway.store.log import LogBounds
from gateway.wire.notification import Notification

# KEYS: stream, head. ARGV: expect, truncate (1: ids before the first entry are gone), then per entry
# id, message, audience, created (ms). Appends only if `last` is `expect`; returns {appended, last}.
_APPEND: Final = """
local last = tonumber(redis.call('HGET', KEYS[2], 'last') or '0')
if last ~= tonumber(ARGV[1]) then return {0, redis.call('HGET', KEYS[2], 'last') or '0'} end
local n = (#ARGV - 2) / 4
if n == 0 then return {1, ARGV[1]} end
for i = 0, n - 1 do
  local at = 3 + i * 4
  redis.call('XADD', KEYS[1], ARGV[at] .. '-0', 'm', ARGV[at + 1], 'u', ARGV[at + 2], 't', ARGV[at + 3])
end
local top = ARGV[3 + (n - 1) * 4]
redis.call('HSET', KEYS[2], 'last', top)
if ARGV[2] == '1' then
  local cut = tonumber(ARGV[3]) - 1
  if cut > tonumber(redis.call('HGET', KEYS[2], 'pruned') or '0') then
    redis.call('HSET', KEYS[2], 'pruned', string.format('%d', cut))
  end
end
return {1, top}
"""

# KEYS: stream, head. ARGV: before (ms), keep. Cuts at the newer of the age and the length limit.
_PRUNE: Final = """
local last = tonumber(redis.call('HGET', KEYS[2], 'last') or '0')
local pruned = tonumber(redis.call('HGET', KEYS[2], 'pruned') or '0')
local cut = math.max(pruned, last - tonumber(ARGV[2]))
local before = tonumber(ARGV[1])
local from = '-'
while true do
  local chunk = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 100)
  local done = #chunk < 100
  for _, entry in ipairs(chunk) do
    local t = tonumber(entry[2][6])
    if t >= before then done = true break end
    local id = tonumber(string.match(entry[1], '^(%d+)'))
    if id > cut then cut = id end
  end
  if done then break end
  from = '(' .. chunk[#chunk][1]
end
if cut <= pruned then return 0 end
local removed = redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d', cut + 1) .. '-0')
redis.call('HSET', KEYS[2], 'pruned', string.format('%d', cut))
return removed
"""


def _tag(log: str) -> str:
    # A log name holding a brace would end the hash tag early: such names are tagged by their digest.
    return log if "{" not in log and "}" not in log else hashlib.sha1(log.encode()).hexdigest()


def _ms(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp() * 1000)


class RedisStreamLog:
    """NotificationLog in Redis Streams; `append` is the stream relay's (gateway/store/stream_relay.py)."""

    def __init__(self, *, url: str, prefix: str = "gateway:log") -> None:
        self._redis: Redis = pooled(url)
        self._prefix = prefix
        self._logs = f"{prefix}:logs"
        self._append = self._redis.register_script(_APPEND)
        self._prune = self._redis.register_script(_PRUNE)

    def _keys(self, log: str) -> list[str]:
        base = f"{self._prefix}:{{{_tag(log)}}}"
        return [f"{base}:stream", f"{base}:head"]

    async def append(self, log: str, expect: int, entries: Sequence[Notification], *, truncate: bool) -> int | None:
        """Append `entries` (their ids follow `expect`, contiguous) if the stream's last id is `expect`:
        None when appended, else the stream's last id (another relay moved it; nothing was appended).
        `truncate`: the ids between `expect` and the first entry are gone (pruned from the outbox)."""
        args: list[str | int | bytes] = [expect, 1 if truncate else 0]
        for note in entries:
            assert note.replay_id is not None and note.created is not None
            args += [note.replay_id, orjson.dumps(note.message()), note.user or "", _ms(note.created)]
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.sadd(self._logs, log)
            await self._append(keys=self._keys(log), args=args, client=pipe)
            _, (appended, last) = await pipe.execute()
        return None if int(appended) == 1 else int(last)

    async def holds(self, note: Notification) -> bool:
        """True if `note`'s log holds it under its replay id (the same message and audience)."""
        assert note.log is not None and note.replay_id is not None
        found = await self.read(note.log, note.replay_id - 1, 1)
        return (
            bool(found)
            and found[0].replay_id == note.replay_id
            and (found[0].message(), found[0].user)
            == (
                note.message(),
                note.user,
            )
        )

    async def last_ids(self, logs: Sequence[str]) -> dict[str, int]:
        """Each log's last id (0 for a log never written), in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for log in logs:
                pipe.hget(self._keys(log)[1], "last")
            found = await pipe.execute()
        return {log: int(value or 0) for log, value in zip(logs, found, strict=True)}

    async def read(self, log: str, after: int, limit: int) -> list[Notification]:
        """Entries after `after`, oldest first."""
        # redis-py types replies loosely (str or bytes, maybe None); without decode_responses they are bytes.
        found = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            await self._redis.xrange(self._keys(log)[0], f"({after}-0", "+", count=limit),
        )
        out: list[Notification] = []
        for stream_id, fields in found:
            message = orjson.loads(fields[b"m"])
            audience = fields[b"u"].decode()
            out.append(
                Notification(
                    message["channel"],
                    message.get("data"),
                    user=audience or None,
                    log=log,
                    replay_id=int(stream_id.split(b"-")[0]),
                    created=datetime.fromtimestamp(int(fields[b"t"]) / 1000, UTC).replace(tzinfo=None),
                    ext=message.get("ext"),
                )
            )
        return out

    async def bounds(self, log: str) -> LogBounds:
        """The head hash, or an empty log."""
        last, pruned = await self._redis.hmget(self._keys(log)[1], ["last", "pruned"])
        return LogBounds(int(last or 0), int(pruned or 0))

    async def prune(self, *, before: datetime, keep: int) -> int:
        """Cut each log at the newer of its age limit and its length limit."""
        removed = 0
        async for raw in self._redis.sscan_iter(self._logs, count=500):
            log = raw.decode()
            removed += int(await self._prune(keys=self._keys(log), args=[_ms(before), keep]))
        return removed

    async def ping(self) -> bool:
        """True when Redis answers (for /readyz)."""
        return await answers(self._redis)

    async def close(self) -> None:
        """Close the connections."""
        await self._redis.aclose()
