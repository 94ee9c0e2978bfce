"""The listen backlog (server.backlog): clients connecting all at once are accepted without SYN retries.

aiohttp's default backlog of 128 made ~1,000 long-polling clients opening connections within a second (the
rooms benchmark's publishers, a restart) wait for SYN / SYN-ACK retries (1 s, then 3, 7, 15 s) or get reset.
"""

from __future__ import annotations

import socket
import time

from gateway.app import LEAN
from tests.conftest import Gateway, wait_for

BURST = 400  # connections made while the gateway's event loop cannot accept any


async def test_a_burst_of_connections_beyond_128_is_accepted_at_once(gateway: Gateway) -> None:
    """400 connections completed by the kernel while the event loop is blocked are all accepted within
    0.5 s once it runs again: none waits for a retry, which takes at least 1 s."""
    assert gateway.app is not None
    lean = gateway.app[LEAN]
    port = int(gateway.base.rsplit(":", 1)[1])
    socks: list[socket.socket] = []
    try:
        before = len(lean._connections)  # the connections the lean path accepted so far
        # The loop is blocked from here to the await: the kernel alone completes the handshakes.
        for _ in range(BURST):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            socks.append(s)
        time.sleep(0.2)  # noqa: ASYNC251 - blocking on purpose: nothing is accepted meanwhile
        await wait_for(lambda: len(lean._connections) - before == BURST, timeout=0.5)
    finally:
        for s in socks:
            s.close()
