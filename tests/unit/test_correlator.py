"""The Correlator: an operation runs once per referenceId, retries get its first answer, acks reach the caller."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.api.common import Reply
from gateway.api.correlator import Correlator
from gateway.api.errors import JTEL
from gateway.api.failures import ReferenceConflict
from gateway.bayeux.logs import LogPolicy
from gateway.bayeux.server import BayeuxServer
from gateway.broker.memory import MemoryBroker
from gateway.broker.relay import Relay
from gateway.events.correlation import MemoryCorrelationRegistry
from gateway.events.outbound import OutboundNotifier
from gateway.events.publisher import OPERATIONS_CHANNEL, EventPublisher
from gateway.events.types import CampaignRef
from gateway.hub.hub import Hub
from gateway.hub.session import Session
from gateway.services.errors import InvalidInput
from tests.seams.clock import FakeClock


class Setup:
    """A correlator over the memory registry, acknowledging through the real publisher into a hub where
    the user "crm" has a session on its /v2/me/operations."""

    def __init__(self, *, wait_s: float = 5.0) -> None:
        self.hub = Hub(max_queue=100, overflow="drop_oldest", max_interval_s=60.0)
        self.broker = MemoryBroker()
        server = BayeuxServer(broker=self.broker, relay=Relay(self.broker), logs=LogPolicy(channels=(), enabled=False))
        events = EventPublisher(
            server=server,
            outbound=OutboundNotifier(server=server, device_of=lambda name: None),
            campaign_of=lambda campaign_id: CampaignRef(campaign_id, "c", 1, "l", "Preview", "g"),
        )
        self.clock = FakeClock()
        self.registry = MemoryCorrelationRegistry(max_entries=100, ttl_s=60.0, clock=self.clock)
        self.correlator = Correlator(registry=self.registry, events=events, wait_s=wait_s)
        self.crm: Session = self.hub.create_session(transport="websocket", user="crm", identity=None, browser_id=None)
        self.hub.subscribe(self.crm, OPERATIONS_CHANNEL)
        self.calls = 0

    async def start(self) -> None:
        """Connect the broker to the hub."""
        await self.broker.start(self.hub.dispatch)

    async def run(self, reference: str | None, *, fingerprint: str = "fp", **kw: Any) -> Reply:
        """Run the counting operation (or `apply=`) as "crm"."""

        async def count() -> Reply:
            self.calls += 1
            return Reply(201, {"call": self.calls})

        options: dict[str, Any] = {"apply": count, **kw}
        return await self.correlator.run(
            user="crm", reference=reference, operation="import", fingerprint=fingerprint, errors=JTEL, **options
        )

    def acks(self) -> list[Any]:
        """The acknowledgements crm's session received."""
        return [m["data"] for m in self.crm.drain()]


@pytest.fixture
async def setup() -> Setup:
    """A started set-up."""
    s = Setup()
    await s.start()
    return s


async def test_without_reference_every_call_applies(setup: Setup) -> None:
    """No referenceId: nothing is remembered or acknowledged."""
    assert await setup.run(None) == Reply(201, {"call": 1})
    assert await setup.run(None) == Reply(201, {"call": 2})
    assert await setup.registry.count() == 0 and setup.acks() == []


async def test_a_retry_gets_the_first_answer_and_one_ack(setup: Setup) -> None:
    """The same request again is not applied again; the caller's /v2/me/operations hears of it once."""
    first = await setup.run("r1")
    again = await setup.run("r1")
    assert first == again == Reply(201, {"call": 1}) and setup.calls == 1
    assert setup.acks() == [{"referenceId": "r1", "operation": "import", "status": 201, "result": {"call": 1}}]
    assert await setup.run("r2") == Reply(201, {"call": 2})


async def test_another_request_under_a_used_reference_conflicts(setup: Setup) -> None:
    """Same referenceId, different request: refused, nothing applied."""
    await setup.run("r1")
    with pytest.raises(ReferenceConflict, match="different request"):
        await setup.run("r1", fingerprint="other")
    assert setup.calls == 1


async def test_a_refused_operation_is_remembered_like_a_success(setup: Setup) -> None:
    """A domain error becomes the dialect's answer; a retry gets that same answer without trying again."""
    tries = 0

    async def refuse() -> Reply:
        nonlocal tries
        tries += 1
        raise InvalidInput("Name is too long")

    expected = JTEL.answer(InvalidInput("Name is too long"))
    assert await setup.run("r1", apply=refuse) == expected
    assert await setup.run("r1", apply=refuse) == expected
    assert tries == 1 and expected.status == 400
    assert [a["status"] for a in setup.acks()] == [400]


async def test_an_unexpected_failure_is_forgotten(setup: Setup) -> None:
    """An operation that crashed is not remembered: the exception propagates and a retry runs it."""

    async def crash() -> Reply:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        await setup.run("r1", apply=crash)
    assert await setup.registry.get("crm", "r1") is None
    assert await setup.run("r1") == Reply(201, {"call": 1})
    assert [a["status"] for a in setup.acks()] == [201]


async def test_a_concurrent_retry_waits_for_the_first_attempt(setup: Setup) -> None:
    """A retry arriving while the first attempt runs waits for it and gets its answer."""
    release = asyncio.Event()

    async def slow() -> Reply:
        setup.calls += 1
        await release.wait()
        return Reply(200, {"slow": True})

    first = asyncio.create_task(setup.run("r1", apply=slow))
    await asyncio.sleep(0)
    retry = asyncio.create_task(setup.run("r1", apply=slow))
    await asyncio.sleep(0.01)
    assert not first.done() and not retry.done()
    release.set()
    assert await first == await retry == Reply(200, {"slow": True})
    assert setup.calls == 1 and len(setup.acks()) == 1


async def test_a_retry_gives_up_on_a_first_attempt_still_running() -> None:
    """Past wait_s the retry is refused (the first attempt is still in progress)."""
    setup = Setup(wait_s=0.01)
    await setup.start()
    release = asyncio.Event()

    async def stuck() -> Reply:
        await release.wait()
        return Reply(200, None)

    first = asyncio.create_task(setup.run("r1", apply=stuck))
    await asyncio.sleep(0)
    with pytest.raises(ReferenceConflict, match="still in progress"):
        await setup.run("r1", apply=stuck)
    release.set()
    assert await first == Reply(200, None)


async def test_on_retry_resends_what_was_kept_without_an_ack(setup: Setup) -> None:
    """A dialect whose notifications are its acknowledgement keeps them; a retry hands them to on_retry."""
    resent: list[Any] = []

    async def with_kept() -> Reply:
        return Reply(200, {"ok": 1}, kept=[{"channel": "/v2/me/outbound", "data": "n"}])

    async def resend(kept: Any) -> None:
        resent.append(kept)

    options: dict[str, Any] = {"apply": with_kept, "on_retry": resend, "acknowledge": False}
    assert (await setup.run("r1", **options)).body == {"ok": 1}
    assert resent == []
    assert (await setup.run("r1", **options)).body == {"ok": 1}
    assert resent == [[{"channel": "/v2/me/outbound", "data": "n"}]]
    assert setup.acks() == []


async def test_an_expired_reference_runs_again(setup: Setup) -> None:
    """After the registry's TTL a referenceId is new again (it is remembered for a while, not forever)."""
    await setup.run("r1")
    setup.clock.advance(61)
    assert await setup.run("r1") == Reply(201, {"call": 2})
