"""What hiredis saves the gateway's Redis paths: CPU per pub/sub message received and per script call.

    .venv/bin/python bench/redis_parser.py [--messages 50000] [--calls 20000]

A redis-server of this run's own (tests/servers/redis.py). Two parts, each with redis-py's pure-Python reply
parser and with hiredis (the C parser redis-py uses when the `hiredis` package is installed), in one run:
  pubsub  one client publishes --messages envelopes of the broker's size (about 400 bytes of JSON) in
          pipelines of 500 while another, in this process, reads them (the broker's receive loop);
  script  --calls sequential EVALSHA calls returning a 6-field list (the shape of the registry's replies).
Figures: this process's CPU microseconds per message and per call (both sides run here, so they count
both), and the ratio Python / hiredis. Not a test; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from benchlib import ROOT
from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser
from redis.asyncio import Redis

sys.path.insert(0, str(ROOT))  # tests.servers: the test suite's Redis starter

ENVELOPE = orjson.dumps(
    {
        "v": 1,
        "kind": "user",
        "origin": "node-b-0123456789",
        "message": {
            "channel": "/v2/me/outbound",
            "data": {
                "messageType": "OutboundRecordMessage",
                "notificationType": "RecordProcessedAcknowledge",
                "referenceId": "ref-000123456",
                "record": {"recordHandle": 12345, "recordType": "General", "campaignName": "Bench"},
            },
        },
        "user": "agent0042",
        "log": "user:agent0042",
        "replay_id": 123456,
        "created": "2026-12-04T18:00:00.000Z",
    }
)
SCRIPT = "return {'a', ARGV[1], 'b', ARGV[2], 'c', '12345'}"
PARSERS: dict[str, Any] = {"python": _AsyncRESP2Parser, "hiredis": _AsyncHiredisParser}


async def pubsub_cpu(url: str, parser: Any, messages: int) -> float:
    """CPU seconds of this process to publish and receive `messages` envelopes."""
    reader = Redis.from_url(url, parser_class=parser)
    writer = Redis.from_url(url, parser_class=parser)
    pubsub = reader.pubsub()
    await pubsub.subscribe("bench")
    await pubsub.get_message(timeout=1.0)  # the subscribe confirmation
    got = 0

    async def receive() -> None:
        nonlocal got
        while got < messages:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                orjson.loads(message["data"])
                got += 1

    start = time.process_time()
    task = asyncio.create_task(receive())
    for first in range(0, messages, 500):
        async with writer.pipeline(transaction=False) as pipe:
            for _ in range(min(500, messages - first)):
                pipe.publish("bench", ENVELOPE)
            await pipe.execute()
        await asyncio.sleep(0)
    await asyncio.wait_for(task, 60)
    spent = time.process_time() - start
    await pubsub.aclose()
    await reader.aclose()
    await writer.aclose()
    return spent


async def script_cpu(url: str, parser: Any, calls: int) -> float:
    """CPU seconds of this process for `calls` sequential script calls."""
    client = Redis.from_url(url, parser_class=parser)
    script = client.register_script(SCRIPT)
    await script(args=["x", "y"])
    start = time.process_time()
    for i in range(calls):
        await script(args=[i, "value"])
    spent = time.process_time() - start
    await client.aclose()
    return spent


async def run(url: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, parser in PARSERS.items():
        out[name] = {
            "pubsub_us": await pubsub_cpu(url, parser, args.messages) / args.messages * 1e6,
            "script_us": await script_cpu(url, parser, args.calls) / args.calls * 1e6,
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    from tests.servers.redis import RedisServer

    binary = shutil.which("redis-server")
    if binary is None:
        print("redis_parser: redis-server missing (apt-get install redis-server)", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="redis-parser-"))
    server = RedisServer(binary, folder)
    server.start()
    try:
        figures = asyncio.run(run(server.url, args))
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    py, hi = figures["python"], figures["hiredis"]
    print(f"CPU of this process, microseconds (both sides in it), {args.messages} messages, {args.calls} calls")
    print(f"  {'parser':<8} {'pubsub/msg':>11} {'script/call':>12}")
    for name, f in figures.items():
        print(f"  {name:<8} {f['pubsub_us']:>11.1f} {f['script_us']:>12.1f}")
    pubsub, script = py["pubsub_us"] / hi["pubsub_us"], py["script_us"] / hi["script_us"]
    print(f"  python / hiredis: pubsub x{pubsub:.2f}, script x{script:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
