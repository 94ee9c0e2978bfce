"""The chaos proxy passes on a server's death as a load balancer does: the client's connection closes too."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

import pytest

from tests.chaos.harness import Proxy

pytestmark = pytest.mark.timeout(30)


async def _dying_server(*, reset: bool) -> tuple[asyncio.Server, int]:
    """A server that reads nothing and closes each connection once the client has sent something.

    reset: close with SO_LINGER 0, so the kernel sends a reset, as it does for a process killed with -9 while
    the client's request lay unread in its socket.
    """

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.2)  # the request arrives and stays unread
        if reset:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort() if reset else writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "fin"])
async def test_a_server_gone_mid_request_closes_the_client_side(reset: bool) -> None:
    """The client waiting for its answer sees the connection end (EOF or reset), not silence."""
    server, port = await _dying_server(reset=reset)
    proxy = Proxy(port)
    await proxy.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"POST /api/v2/notifications HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n[]")
        await writer.drain()
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        await proxy.close()
        server.close()
