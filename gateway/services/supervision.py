"""What supervisors watch: agents' presence (and its events), the agents' state, campaigns and queues now.

Presence counts the agents' CometD sessions on every node (the Presence seam: in memory for one node, in
Redis for several); this node tells it of its own through `session_opened` / `session_closed` (from the
hub), and publishes AgentOnline / AgentOffline when the count over every node goes from 0 to 1 and back
(exactly one node sees each step), or when the seam reports a vanished node's agents gone. The rest is
read from the services and the store when asked, so the views never drift from what the gateway does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime
from typing import Any

import structlog

from gateway.clock import utcnow
from gateway.events.agents import iso_time
from gateway.events.presence import Presence
from gateway.events.types import EventSink
from gateway.services.campaigns import Campaigns
from gateway.services.errors import NotFound
from gateway.services.outbound import OutboundService
from gateway.services.waitfield import Waitfield
from gateway.store.base import CampaignCounts, ContactStore
from gateway.store.waitfield import WaitfieldStore

log = structlog.get_logger("gateway.supervision")


class Supervision:
    """The supervisor's views, and AgentOnline / AgentOffline events."""

    def __init__(
        self,
        *,
        agents: Iterable[str],
        presence: Presence,
        outbound: OutboundService,
        campaigns: Campaigns,
        store: ContactStore,
        waitfield: Waitfield,
        waitfield_store: WaitfieldStore,
        queues: Iterable[str],
        events: EventSink,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._agents = tuple(sorted(agents))
        self._presence = presence
        self._outbound = outbound
        self._campaigns = campaigns
        self._store = store
        self._waitfield = waitfield
        self._waitfield_store = waitfield_store
        self._queues = tuple(queues)
        self._events = events
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        # Presence events leave in the order the sessions came and went.
        self._order = asyncio.Lock()

    # -- presence --------------------------------------------------------------------------------------

    def session_opened(self, user: str | None, role: str | None) -> None:
        """A CometD session was created: the agent's first one (on any node) makes it online."""
        if user is not None and role == "agent":
            self._step(user, opened=True)

    def session_closed(self, user: str | None, role: str | None) -> None:
        """A CometD session was removed: without any left (on any node) the agent is offline."""
        if user is not None and role == "agent":
            self._step(user, opened=False)

    def presence_changed(self, agents: list[str], online: bool) -> None:
        """The seam saw agents' presence change without a session of ours (a vanished node's agents)."""
        for agent in agents:
            self._run(agent, online, self._tell(agent, online=online, sessions=1 if online else 0))

    def _step(self, agent: str, *, opened: bool) -> None:
        async def step() -> None:
            count = await (self._presence.opened(agent) if opened else self._presence.closed(agent))
            if count == (1 if opened else 0):
                await self._tell(agent, online=opened, sessions=count)

        self._run(agent, opened, step())

    async def _tell(self, agent: str, *, online: bool, sessions: int) -> None:
        await self._events.emit(self._events.agent_presence(agent, online=online, sessions=sessions))

    def _run(self, agent: str, online: bool, work: Coroutine[Any, Any, None]) -> None:
        async def send() -> None:
            try:
                # Presence steps and events leave in the order the sessions came and went.
                async with self._order:
                    await work
            except Exception:
                log.exception("agent_presence_failed", agent=agent, online=online)

        task = asyncio.get_running_loop().create_task(send(), name=f"presence-{agent}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        """Start counting (this node's sessions start at none: they do not outlive the process)."""
        await self._presence.start(self.presence_changed)

    async def close(self) -> None:
        """Take this node's sessions out of the presence (its AgentOffline events), let pending presence
        events go out (they are quick), then stop."""
        await self._presence.close()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2)
        for task in self._tasks:
            task.cancel()

    # -- views -----------------------------------------------------------------------------------------

    async def agents(self) -> list[dict[str, Any]]:
        """Every configured agent: online, its sessions, its preview sessions and the records it holds."""
        held: dict[str, list[dict[str, Any]]] = {}
        for row in await self._store.reserved():
            assert row.reserved_by is not None
            held.setdefault(row.reserved_by, []).append(
                {
                    "recordHandle": row.id,
                    "campaign": self._campaign_name(row.campaign_id),
                    "campaignId": row.campaign_id,
                    "since": iso_time(row.reserved_at) if row.reserved_at else None,
                }
            )
        out = []
        counts = await self._presence.counts()
        for agent in self._agents:
            sessions = counts.get(agent, 0)
            preview = sorted(self._campaign_name(c) or str(c) for c in await self._outbound.preview_campaigns(agent))
            out.append(
                {
                    "agent": agent,
                    "online": sessions > 0,
                    "sessions": sessions,
                    "preview": preview,
                    "held": held.get(agent, []),
                }
            )
        return out

    async def campaigns(self) -> list[dict[str, Any]]:
        """Every campaign: contacts in all, callable now, held by agents, done."""
        counts = await self._store.campaign_counts(self._clock())
        out = []
        for campaign in self._campaigns.all():
            c = counts.get(campaign.id, CampaignCounts())
            out.append(
                {
                    "id": campaign.id,
                    "name": campaign.name,
                    "total": c.total,
                    "callable": c.callable,
                    "held": c.held,
                    "done": c.done,
                }
            )
        return out

    async def queues(self) -> list[dict[str, Any]]:
        """Every waiting-field queue: callers waiting (not yet taken), the longest wait, a new caller's
        estimate, and the contacts routed and elapsed today (since 00:00 UTC)."""
        now = self._clock()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        today = await self._waitfield_store.day_counts(midnight)
        oldest: dict[str, datetime] = {}
        waiting: dict[str, int] = {}
        for row in self._waitfield.active():
            waiting[row.queue] = waiting.get(row.queue, 0) + 1
            if row.queue not in oldest or row.created_at < oldest[row.queue]:
                oldest[row.queue] = row.created_at
        out = []
        for queue in self._queues:
            first = oldest.get(queue)
            routed, elapsed = today.get(queue, (0, 0))
            out.append(
                {
                    "queue": queue,
                    "waiting": waiting.get(queue, 0),
                    "longestWaitSince": iso_time(first) if first else None,
                    "longestWait": max(0, int((now - first).total_seconds())) if first else 0,
                    "estimate": self._waitfield.estimate(queue),
                    "routedToday": routed,
                    "elapsedToday": elapsed,
                }
            )
        return out

    def _campaign_name(self, campaign_id: int) -> str | None:
        try:
            return self._campaigns.get(campaign_id).name
        except NotFound:
            return None
