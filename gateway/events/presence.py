"""Agents' presence: how many CometD sessions each agent holds, over every node. The seam, and its memory
implementation (one node); redis_presence.py counts over the nodes sharing one Redis."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

log = structlog.get_logger("gateway.presence")

# Told agents whose presence changed without a session of this node: (agents, online). Offline: their last
# session was on a node that vanished; online: a node's counts came back after Redis had lost them.
Changed = Callable[[list[str], bool], None]


class Presence(Protocol):
    """Session counts per agent; `opened` and `closed` return the count over every node after the change,
    so exactly one caller sees an agent's count go from 0 to 1 (online) and from 1 to 0 (offline)."""

    async def start(self, changed: Changed) -> None:
        """Begin (heartbeats, and noticing nodes that vanished: `changed` is told their agents gone offline)."""

    async def close(self) -> None:
        """Stop; this node's sessions stop counting."""

    async def opened(self, agent: str) -> int | None:
        """One more session of `agent` on this node; the agent's sessions over every node (None: unknown now)."""

    async def closed(self, agent: str) -> int | None:
        """One session of `agent` on this node fewer; the count over every node (None: unknown now)."""

    async def count(self, agent: str) -> int:
        """The agent's sessions over every node."""

    async def counts(self) -> dict[str, int]:
        """Every agent with sessions, and how many."""


class MemoryPresence:
    """Presence of one node: a counter per agent."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    async def start(self, changed: Changed) -> None:
        """Nothing to start: no other node can vanish."""

    async def close(self) -> None:
        """Nothing to release."""

    async def opened(self, agent: str) -> int | None:
        """Count up."""
        self._counts[agent] = self._counts.get(agent, 0) + 1
        return self._counts[agent]

    async def closed(self, agent: str) -> int | None:
        """Count down (never below zero)."""
        left = max(0, self._counts.get(agent, 0) - 1)
        if left:
            self._counts[agent] = left
        else:
            self._counts.pop(agent, None)
        return left

    async def count(self, agent: str) -> int:
        """The counter."""
        return self._counts.get(agent, 0)

    async def counts(self) -> dict[str, int]:
        """A copy of the counters."""
        return dict(self._counts)


def anywhere(here: Callable[[str], bool], presence: Presence) -> Callable[[str], Awaitable[bool]]:
    """Is the agent connected on any node: this node's own sessions first (no round trip), then the
    presence's count (unreachable: this node's sessions only)."""

    async def present(agent: str) -> bool:
        if here(agent):
            return True
        try:
            return await presence.count(agent) > 0
        except Exception as exc:
            log.warning("presence_unavailable", agent=agent, error=str(exc))
            return False

    return present
