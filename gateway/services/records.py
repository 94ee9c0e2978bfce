"""What outbound operations name (the request), who watches records, and small record helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.events.types import CampaignRef
from gateway.services.contact_fields import TEXT_FIELDS
from gateway.services.errors import InvalidInput
from gateway.settings import CampaignSettings
from gateway.store.base import ContactRow


def campaign_ref(c: CampaignSettings) -> CampaignRef:
    """The campaign facts notifications carry."""
    return CampaignRef(c.id, c.name, c.application_id, c.calling_list, c.dialing_mode, c.agent_group)


@dataclass(frozen=True, slots=True)
class Request:
    """What every outbound operation names: who, which campaign, the echo fields, the referenceId."""

    agent: str
    campaign_name: str
    application_id: int
    calling_list: str | None = None
    reference_id: str | None = None
    echo: dict[str, Any] = field(default_factory=dict)


class RecordObserver(Protocol):
    """Told what happens to records (the waiting field and the personal callbacks listen)."""

    async def record_reserved(self, row: ContactRow, agent: str) -> None:
        """`agent` now holds the record."""

    async def record_completed(self, row: ContactRow, agent: str) -> None:
        """`agent` completed the record."""

    def callback_scheduled(self, row: ContactRow) -> None:
        """The record was rescheduled as a personal callback of `row.personal_agent`."""


def phone_number(value: str) -> str:
    """A GWS phoneNumber that becomes the contact's PhoneNumber1 (jtel's length limit)."""
    if len(value) > TEXT_FIELDS["PhoneNumber1"]:
        raise InvalidInput(f"phoneNumber is longer than {TEXT_FIELDS['PhoneNumber1']} characters")
    return value
