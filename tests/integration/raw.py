"""A deliberately thin Bayeux client for raw-JSON tests: it sends exactly what a test writes."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

Message = dict[str, Any]


@dataclass
class HttpReply:
    """Status, headers and parsed body of one HTTP exchange."""

    status: int
    headers: Any
    body: Any
    text: str


@dataclass
class RawHttp:
    """POSTs literal Bayeux JSON; keeps the clientId of the last handshake."""

    url: str
    http: aiohttp.ClientSession
    client_id: str | None = None
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def post(self, payload: Any, *, raw: bytes | None = None, path: str = "", **kw: Any) -> HttpReply:
        """POST `payload` as JSON (or `raw` bytes) and parse the reply."""
        data = raw if raw is not None else orjson.dumps(payload)
        headers = {"Content-Type": "application/json;charset=UTF-8", **kw.pop("headers", {})}
        async with self.http.post(self.url + path, data=data, headers=headers, **kw) as resp:
            text = await resp.text()
            try:
                body = orjson.loads(text) if text else None
            except orjson.JSONDecodeError:
                body = None
            return HttpReply(resp.status, resp.headers, body, text)

    def next_id(self) -> str:
        """A fresh message id."""
        return str(next(self.ids))

    async def handshake(self, **extra: Any) -> Message:
        """Handshake over long-polling; remember the clientId."""
        reply = await self.post([handshake_message(self.next_id(), **extra)])
        assert reply.status == 200, reply.text
        message: Message = reply.body[0]
        if message.get("successful"):
            self.client_id = message["clientId"]
        return message

    async def connect(self, **extra: Any) -> list[Message]:
        """One /meta/connect; returns every message of the response."""
        msg = {"channel": "/meta/connect", "clientId": self.client_id, "connectionType": "long-polling"}
        msg["id"] = self.next_id()
        msg.update(extra)
        reply = await self.post([msg])
        assert reply.status == 200, reply.text
        result: list[Message] = reply.body
        return result

    async def send(self, *messages: Message) -> list[Message]:
        """Send messages (clientId and id filled in when absent); return the response array."""
        batch = [{"clientId": self.client_id, "id": self.next_id(), **m} for m in messages]
        reply = await self.post(batch)
        assert reply.status == 200, reply.text
        result: list[Message] = reply.body
        return result

    async def open(self, *subscriptions: str, **handshake: Any) -> None:
        """Handshake, first connect, subscribe."""
        await self.handshake(**handshake)
        await self.connect()
        for sub in subscriptions:
            replies = await self.send({"channel": "/meta/subscribe", "subscription": sub})
            assert replies[-1]["successful"], replies


def handshake_message(msg_id: str | None = "1", **extra: Any) -> Message:
    """A handshake as the CometD JS client writes it."""
    message: Message = {
        "channel": "/meta/handshake",
        "version": "1.0",
        "minimumVersion": "1.0",
        "supportedConnectionTypes": ["websocket", "long-polling", "callback-polling"],
    }
    if msg_id is not None:
        message["id"] = msg_id
    message.update(extra)
    return message


class RawWs:
    """A WebSocket speaking literal Bayeux JSON frames."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.client_id: str | None = None
        self.ids = itertools.count(1)

    async def send(self, *messages: Message) -> None:
        """Send one frame holding `messages`."""
        await self.ws.send_str(orjson.dumps(list(messages)).decode())

    async def recv(self, timeout: float = 5.0) -> list[Message]:
        """The next frame, parsed (must be a JSON array)."""
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        frame = orjson.loads(msg.data)
        assert isinstance(frame, list), frame
        result: list[Message] = frame
        return result

    async def recv_until(self, predicate: Any, timeout: float = 5.0) -> list[Message]:
        """Collect messages from frames until one satisfies `predicate`; return all collected."""
        seen: list[Message] = []
        while True:
            frame = await self.recv(timeout)
            seen.extend(frame)
            if any(predicate(m) for m in frame):
                return seen

    async def handshake(self, **extra: Any) -> Message:
        """Handshake on this socket."""
        await self.send(handshake_message(str(next(self.ids)), **extra))
        frame = await self.recv()
        reply = frame[0]
        if reply.get("successful"):
            self.client_id = reply["clientId"]
        return reply

    async def open(self, *subscriptions: str, **handshake: Any) -> None:
        """Handshake, first connect, subscribe (consuming the replies)."""
        await self.handshake(**handshake)
        await self.send(self.connect_message())
        await self.recv_until(lambda m: m.get("channel") == "/meta/connect")
        for sub in subscriptions:
            await self.send(
                {
                    "channel": "/meta/subscribe",
                    "clientId": self.client_id,
                    "subscription": sub,
                    "id": str(next(self.ids)),
                }
            )
            seen = await self.recv_until(lambda m: m.get("channel") == "/meta/subscribe")
            assert seen[-1]["successful"], seen

    def connect_message(self, **extra: Any) -> Message:
        """A /meta/connect for this session over websocket."""
        msg: Message = {
            "channel": "/meta/connect",
            "clientId": self.client_id,
            "connectionType": "websocket",
            "id": str(next(self.ids)),
        }
        msg.update(extra)
        return msg
