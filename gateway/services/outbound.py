"""Outbound records for agents (the GWS dialect's domain): preview sessions, reservations and the record
operations. Records are the stored dialler contacts; a record handle is a contact ID."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from gateway.clock import utcnow
from gateway.events.types import CampaignRef, EventSink, RecordCancelled, RecordNotice
from gateway.services.call_results import CALL_RESULTS, DEFAULT_RESULT_CODE, RESULT_CODE_OF, parse_call_result
from gateway.services.campaigns import Campaigns
from gateway.services.contact_fields import CLIENT_FIELDS, TEXT_FIELDS, check_field
from gateway.services.errors import Forbidden, InvalidInput, InvalidState, NotFound
from gateway.settings import CampaignSettings
from gateway.store.base import ContactRow, ContactStore, RecordChange

Payloads = list[dict[str, Any]]
RESCHEDULED = 5  # result code "Call Back (Delay)"
DO_NOT_CALL = 4  # result code "Do Not Call (Abort)"


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


class OutboundService:
    """Preview sessions and record operations; notifications go to the requesting agent only."""

    def __init__(
        self,
        *,
        store: ContactStore,
        campaigns: Campaigns,
        events: EventSink,
        max_records_per_agent: int = 0,
        clock: Callable[[], datetime] = utcnow,
        skills_of: Callable[[str], tuple[str, ...]] = lambda agent: (),
        present: Callable[[str], bool] = lambda agent: True,
    ) -> None:
        self._store = store
        self._campaigns = campaigns
        self._events = events
        self._max_records = max_records_per_agent
        self._clock = clock
        # Started preview sessions: agent -> campaign IDs (in memory; reservations live in the store).
        self._sessions: dict[str, set[int]] = {}
        self._observers: list[RecordObserver] = []
        self._skills_of = skills_of
        self._present = present

    def observe(self, observer: RecordObserver) -> None:
        """Tell `observer` what happens to records from now on."""
        self._observers.append(observer)

    # -- preview sessions ------------------------------------------------------------------------------

    async def start_preview(self, req: Request) -> Payloads:
        """StartPreviewSession: the agent works this campaign."""
        campaign = self._campaign(req)
        self._sessions.setdefault(req.agent, set()).add(campaign.id)
        return await self._tell(req, "PreviewSessionStarted", campaign, campaign_message=True, state="Started")

    async def end_preview(self, req: Request) -> Payloads:
        """EndPreviewSession: releases every record the agent holds in the campaign."""
        campaign = self._campaign(req)
        self._sessions.get(req.agent, set()).discard(campaign.id)
        for row in await self._store.reserved_by(req.agent, campaign.id):
            await self._store.change(row.id, agent=req.agent, change=RecordChange(), now=self._clock())
        return await self._tell(req, "PreviewSessionEnded", campaign, campaign_message=True, state="Stopped")

    async def get_preview(self, req: Request) -> Payloads:
        """GetPreviewRecord: reserve the next callable record for the agent and push it (or say there is none)."""
        campaign = self._campaign(req)
        if campaign.id not in self._sessions.get(req.agent, set()):
            raise InvalidState(f"No preview session started for campaign {campaign.name}")
        if self._max_records > 0 and len(await self._store.reserved_by(req.agent)) >= self._max_records:
            raise InvalidState(f"The agent already holds {self._max_records} records (outbound.max_records_per_agent)")
        row = await self._store.reserve_next(campaign_id=campaign.id, agent=req.agent, now=self._clock())
        if row is None:
            return await self._tell(req, "PreviewRecordEmpty", campaign)
        payloads = await self._tell(req, "PreviewRecord", campaign, row)
        await self._observe_reserved(row, req.agent)
        return payloads

    # -- record operations -----------------------------------------------------------------------------

    async def complete(self, req: Request, handle: int, call_result: object, phone: str | None) -> Payloads:
        """CompleteRecord: record the call result in the history and result code; the record is done."""
        # Input first: a bad callResult is a bad request whatever the record's state.
        code = parse_call_result(call_result) if call_result is not None else None
        campaign, row = await self._held(req, handle)
        offset = self._phone_offset(row, phone)
        result_code = RESULT_CODE_OF.get(code, DEFAULT_RESULT_CODE) if code is not None else DEFAULT_RESULT_CODE
        phones = row.phones()
        change = RecordChange(
            finished=True,
            result_code_id=result_code,
            attempts=1,
            history={
                "result_code_id": result_code,
                "phone_number": phone or (phones[0][1] if phones else None),
                "phone_offset": offset,
                "user_name": req.agent,
                "CallResult": CALL_RESULTS.get(code) if code is not None else None,
                "CallResultCode": code,
            },
        )
        updated = await self._apply(req, row, change)
        payloads = await self._tell(req, "RecordProcessedAcknowledge", campaign, updated)
        for observer in self._observers:
            await observer.record_completed(updated, req.agent)
        return payloads

    async def reject(self, req: Request, handle: int) -> Payloads:
        """RejectRecord: the record goes back to the pool untouched."""
        campaign, row = await self._held(req, handle)
        updated = await self._apply(req, row, RecordChange())
        return await self._tell(req, "RecordRejectAcknowledge", campaign, updated)

    async def do_not_call(self, req: Request, handle: int, phone: str | None, chain: str | None) -> Payloads:
        """DoNotCallRecord: never offered again (with chainAttribute AllChain, its whole chain)."""
        campaign, row = await self._held(req, handle)
        change = RecordChange(do_not_call=True, finished=True, result_code_id=DO_NOT_CALL)
        updated = await self._apply(req, row, change)
        if chain == "AllChain":
            for member in await self._store.chain(row):
                before = member.reserved_by
                await self._store.change(member.id, agent=None, change=change, now=self._clock())
                await self._cancel_for(before, member, req.agent)
        return await self._tell(req, "DoNotCallAcknowledge", campaign, updated)

    async def do_not_call_number(self, req: Request, phone: str) -> Payloads:
        """DoNotCallRecord by phoneNumber: every record with that number is never offered again."""
        campaign = self._campaign(req, check_list=False)
        if not phone.strip():
            raise InvalidInput("phoneNumber must not be empty")
        for row in await self._store.do_not_call_number(phone, self._clock()):
            await self._cancel_for(row.reserved_by, row, req.agent)
        return await self._tell(req, "DoNotCallAcknowledge", campaign, None, echo={"phoneNumber": phone})

    async def reschedule(self, req: Request, handle: int, callback_type: str, timestamp: int) -> Payloads:
        """RescheduleRecord: next try at `timestamp` (epoch seconds); Personal keeps it for this agent."""
        campaign, row = await self._held(req, handle)
        try:
            when = datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError):
            raise InvalidInput("timestamp must be seconds since 1970-01-01 (UTC)") from None
        personal = callback_type == "Personal"
        change = RecordChange(
            next_try_at=when,
            personal_agent=req.agent if personal else None,
            clear_personal=not personal,
            result_code_id=RESCHEDULED,
            attempts=1,
            history={
                "result_code_id": RESCHEDULED,
                "user_name": req.agent,
                "CallbackType": callback_type,
                "NextTry": when.isoformat(),
            },
        )
        updated = await self._apply(req, row, change)
        if personal:
            for observer in self._observers:
                observer.callback_scheduled(updated)
        return await self._tell(req, "ScheduledRecordRescheduleAcknowledge", campaign, updated)

    async def update(self, req: Request, handle: int, fields: dict[str, Any]) -> Payloads:
        """UpdateRecord: change the record's phone number and dialling fields; the agent keeps it."""
        campaign, row = await self._held(req, handle)
        data: dict[str, Any] = {}
        gws = dict(row.data.get("_gws") or {})
        for key, value in fields.items():
            if value is None:
                continue
            if key == "phoneNumber":
                data["PhoneNumber1"] = _phone_number(value)
            else:
                gws[key] = value
        if gws:
            data["_gws"] = gws
        updated = await self._apply(req, row, RecordChange(release=False, data=data))
        return await self._tell(req, "UpdateCallCompletionStatsAcknowledge", campaign, updated)

    async def add(
        self, req: Request, phone: str, chain_id: int | None, fields: dict[str, Any], other: dict[str, Any]
    ) -> Payloads:
        """AddRecord: a new record in the campaign (in chain `chain_id`, or a chain of its own)."""
        campaign = self._campaign(req)
        if not phone.strip():
            raise InvalidInput("phoneNumber must not be empty")
        if chain_id is not None:
            members = [r for r in await self._store.get_many([chain_id], [], None) if r.campaign_id == campaign.id]
            if not members:
                raise NotFound(f"Chain {chain_id} not found in campaign {campaign.name}")
        # otherFields travel as they are; jtel-named ones become the contact's fields, with jtel's types and lengths.
        data: dict[str, Any] = {
            "PhoneNumber1": _phone_number(phone),
            **{k: v for k, v in other.items() if isinstance(k, str)},
        }
        for name in CLIENT_FIELDS:
            check_field(name, data.get(name))
        data["_gws"] = {k: v for k, v in fields.items() if v is not None}
        row = await self._store.add(campaign_id=campaign.id, data=data, chain_id=chain_id, now=self._clock())
        return await self._tell(req, "AddRecordAcknowledge", campaign, row)

    async def chained(self, req: Request, handle: int) -> Payloads:
        """GetChainedRecord: one ChainedRecord per other phone number and chain member, then DataEnd."""
        campaign, row = await self._held(req, handle)
        payloads: Payloads = []
        chain_id = row.chain_id if row.chain_id is not None else row.id
        for position, phone in row.phones()[1:]:
            extra = {"GSW_PHONE": phone, "GSW_PHONE_OFFSET": position, "GSW_CHAIN_ID": chain_id}
            payloads += await self._tell(req, "ChainedRecord", campaign, row, extra=extra)
        for member in await self._store.chain(row):
            phones = member.phones()
            extra = {"GSW_PHONE": phones[0][1] if phones else None, "GSW_CHAIN_ID": chain_id}
            payloads += await self._tell(req, "ChainedRecord", campaign, member, extra=extra)
        payloads += await self._tell(req, "ChainedRecordsDataEnd", campaign, row, extra={"GSW_CHAIN_ID": chain_id})
        return payloads

    # -- pushed to agents ------------------------------------------------------------------------------

    async def offer_scheduled(self, contact_id: int, agent: str) -> bool:
        """A personal callback is due: reserve it for its agent and push it as ScheduledCall."""
        row = await self._store.reserve(contact_id, agent=agent, now=self._clock())
        if row is None:
            return False
        campaign = self._campaigns.get(row.campaign_id)
        await self._events.notify_agent(
            RecordNotice(agent=agent, kind="ScheduledCall", campaign=campaign_ref(campaign), record=row)
        )
        await self._observe_reserved(row, agent)
        return True

    async def offer(self, contact_id: int, campaign_id: int, skills: tuple[str, ...]) -> str | None:
        """Push a record to an agent waiting in the campaign (preview session started, connected, holding
        nothing) whose skills include `skills`; return that agent, or None (the record stays in the pool)."""
        campaign = self._campaigns.get(campaign_id)
        candidates = sorted(
            agent
            for agent, started in self._sessions.items()
            if campaign_id in started and self._present(agent) and set(skills) <= set(self._skills_of(agent))
        )
        for agent in candidates:
            if await self._store.reserved_by(agent):
                continue
            row = await self._store.reserve(contact_id, agent=agent, now=self._clock())
            if row is None:
                return None  # taken meanwhile (or withdrawn)
            await self._events.notify_agent(
                RecordNotice(agent=agent, kind="PreviewRecord", campaign=campaign_ref(campaign), record=row)
            )
            await self._observe_reserved(row, agent)
            return agent
        return None

    async def withdraw(self, contact_id: int) -> None:
        """Take a record out of the dialler for good (finished); its holder gets RecordCancel."""
        row = await self._store.get(contact_id, None)
        if row is None:
            return
        await self._store.change(contact_id, agent=None, change=RecordChange(finished=True), now=self._clock())
        if row.reserved_by is not None:
            await self._events.record_cancelled(
                RecordCancelled(agent=row.reserved_by, contact_id=row.id, campaign_id=row.campaign_id)
            )

    async def _observe_reserved(self, row: ContactRow, agent: str) -> None:
        for observer in self._observers:
            await observer.record_reserved(row, agent)

    # -- helpers ---------------------------------------------------------------------------------------

    def _campaign(self, req: Request, *, check_list: bool = True) -> CampaignSettings:
        try:
            campaign = self._campaigns.by_name(req.campaign_name)
        except NotFound:
            raise NotFound(f"Campaign {req.campaign_name} not found") from None
        if req.application_id != campaign.application_id:
            raise InvalidInput(f"applicationId {req.application_id} does not match campaign {campaign.name}")
        if check_list and req.calling_list is not None and req.calling_list != campaign.calling_list:
            raise InvalidInput(f"callingList {req.calling_list} does not match campaign {campaign.name}")
        return campaign

    async def _held(self, req: Request, handle: int) -> tuple[CampaignSettings, ContactRow]:
        campaign = self._campaign(req)
        row = await self._store.get(handle, None)
        if row is None:
            raise NotFound(f"Record {handle} not found")
        if row.campaign_id != campaign.id:
            raise InvalidInput(f"Record {handle} does not belong to campaign {campaign.name}")
        if row.reserved_by is None:
            reason = "locked" if row.locked else "not reserved by this agent"
            raise InvalidState(f"Record {handle} is {reason}")
        if row.reserved_by != req.agent:
            raise Forbidden(f"Record {handle} is reserved by another agent")
        return campaign, row

    async def _apply(self, req: Request, row: ContactRow, change: RecordChange) -> ContactRow:
        updated = await self._store.change(row.id, agent=req.agent, change=change, now=self._clock())
        if updated is None:
            # Taken away between the check and the change (a lock or delete won the race).
            raise InvalidState(f"Record {row.id} is no longer reserved by this agent")
        return updated

    async def _cancel_for(self, holder: str | None, row: ContactRow, requester: str) -> None:
        if holder is not None and holder != requester:
            await self._events.record_cancelled(
                RecordCancelled(agent=holder, contact_id=row.id, campaign_id=row.campaign_id)
            )

    @staticmethod
    def _phone_offset(row: ContactRow, phone: str | None) -> int | None:
        for position, number in row.phones():
            if phone is None or number == phone:
                return position
        return None

    async def _tell(
        self,
        req: Request,
        kind: str,
        campaign: CampaignSettings,
        row: ContactRow | None = None,
        *,
        campaign_message: bool = False,
        state: str | None = None,
        extra: dict[str, Any] | None = None,
        echo: dict[str, Any] | None = None,
    ) -> Payloads:
        notice = RecordNotice(
            agent=req.agent,
            kind=kind,
            campaign=campaign_ref(campaign),
            reference_id=req.reference_id,
            record=row,
            echo={**req.echo, **(echo or {})},
            extra=extra or {},
            campaign_message=campaign_message,
            campaign_state=state,
        )
        return await self._events.notify_agent(notice)


def _phone_number(value: str) -> str:
    """A GWS phoneNumber that becomes the contact's PhoneNumber1 (jtel's length limit)."""
    if len(value) > TEXT_FIELDS["PhoneNumber1"]:
        raise InvalidInput(f"phoneNumber is longer than {TEXT_FIELDS['PhoneNumber1']} characters")
    return value
