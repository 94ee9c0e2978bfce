"""The soak's attackers: a stream of inputs the gateway must refuse, and a flood of wrong passwords.

Inputs (from tests/integration/test_input_limits*.py, test_lean_parity.py): Bayeux messages nested too deep
and holding integers beyond 64 bits (WebSocket and long-polling; refused in-band with `400::...`), malformed
JSON, a body over `bayeux.max_body_bytes` (413), a bare-LF HTTP request (aiohttp's 400), and GWS operations
with a huge referenceId or a body nested too deep (the dialect's 400). Each answer is classified: refused as
documented, 5xx, or anything else (unexpected, with an example).

The flood: wrong passwords for unknown names from several connections, each from its own loopback address
(127.0.1.x, so that the per-address limiter sees several clients; the agents connect from 127.0.0.1 and are
never locked), moving to a fresh address every `rotate_s` seconds as a botnet would, at a fixed total rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable

import aiohttp
import orjson
from soaklib import APPLICATION_ID, BAYEUX, CAMPAIGN, DEVICE_PATH, HOST, Counters, basic, client_session

DEEP = b"[" * 300 + b"]" * 300
U64 = b"18446744073709551615"  # 2**64 - 1: orjson reads it as an int, beyond the signed 64 bits it can write
HANDSHAKE = b'{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]'
HOSTILE_USER = "hostile"
HOSTILE_PASSWORD = "hostile-plain-password"  # plain: the stream measures the input limits, not scrypt


class Hostile:
    """Sends one hostile input after another at `rate` per second, round robin over the kinds."""

    def __init__(self, base: str, port: int, counters: Counters, rate: float) -> None:
        self.base, self.port, self.counters, self.rate = base, port, counters, rate
        self.sent = 0
        self.refused = 0
        self.unexpected = 0
        self.by_kind: dict[str, int] = {}
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set."""
        kinds: list[tuple[str, Callable[[aiohttp.ClientSession], Awaitable[bool]]]] = [
            ("ws-nested", lambda h: self._ws(h, b"[" + HANDSHAKE + b', "ext": {"x": ' + DEEP + b"}}]")),
            ("ws-u64", lambda h: self._ws(h, b"[" + HANDSHAKE + b', "ext": {"n": ' + U64 + b"}}]")),
            ("lp-nested", lambda h: self._bayeux(h, b"[" + HANDSHAKE + b', "ext": {"x": ' + DEEP + b"}}]")),
            ("lp-u64", lambda h: self._bayeux(h, b"[" + HANDSHAKE + b', "ext": {"n": [' + U64 + b"]}}]")),
            ("lp-malformed", lambda h: self._bayeux(h, b"[" + HANDSHAKE + b", ")),
            ("lp-2MiB", lambda h: self._bayeux(h, b"[" + HANDSHAKE + b', "ext": "' + b"x" * 2**21 + b'"}]')),
            ("gws-huge-referenceId", lambda h: self._gws(h, {"referenceId": "r" * 100_000})),
            ("gws-nested", lambda h: self._gws(h, {"referenceId": "ok", "userData": orjson.Fragment(DEEP)})),
            ("bare-lf", lambda h: self._bare_lf()),
        ]
        period = 1.0 / self.rate
        next_at = time.perf_counter()
        async with client_session() as http:
            for kind, send in itertools.cycle(kinds):
                if stop.is_set():
                    break
                self.sent += 1
                try:
                    ok = await asyncio.wait_for(send(http), 30)
                except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                    ok = False
                    self.counters.error(f"hostile {kind}: {type(exc).__name__} {exc}")
                    if self.ws is not None:
                        self.ws = None
                self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
                if ok:
                    self.refused += 1
                else:
                    self.unexpected += 1
                next_at += period
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.perf_counter()))
            if self.ws is not None:
                await self.ws.close()

    def _in_band(self, kind: str, replies: object) -> bool:
        if isinstance(replies, list) and replies and isinstance(replies[0], dict):
            error = str(replies[0].get("error", ""))
            if error.startswith("400::") and not replies[0].get("successful"):
                return True
        self.counters.error(f"hostile {kind} accepted: {replies!r:.150}")
        return False

    async def _ws(self, http: aiohttp.ClientSession, raw: bytes) -> bool:
        if self.ws is None or self.ws.closed:
            self.ws = await http.ws_connect(f"ws://{HOST}:{self.port}{BAYEUX}")
        await self.ws.send_bytes(raw)
        frame = await self.ws.receive(timeout=10)
        if frame.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            self.counters.error(f"hostile ws: {frame.type.name} {frame.data!r:.100}")
            self.ws = None
            return False
        return self._in_band("ws", orjson.loads(frame.data))

    async def _bayeux(self, http: aiohttp.ClientSession, raw: bytes) -> bool:
        headers = {"Content-Type": "application/json"}
        async with http.post(self.base + BAYEUX, data=raw, headers=headers) as resp:
            body = await resp.read()
            self.counters.status(resp.status, "hostile long-polling")
            if resp.status in (400, 413):
                return True
            if resp.status == 200:
                return self._in_band("long-polling", orjson.loads(body))
            self.counters.error(f"hostile long-polling: HTTP {resp.status} {body[:100]!r}")
            return False

    async def _gws(self, http: aiohttp.ClientSession, fields: dict[str, object]) -> bool:
        body = {"operationName": "StartPreviewSession", "applicationId": APPLICATION_ID, "devicePath": DEVICE_PATH}
        headers = {"Authorization": basic(HOSTILE_USER, HOSTILE_PASSWORD), "Content-Type": "application/json"}
        url = f"{self.base}/api/v2/me/outbound-campaigns/{CAMPAIGN}"
        async with http.post(url, data=orjson.dumps(body | fields), headers=headers) as resp:
            raw = await resp.read()
            self.counters.status(resp.status, "hostile GWS")
            if resp.status == 400 and orjson.loads(raw).get("statusCode") == 2:
                return True
            self.counters.error(f"hostile GWS: HTTP {resp.status} {raw[:100]!r}")
            return False

    async def _bare_lf(self) -> bool:
        body = b"[" + HANDSHAKE + b"}]"
        request = b"POST %s HTTP/1.1\nHost: x\nContent-Length: %d\n\n%s" % (BAYEUX.encode(), len(body), body)
        reader, writer = await asyncio.open_connection(HOST, self.port)
        try:
            writer.write(request)
            line = await reader.readline()
        finally:
            writer.close()
        status = int(line.split()[1]) if line.startswith(b"HTTP/1.") else 0
        self.counters.status(status, "hostile bare-LF")
        if status == 400:
            return True
        self.counters.error(f"hostile bare-LF: {line[:80]!r}")
        return False


class Flood:
    """Wrong passwords for unknown names from `connections` loopback addresses at `rate` per second in total."""

    def __init__(self, base: str, counters: Counters, connections: int, rate: float, rotate_s: float) -> None:
        self.base, self.counters = base, counters
        self.connections, self.rate, self.rotate_s = connections, rate, rotate_s
        self.attempts = 0
        self.refused = 0
        self.accepted = 0
        self.latencies: list[float] = []  # seconds, since the last take()
        self.addresses = 0

    def take(self) -> list[float]:
        """The answer times since the last call."""
        out, self.latencies = self.latencies, []
        return out

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set."""
        await asyncio.gather(*(self._connection(k, stop) for k in range(self.connections)))

    async def _connection(self, k: int, stop: asyncio.Event) -> None:
        period = self.connections / self.rate
        for generation in itertools.count():
            if stop.is_set():
                return
            self.addresses += 1
            address = f"127.0.{1 + generation % 250}.{10 + k}"
            until = time.perf_counter() + self.rotate_s
            next_at = time.perf_counter()
            async with client_session(limit=1, local_addr=(address, 0)) as http:
                for n in itertools.count():
                    if stop.is_set() or time.perf_counter() > until:
                        break
                    await self._attempt(http, f"nobody-{k}-{generation}-{n}")
                    next_at += period
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.perf_counter()))

    async def _attempt(self, http: aiohttp.ClientSession, name: str) -> None:
        message = orjson.loads(HANDSHAKE + b"}")
        message["ext"] = {"authentication": {"user": name, "password": "wrong"}}
        self.attempts += 1
        start = time.perf_counter()
        try:
            async with http.post(self.base + BAYEUX, data=orjson.dumps([message])) as resp:
                raw = await resp.read()
                self.counters.status(resp.status, "password flood")
                reply = orjson.loads(raw)[0] if resp.status == 200 else {}
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.counters.error(f"password flood: {type(exc).__name__} {exc}")
            return
        self.latencies.append(time.perf_counter() - start)
        if reply.get("successful"):
            self.accepted += 1
            self.counters.error(f"password flood: a wrong password was accepted for {name}")
        elif reply.get("error") == "403::handshake_denied":
            self.refused += 1
        else:
            self.counters.error(f"password flood: unexpected answer {reply!r:.120}")
