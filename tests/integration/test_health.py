"""Operations endpoints: /healthz (the process answers) and /readyz (the store answers)."""

from __future__ import annotations

import aiohttp

from gateway.app import STORE
from tests.conftest import StartGateway


async def test_healthz_and_readyz(start_gateway: StartGateway) -> None:
    """Both 200 while the store is open; /readyz turns 503 when the store cannot answer."""
    gw = await start_gateway()
    async with aiohttp.ClientSession() as http:
        async with http.get(gw.base + "/healthz") as resp:
            assert resp.status == 200 and await resp.json() == {"status": "ok"}
        async with http.get(gw.base + "/readyz") as resp:
            assert resp.status == 200 and (await resp.json())["store"] is True
        assert gw.app is not None
        await gw.app[STORE].close()  # the store goes away: not ready any more, still alive
        async with http.get(gw.base + "/readyz") as resp:
            assert resp.status == 503 and (await resp.json())["status"] == "not ready"
        async with http.get(gw.base + "/healthz") as resp:
            assert resp.status == 200
