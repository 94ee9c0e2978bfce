"""Dialler contacts: import, look up, delete, lock and unlock; every change emits an event."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.clock import utcnow
from gateway.events.types import ContactEvent, ContactEventType, EventSink, RecordCancelled
from gateway.services.campaigns import Campaigns
from gateway.services.contact_fields import clean_contact
from gateway.services.errors import InvalidInput, NotFound
from gateway.store.base import ContactRow, ContactStore, HistoryRow
from gateway.wire.notification import Notification

CONTACT_NOT_FOUND = "Dialler contact not found"


@dataclass(slots=True)
class BatchDelete:
    """What a batch delete did, list by list (jtel's six result lists)."""

    deleted_ids: list[int] = field(default_factory=list)
    not_deleted_ids: list[int] = field(default_factory=list)
    not_found_ids: list[int] = field(default_factory=list)
    deleted_user_data: list[str] = field(default_factory=list)
    not_deleted_user_data: list[str] = field(default_factory=list)
    not_found_user_data: list[str] = field(default_factory=list)
    deleted_count: int = 0


class ContactService:
    """Operations on dialler contacts, scoped to the campaigns a ClientsID may see."""

    def __init__(
        self,
        *,
        store: ContactStore,
        campaigns: Campaigns,
        events: EventSink,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._campaigns = campaigns
        self._events = events
        self._clock = clock

    async def list_contacts(self, client_id: int, campaign_id: int | None) -> list[ContactRow]:
        """All contacts of the client (of one campaign if given)."""
        if campaign_id is not None:
            self._campaigns.get(campaign_id, client_id)
        return await self._store.list_contacts(self._campaigns.ids(client_id), campaign_id)

    async def get(self, client_id: int, contact_id: int) -> ContactRow:
        """One contact by ID."""
        row = await self._store.get(contact_id, self._campaigns.ids(client_id))
        if row is None:
            raise NotFound(CONTACT_NOT_FOUND)
        return row

    async def find(self, client_id: int, user_data: str) -> list[ContactRow]:
        """Contacts with this UserData (404 when none)."""
        rows = await self._store.find_by_user_data(user_data, self._campaigns.ids(client_id))
        if not rows:
            raise NotFound(CONTACT_NOT_FOUND)
        return rows

    async def retrieve(
        self, client_id: int, ids: Collection[int], user_data: Collection[str]
    ) -> tuple[list[ContactRow], dict[int, list[HistoryRow]]]:
        """Contacts by IDs and/or UserData, with their history."""
        rows = await self._store.get_many(ids, user_data, self._campaigns.ids(client_id))
        history = await self._store.history([r.id for r in rows]) if rows else {}
        return rows, history

    async def import_contact(
        self, client_id: int, body: dict[str, Any], *, overwrite: bool, reference_id: str | None
    ) -> tuple[ContactRow, bool]:
        """Create a contact, or with `overwrite` replace the first one with the same UserData in the campaign."""
        campaign_id = body.get("DiallerCampaignsID")
        campaign_name = body.get("DiallerCampaignsName")
        if campaign_id is not None:
            if isinstance(campaign_id, bool) or not isinstance(campaign_id, int):
                raise InvalidInput("DiallerCampaignsID must be an integer")
            campaign = self._campaigns.get(campaign_id, client_id)
        elif campaign_name is not None:
            if not isinstance(campaign_name, str):
                raise InvalidInput("DiallerCampaignsName must be a string")
            campaign = self._campaigns.by_name(campaign_name, client_id)
        else:
            raise InvalidInput("DiallerCampaignsID or DiallerCampaignsName is mandatory")
        data = clean_contact(body)

        def notify(result: tuple[ContactRow, bool]) -> list[Notification]:
            row, created = result
            return self._event("ContactImported" if created else "ContactUpdated", row, reference_id)

        return await self._store.upsert(
            campaign_id=campaign.id,
            user_data=data["UserData"],
            data=data,
            overwrite=overwrite,
            now=self._clock(),
            notify=notify,
        )

    async def delete(self, client_id: int, contact_id: int, reference_id: str | None) -> ContactRow:
        """Delete one contact and its history."""
        row = await self.get(client_id, contact_id)
        gone = await self._store.delete([row.id], notify=lambda rows: self._deleted(rows, reference_id))
        if not gone:
            raise NotFound(CONTACT_NOT_FOUND)
        return gone[0]

    async def delete_by_user_data(self, client_id: int, user_data: str, reference_id: str | None) -> ContactRow:
        """Delete the first contact (lowest ID) with this UserData."""
        first = (await self.find(client_id, user_data))[0]
        return await self.delete(client_id, first.id, reference_id)

    async def batch_delete(
        self, client_id: int, ids: Collection[int], user_data: Collection[str], reference_id: str | None
    ) -> BatchDelete:
        """Delete by IDs and every contact of each UserData; report each given value in one list."""
        scope = self._campaigns.ids(client_id)
        rows = await self._store.get_many(ids, user_data, scope)
        by_id = {r.id: r for r in rows}
        deleted = await self._store.delete(list(by_id), notify=lambda gone: self._deleted(gone, reference_id))
        gone = {r.id for r in deleted}
        report = BatchDelete(deleted_count=len(gone))
        for cid in dict.fromkeys(ids):
            if cid not in by_id:
                report.not_found_ids.append(cid)
            elif cid in gone:
                report.deleted_ids.append(cid)
            else:
                report.not_deleted_ids.append(cid)
        for ud in dict.fromkeys(user_data):
            matching = [r for r in rows if r.user_data == ud]
            if not matching:
                report.not_found_user_data.append(ud)
            elif all(r.id in gone for r in matching):
                report.deleted_user_data.append(ud)
            else:
                report.not_deleted_user_data.append(ud)
        return report

    async def set_locked(self, client_id: int, contact_id: int, locked: bool, reference_id: str | None) -> ContactRow:
        """Lock (never offered to an agent) or unlock; repeating either is harmless and emits nothing."""
        await self.get(client_id, contact_id)

        def notify(outcome: tuple[ContactRow, bool, str | None] | None) -> list[Notification]:
            if outcome is None:
                return []
            row, changed, holder = outcome
            notes = self._event("ContactLocked" if locked else "ContactUnlocked", row, reference_id) if changed else []
            return notes + self._cancel(row, holder)

        outcome = await self._store.set_locked(contact_id, locked, self._clock(), notify=notify)
        if outcome is None:
            raise NotFound(CONTACT_NOT_FOUND)
        return outcome[0]

    async def set_locked_by_user_data(
        self, client_id: int, user_data: str, locked: bool, reference_id: str | None
    ) -> ContactRow:
        """Lock or unlock the first contact (lowest ID) with this UserData."""
        first = (await self.find(client_id, user_data))[0]
        return await self.set_locked(client_id, first.id, locked, reference_id)

    # The renderers below run inside the store's write transaction (the outbox): pure, no awaits.

    def _deleted(self, rows: list[ContactRow], reference_id: str | None) -> list[Notification]:
        notes: list[Notification] = []
        for row in rows:
            notes += self._event("ContactDeleted", row, reference_id) + self._cancel(row, row.reserved_by)
        return notes

    def _cancel(self, row: ContactRow, holder: str | None) -> list[Notification]:
        # The agent holding a record that was locked or deleted must drop it at once (RecordCancel).
        if holder is None:
            return []
        return self._events.record_cancelled(RecordCancelled(holder, row.id, row.campaign_id))

    def _event(self, kind: ContactEventType, row: ContactRow, reference_id: str | None) -> list[Notification]:
        return self._events.contact_changed(ContactEvent(kind, row.id, row.user_data, row.campaign_id, reference_id))
