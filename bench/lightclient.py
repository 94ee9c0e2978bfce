"""Light Bayeux clients for bench/soak.py and bench/storm.py: raw aiohttp speaking Bayeux JSON.

aiocometd-ng per session would cost the load generator more than the gateway. A WebSocket session is bound
to its socket; a long-polling one returns its BAYEUX_BROWSER cookie by hand (no cookie jar: every session
has its own), so neither needs credentials after the handshake (which sends the password).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
from soaklib import APPLICATION_ID, BAYEUX, CAMPAIGN, DEVICE_PATH, Counters, Message, basic, password


class Session:
    """One Bayeux session over WebSocket or long-polling: handshake with a password, subscribe, held connects.

    `on_message` gets every non-meta message. The first held connect asks a random 1-30 s timeout so that
    renewals of sessions created together are spread (as bench/gws.py does).
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        base: str,
        transport: str,
        user: str,
        secret: str,
        counters: Counters,
        on_message: Callable[[Message, float], None] | None = None,
    ) -> None:
        self.http, self.url, self.transport = http, base + BAYEUX, transport
        self.user, self.secret, self.counters = user, secret, counters
        self.on_message = on_message
        self.client_id = ""
        self.cookie = ""
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.waiters: dict[str, asyncio.Future[Message]] = {}
        self.ids = 0
        self.live = False
        self.task: asyncio.Task[None] | None = None

    def _message(self, channel: str, **fields: Any) -> Message:
        self.ids += 1
        message: Message = {"channel": channel, "id": str(self.ids), **fields}
        if self.client_id:
            message["clientId"] = self.client_id
        return message

    async def _post(self, messages: list[Message], timeout: float) -> list[Message]:
        headers = {"Content-Type": "application/json"}
        if self.cookie:
            headers["Cookie"] = f"BAYEUX_BROWSER={self.cookie}"
        async with self.http.post(
            self.url, data=orjson.dumps(messages), headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            raw = await resp.read()
            self.counters.status(resp.status, f"long-polling {messages[0]['channel']}")
            cookie = resp.cookies.get("BAYEUX_BROWSER")
            if cookie is not None:
                self.cookie = cookie.value
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {raw[:120]!r}")
            replies = orjson.loads(raw)
            return replies if isinstance(replies, list) else [replies]

    async def meta(self, message: Message, timeout: float = 60.0) -> Message:
        """Send one meta message; its reply (other messages in the answer go to dispatch)."""
        if self.ws is None:
            replies = await self._post([message], timeout)
            now = time.perf_counter()
            found = None
            for m in replies:
                if m.get("channel") == message["channel"] and m.get("id") == message["id"]:
                    found = m
                else:
                    self.dispatch(m, now)
            if found is None:
                raise RuntimeError(f"no reply to {message['channel']}: {replies!r:.200}")
            return found
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self.waiters[message["id"]] = future
        try:
            await self.ws.send_bytes(orjson.dumps([message]))
            return await asyncio.wait_for(future, timeout)
        finally:
            self.waiters.pop(message["id"], None)

    async def open(self, channels: list[str], timeout: float = 60.0, hold: bool = True) -> None:
        """Handshake (ext.authentication with the password), first connect, subscribe, then held connects."""
        if self.transport == "websocket":
            self.ws = await self.http.ws_connect(self.url.replace("http", "ws", 1), max_msg_size=0, autoping=True)
            self.task = asyncio.create_task(self._read())
        ext = {"authentication": {"user": self.user, "password": self.secret}}
        reply = await self.meta(
            self._message("/meta/handshake", version="1.0", supportedConnectionTypes=[self.transport], ext=ext),
            timeout,
        )
        if not reply.get("successful"):
            raise RuntimeError(f"handshake of {self.user} refused: {reply.get('error')}")
        self.client_id = str(reply["clientId"])
        await self.meta(self.connect(0), timeout)
        for channel in channels:
            reply = await self.meta(self._message("/meta/subscribe", subscription=channel), timeout)
            if not reply.get("successful"):
                raise RuntimeError(f"subscribe {channel} of {self.user}: {reply.get('error')}")
        self.live = hold
        if not hold:
            return
        first = self.connect(random.randint(1000, 30000))
        if self.ws is not None:
            await self.ws.send_bytes(orjson.dumps([first]))
        else:
            self.task = asyncio.create_task(self._poll(first))

    def connect(self, timeout_ms: int | None = None) -> Message:
        """A /meta/connect of this session (advice.timeout when given)."""
        advice = {} if timeout_ms is None else {"advice": {"timeout": timeout_ms}}
        return self._message("/meta/connect", connectionType=self.transport, **advice)

    def dispatch(self, m: Message, now: float) -> bool:
        """Route one received message; True when it answers a held connect (the next one is due)."""
        channel = str(m.get("channel", ""))
        if channel.startswith("/meta/"):
            waiter = self.waiters.get(str(m.get("id")))
            if waiter is not None and not waiter.done():
                waiter.set_result(m)
                return False
            if channel == "/meta/connect":
                if not m.get("successful"):
                    self.counters.error(f"connect refused: {self.user} {m.get('error')}")
                    self.live = False
                return True
            return False
        if self.on_message is not None:
            self.on_message(m, now)
        return False

    async def _read(self) -> None:
        assert self.ws is not None
        async for frame in self.ws:
            if frame.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                continue
            now = time.perf_counter()
            messages = orjson.loads(frame.data)
            renew = False
            for m in messages if isinstance(messages, list) else [messages]:
                renew |= self.dispatch(m, now)
            if renew and self.live:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self.ws.send_bytes(orjson.dumps([self.connect()]))
        if self.live:
            self.live = False
            self.counters.error(f"socket closed by the server: {self.user} {self.ws.close_code}")

    async def _poll(self, first: Message) -> None:
        message = first
        while self.live:
            try:
                replies = await self._post([message], 90.0)
            except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:
                if self.live:
                    self.counters.error(f"long-polling connect failed: {self.user} {type(exc).__name__} {exc}")
                    self.live = False
                return
            now = time.perf_counter()
            for m in replies:
                self.dispatch(m, now)
            message = self.connect()

    async def publish(self, channel: str, data: Any) -> None:
        """Publish without waiting for the reply (WebSocket only)."""
        assert self.ws is not None
        await self.ws.send_bytes(orjson.dumps([self._message(channel, data=data)]))

    async def close(self, disconnect: bool = True) -> None:
        """Disconnect (or just drop the connection: the session then expires) and stop."""
        was_live, self.live = self.live, False
        with contextlib.suppress(Exception):
            if disconnect and was_live and self.client_id:
                message = self._message("/meta/disconnect")
                if self.ws is not None:
                    await self.ws.send_bytes(orjson.dumps([message]))
                else:
                    await self._post([message], 10.0)
            if self.ws is not None:
                await self.ws.close()
        if self.task is not None:
            self.task.cancel()


class Healthy:
    """An agent whose notification latency is measured: a GWS operation (POST) -> its ack on /v2/me/outbound."""

    def __init__(self, http: aiohttp.ClientSession, base: str, idx: int, counters: Counters) -> None:
        self.http, self.base, self.idx, self.counters = http, base, idx, counters
        self.user, self.secret = f"agent{idx}", password(idx)
        self.session = Session(http, base, "websocket", self.user, self.secret, counters, self.on_message)
        self.jsession = ""
        self.pending: dict[str, tuple[float, asyncio.Future[float]]] = {}
        self.n = 0

    def on_message(self, m: Message, now: float) -> None:
        data = m.get("data")
        ref = data.get("referenceId") if isinstance(data, dict) else None
        entry = self.pending.pop(ref, None) if isinstance(ref, str) else None
        if entry is not None and not entry[1].done():
            entry[1].set_result(now - entry[0])

    async def operation(self, timeout: float = 30.0) -> float | None:
        """One StartPreviewSession with a fresh referenceId: seconds from the POST to its ack (None: failed)."""
        self.n += 1
        ref = f"h{self.idx}-{self.n}-{random.getrandbits(32):x}"
        body = {
            "operationName": "StartPreviewSession",
            "applicationId": APPLICATION_ID,
            "devicePath": DEVICE_PATH,
            "referenceId": ref,
        }
        # Basic with the session cookie, as a desktop does (without the cookie every POST would open a new
        # GWS session); Basic needs no CSRF token.
        headers = {"Authorization": basic(self.user, self.secret), "Content-Type": "application/json"}
        if self.jsession:
            headers["Cookie"] = f"JSESSIONID={self.jsession}"
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        start = time.perf_counter()
        self.pending[ref] = (start, future)
        try:
            async with self.http.post(
                f"{self.base}/api/v2/me/outbound-campaigns/{CAMPAIGN}", data=orjson.dumps(body), headers=headers
            ) as resp:
                raw = await resp.read()
                self.counters.status(resp.status, "GWS StartPreviewSession")
                cookie = resp.cookies.get("JSESSIONID")
                if cookie is not None:
                    self.jsession = cookie.value
                if resp.status != 200:
                    self.counters.error(f"healthy operation: HTTP {resp.status} {raw[:100]!r}")
                    return None
            return await asyncio.wait_for(future, timeout)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.counters.error(f"healthy operation: {type(exc).__name__} {exc}")
            return None
        finally:
            self.pending.pop(ref, None)
