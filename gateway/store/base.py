"""The store contract and its row types."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from gateway.wire.notification import Notification

T = TypeVar("T")
# Renders the notifications a write causes from its result (on the writer, inside its transaction).
Notify = Callable[[T], Sequence[Notification]]


@dataclass(slots=True)
class ContactRow:
    """A stored dialler contact: the client's fields plus the dialler's own state."""

    id: int
    campaign_id: int
    user_data: str | None
    locked: bool
    do_not_call: bool
    finished: bool
    result_code_id: int | None
    next_try_at: datetime | None
    reserved_by: str | None
    reserved_at: datetime | None
    personal_agent: str | None
    imported_at: datetime
    updated_at: datetime
    data: dict[str, Any]
    attempts: int = 0
    chain_id: int | None = None

    def phones(self) -> list[tuple[int, str]]:
        """The contact's phone numbers with their position (1 to 6), empty ones left out."""
        out = []
        for n in range(1, 7):
            value = self.data.get(f"PhoneNumber{n}")
            if isinstance(value, str) and value.strip():
                out.append((n, value))
        return out


@dataclass(slots=True)
class RecordChange:
    """How an outbound operation changes a contact (None = leave as it is)."""

    release: bool = True  # drop the reservation
    finished: bool | None = None
    do_not_call: bool | None = None
    result_code_id: int | None = None
    next_try_at: datetime | None = None
    clear_next_try: bool = False
    personal_agent: str | None = None
    clear_personal: bool = False
    attempts: int = 0  # added to the count
    data: dict[str, Any] | None = None  # merged into the contact's fields
    history: dict[str, Any] | None = None  # one history entry: result_code_id, phone_number, ... data


@dataclass(frozen=True, slots=True)
class CampaignCounts:
    """How far a campaign is: its contacts, those callable now, held by agents, and done."""

    total: int = 0
    callable: int = 0  # not locked, finished, do-not-call or reserved, and its next try due
    held: int = 0  # reserved by an agent
    done: int = 0  # finished (completed, withdrawn) or do-not-call


@dataclass(slots=True)
class HistoryRow:
    """One call attempt's result for a contact."""

    id: int
    contact_id: int
    created_at: datetime
    result_code_id: int | None
    phone_number: str | None
    phone_offset: int | None
    user_name: str | None
    data: dict[str, Any]


Scope = Collection[int] | None  # campaign ids a caller may see; None = all


class HoldLimitReached(Exception):
    """A reservation refused: the agent already holds `max_held` records (counted in the same transaction)."""


class ContactStore(Protocol):
    """Contacts and their history; every write is durable when the call returns.

    A write's `notify(result)` renders the notifications the change causes: they are appended to their
    durable logs in the same transaction (an outbox) and handed to the store's relay after the commit,
    in commit order, before the write returns. A write that fails or is rolled back notifies nothing.
    """

    async def open(self) -> None:
        """Connect and bring the schema up to date."""

    async def close(self) -> None:
        """Release connections."""

    async def ping(self) -> bool:
        """True if the store answers."""

    async def upsert(
        self,
        *,
        campaign_id: int,
        user_data: str | None,
        data: dict[str, Any],
        overwrite: bool,
        now: datetime,
        notify: Notify[tuple[ContactRow, bool]] | None = None,
    ) -> tuple[ContactRow, bool]:
        """Insert a contact, or with `overwrite` replace the data of the first one with the same
        campaign and UserData; return it and whether it was created."""

    async def get(self, contact_id: int, scope: Scope) -> ContactRow | None:
        """One contact by ID."""

    async def find_by_user_data(self, user_data: str, scope: Scope) -> list[ContactRow]:
        """Contacts with this UserData, oldest first."""

    async def list_contacts(self, scope: Scope, campaign_id: int | None = None) -> list[ContactRow]:
        """All contacts in scope (of one campaign if given), by ID."""

    async def get_many(self, ids: Collection[int], user_data: Collection[str], scope: Scope) -> list[ContactRow]:
        """Contacts matching any of the IDs or UserData values, by ID."""

    async def history(self, contact_ids: Collection[int]) -> dict[int, list[HistoryRow]]:
        """History entries of these contacts, oldest first."""

    async def delete(
        self, contact_ids: Collection[int], *, notify: Notify[list[ContactRow]] | None = None
    ) -> list[ContactRow]:
        """Delete contacts and their history; return them as they were (reservation included)."""

    async def set_locked(
        self,
        contact_id: int,
        locked: bool,
        now: datetime,
        *,
        notify: Notify[tuple[ContactRow, bool, str | None] | None] | None = None,
    ) -> tuple[ContactRow, bool, str | None] | None:
        """Lock or unlock; return the contact, whether it changed and the agent whose reservation a lock
        took away (None if the contact does not exist)."""

    async def reserve_next(
        self,
        *,
        campaign_id: int,
        agent: str,
        now: datetime,
        notify: Notify[ContactRow | None] | None = None,
        max_held: int = 0,
    ) -> ContactRow | None:
        """Atomically reserve the next callable contact of the campaign for `agent`, or None.

        Callable: not locked, not finished, not do-not-call, not reserved, next try due, and either in
        the pool or a personal callback of this agent (those come first). With `max_held` > 0, raises
        HoldLimitReached (nothing reserved, nothing notified) when the agent already holds that many,
        counted atomically with the reservation (on any number of nodes).
        """

    async def reserve(
        self,
        contact_id: int,
        *,
        agent: str,
        now: datetime,
        notify: Notify[ContactRow | None] | None = None,
        max_held: int = 0,
    ) -> ContactRow | None:
        """Reserve one contact for `agent` if it is free and callable (a due personal callback);
        `max_held` as reserve_next."""

    async def reserved_by(self, agent: str, campaign_id: int | None = None) -> list[ContactRow]:
        """Contacts reserved by `agent` (in one campaign if given)."""

    async def reserved(self) -> list[ContactRow]:
        """Every contact reserved by some agent (the supervisor's view), by ID."""

    async def campaign_counts(self, now: datetime) -> dict[int, CampaignCounts]:
        """Counts per campaign ID (campaigns without contacts are left out)."""

    async def change(
        self,
        contact_id: int,
        *,
        agent: str | None,
        change: RecordChange,
        now: datetime,
        notify: Notify[ContactRow | None] | None = None,
    ) -> ContactRow | None:
        """Apply an outbound change to a contact reserved by `agent` (any contact if None); None if it
        is not (or no longer) reserved by `agent`."""

    async def do_not_call_number(
        self, phone: str, now: datetime, *, notify: Notify[list[ContactRow]] | None = None
    ) -> list[ContactRow]:
        """Mark every contact with this phone number do-not-call; return them as they were before."""

    async def add(
        self,
        *,
        campaign_id: int,
        data: dict[str, Any],
        chain_id: int | None,
        now: datetime,
        notify: Notify[ContactRow] | None = None,
    ) -> ContactRow:
        """Create a contact (outbound AddRecord); a new chain when `chain_id` is None."""

    async def chain(self, contact: ContactRow) -> list[ContactRow]:
        """The other contacts of the contact's chain."""

    async def due_personal(self, until: datetime) -> list[ContactRow]:
        """Free personal callbacks due at or before `until` (for the scheduler)."""

    async def pending_personal(self) -> list[ContactRow]:
        """Every free personal callback not yet due or due (to re-arm timers after a restart)."""

    async def count(self) -> int:
        """Number of stored contacts."""

    async def log(self, notifications: Sequence[Notification]) -> None:
        """Append notifications that report no change of ours (a read, a session state) in their own
        transaction, and relay them like the others."""
