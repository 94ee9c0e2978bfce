"""GWS preview sessions (which campaigns each agent works): the seam, in memory for one node, and in the
SQL store for several nodes on one database, so a node that dies takes no agent's session with it."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gateway.store.schema import preview_sessions
from gateway.store.sql import SqlContactStore
from gateway.store.sql_log import upsert_insert


class PreviewSessions(Protocol):
    """Started preview sessions: (agent, campaign) pairs; starting twice is one session."""

    async def start(self, agent: str, campaign_id: int, now: datetime) -> None:
        """The agent works this campaign from now on."""

    async def end(self, agent: str, campaign_id: int) -> None:
        """The agent no longer works this campaign (nothing if it did not)."""

    async def started(self, agent: str, campaign_id: int) -> bool:
        """True if the agent works this campaign."""

    async def campaigns_of(self, agent: str) -> frozenset[int]:
        """The campaigns the agent works."""

    async def agents_in(self, campaign_id: int) -> list[str]:
        """The agents working this campaign, sorted by name."""


class MemoryPreviewSessions:
    """PreviewSessions in this process (one node: the embedded default; lost with the process)."""

    def __init__(self) -> None:
        self._by_agent: dict[str, set[int]] = {}

    async def start(self, agent: str, campaign_id: int, now: datetime) -> None:
        """Add the pair."""
        self._by_agent.setdefault(agent, set()).add(campaign_id)

    async def end(self, agent: str, campaign_id: int) -> None:
        """Drop the pair."""
        campaigns = self._by_agent.get(agent)
        if campaigns is not None:
            campaigns.discard(campaign_id)
            if not campaigns:
                del self._by_agent[agent]

    async def started(self, agent: str, campaign_id: int) -> bool:
        """Membership."""
        return campaign_id in self._by_agent.get(agent, ())

    async def campaigns_of(self, agent: str) -> frozenset[int]:
        """A copy of the agent's set."""
        return frozenset(self._by_agent.get(agent, ()))

    async def agents_in(self, campaign_id: int) -> list[str]:
        """A scan over the agents (few: the configured ones)."""
        return sorted(agent for agent, campaigns in self._by_agent.items() if campaign_id in campaigns)


class SqlPreviewSessions:
    """PreviewSessions as rows of the gateway's database (one per pair), through the store's writer."""

    def __init__(self, db: SqlContactStore) -> None:
        self._db = db

    async def start(self, agent: str, campaign_id: int, now: datetime) -> None:
        """INSERT ... ON CONFLICT DO NOTHING: two nodes starting the same session at once make one row."""

        def op(conn: Connection) -> None:
            new = upsert_insert(conn)(preview_sessions).values(agent=agent, campaign_id=campaign_id, started_at=now)
            conn.execute(new.on_conflict_do_nothing(index_elements=["agent", "campaign_id"]))

        await self._db.write(op)

    async def end(self, agent: str, campaign_id: int) -> None:
        """DELETE the pair."""
        p = preview_sessions.c

        def op(conn: Connection) -> None:
            conn.execute(sa.delete(preview_sessions).where(p.agent == agent, p.campaign_id == campaign_id))

        await self._db.write(op)

    async def started(self, agent: str, campaign_id: int) -> bool:
        """SELECT the pair."""
        p = preview_sessions.c
        query = sa.select(sa.literal(1)).where(p.agent == agent, p.campaign_id == campaign_id)
        return await self._db.read(lambda conn: conn.execute(query).first() is not None)

    async def campaigns_of(self, agent: str) -> frozenset[int]:
        """SELECT by agent (the primary key's prefix)."""
        query = sa.select(preview_sessions.c.campaign_id).where(preview_sessions.c.agent == agent)
        return await self._db.read(lambda conn: frozenset(int(r) for r in conn.execute(query).scalars()))

    async def agents_in(self, campaign_id: int) -> list[str]:
        """SELECT by campaign (its own index)."""
        p = preview_sessions.c
        query = sa.select(p.agent).where(p.campaign_id == campaign_id).order_by(p.agent)
        return await self._db.read(lambda conn: [str(r) for r in conn.execute(query).scalars()])
