"""What supervisors watch: agents' presence (and its events), the agents' state, campaigns and queues now.

Presence comes from the CometD sessions of this node (first session of an agent: online; last one gone:
offline), told by the hub through `session_opened` / `session_closed`; the rest is read from the services
and the store when asked, so the views never drift from what the gateway does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import structlog

from gateway.clock import utcnow
from gateway.events.agents import iso_time
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
        sessions_of: Callable[[str], int],
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
        self._sessions_of = sessions_of
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
        """A CometD session was created: the agent's first one makes it online."""
        if user is not None and role == "agent" and self._sessions_of(user) == 1:
            self._tell(user, online=True, sessions=1)

    def session_closed(self, user: str | None, role: str | None) -> None:
        """A CometD session was removed: without any left the agent is offline."""
        if user is not None and role == "agent" and self._sessions_of(user) == 0:
            self._tell(user, online=False, sessions=0)

    def _tell(self, agent: str, *, online: bool, sessions: int) -> None:
        notes = self._events.agent_presence(agent, online=online, sessions=sessions)

        async def send() -> None:
            try:
                async with self._order:
                    await self._events.emit(notes)
            except Exception:
                log.exception("agent_presence_failed", agent=agent, online=online)

        task = asyncio.get_running_loop().create_task(send(), name=f"presence-{agent}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        """Nothing to load: presence starts empty (sessions do not outlive the process)."""

    async def close(self) -> None:
        """Let pending presence events go out (they are quick), then stop."""
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
        for agent in self._agents:
            sessions = self._sessions_of(agent)
            preview = sorted(self._campaign_name(c) or str(c) for c in self._outbound.preview_campaigns(agent))
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
