"""Cross-site request forgery against the GWS dialect (issue 13): the JSESSIONID cookie alone changes nothing.

A browser attaches the agent's JSESSIONID cookie to any request to the gateway, a form or `text/plain` POST
from another site's page included (no preflight for those). By default (gws.csrf: cookie) a state-changing
request that the cookie alone authenticates needs the session's X-CSRF-TOKEN, which a GET answers with
(`X-CSRF-HEADER: X-CSRF-TOKEN`); without it GWS's 403 statusCode 3 "Missing or invalid Csrf token", and the
operation is not run. Basic-authenticated requests carry the client's own credentials and need no token.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from yarl import URL

from tests.conftest import AGENT_PASSWORD, IDENTITIES, Gateway, StartGateway
from tests.integration.gws_client import DEVICE1, Agent, GwsReply

START = {"operationName": "StartPreviewSession", "applicationId": 101, "devicePath": f"/devices/{DEVICE1}"}
CAMPAIGN = "/api/v2/me/outbound-campaigns/Retention"
REFUSED = {"statusCode": 3, "statusMessage": "Missing or invalid Csrf token"}


@pytest.fixture
async def agent(gw: Gateway) -> AsyncIterator[Agent]:
    """agent1 signed in (GET /api/v2/me with Basic: the JSESSIONID cookie and the token) and on CometD."""
    async with Agent(gw.base, "agent1", AGENT_PASSWORD, DEVICE1) as a:
        await a.connect()
        yield a


async def sign_in(agent: Agent) -> tuple[str, str]:
    """GET /api/v2/me with Basic: the JSESSIONID cookie and the CSRF token it answers with ("" when none)."""
    me = await agent.get()
    assert me.status == 200
    cookie = agent.http.cookie_jar.filter_cookies(URL(agent.base + "/api/v2/me"))["JSESSIONID"].value
    return cookie, me.headers.get("X-CSRF-TOKEN", "")


async def cross_site_post(gw: Gateway, cookie: str, extra: dict[str, str] | None = None) -> GwsReply:
    """What another site's page can make a browser send: a text/plain POST with the cookie, no Authorization."""
    headers = {
        "Content-Type": "text/plain;charset=UTF-8",
        "Origin": "https://evil.example",
        "Cookie": f"JSESSIONID={cookie}",
        **(extra or {}),
    }
    async with (
        aiohttp.ClientSession() as http,  # its own (empty) jar: only the Cookie header given here
        http.post(gw.base + CAMPAIGN, data=orjson.dumps(START), headers=headers) as resp,
    ):
        return GwsReply(resp.status, await resp.json(content_type=None), resp.headers)


async def nothing_on(agent: Agent, seconds: float = 0.5) -> None:
    """No /v2/me/outbound notification within `seconds`: nothing was run."""
    with pytest.raises(asyncio.TimeoutError):
        await agent.next(timeout=seconds)


async def test_cross_site_post_with_only_the_cookie_is_refused(gw: Gateway, agent: Agent) -> None:
    """The CSRF of issue 13: StartPreviewSession by cookie alone gets GWS's 403 and starts nothing."""
    cookie, _ = await sign_in(agent)
    reply = await cross_site_post(gw, cookie)
    assert (reply.status, reply.body) == (403, REFUSED)
    await nothing_on(agent)
    forged = await cross_site_post(gw, cookie, {"X-CSRF-TOKEN": "forged"})
    assert (forged.status, forged.body) == (403, REFUSED)
    await nothing_on(agent)


async def test_cookie_with_the_token_is_accepted(gw: Gateway, agent: Agent) -> None:
    """The same request with the session's token (which only a page that read GET's reply can have) works."""
    cookie, token = await sign_in(agent)
    assert token, "GET /api/v2/me answers with X-CSRF-HEADER: X-CSRF-TOKEN and the token"
    reply = await cross_site_post(gw, cookie, {"X-CSRF-TOKEN": token})
    assert (reply.status, reply.body) == (200, {"statusCode": 0})
    assert (await agent.next())["data"]["notificationType"] == "PreviewSessionStarted"


async def test_another_sessions_token_is_refused(gw: Gateway, agent: Agent) -> None:
    """A token is bound to its JSESSIONID: one from another session does not pass."""
    cookie, _ = await sign_in(agent)
    async with Agent(gw.base, "agent1", AGENT_PASSWORD, DEVICE1) as other:
        _, other_token = await sign_in(other)
    reply = await cross_site_post(gw, cookie, {"X-CSRF-TOKEN": other_token})
    assert (reply.status, reply.body) == (403, REFUSED)


@pytest.mark.parametrize("with_cookie", [False, True])
async def test_basic_auth_needs_no_token(gw: Gateway, agent: Agent, with_cookie: bool) -> None:
    """Basic-authenticated POSTs (scripts, services, the desktop) work without the token, cookie or not."""
    if with_cookie:
        await sign_in(agent)  # the jar now sends JSESSIONID along with Basic
    assert agent.csrf is None
    reply = await agent.campaign_op("StartPreviewSession")
    assert (reply.status, reply.body) == (200, {"statusCode": 0})


async def test_gets_by_cookie_need_no_token(gw: Gateway, agent: Agent) -> None:
    """Reads are not state changes: GET by cookie alone still works (and hands out the token)."""
    await sign_in(agent)
    again = await agent.get(auth=False)
    assert again.status == 200 and again.headers["X-CSRF-TOKEN"]


async def test_csrf_off_accepts_the_cookie_alone(start_gateway: StartGateway) -> None:
    """gws.csrf: off (YAML false) is the explicit way back: the cookie alone authenticates a POST."""
    gw = await start_gateway(extra={**IDENTITIES, "gws": {"csrf": "off"}})
    async with Agent(gw.base, "agent1", AGENT_PASSWORD, DEVICE1) as a:
        await a.get()
        cookie = a.http.cookie_jar.filter_cookies(URL(a.base + "/api/v2/me"))["JSESSIONID"].value
        reply = await cross_site_post(gw, cookie)
        assert (reply.status, reply.body) == (200, {"statusCode": 0})


@pytest.mark.parametrize(("value", "mode"), [(None, "cookie"), (True, "always"), (False, "off"), ("always", "always")])
def test_csrf_setting(value: Any, mode: str) -> None:
    """gws.csrf defaults to cookie; the former booleans keep their meaning (true: GWS's, false: none)."""
    from gateway.settings import GwsSettings

    settings = GwsSettings() if value is None else GwsSettings(csrf=value)
    assert settings.csrf == mode
