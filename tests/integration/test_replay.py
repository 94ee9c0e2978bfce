"""Replay: Salesforce's wire shape over raw Bayeux JSON, the REST catch-up, and whose logs a session may read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from gateway.app import STORE
from gateway.clock import utcnow
from gateway.store.sql_log import SqlNotificationLog
from gateway.wire.replay import with_replay_id
from tests.conftest import AGENT_PASSWORD, CRM_TOKEN, IDENTITIES, SUPERVISOR_TOKEN, Gateway, StartGateway
from tests.integration.gws_client import DEVICE1, Agent
from tests.integration.jtel_client import Jtel
from tests.integration.raw import Message, RawHttp

OUTBOUND = "/v2/me/outbound"
AUTH1 = {"authentication": {"user": "agent1", "password": AGENT_PASSWORD}}
AUTH2 = {"authentication": {"user": "agent2", "password": "agent2-test-password"}}
INVALID = (
    "400::The replayId {} you provided was invalid. Please provide a valid ID, -2 to replay all events, "
    "or -1 to replay only new events."
)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # A jar that keeps the BAYEUX_BROWSER cookie at 127.0.0.1: it is what binds a long-polling session.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def raw(gw: Gateway, http: aiohttp.ClientSession, ext: dict[str, Any]) -> tuple[RawHttp, Message]:
    """A long-polling session handshaken with `ext`, first connect done."""
    client = RawHttp(gw.url, http)
    reply = await client.handshake(ext=ext)
    assert reply["successful"], reply
    await client.connect()
    return client, reply


async def subscribe(client: RawHttp, subscription: str, replay: Any = None) -> list[Message]:
    """Subscribe (with ext.replay when given); every message of the response."""
    message: Message = {"channel": "/meta/subscribe", "subscription": subscription}
    if replay is not None:
        message["ext"] = {"replay": {subscription: replay}}
    return await client.send(message)


def events(messages: list[Message], channel: str = OUTBOUND) -> list[Message]:
    """The events (not replies) on `channel`."""
    return [m for m in messages if m.get("channel") == channel and "data" in m]


async def sessions(agent: Agent, n: int) -> None:
    """n GWS operations whose acknowledgements land in agent1's log (Start/End preview session, alternating)."""
    for i in range(n):
        name = "StartPreviewSession" if i % 2 == 0 else "EndPreviewSession"
        assert (await agent.campaign_op(name, reference=f"s{i}")).status == 200


@pytest.fixture
async def agent(gw: Gateway) -> AsyncIterator[Agent]:
    async with Agent(gw.base, "agent1", AGENT_PASSWORD, DEVICE1) as a:
        yield a


async def test_handshake_opt_in(gw: Gateway, http: aiohttp.ClientSession) -> None:
    """ext.replay: true in the handshake is answered with ext.replay: true; without it, no ext.replay."""
    _, opted = await raw(gw, http, {**AUTH1, "replay": True})
    assert opted["ext"]["replay"] is True
    _, plain = await raw(gw, http, AUTH1)
    assert "replay" not in plain.get("ext", {})


async def test_all_retained_then_live(gw: Gateway, http: aiohttp.ClientSession, agent: Agent) -> None:
    """-2 replays every retained event (with data.event.replayId, marked replayed), reply first; live follows."""
    await sessions(agent, 3)
    client, _ = await raw(gw, http, {**AUTH1, "replay": True})
    response = await subscribe(client, OUTBOUND, -2)
    assert response[0]["channel"] == "/meta/subscribe" and response[0]["successful"], response
    replayed = events(response)
    kinds = [m["data"]["notificationType"] for m in replayed]
    assert kinds == ["PreviewSessionStarted", "PreviewSessionEnded", "PreviewSessionStarted"]
    ids = [m["data"]["event"]["replayId"] for m in replayed]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert all(m["ext"]["replayed"] is True for m in replayed)
    assert all(m["data"]["event"]["createdDate"].endswith("Z") for m in replayed)
    assert [m["data"]["referenceId"] for m in replayed] == ["s0", "s1", "s2"]
    await sessions(agent, 1)
    live = events(await client.connect())
    assert [m["data"]["referenceId"] for m in live] == ["s0"]  # the referenceId reused: a new Start
    assert live[0]["data"]["event"]["replayId"] > ids[-1] and "replayed" not in live[0].get("ext", {})


async def test_after_an_id_in_the_middle(gw: Gateway, http: aiohttp.ClientSession, agent: Agent) -> None:
    """An id replays exactly what came after it."""
    await sessions(agent, 4)
    first, _ = await raw(gw, http, {**AUTH1, "replay": True})
    everything = events(await subscribe(first, OUTBOUND, -2))
    middle = everything[1]["data"]["event"]["replayId"]
    second, _ = await raw(gw, http, {**AUTH1, "replay": True})
    response = await subscribe(second, OUTBOUND, middle)
    after = events(response)
    assert [m["data"]["event"]["replayId"] for m in after] == [m["data"]["event"]["replayId"] for m in everything[2:]]
    # Events were replayed: the reply's baseline stays the requested id (the events advance it as they
    # arrive), so a session lost before they are delivered resumes from where it was, not past them.
    (reply,) = [m for m in response if m.get("channel") == "/meta/subscribe"]
    assert reply["ext"]["replay"] == {OUTBOUND: middle}


async def test_new_only(gw: Gateway, http: aiohttp.ClientSession, agent: Agent) -> None:
    """-1 replays nothing; the next event arrives live with its replayId."""
    await sessions(agent, 2)
    client, _ = await raw(gw, http, {**AUTH1, "replay": True})
    (reply,) = await subscribe(client, OUTBOUND, -1)
    # Our addition to the reply: the id seen up to (4 entries: two operations and their twins).
    assert reply["successful"] and reply["ext"]["replay"] == {OUTBOUND: 4}
    await sessions(agent, 1)
    (live,) = events(await client.connect())
    assert live["data"]["event"]["replayId"] == 5


async def test_without_opt_in_nothing_changes(gw: Gateway, http: aiohttp.ClientSession, agent: Agent) -> None:
    """A session that did not opt in gets no replay (even when its subscribe asks) and data exactly as before."""
    await sessions(agent, 2)
    client, _ = await raw(gw, http, AUTH1)
    assert events(await subscribe(client, OUTBOUND, -2)) == []
    await sessions(agent, 1)
    (live,) = events(await client.connect())
    assert "event" not in live["data"] and "ext" not in live


async def test_subscribe_without_ext_replay_is_live_only(
    gw: Gateway, http: aiohttp.ClientSession, agent: Agent
) -> None:
    """An opted-in session subscribing without ext.replay gets only new events, each with its replayId."""
    await sessions(agent, 2)
    client, _ = await raw(gw, http, {**AUTH1, "replay": True})
    assert events(await subscribe(client, OUTBOUND)) == []
    await sessions(agent, 1)
    (live,) = events(await client.connect())
    assert isinstance(live["data"]["event"]["replayId"], int)


async def test_pruned_id_is_refused_exactly(gw: Gateway, http: aiohttp.ClientSession, agent: Agent) -> None:
    """An id no longer retained: the subscribe fails with Salesforce's 400 text, and subscribes nothing."""
    await sessions(agent, 6)
    assert gw.app is not None
    log = SqlNotificationLog(gw.app[STORE])
    assert await log.prune(before=utcnow() - timedelta(days=1), keep=4) > 0
    client, _ = await raw(gw, http, {**AUTH1, "replay": True})
    (reply,) = await subscribe(client, OUTBOUND, 1)
    assert reply["successful"] is False and reply["error"] == INVALID.format(1)
    (future,) = await subscribe(client, OUTBOUND, 10**6)
    assert future["error"] == INVALID.format(10**6)
    for bad in ("7", -3, True, 1.5):
        (refused,) = await subscribe(client, OUTBOUND, bad)
        assert refused["successful"] is False and refused["error"].startswith("400::The replayId")
    await sessions(agent, 1)
    assert events(await client.connect()) == []  # the failed subscribes subscribed nothing
    # 14 entries so far (7 operations, each an outbound message and its /me/internal twin); 1..8 pruned.
    kept = events(await subscribe(client, OUTBOUND, -2))
    assert [m["data"]["event"]["replayId"] for m in kept] == [9, 11, 13]
    resumed = await subscribe(client, OUTBOUND, 8)  # the last pruned id: nothing after it is lost
    assert resumed[0]["successful"] is True and len(events(resumed)) == 3


async def test_wildcard_replays_the_identity_log(gw: Gateway, http: aiohttp.ClientSession, agent: Agent) -> None:
    """/me/** replays the /me/internal twins from the same log; ids interleave with /v2/me/outbound's."""
    await sessions(agent, 2)
    client, _ = await raw(gw, http, {**AUTH1, "replay": True})
    outbound = events(await subscribe(client, OUTBOUND, -2))
    internal = events(await subscribe(client, "/me/**", -2), "/me/internal")
    assert [m["data"]["userData"]["GSW_USER_EVENT"] for m in internal] == [
        "PreviewSessionStarted",
        "PreviewSessionEnded",
    ]
    ids = sorted(m["data"]["event"]["replayId"] for m in outbound + internal)
    assert ids == list(range(ids[0], ids[0] + 4))


async def test_another_identity_log_reveals_nothing(gw: Gateway, http: aiohttp.ClientSession, agent: Agent) -> None:
    """agent2 replaying its own channels with agent1's ids sees none of agent1's notifications."""
    await sessions(agent, 3)
    client, _ = await raw(gw, http, {**AUTH2, "replay": True})
    assert events(await subscribe(client, "/v2/me/**", -2)) == []
    (reply,) = await subscribe(client, OUTBOUND, 3)  # agent1 has an id 3; agent2's log has none
    assert reply["error"] == INVALID.format(3)


async def test_service_channel_log(start_gateway: StartGateway, http: aiohttp.ClientSession) -> None:
    """A supervisor replays /v2/dialler/contacts (one shared log); an agent may not subscribe to it at all."""
    gw = await start_gateway(extra=IDENTITIES)
    jtel = Jtel(http, gw.base, CRM_TOKEN)
    for n in range(3):
        await jtel.import_contact(UserData=f"R{n}")
    client = RawHttp(gw.url, http)
    reply = await client.handshake(ext={"authentication": {"token": SUPERVISOR_TOKEN}, "replay": True})
    assert reply["successful"]
    await client.connect()
    replayed = events(await subscribe(client, "/v2/dialler/contacts", -2), "/v2/dialler/contacts")
    assert [m["data"]["UserData"] for m in replayed] == ["R0", "R1", "R2"]
    agent_client, _ = await raw(gw, http, {**AUTH1, "replay": True})
    (denied,) = await subscribe(agent_client, "/v2/dialler/contacts", -2)
    assert denied["error"] == "403:denied_by_security_policy:subscribe_denied"


async def test_no_gap_no_duplicate_while_publishing(gw: Gateway, http: aiohttp.ClientSession, agent: Agent) -> None:
    """Operations racing a replay: the session gets every outbound event of the log once, in order."""
    await sessions(agent, 20)
    client, _ = await raw(gw, http, {**AUTH1, "replay": True})

    async def more() -> None:
        await sessions(agent, 20)

    racing = asyncio.create_task(more())
    await asyncio.sleep(0.01)
    got = events(await subscribe(client, OUTBOUND, -2))
    await racing
    for _ in range(50):
        if len(got) >= 40:
            break
        got += events(await client.connect())
    ids = [m["data"]["event"]["replayId"] for m in got]
    assert ids == sorted(set(ids)), ids
    assert len(ids) == 40
    assert gw.app is not None
    logged = await SqlNotificationLog(gw.app[STORE]).read("user:agent1", 0, 1000)
    assert ids == [n.replay_id for n in logged if n.channel == OUTBOUND]


async def test_rest_catch_up(gw: Gateway, agent: Agent) -> None:
    """GET /api/v2/me/notifications?after= returns the same messages, pages with limit, refuses pruned ids."""
    await sessions(agent, 2)
    everything = await agent.get("/notifications?after=-2")
    assert everything.status == 200 and everything.body["statusCode"] == 0
    notes = everything.body["notifications"]
    assert [n["channel"] for n in notes] == [OUTBOUND, "/me/internal", OUTBOUND, "/me/internal"]
    assert everything.body["latestReplayId"] == notes[-1]["data"]["event"]["replayId"]
    page = await agent.get("/notifications?after=-2&limit=3")
    assert len(page.body["notifications"]) == 3 and page.body["more"] is True
    rest = await agent.get(f"/notifications?after={page.body['latestReplayId']}")
    assert rest.body["notifications"] == notes[3:] and rest.body["more"] is False
    latest = await agent.get("/notifications?after=-1")
    assert latest.body["notifications"] == [] and latest.body["latestReplayId"] == everything.body["latestReplayId"]
    bad = await agent.get("/notifications?after=999")
    assert (
        bad.status == 400
        and bad.body["statusCode"] == 2
        and "999 you provided was invalid" in bad.body["statusMessage"]
    )
    assert (await agent.get("/notifications")).status == 400
    async with aiohttp.ClientSession() as anonymous, anonymous.get(gw.base + "/api/v2/me/notifications?after=-2") as r:
        assert r.status == 401


def test_replay_tag_never_overwrites_the_publishers_event() -> None:
    """data.event of the publisher's own: an object keeps its keys beside replayId; anything else is left alone."""
    kept = with_replay_id({"channel": "/c", "data": {"event": {"kind": "x"}}}, 7, "2026-12-03T10:00:00.000Z")
    assert kept["data"]["event"] == {"kind": "x", "replayId": 7, "createdDate": "2026-12-03T10:00:00.000Z"}
    plain = {"channel": "/c", "data": {"event": "RecordTaken"}}
    assert with_replay_id(plain, 7, None) is plain
