"""The store contract and its row types."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


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


class ContactStore(Protocol):
    """Contacts and their history; every write is durable when the call returns."""

    async def open(self) -> None:
        """Connect and bring the schema up to date."""

    async def close(self) -> None:
        """Release connections."""

    async def ping(self) -> bool:
        """True if the store answers."""

    async def upsert(
        self, *, campaign_id: int, user_data: str | None, data: dict[str, Any], overwrite: bool, now: datetime
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

    async def delete(self, contact_ids: Collection[int]) -> list[int]:
        """Delete contacts and their history; return the IDs that existed."""

    async def set_locked(self, contact_id: int, locked: bool, now: datetime) -> tuple[ContactRow, bool] | None:
        """Lock or unlock; return the contact and whether it changed (None if it does not exist)."""

    async def count(self) -> int:
        """Number of stored contacts."""
